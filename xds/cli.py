"""The ``xds`` command line: run a node, feed patients, upgrade the database.

::

    xds serve   [--config FILE] [--host H] [--port P]
    xds patient add|list|remove [ID] [--config FILE]
    xds db upgrade [--config FILE]

Every command that touches a node's data takes ``--config FILE`` (or ``XDS_CONFIG``), so it works on the same
database as the server started with that file (ARCHITECTURE.md §5).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from xds import __version__
from xds.config import ConfigError, Settings, load_settings
from xds.model.hl7 import CX

log = logging.getLogger("xds.cli")


def _setup_argparser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xds", description="IHE XDS.b registry/repository node")
    parser.add_argument("--version", action="version", version=f"xds {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="FILE", help="node configuration (TOML); default $XDS_CONFIG")
        return p

    serve = with_config(sub.add_parser("serve", help="run the node"))
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")

    patient = sub.add_parser("patient", help="patient identity feed")
    psub = patient.add_subparsers(dest="patient_command", required=True)
    add = with_config(psub.add_parser("add", help="feed a patient id (CX, e.g. 123^^^&1.2.3&ISO)"))
    add.add_argument("id")
    rm = with_config(psub.add_parser("remove", help="forget a fed patient id"))
    rm.add_argument("id")
    lst = with_config(psub.add_parser("list", help="list fed patient ids"))
    lst.add_argument("--json", action="store_true", help="print JSON")

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_command", required=True)
    with_config(dsub.add_parser("upgrade", help="migrate the database schema to this version"))
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
    )


def _serve(settings: Settings) -> int:
    import uvicorn

    from xds.app import create_app
    from xds.node import Node
    from xds.web.logs import configure_logging

    configure_logging(settings.log_level)
    node = Node.open(settings)
    log.info(
        "node starting",
        extra={
            "home_community_id": node.home_community_id,
            "repository_unique_id": node.repository_unique_id,
            "database": node.engine.dialect.name,
            "listen": f"http://{settings.host}:{settings.port}",
        },
    )
    print(
        f"xds {__version__}: http://{settings.host}:{settings.port}/xds/registry  "
        f"homeCommunityId={node.home_community_id}  repositoryUniqueId={node.repository_unique_id}  "
        f"database={node.engine.dialect.name}",
        flush=True,
    )
    if settings.workers > 1:
        node.close()
        _export(settings)
        uvicorn.run(
            "xds.app:app_from_environment",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
        )
        return 0
    uvicorn.run(create_app(node), host=settings.host, port=settings.port, log_config=None, access_log=False)
    node.close()
    return 0


def _export(settings: Settings) -> None:
    """Hand the effective settings to worker processes through the environment they inherit."""
    os.environ["XDS_DATA_DIR"] = str(settings.data_path)
    os.environ["XDS_DATABASE_URL"] = settings.effective_database_url
    os.environ["XDS_HOST"], os.environ["XDS_PORT"] = settings.host, str(settings.port)


def _patient(args: argparse.Namespace, settings: Settings) -> int:
    from xds.node import Node

    node = Node.open(settings)
    try:
        if args.patient_command == "list":
            rows = node.store.list_patients()
            if args.json:
                print(json.dumps([{"id": pid, "added": added} for pid, added in rows]))
            else:
                for pid, added in rows:
                    print(f"{pid}\t{added}")
            return 0
        try:
            cx = CX.parse(args.id)
        except ValueError as exc:
            print(f"xds: {exc}", file=sys.stderr)
            return 2
        if not cx.is_xds_patient_id():
            print(f"xds: {args.id!r} is not an XDS patient id (id^^^&OID&ISO)", file=sys.stderr)
            return 2
        if args.patient_command == "add":
            print(("added " if node.store.add_patient(str(cx)) else "already known ") + str(cx))
            return 0
        if node.store.remove_patient(str(cx)):
            print(f"removed {cx}")
            return 0
        print(f"xds: {cx} is not a fed patient id", file=sys.stderr)
        return 1
    finally:
        node.close()


def _db(settings: Settings) -> int:
    from registry_schema import migrate
    from xds.store.sql import make_engine

    if not settings.database_url:
        settings.data_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    print(f"database schema: {before or 'empty'} -> {migrate.current_revision(engine)}")
    engine.dispose()
    return 0


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``xds`` command."""
    ns = _setup_argparser().parse_args(args)
    try:
        settings = _settings(ns)
        if ns.command == "serve":
            return _serve(settings)
        if ns.command == "patient":
            return _patient(ns, settings)
        return _db(settings)
    except ConfigError as exc:
        print(f"xds: configuration error: {exc}", file=sys.stderr)
        return 2


__all__ = ["main"]
