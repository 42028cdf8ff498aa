"""Composes the node's ASGI application: one Starlette app, one path per actor (ARCHITECTURE.md §1)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import entry_points

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from xds.node import Node
from xds.web.imaging import imaging_actor
from xds.web.recipient import recipient_actor
from xds.web.registry import registry_actor
from xds.web.repository import repository_actor
from xds.web.soap import SoapActor

ACTOR_ENTRY_POINTS = "xds.actors"
"""Entry-point group of packages that add actors (``xca``: the gateways); each entry is ``(node) -> [(path,
actor)]``. ``xds`` never imports ``xca`` (ARCHITECTURE.md §2); this is how its actors are mounted."""


def plugin_actors(node: Node) -> list[tuple[str, SoapActor]]:
    """The actors installed packages add to this node."""
    found: list[tuple[str, SoapActor]] = []
    for entry in sorted(entry_points(group=ACTOR_ENTRY_POINTS), key=lambda e: e.name):
        found += entry.load()(node)
    return found


def create_app(node: Node) -> Starlette:
    """The ASGI application of ``node``."""
    registry = registry_actor(node)
    repository = repository_actor(node)
    recipient = recipient_actor(node)
    imaging = imaging_actor(node)
    plugins = plugin_actors(node)
    extra = [Route(path, actor.handle, methods=["GET", "POST"]) for path, actor in plugins]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        for _path, actor in plugins:
            if actor.on_shutdown is not None:
                await actor.on_shutdown()

    async def metrics(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(await run_in_threadpool(metrics_text, node), media_type=METRICS_TYPE)

    async def health(_request: Request) -> JSONResponse:
        report = await run_in_threadpool(node.health)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    app = Starlette(
        routes=[
            Route("/xds/registry", registry.handle, methods=["GET", "POST"]),
            Route("/xds/repository", repository.handle, methods=["GET", "POST"]),
            Route("/xdr/recipient", recipient.handle, methods=["GET", "POST"]),
            Route("/xds/imaging", imaging.handle, methods=["GET", "POST"]),
            *extra,
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.node = node
    return app


METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(node: Node) -> str:
    """Prometheus text: DICOM studies per sender and BSN bucket, deliveries per status, digests waiting, audit
    records waiting, stored DICOM instances."""
    from xds.imaging import bsn_report

    lines = [
        "# HELP xds_bsn_studies DICOM studies per sender and BSN quality bucket.",
        "# TYPE xds_bsn_studies gauge",
    ]
    for sender, counts in bsn_report(node, by_sender=True).items():
        for bucket, n in counts.items():
            lines.append(f'xds_bsn_studies{{sender="{_label(sender)}",bucket="{_label(bucket)}"}} {n}')
    inbox = node.inbox.counts()
    lines += ["# HELP xds_deliveries Deliveries per status.", "# TYPE xds_deliveries gauge"]
    for status, n in sorted(inbox.items()):
        if status != "pending_digests":
            lines.append(f'xds_deliveries{{status="{_label(status)}"}} {n}')
    lines += [
        "# HELP xds_digests_pending Notification digests not yet mailed.",
        "# TYPE xds_digests_pending gauge",
        f"xds_digests_pending {inbox.get('pending_digests', 0)}",
        "# HELP xds_audit_unsent Audit records waiting for the Audit Record Repository.",
        "# TYPE xds_audit_unsent gauge",
        f"xds_audit_unsent {node.audit.count_unsent()}",
        "# HELP xds_dicom_instances Stored DICOM instances.",
        "# TYPE xds_dicom_instances gauge",
        f"xds_dicom_instances {node.imaging.count()}",
    ]
    return "\n".join(lines) + "\n"


def app_from_environment() -> Starlette:
    """Application factory for worker processes: settings from ``XDS_CONFIG`` and the ``XDS_*`` variables."""
    from xds.config import load_settings
    from xds.web.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(Node.open(settings, upgrade=False))


__all__ = ["ACTOR_ENTRY_POINTS", "app_from_environment", "create_app", "plugin_actors"]
