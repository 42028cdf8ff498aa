"""Composes the node's ASGI application: one Starlette app, one path per actor (ARCHITECTURE.md §1)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from xds.node import Node
from xds.web.registry import registry_actor
from xds.web.repository import repository_actor


def create_app(node: Node) -> Starlette:
    """The ASGI application of ``node``."""
    registry = registry_actor(node)
    repository = repository_actor(node)

    async def health(_request: Request) -> JSONResponse:
        report = await run_in_threadpool(node.health)
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    app = Starlette(
        routes=[
            Route("/xds/registry", registry.handle, methods=["GET", "POST"]),
            Route("/xds/repository", repository.handle, methods=["GET", "POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.node = node
    return app


def app_from_environment() -> Starlette:
    """Application factory for worker processes: settings from ``XDS_CONFIG`` and the ``XDS_*`` variables."""
    from xds.config import load_settings
    from xds.web.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(Node.open(settings, upgrade=False))


__all__ = ["app_from_environment", "create_app"]
