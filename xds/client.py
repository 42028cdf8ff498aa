"""Outbound SOAP 1.2 client over httpx: ITI-41, ITI-42 and ITI-43 as a document source, consumer or repository.

Theory of operation
-------------------
:class:`SoapClient` is bound to one endpoint URL. :meth:`SoapClient.call` wraps a body in a SOAP 1.2
envelope with WS-Addressing headers (``wsa:To`` is the URL) and POSTs it: as plain SOAP when there are no
documents, else as an MTOM/XOP package whose parts are streamed from disk (or from bytes) in chunks, with a
``Content-Length`` computed up front from the file sizes. The answer is streamed too: a ``multipart/related``
answer goes through :class:`~xds.soap.mtom.MtomReader`, which writes every attachment to a temporary file
(never into memory), and the caller gets a :class:`Reply` naming those files, free to move them.

Failures, and what is raised for them::

    httpx.TransportError          not wrapped: connect refused, timeout, connection broken (ConnectError, ...)
    ClientError                   the peer answered, but not with a usable answer (``http_status`` attribute)
    ├── NotSoapError              not a SOAP 1.2 message: an HTML 502 page of a proxy, SOAP 1.1, broken XML/MTOM
    └── SoapFaultError            a SOAP 1.2 Fault: ``code``, ``subcode`` (Clark notation), ``reason``, ``detail``

XDS errors are not exceptions: a ``RegistryResponse`` with status Failure and a ``RegistryErrorList`` comes
back as a :class:`~xds.model.messages.RegistryResponse` whose errors are the peer's, unchanged (STYLE R7).
Temporary files are deleted whenever an exception leaves this module.

References
----------
ITI TF-2 Appendix V (SOAP 1.2, WS-Addressing, MTOM/XOP); ITI TF-2 §3.41.4.1 (Provide and Register),
§3.42.4.1 (Register), §3.43.4.1-2 (Retrieve); ebRS 3.0 §2.1.6 (RegistryResponse, RegistryError);
SOAP 1.2 Part 1 §5.4 (Fault); W3C XOP 1.0; RFC 2387.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import httpx
from lxml import etree

from xds import __version__
from xds import vocabulary as v
from xds.ebrim import messages, xdsb
from xds.ebrim.parser import MAX_XML_BYTES, XMLError, parse_xml
from xds.errors import RegistryErrorItem, XDSError
from xds.model.messages import DocumentRequest, RegistryResponse, RetrieveRequest
from xds.model.metadata import Submission
from xds.namespaces import SOAP11, SOAP12, WSA, XML, qn
from xds.soap import mtom
from xds.soap.envelope import request_envelope, soap_content_type
from xds.soap.faults import SoapFault
from xds.soap.mtom import PartHeaders

CHUNK: Final = 1024 * 1024
"""Bytes read from a document file per chunk of an MTOM request."""
_XML_TYPES: Final = frozenset({"application/soap+xml", "text/xml", "application/xml"})
_EXCERPT: Final = 300

Content = Path | bytes
"""A document's content: a file (streamed) or bytes."""


class ClientError(Exception):
    """The peer answered, but not with something this client can use."""

    def __init__(self, message: str, *, http_status: int = 0) -> None:
        super().__init__(message)
        self.http_status = http_status


class NotSoapError(ClientError):
    """The answer is not a SOAP 1.2 message (an error page of a proxy, SOAP 1.1, malformed XML or MTOM)."""


class SoapFaultError(ClientError):
    """The peer answered with a SOAP 1.2 Fault (SOAP 1.2 Part 1 §5.4).

    ``code`` is the local name of ``env:Code/env:Value`` (``Sender``, ``Receiver``, ...), ``subcode`` the first
    ``env:Subcode/env:Value`` in Clark notation (or None), ``reason`` the ``env:Reason/env:Text`` and
    ``detail`` the text of ``env:Detail``.
    """

    def __init__(self, code: str, subcode: str | None, reason: str, *, detail: str = "", http_status: int = 0) -> None:
        super().__init__(f"SOAP fault {code}{f' ({subcode})' if subcode else ''}: {reason}", http_status=http_status)
        self.code, self.subcode, self.reason, self.detail = code, subcode, reason, detail


@dataclass(frozen=True, slots=True)
class Reply:
    """A SOAP answer: HTTP status, ``wsa:Action``, the first element of ``env:Body`` and the attachments.

    ``attachments`` maps each MIME part's Content-ID to the temporary file holding its bytes; the caller owns
    the files (move them, or :meth:`discard` them).
    """

    http_status: int
    action: str
    body: etree._Element
    attachments: Mapping[str, Path]

    def discard(self) -> None:
        """Delete the attachment files that are still where they were written."""
        for path in self.attachments.values():
            path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class RetrievedFile:
    """One retrieved document: its identifiers, mimeType, and the file (in ``out_dir``) holding its bytes."""

    ids: DocumentRequest
    mime_type: str
    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class RetrieveResult:
    """The ITI-43 answer: status, the peer's errors unchanged, and the documents as files."""

    status: str
    errors: tuple[RegistryErrorItem, ...]
    documents: tuple[RetrievedFile, ...]


class _FileSink:
    """An attachment written to a new temporary file in ``directory`` (a :class:`~xds.soap.mtom.PartSink`)."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".xds-", suffix=".part", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class SoapClient:
    """A synchronous SOAP 1.2 client of one endpoint (HTTP/1.1 keep-alive; use as a context manager).

    Parameters
    ----------
    url : str
        The endpoint, also sent as ``wsa:To``.
    timeout : float
        Seconds allowed for connecting and for each read or write (not for the whole exchange).
    transport : httpx.BaseTransport or None
        For tests (``httpx.MockTransport``) or custom TLS; default the httpx HTTP transport.
    temp_dir : path or None
        Where attachments of answers are written when :meth:`call` gets no ``out_dir``; default the system's.
    max_envelope_bytes, max_attachment_bytes : int
        Limits of the answer's SOAP envelope and of all its attachments together.
    chunk_size : int
        Bytes per read when streaming a document file.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        temp_dir: str | os.PathLike[str] | None = None,
        max_envelope_bytes: int = MAX_XML_BYTES,
        max_attachment_bytes: int = 1 << 40,
        chunk_size: int = CHUNK,
    ) -> None:
        self.url = url
        self.temp_dir = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
        self.max_envelope_bytes, self.max_attachment_bytes = max_envelope_bytes, max_attachment_bytes
        self.chunk_size = chunk_size
        self._http = httpx.Client(
            transport=transport, timeout=timeout, headers={"user-agent": f"xds-node/{__version__}"}
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # --- transactions -----------------------------------------------------------------------------------

    def register(self, submission: Submission) -> RegistryResponse:
        """ITI-42 Register Document Set-b (plain SOAP): the registry's RegistryResponse, errors as data."""
        reply = self.call(v.ACTION_REGISTER, messages.render_submit_objects_request(submission))
        reply.discard()
        return parse_registry_response(reply.body, http_status=reply.http_status)

    def provide_and_register(
        self,
        submission: Submission,
        documents: Mapping[str, Content],
        *,
        mime_types: Mapping[str, str] | None = None,
        action: str = v.ACTION_PROVIDE_AND_REGISTER,
    ) -> RegistryResponse:
        """ITI-41 Provide and Register Document Set-b as MTOM/XOP, documents streamed from disk (``action``:
        another transaction with the same message, ITI-80 Cross-Gateway Document Provide).

        ``documents`` maps DocumentEntry ids (``Document/@id``) to content. Each MIME part's Content-Type is
        ``mime_types[id]``, else the entry's mimeType when it is a well-formed media type, else
        ``application/octet-stream`` (the part's type is informative; the metadata's mimeType is what counts).
        """
        entries = {de.id: de.mime_type for de in submission.document_entries}
        chosen = mime_types or {}
        parts: list[tuple[str, str, Content]] = []
        refs: list[tuple[str, str]] = []
        for n, (doc_id, content) in enumerate(documents.items(), 1):
            cid = mtom.new_content_id(n)
            parts.append((cid, chosen.get(doc_id) or mtom.part_content_type(entries.get(doc_id, "")), content))
            refs.append((doc_id, cid))
        body = xdsb.render_provide_and_register_request(messages.render_submit_objects_request(submission), refs)
        reply = self.call(action, body, documents=parts)
        reply.discard()
        return parse_registry_response(reply.body, http_status=reply.http_status)

    def retrieve(
        self,
        repository_unique_id: str,
        unique_ids: Sequence[str],
        *,
        out_dir: str | os.PathLike[str],
        home_community_id: str = "",
    ) -> RetrieveResult:
        """ITI-43 Retrieve Document Set: every returned document is a file in ``out_dir`` (a temporary name).

        The files are the caller's: move them (same file system, so ``os.replace`` is cheap) or delete them.
        They are created with mode 0600 (patient data). Documents the repository sent inline (base64,
        non-MTOM) are written to files as well. The status and errors are the repository's, unchanged.
        """
        out = Path(out_dir)
        request = RetrieveRequest(
            documents=tuple(
                DocumentRequest(
                    repository_unique_id=repository_unique_id,
                    document_unique_id=uid,
                    home_community_id=home_community_id,
                )
                for uid in unique_ids
            )
        )
        reply = self.call(v.ACTION_RETRIEVE, xdsb.render_retrieve_request(request), out_dir=out)
        try:
            status, errors, documents = xdsb.retrieve_response(reply.body)
        except (XDSError, SoapFault) as exc:
            reply.discard()
            raise ClientError(f"malformed RetrieveDocumentSetResponse: {exc}", http_status=reply.http_status) from None
        return RetrieveResult(status=status, errors=errors, documents=_files(reply, documents, out))

    # --- one exchange -----------------------------------------------------------------------------------

    def call(
        self,
        action: str,
        body: bytes,
        *,
        documents: Sequence[tuple[str, str, Content]] = (),
        out_dir: str | os.PathLike[str] | None = None,
    ) -> Reply:
        """Send ``body`` with ``wsa:Action`` ``action`` and return the answer.

        Parameters
        ----------
        documents : sequence of (content_id, content_type, path or bytes)
            MIME parts; when given the request is MTOM/XOP (``body`` names them with ``xop:Include``).
        out_dir : path or None
            Where the answer's attachments are written (default :attr:`temp_dir`).

        Raises
        ------
        SoapFaultError, NotSoapError, ClientError, httpx.TransportError
            See the module docstring. Files that cannot be opened raise OSError before anything is sent.
        """
        envelope = request_envelope(action=action, body=body, to=self.url)
        directory = Path(out_dir) if out_dir is not None else self.temp_dir
        with ExitStack() as stack:
            headers: dict[str, str]
            content: bytes | Iterator[bytes]
            if documents:
                headers, content = self._mtom_request(action, envelope, documents, stack)
            else:
                headers, content = {"content-type": soap_content_type(action)}, envelope
            with self._http.stream("POST", self.url, content=content, headers=headers) as response:
                return self._reply(response, directory)

    def _mtom_request(
        self, action: str, envelope: bytes, documents: Sequence[tuple[str, str, Content]], stack: ExitStack
    ) -> tuple[dict[str, str], Iterator[bytes]]:
        """Headers and body chunks of an MTOM/XOP request; files are opened (and sized) now, read while sending."""
        boundary, root_cid = mtom.new_boundary(), mtom.new_content_id("root")
        head = mtom.root_part(boundary=boundary, root_cid=root_cid, envelope=envelope, action=action)
        tail = mtom.closing(boundary)
        parts: list[tuple[bytes, bytes | IO[bytes], int]] = []
        for cid, content_type, content in documents:
            part_head = mtom.part_head(boundary=boundary, cid=cid, content_type=content_type)
            if isinstance(content, bytes):
                parts.append((part_head, content, len(content)))
            else:
                fh = stack.enter_context(open(content, "rb"))  # noqa: SIM115 - closed by the ExitStack
                parts.append((part_head, fh, os.fstat(fh.fileno()).st_size))
        length = len(head) + sum(len(h) + size for h, _, size in parts) + len(tail)

        def chunks() -> Iterator[bytes]:
            yield head
            for part_head, source, size in parts:
                yield part_head
                if isinstance(source, bytes):
                    yield source
                else:
                    yield from _file_chunks(source, size, self.chunk_size)
            yield tail

        content_type = mtom.mtom_content_type(boundary=boundary, root_cid=root_cid, action=action)
        return {"content-type": content_type, "content-length": str(length)}, chunks()

    def _reply(self, response: httpx.Response, directory: Path) -> Reply:
        status, content_type = response.status_code, response.headers.get("content-type", "")
        attachments: dict[str, Path] = {}
        if mtom.is_multipart_related(content_type):
            root = self._read_mtom(response, content_type, directory, attachments)
        elif content_type.partition(";")[0].strip().lower() in _XML_TYPES:
            root = self._read_plain(response)
        else:
            raise NotSoapError(_not_soap(response, f"a {content_type or 'untyped'} answer"), http_status=status)
        try:
            return _parse_reply(root, status, attachments)
        except BaseException:
            for path in attachments.values():
                path.unlink(missing_ok=True)
            raise

    def _read_plain(self, response: httpx.Response) -> bytes:
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > self.max_envelope_bytes:
                raise ClientError(
                    f"the answer is larger than {self.max_envelope_bytes} bytes", http_status=response.status_code
                )
        return bytes(data)

    def _read_mtom(
        self, response: httpx.Response, content_type: str, directory: Path, attachments: dict[str, Path]
    ) -> bytes:
        def new_sink(headers: PartHeaders) -> _FileSink:
            sink = _FileSink(directory)
            attachments[headers.content_id] = sink.path
            return sink

        status = response.status_code
        try:
            reader = mtom.MtomReader(
                mtom.multipart_related(content_type),
                new_sink,
                max_root_bytes=self.max_envelope_bytes,
                max_total_bytes=self.max_attachment_bytes,
            )
        except SoapFault as fault:
            raise NotSoapError(f"unusable MTOM answer (HTTP {status}): {fault.reason}", http_status=status) from None
        try:
            for chunk in response.iter_bytes():
                reader.feed(chunk)
            return reader.finish().root
        except SoapFault as fault:  # the reader aborted its sinks (deleted the files) already
            raise NotSoapError(f"malformed MTOM answer (HTTP {status}): {fault.reason}", http_status=status) from None
        except BaseException:
            reader.abort()
            raise


def _file_chunks(fh: IO[bytes], size: int, chunk_size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``fh`` (the size announced in Content-Length), in chunks."""
    left = size
    while left:
        chunk = fh.read(min(chunk_size, left))
        if not chunk:
            raise ClientError(f"{getattr(fh, 'name', 'a document file')} shrank while it was being sent")
        left -= len(chunk)
        yield chunk
    if fh.read(1):
        raise ClientError(f"{getattr(fh, 'name', 'a document file')} grew while it was being sent")


def _not_soap(response: httpx.Response, what: str) -> str:
    """A message naming the status, the type and the start of a non-SOAP answer (read at most a few KB)."""
    excerpt = bytearray()
    for chunk in response.iter_bytes():
        excerpt += chunk
        if len(excerpt) >= _EXCERPT:
            break
    text = " ".join(excerpt[:_EXCERPT].decode("utf-8", "replace").split())
    return f"{response.url} answered HTTP {response.status_code} with {what}, not SOAP 1.2: {text!r}"


def _parse_reply(root: bytes, status: int, attachments: dict[str, Path]) -> Reply:
    """Check the envelope; a Fault raises :class:`SoapFaultError`, a non-200 answer :class:`ClientError`."""
    try:
        envelope = parse_xml(root)
    except XMLError as exc:
        raise NotSoapError(f"the answer (HTTP {status}) is not XML: {exc}", http_status=status) from None
    if envelope.tag != qn(SOAP12, "Envelope"):
        what = "a SOAP 1.1 envelope" if envelope.tag == qn(SOAP11, "Envelope") else f"<{etree.QName(envelope).text}>"
        raise NotSoapError(f"the answer (HTTP {status}) is {what}, not a SOAP 1.2 envelope", http_status=status)
    body = envelope.find(qn(SOAP12, "Body"))
    first = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    if first is None:
        raise NotSoapError(f"the answer (HTTP {status}) has an empty SOAP Body", http_status=status)
    if first.tag == qn(SOAP12, "Fault"):
        raise _fault(first, status)
    if status != 200:
        raise ClientError(f"HTTP {status} with a SOAP answer that is not a Fault", http_status=status)
    action = envelope.findtext(f"{qn(SOAP12, 'Header')}/{qn(WSA, 'Action')}", default="").strip()
    return Reply(http_status=status, action=action, body=first, attachments=dict(attachments))


def _fault(elem: etree._Element, status: int) -> SoapFaultError:
    """Read ``env:Fault``: Code/Value, the first Subcode/Value, the English (or first) Reason/Text, Detail."""
    code = elem.find(f"{qn(SOAP12, 'Code')}/{qn(SOAP12, 'Value')}")
    subcode = elem.find(f"{qn(SOAP12, 'Code')}/{qn(SOAP12, 'Subcode')}/{qn(SOAP12, 'Value')}")
    texts = elem.findall(f"{qn(SOAP12, 'Reason')}/{qn(SOAP12, 'Text')}")
    text = next((t for t in texts if t.get(qn(XML, "lang"), "").lower().startswith("en")), texts[0] if texts else None)
    detail = elem.find(qn(SOAP12, "Detail"))
    return SoapFaultError(
        etree.QName(_resolve_qname(code)).localname if code is not None else "",
        _resolve_qname(subcode) if subcode is not None else None,
        (text.text or "").strip() if text is not None else "",
        detail=" ".join("".join(detail.itertext()).split()) if detail is not None else "",
        http_status=status,
    )


def _resolve_qname(elem: etree._Element) -> str:
    """An element's text as a QName (``prefix:local``) in Clark notation, resolved against its scope."""
    prefix, _, local = (elem.text or "").strip().rpartition(":")
    namespace = elem.nsmap.get(prefix or None)
    return qn(namespace, local) if namespace else local


def _files(
    reply: Reply, documents: Sequence[tuple[DocumentRequest, str, xdsb.DocumentPart]], out: Path
) -> tuple[RetrievedFile, ...]:
    """One file per DocumentResponse; attachments no document names are deleted, everything on failure."""
    files: list[RetrievedFile] = []
    used: set[str] = set()
    try:
        for ids, mime_type, part in documents:
            path = _document_file(reply, part, out, used)
            files.append(RetrievedFile(ids=ids, mime_type=mime_type, path=path, size=path.stat().st_size))
    except BaseException:
        for f in files:
            f.path.unlink(missing_ok=True)
        reply.discard()
        raise
    for cid, path in reply.attachments.items():
        if cid not in used:
            path.unlink(missing_ok=True)
    return tuple(files)


def _document_file(reply: Reply, part: xdsb.DocumentPart, out: Path, used: set[str]) -> Path:
    """The file holding one document's bytes: its attachment, a copy when a part is named twice, or inline bytes."""
    status = reply.http_status
    if part.cid is None:
        try:
            data = xdsb.inline_bytes(part)
        except XDSError as exc:
            raise ClientError(str(exc), http_status=status) from None
        sink = _FileSink(out)
        try:
            sink.write(data)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        return sink.path
    path = reply.attachments.get(part.cid)
    if path is None:
        raise ClientError(f"document {part.id}: xop:Include names no MIME part (cid:{part.cid})", http_status=status)
    if part.cid in used:
        copy = _FileSink(out)
        copy.close()
        shutil.copyfile(path, copy.path)
        return copy.path
    used.add(part.cid)
    return path


def parse_registry_response(elem: etree._Element, *, http_status: int = 200) -> RegistryResponse:
    """Decode ``rs:RegistryResponse`` (:func:`xds.ebrim.messages.parse_registry_response`); ClientError if not one."""
    try:
        return messages.parse_registry_response(elem)
    except ValueError as exc:
        raise ClientError(str(exc), http_status=http_status) from None


__all__ = [
    "CHUNK",
    "ClientError",
    "Content",
    "NotSoapError",
    "Reply",
    "RetrieveResult",
    "RetrievedFile",
    "SoapClient",
    "SoapFaultError",
    "parse_registry_response",
]
