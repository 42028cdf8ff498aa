"""The ``xds`` command line: run a node, feed patients, upgrade the database.

::

    xds serve   [--config FILE] [--host H] [--port P]
    xds patient add|list|remove [ID] [--config FILE]
    xds db upgrade [--config FILE]
    xds submit FILE... --patient ID [--title TEXT] [--mime-type TYPE] [--url URL] [--config FILE] [--json]
    xds retrieve UNIQUEID... [--repository ID] [--out PATH] [--url URL] [--config FILE]
    xds repository reconcile [--all] [--config FILE]
    xds community add HOME [--name N] [--query-url URL] [--retrieve-url URL] [--push-url URL] [--xdm-email ADDR]
                  [--assigning-authority OID] [--timeout S] [--tls-ca FILE] [--tls-cert FILE] [--tls-key FILE]
                  [--no-tls-verify] [--config FILE]
    xds community list [--json] [--config FILE]
    xds community remove HOME [--config FILE]

Every command that touches a node's data takes ``--config FILE`` (or ``XDS_CONFIG``), so it works on the same
database as the server started with that file (ARCHITECTURE.md §5). ``submit`` (ITI-41) and ``retrieve``
(ITI-43) talk SOAP to a node, by default the one ``--config`` describes, through :mod:`xds.client`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import mimetypes
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from xds import __version__, cli_consent, cli_dicom, cli_inbox, samples
from xds import communities as cm
from xds import vocabulary as v
from xds.config import ConfigError, Settings, load_settings
from xds.errors import RegistryErrorItem, Severity
from xds.model.hl7 import CX
from xds.model.metadata import Submission

if TYPE_CHECKING:
    from xds.node import Node
    from xds.store.sql import SqlRegistryStore

log = logging.getLogger("xds.cli")

_WithConfig = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]
_MIME: Final = mimetypes.MimeTypes()  # the built-in table only: the same answer on every machine
_MIME.add_type("application/dicom", ".dcm")
_EXTENSIONS: Final = {"application/xml": ".xml", "application/dicom": ".dcm"}
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._^-]")
_EXIT: Final = {v.RESPONSE_SUCCESS: 0, v.RESPONSE_PARTIAL_SUCCESS: 3}
_EXIT_CODES: Final = """exit status:
  0  Success
  1  Failure: the node's errors (code, context, location) are printed on stderr; also a SOAP fault
  2  usage error, or no SOAP node at the URL (unreachable, or the answer is not SOAP)"""


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
    alias = psub.add_parser("alias", help="a fed patient's id in another community's domain (XCA translation)")
    asub = alias.add_subparsers(dest="alias_command", required=True)
    for name, text in (("add", "record an alias"), ("remove", "forget an alias")):
        a = with_config(asub.add_parser(name, help=text))
        a.add_argument("id", help="the fed patient id")
        a.add_argument("alias", help="the same patient's id in the other domain (CX, ...^^^&OID&ISO)")
    alist = with_config(asub.add_parser("list", help="list a fed patient's aliases"))
    alist.add_argument("id")

    db = sub.add_parser("db", help="database maintenance")
    dsub = db.add_subparsers(dest="db_command", required=True)
    with_config(dsub.add_parser("upgrade", help="migrate the database schema to this version"))

    repo = sub.add_parser("repository", help="document repository maintenance")
    rsub = repo.add_subparsers(dest="repository_command", required=True)
    rec = with_config(
        rsub.add_parser(
            "reconcile",
            help="settle documents whose registration at the remote registry (registry_url) has an unknown outcome",
        )
    )
    rec.add_argument("--all", action="store_true", help="also records younger than twice registry_timeout")
    _document_parsers(sub, with_config)
    _community_parsers(sub, with_config)
    return parser


def _document_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: _WithConfig) -> None:
    url_help = "repository endpoint (default: http://HOST:PORT/xds/repository of the node of --config)"
    submit = with_config(
        sub.add_parser(
            "submit",
            help="send files to a repository (ITI-41 Provide and Register)",
            description="Send each FILE as one document (one DocumentEntry) of a new SubmissionSet, as MTOM/XOP.",
            epilog="prints the SubmissionSet's uniqueId, then a line per DocumentEntry: uniqueId, mimeType, size,"
            " file\n\n" + _EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    submit.add_argument("files", nargs="+", type=Path, metavar="FILE")
    submit.add_argument("--patient", required=True, metavar="ID", help="patient id (CX, e.g. 123^^^&1.2.3&ISO)")
    submit.add_argument("--title", metavar="TEXT", help="title of the documents (default: each file's name)")
    submit.add_argument(
        "--mime-type", metavar="TYPE", help="mimeType of the documents (default: guessed from the file name)"
    )
    submit.add_argument("--url", help=url_help)
    submit.add_argument("--json", action="store_true", help="print the result as JSON")
    retrieve = with_config(
        sub.add_parser(
            "retrieve",
            help="fetch documents from a repository (ITI-43 Retrieve Document Set)",
            description="Fetch documents by uniqueId; prints uniqueId, mimeType, size and path of each.",
            epilog=_EXIT_CODES + "\n  3  PartialSuccess: some documents were retrieved, the errors are on stderr",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
    retrieve.add_argument("unique_ids", nargs="+", metavar="UNIQUEID")
    retrieve.add_argument(
        "--repository", metavar="ID", help="repositoryUniqueId (default: the node's, from GET /health)"
    )
    retrieve.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="a file for one UNIQUEID, else a directory (default: the current directory; a document is named"
        " after its uniqueId with the extension of its mimeType)",
    )
    retrieve.add_argument("--url", help=url_help)


def _community_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], with_config: _WithConfig) -> None:
    community = sub.add_parser(
        "community",
        help="the community directory (XCA): remote communities besides the [[communities]] of the configuration",
    )
    csub = community.add_subparsers(dest="community_command", required=True)
    add = with_config(
        csub.add_parser(
            "add",
            help="add a remote community to the database",
            epilog="exit status: 0 added (or already there, identical); 1 already there with other settings, or"
            " in the configuration file; 2 invalid entry or usage error",
        )
    )
    add.add_argument("home", metavar="HOME", help="its homeCommunityId (urn:oid:...)")
    add.add_argument("--name", metavar="NAME", help="a short name (for xds push --to)")
    add.add_argument("--query-url", metavar="URL", help="its Responding Gateway for ITI-38 (omit: push only)")
    add.add_argument("--retrieve-url", metavar="URL", help="for ITI-39 (default: --query-url)")
    add.add_argument("--push-url", metavar="URL", help="its Document Recipient (XDR) or gateway (ITI-80)")
    add.add_argument(
        "--push-transaction", choices=("ITI-41", "ITI-80"), help="what --push-url speaks (default ITI-41, XDR)"
    )
    add.add_argument("--xdm-email", metavar="ADDR", help="its e-mail address for XDM")
    add.add_argument(
        "--assigning-authority", metavar="OID", help="OID of its patient-id domain (default: the same ids as ours)"
    )
    add.add_argument("--timeout", type=float, metavar="S", help="seconds (default: the gateway's)")
    add.add_argument("--tls-ca", metavar="FILE", help="PEM bundle to verify it (default: the system's)")
    add.add_argument("--tls-cert", metavar="FILE", help="client certificate for mutual TLS (PEM; needs --tls-key)")
    add.add_argument("--tls-key", metavar="FILE", help="the client certificate's key (PEM)")
    add.add_argument("--no-tls-verify", action="store_true", help="do not verify its certificate")
    lst = with_config(csub.add_parser("list", help="list the directory: configuration file and database entries"))
    lst.add_argument("--json", action="store_true", help="print JSON")
    rm = with_config(
        csub.add_parser(
            "remove",
            help="remove a community added with 'xds community add'",
            epilog="exit status: 0 removed; 1 not in the database (or only in the configuration file); 2 usage error",
        )
    )
    rm.add_argument("home", metavar="HOME", help="its homeCommunityId (urn:oid:...)")
    cli_consent.add_parsers(sub, with_config)
    cli_inbox.add_parsers(sub, with_config)
    cli_dicom.add_parsers(sub, with_config)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
    )


def _serve(settings: Settings, config: str | None) -> int:
    from xds.node import Node
    from xds.web.logs import configure_logging

    configure_logging(settings.log_level)
    node = Node.open(settings)
    if settings.registry_url:
        node.reconcile()
    scheme = "https" if settings.tls_cert_file else "http"
    log.info(
        "node starting",
        extra={
            "home_community_id": node.home_community_id,
            "repository_unique_id": node.repository_unique_id,
            "database": node.engine.dialect.name,
            "listen": f"{scheme}://{settings.host}:{settings.port}",
        },
    )
    print(
        f"xds {__version__}: {scheme}://{settings.host}:{settings.port}/xds/registry  "
        f"homeCommunityId={node.home_community_id}  repositoryUniqueId={node.repository_unique_id}  "
        f"database={node.engine.dialect.name}",
        flush=True,
    )
    forwarder = node.audit_forwarder()  # one per node, in this (the parent) process
    if forwarder is not None:
        forwarder.start()
        where = f"{settings.audit_syslog_host}:{settings.audit_syslog_port}"
        log.info("forwarding audit records", extra={"syslog": where, "transport": settings.audit_syslog_transport})
    background = _mail_services(node)
    try:
        return _run_server(settings, config, node)
    finally:
        for service in reversed(background):
            service.stop()
        if forwarder is not None:
            forwarder.stop()
            forwarder.flush()  # what the last requests recorded, if the repository is there
        node.close()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


def _mail_services(node: Node) -> list[_Stoppable]:
    """Start the notification digests (with ``[smtp]``) and the XDM e-mail listener (``[smtp_listener] port``)."""
    from xds.mail.settings import smtp_settings_from_mapping

    settings = node.settings
    smtp = smtp_settings_from_mapping(settings.smtp or {})
    started: list[_Stoppable] = []
    if smtp.configured:
        from xds.mail.digests import DigestSender

        digests = DigestSender(node, smtp)
        digests.start()
        started.append(digests)
        log.info("mailing notification digests", extra={"smtp": f"{smtp.host}:{smtp.port}"})
    if settings.smtp_listener_port:
        from xds.mail.inbound import xdm_listener

        listener = xdm_listener(node, smtp)
        listener.start()
        started.append(listener)
        print(f"xds: XDM e-mail listener on {settings.smtp_listener_host}:{listener.port}", flush=True)
    return started


def _run_server(settings: Settings, config: str | None, node: Node) -> int:
    """uvicorn with one worker in this process (on ``node``), or several worker processes."""
    import uvicorn

    from xds.app import create_app

    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_config": None, "access_log": False}
    if settings.tls_cert_file:
        from xds.web.tls import PROTOCOL, context_factory

        options["http"] = PROTOCOL
        options["ssl_context_factory"] = context_factory(
            settings.tls_cert_file,
            settings.tls_key_file,
            settings.tls_client_ca_file,
            settings.tls_require_client_cert,
        )
    if settings.workers > 1:
        _export(settings, config)
        uvicorn.run("xds.app:app_from_environment", factory=True, workers=settings.workers, **options)
        return 0
    uvicorn.run(create_app(node), **options)
    return 0


def _export(settings: Settings, config: str | None) -> None:
    """Hand the effective settings to worker processes through the environment they inherit."""
    if config:
        os.environ["XDS_CONFIG"] = os.path.abspath(config)
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
        cx = _patient_id(args.id)
        if cx is None:
            return 2
        if args.patient_command == "alias":
            return _alias(args, node.store, str(cx))
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


def _patient_id(text: str) -> CX | None:
    """``text`` as an XDS patient id, or None after saying why on stderr."""
    try:
        cx = CX.parse(text)
    except ValueError as exc:
        print(f"xds: {exc}", file=sys.stderr)
        return None
    if not cx.is_xds_patient_id():
        print(f"xds: {text!r} is not an XDS patient id (id^^^&OID&ISO)", file=sys.stderr)
        return None
    return cx


def _alias(args: argparse.Namespace, store: SqlRegistryStore, patient: str) -> int:
    if args.alias_command == "list":
        for alias in store.aliases(patient):
            print(alias)
        return 0
    other = _patient_id(args.alias)
    if other is None:
        return 2
    if args.alias_command == "remove":
        if store.remove_alias(patient, str(other)):
            print(f"removed alias {other} of {patient}")
            return 0
        print(f"xds: {other} is not an alias of {patient}", file=sys.stderr)
        return 1
    try:
        added = store.add_alias(patient, str(other))
    except ValueError as exc:
        print(f"xds: {exc}", file=sys.stderr)
        return 1
    print(("added alias " if added else "already known alias ") + f"{other} of {patient}")
    return 0


def _community(args: argparse.Namespace, settings: Settings) -> int:
    from xds.node import Node

    node = Node.open(settings)
    try:
        configured = {str(c.get("home_community_id")): c for c in settings.communities}
        if args.community_command == "list":
            return _community_list(args, configured, node.store.list_communities())
        if args.community_command == "add":
            return _community_add(args, configured, node)
        if not args.home.startswith("urn:oid:"):
            return _usage(f"{args.home!r} is not a homeCommunityId (urn:oid:...)")
        if node.store.remove_community(args.home):
            print(f"removed {args.home}")
            return 0
        if args.home in configured:
            print(
                f"xds: {args.home} is in [[communities]] of the configuration file: edit the configuration file",
                file=sys.stderr,
            )
        else:
            print(f"xds: {args.home} is not in the community directory", file=sys.stderr)
        return 1
    finally:
        node.close()


def _community_add(args: argparse.Namespace, configured: Mapping[str, Any], node: Node) -> int:
    entry: dict[str, Any] = {"home_community_id": args.home, "timeout": args.timeout}
    for key in cm.STRING_KEYS[1:]:
        if getattr(args, key) is not None:
            entry[key] = getattr(args, key)
    tls = {"ca_file": args.tls_ca, "cert_file": args.tls_cert, "key_file": args.tls_key}
    # absolute paths: the server may run from another working directory
    entry["tls"] = {k: os.path.abspath(f) for k, f in tls.items() if f} | {"verify": not args.no_tls_verify}
    try:
        community = cm.community_from_mapping(entry, source=cm.SOURCE_DATABASE)
    except ValueError as exc:
        return _usage(str(exc))
    if community.home_community_id == node.home_community_id:
        return _usage(f"{args.home} is this node's own homeCommunityId")
    if args.home in configured:
        print(
            f"xds: {args.home} is already in [[communities]] of the configuration file: edit the configuration"
            " file instead",
            file=sys.stderr,
        )
        return 1
    if node.store.add_community(entry):
        print(f"added {args.home}")
        return 0
    (stored,) = (r for r in node.store.list_communities() if r["home_community_id"] == args.home)
    if {k: x for k, x in stored.items() if k != "added"} == cm.community_to_mapping(community):
        print(f"already known {args.home}")
        return 0
    print(f"xds: {args.home} is already in the directory with other settings; remove it first", file=sys.stderr)
    return 1


def _community_list(args: argparse.Namespace, configured: Mapping[str, Any], stored: list[dict[str, Any]]) -> int:
    rows: list[dict[str, Any]] = []
    for data in configured.values():
        c = cm.community_from_mapping(data, source=cm.SOURCE_CONFIG, check_files=False)
        rows.append(cm.community_to_mapping(c) | {"source": c.source, "added": None})
    for data in stored:
        rows.append(dict(data) | {"source": cm.SOURCE_DATABASE})
        if data["home_community_id"] in configured:
            print(
                f"xds: warning: {data['home_community_id']} is both in the configuration file and in the database;"
                " the gateway will not start until one is removed",
                file=sys.stderr,
            )
    rows.sort(key=lambda r: (r["home_community_id"], r["source"]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        extra = [f"{k}={r[k]}" for k in ("push_url", "xdm_email", "assigning_authority", "timeout") if r[k]]
        extra += [f"tls.{k}={x}" for k, x in r["tls"].items() if x and k != "verify"]
        extra += [] if r["tls"]["verify"] else ["tls.verify=false"]
        print("\t".join([r["home_community_id"], r["source"], r["query_url"], r["retrieve_url"], *extra]))
    return 0


def _repository(args: argparse.Namespace, settings: Settings) -> int:
    from xds.node import Node

    node = Node.open(settings)
    try:
        if not settings.registry_url:
            print("xds: nothing to reconcile: the registry is this node's own (no registry_url)")
            return 0
        older_than = "9999-12-31T23:59:59+00:00" if args.all else None  # --all: every pending record
        result = node.reconcile(older_than=older_than)
        print(f"held {result.held}  dropped {len(result.dropped)}  still unknown {result.unknown}")
        return 1 if result.unknown else 0
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


def guess_mime_type(name: str) -> str:
    """The mimeType of a file by its name (built-in table), else ``application/octet-stream``."""
    mime_type, encoding = _MIME.guess_type(name, strict=False)
    if encoding is not None:
        return "application/gzip" if encoding == "gzip" else "application/octet-stream"
    return mime_type or "application/octet-stream"


def build_submission(
    files: Sequence[Path], patient: CX, *, title: str | None = None, mime_type: str | None = None
) -> tuple[Submission, dict[str, Path]]:
    """A SubmissionSet with one DocumentEntry per file, and the files by DocumentEntry id.

    The codes are the :mod:`xds.samples` defaults (NIST affinity-domain codes) and creationTime is now; hash
    and size are computed here (the repository checks them), repositoryUniqueId is left to the repository.
    No author is claimed.
    """
    entries, documents = [], {}
    for path in files:
        size, sha1 = _digest(path)
        de = samples.document_entry(
            patient, content=b"", mime_type=mime_type or guess_mime_type(path.name), title=title or path.name
        )
        entries.append(dataclasses.replace(de, hash=sha1, size=size, repository_unique_id="", authors=()))
        documents[de.id] = path
    ss = dataclasses.replace(samples.submission_set(patient), authors=())
    return samples.submission(patient, entries, ss=ss), documents


def _digest(path: Path) -> tuple[int, str]:
    sha1, size = hashlib.sha1(usedforsecurity=False), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            sha1.update(chunk)
            size += len(chunk)
    return size, sha1.hexdigest()


def _node_url(settings: Settings, path: str) -> str:
    """The URL of ``path`` on the node ``settings`` describe (a wildcard listen address means loopback)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}{path}"


def _short(status: str) -> str:
    return status.rpartition(":")[2]


def _report(errors: Sequence[RegistryErrorItem]) -> None:
    for e in errors:
        kind = "warning" if e.severity == Severity.WARNING else "error"
        where = f" [{e.location}]" if e.location else ""
        print(f"xds: {kind}: {e.error_code}: {e.code_context}{where}", file=sys.stderr)


def _submit(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from xds.client import ClientError, NotSoapError, SoapClient

    try:
        patient = CX.parse(args.patient)
    except ValueError as exc:
        return _usage(str(exc))
    if not patient.is_xds_patient_id():
        return _usage(f"{args.patient!r} is not an XDS patient id (id^^^&OID&ISO)")
    unreadable = [str(f) for f in args.files if not f.is_file()]
    if unreadable:
        return _usage(f"not a readable file: {', '.join(unreadable)}")
    submission, files = build_submission(args.files, patient, title=args.title, mime_type=args.mime_type)
    url = args.url or _node_url(settings, "/xds/repository")
    try:
        with SoapClient(url) as client:
            response = client.provide_and_register(submission, files)
    except (httpx.TransportError, NotSoapError) as exc:
        return _usage(f"no SOAP node at {url}: {exc or type(exc).__name__}")
    except ClientError as exc:
        print(f"xds: {url}: {exc}", file=sys.stderr)
        return 1
    _report(response.errors)
    ss = submission.submission_sets[0]
    documents = [
        {"unique_id": de.unique_id, "entry_uuid": de.id, "mime_type": de.mime_type, "size": de.size, "file": str(f)}
        for de, f in zip(submission.document_entries, files.values(), strict=True)
    ]
    if args.json:
        result = {
            "status": _short(response.status),
            "submission_set": {"unique_id": ss.unique_id, "entry_uuid": ss.id},
            "documents": documents,
            "errors": [dataclasses.asdict(e) for e in response.errors],
        }
        print(json.dumps(result, indent=2))
    elif response.status == v.RESPONSE_SUCCESS:
        print(f"SubmissionSet\t{ss.unique_id}")
        for d in documents:
            print(f"DocumentEntry\t{d['unique_id']}\t{d['mime_type']}\t{d['size']}\t{d['file']}")
    return 0 if response.status == v.RESPONSE_SUCCESS else 1


def _retrieve(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from xds.client import ClientError, NotSoapError, SoapClient

    url = args.url or _node_url(settings, "/xds/repository")
    single = len(args.unique_ids) == 1 and args.out is not None and not args.out.is_dir()
    directory = (args.out.parent if single else args.out) if args.out is not None else Path.cwd()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        repository = args.repository or _repository_id(url)
        if not repository:
            return _usage(f"the node at {url} reports no repository_unique_id in GET /health; give --repository")
        with SoapClient(url) as client:
            result = client.retrieve(repository, args.unique_ids, out_dir=directory)
    except OSError as exc:
        return _usage(f"cannot write to {directory}: {exc.strerror or exc}")
    except (httpx.TransportError, NotSoapError) as exc:
        return _usage(f"no SOAP node at {url}: {exc or type(exc).__name__}")
    except ClientError as exc:
        print(f"xds: {url}: {exc}", file=sys.stderr)
        return 1
    _report(result.errors)
    asked = set(args.unique_ids)
    for doc in result.documents:
        uid = doc.ids.document_unique_id
        if uid not in asked:
            doc.path.unlink(missing_ok=True)
            print(f"xds: warning: the repository sent {uid!r}, which was not asked for; dropped", file=sys.stderr)
            continue
        target = args.out if single else directory / _file_name(uid, doc.mime_type)
        os.replace(doc.path, target)
        print(f"{uid}\t{doc.mime_type}\t{doc.size}\t{target}")
    return _EXIT.get(result.status, 1)


def _repository_id(url: str) -> str:
    """The repositoryUniqueId the node at ``url`` reports in ``GET /health`` (it may be generated), or ``""``."""
    import httpx

    answer = httpx.get(httpx.URL(url).join("/health"), timeout=10)
    try:
        found = answer.json()["repository_unique_id"]
    except (ValueError, KeyError, TypeError):
        return ""
    return found if isinstance(found, str) else ""


def _file_name(unique_id: str, mime_type: str) -> str:
    """``uniqueId`` + the extension of ``mimeType``, reduced to characters safe in a file name."""
    base = mime_type.partition(";")[0].strip().lower()
    ext = _EXTENSIONS.get(base) or _MIME.guess_extension(base, strict=False) or ""
    if not ext and base.endswith(("+xml", "+json")):
        ext = "." + base.rpartition("+")[2]
    name = _UNSAFE.sub("_", unique_id)
    return ("_" + name if name.startswith(".") or not name else name) + ext


def _usage(message: str) -> int:
    print(f"xds: {message}", file=sys.stderr)
    return 2


def main(args: Sequence[str] | None = None) -> int:
    """Entry point of the ``xds`` command."""
    ns = _setup_argparser().parse_args(args)
    try:
        settings = _settings(ns)
        if ns.command == "serve":
            return _serve(settings, ns.config)
        if ns.command == "patient":
            return _patient(ns, settings)
        if ns.command == "submit":
            return _submit(ns, settings)
        if ns.command == "retrieve":
            return _retrieve(ns, settings)
        if ns.command == "repository":
            return _repository(ns, settings)
        if ns.command == "community":
            return _community(ns, settings)
        if ns.command in ("consent", "audit"):
            return cli_consent.run(ns, settings)
        if ns.command in ("inbox", "xdm", "push"):
            return cli_inbox.run(ns, settings)
        if ns.command == "dicom":
            return cli_dicom.run(ns, settings)
        return _db(settings)
    except ConfigError as exc:
        print(f"xds: configuration error: {exc}", file=sys.stderr)
        return 2


__all__ = ["build_submission", "guess_mime_type", "main"]
