"""MTOM/XOP packages (``multipart/related``): a streaming reader for inbound messages, builders for outbound ones.

Theory of operation
-------------------
An MTOM message is a MIME ``multipart/related`` package (RFC 2387). Its root part is the SOAP envelope in XOP
form (``application/xop+xml``), where each optimised ``base64Binary`` value is replaced by an
``xop:Include href="cid:..."`` naming another part by its Content-ID (W3C XOP 1.0 §3, RFC 2392). In XDS.b
the other parts are the documents of ITI-41 and ITI-43 (ITI TF-2 Appendix V.4).

Inbound, :class:`MtomReader` is push-based and does no I/O: the adapter feeds the request body in chunks of
any size. ``python_multipart``'s :class:`~python_multipart.multipart.MultipartParser` finds the delimiters;
the reader

1. finds the opening delimiter itself (the parser's preamble handling depends on how the body is chunked),
   skips the preamble and hands the parser a normalised ``--boundary CRLF`` line;
2. collects each part's headers and, at the blank line, decides whether the part is the root (the part
   named by ``start``, or the first part) or an attachment;
3. decodes the Content-Transfer-Encoding (identity, or base64 with a carry of fewer than 4 characters);
4. keeps the root in memory (bounded by ``max_root_bytes``) and streams every attachment to a
   :class:`PartSink` made by the caller's factory (all attachments together bounded by ``max_total_bytes``).

Attachment bytes are never accumulated. When anything fails, every sink made so far is aborted, so the
caller can delete its temporary files; the reader never reads or writes a file itself.

What is accepted, measured against python-multipart 0.0.34 (0.0.27 or later is needed: ``max_header_count``
arrived in 0.0.27, and before 0.0.26 an epilogue was an error):

* CRLF line endings only (RFC 2046 §5.1.1). A package with LF-only line endings is refused with a
  reason that says so; the parser hard-codes ``CRLF--boundary`` as the delimiter.
* Leading CRLFs and a preamble of up to :data:`MAX_PREAMBLE` bytes before the first delimiter line
  (a line beginning ``--boundary``). The parser alone accepts a preamble only when it follows a CRLF, holds
  no hyphen and arrives in the same chunk, so the reader strips it instead. Transport padding (spaces,
  tabs) after the first delimiter is removed the same way; the parser accepts it on later delimiters.
* The epilogue after the closing delimiter is discarded (not buffered, so not limited).
* Header names in any case; folded (multi-line) header values are refused by the parser; at most 32
  headers per part, each line at most 4,224 bytes.
* A part whose headers are directly followed by the next delimiter, without the CRLF that starts an empty
  body (``Content-ID: <a>CRLF--boundary``), is not recognised by the parser: the delimiter is taken as
  data and the package ends up incomplete (BAD_MTOM). The builders below always write that CRLF.

Outbound, the server streams ITI-43 responses: :func:`root_part`, then :func:`part_head` and the document's
bytes for each document, then :func:`closing`. :func:`render_mtom` builds a whole small message at once for
clients and tests.

References
----------
W3C XML-binary Optimized Packaging (XOP) 1.0 §3-4; W3C SOAP Message Transmission Optimization Mechanism
(MTOM) §3; RFC 2387 (multipart/related); RFC 2046 §5.1.1 (delimiters, preamble, epilogue); RFC 2045 §6
(Content-Transfer-Encoding); RFC 2392 (cid: URLs); RFC 3986 §2.3 (unreserved characters); RFC 9110 §5.6.6
and §8.3.1 (parameters, quoted-string); ITI TF-2 Appendix V.4 (MTOM in IHE transactions).
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol
from urllib.parse import quote, unquote

from lxml import etree
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from xds.namespaces import XOP, qn
from xds.soap import faults
from xds.soap.faults import SoapFault

XOP_MEDIA_TYPE: Final = "application/xop+xml"
"""Media type of the root part of an XOP package (XOP 1.0 §4.1; MTOM §3.3)."""
SOAP12_MEDIA_TYPE: Final = "application/soap+xml"
"""Media type of a SOAP 1.2 envelope (RFC 3902), the ``type``/``start-info`` of an MTOM package."""
MAX_PREAMBLE: Final = 16 * 1024
"""Most bytes of preamble accepted before the first delimiter line (RFC 2046 §5.1.1)."""
MAX_HEADERS: Final = 32
"""Most header lines accepted in one part."""
XOP_INCLUDE: Final = qn(XOP, "Include")

_IDENTITY: Final = frozenset({"", "binary", "8bit", "7bit"})
_B64_SPACE: Final = b" \t\r\n"
_TYPE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+")
_PARAM: Final = re.compile(
    r"""[ \t]*;[ \t]*(?:([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^;"\s]*))[ \t]*)?""",
    re.DOTALL,
)
_ESCAPE: Final = re.compile(r"\\(.)", re.DOTALL)
_BOUNDARY: Final = re.compile(r"[\x20-\x7e]{1,256}")
_CID_SAFE: Final = "-._~@"
_MAX_PADDING: Final = 64
_LF: Final = 0x0A
_CRLF: Final = b"\r\n"


def _bad(reason: str) -> SoapFault:
    return SoapFault(reason, subcode=faults.BAD_MTOM)


# --- media types ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaType:
    """A parsed ``Content-Type`` value (RFC 9110 §8.3.1)."""

    type: str
    """``type/subtype``, lower-cased."""
    params: Mapping[str, str]
    """Parameters: names lower-cased, quoted-string values unquoted (backslash escapes honoured)."""


def parse_media_type(value: str) -> MediaType:
    """Parse a ``Content-Type`` header value.

    Raises
    ------
    SoapFault
        UNSUPPORTED_MEDIA_TYPE when the type is not ``type/subtype``, a parameter is malformed (an unterminated
        quoted-string, text after a value) or repeated.
    """
    head, _, _ = value.partition(";")
    mtype = head.strip().lower()
    if not _TYPE.fullmatch(mtype):
        raise SoapFault(f"malformed media type {value!r}", subcode=faults.UNSUPPORTED_MEDIA_TYPE)
    params: dict[str, str] = {}
    pos, text = len(head), value.rstrip()
    while pos < len(text):
        m = _PARAM.match(text, pos)
        if m is None or m.end() == pos:
            raise SoapFault(f"malformed parameters in media type {value!r}", subcode=faults.UNSUPPORTED_MEDIA_TYPE)
        pos = m.end()
        if m.group(1) is None:
            continue
        name = m.group(1).lower()
        if name in params:
            raise SoapFault(f"parameter {name!r} repeated in {value!r}", subcode=faults.UNSUPPORTED_MEDIA_TYPE)
        quoted = m.group(2)
        params[name] = _ESCAPE.sub(r"\1", quoted) if quoted is not None else m.group(3)
    return MediaType(mtype, MappingProxyType(params))


def is_multipart_related(value: str) -> bool:
    """Whether a ``Content-Type`` value is ``multipart/related`` (never raises)."""
    return value.partition(";")[0].strip().lower() == "multipart/related"


@dataclass(frozen=True, slots=True)
class MultipartRelated:
    """The parameters of an MTOM package's ``multipart/related`` Content-Type (RFC 2387 §3; MTOM §3.3)."""

    boundary: str
    start: str
    """Normalised Content-ID of the root part; ``""`` when absent (the root is then the first part)."""
    start_info: str
    """``start-info``, the media type of the root's content (``application/soap+xml``); ``""`` when absent."""
    action: str
    """The SOAP action: the ``action`` parameter, else the one inside ``start-info``; ``""`` when absent."""


def multipart_related(value: str) -> MultipartRelated:
    """Read the package parameters from the request's ``Content-Type``.

    An absent ``type`` parameter is tolerated (RFC 2387 makes it mandatory, some peers omit it).

    Raises
    ------
    SoapFault
        UNSUPPORTED_MEDIA_TYPE when the value is not ``multipart/related``; BAD_MTOM when ``boundary`` is
        missing or unusable, or ``type`` is present and not ``application/xop+xml``.
    """
    media = parse_media_type(value)
    if media.type != "multipart/related":
        raise SoapFault(f"expected multipart/related, got {media.type}", subcode=faults.UNSUPPORTED_MEDIA_TYPE)
    boundary = media.params.get("boundary", "")
    _check_boundary(boundary)
    root_type = media.params.get("type")
    if root_type is not None and root_type.strip().lower() != XOP_MEDIA_TYPE:
        raise _bad(f"multipart/related type is {root_type!r}, not {XOP_MEDIA_TYPE}")
    start_info = media.params.get("start-info", "")
    return MultipartRelated(
        boundary=boundary,
        start=content_id(media.params.get("start", "")),
        start_info=start_info,
        action=media.params.get("action") or _action_in(start_info),
    )


def _check_boundary(boundary: str) -> None:
    """A boundary is 1-70 characters (RFC 2046 §5.1.1); up to 256 printable ASCII ones are accepted."""
    if not boundary:
        raise _bad("the multipart/related Content-Type has no boundary parameter")
    if not _BOUNDARY.fullmatch(boundary):
        raise _bad("the multipart boundary must be 1-256 printable ASCII characters")


def _action_in(value: str) -> str:
    """The ``action`` parameter inside a nested media type value (``start-info``, ``type``), or ``""``."""
    if ";" not in value:
        return ""
    try:
        return parse_media_type(value).params.get("action", "")
    except SoapFault:
        return ""


def soap_action(related: MultipartRelated, root_type: MediaType) -> str:
    """The SOAP action of an MTOM request, wherever the peer put it (RFC 3902 §3; MTOM §3.3).

    In order: the package's ``action`` (or the one in ``start-info``), the root part's ``action`` parameter,
    the ``action`` inside the root part's ``type`` parameter; ``""`` when none is given.
    """
    return related.action or root_type.params.get("action", "") or _action_in(root_type.params.get("type", ""))


# --- Content-IDs and cid: URLs ----------------------------------------------------------------------------


def content_id(header_value: str) -> str:
    """Normalise a Content-ID header (or ``start`` parameter): ``"<a@b>"`` -> ``"a@b"`` (RFC 2045 §7)."""
    return header_value.strip().removeprefix("<").removesuffix(">").strip()


def cid_from_href(href: str) -> str:
    """The Content-ID a ``cid:`` URL names: scheme case-insensitive, %hh escapes decoded (RFC 2392 §2).

    Raises
    ------
    SoapFault
        BAD_MTOM when ``href`` is not a ``cid:`` URL, is empty after the scheme or is not UTF-8 when decoded.
    """
    value = href.strip()
    if value[:4].lower() != "cid:":
        raise _bad(f"xop:Include href {href!r} is not a cid: URL")
    try:
        cid = unquote(value[4:], errors="strict")
    except UnicodeDecodeError:
        raise _bad(f"xop:Include href {href!r} does not decode to UTF-8") from None
    if not cid:
        raise _bad(f"xop:Include href {href!r} names no Content-ID")
    return cid


def cid_href(cid: str) -> str:
    """The ``cid:`` URL of a Content-ID: every character but RFC 3986 unreserved ones and ``@`` %-encoded.

    ``cid_from_href(cid_href(x)) == x`` for any non-empty ``x``.
    """
    return "cid:" + quote(cid, safe=_CID_SAFE)


def xop_includes(root: etree._Element) -> list[etree._Element]:
    """Every ``xop:Include`` element below ``root`` (and ``root`` itself), in document order."""
    return list(root.iter(XOP_INCLUDE))


def resolve_include(elem: etree._Element) -> str:
    """The Content-ID an ``xop:Include`` refers to (XOP 1.0 §3.1: ``href`` is required)."""
    href = elem.get("href")
    if not href:
        raise _bad("xop:Include has no href attribute")
    return cid_from_href(href)


# --- the reader -------------------------------------------------------------------------------------------


class PartSink(Protocol):
    """Where one attachment's decoded bytes go; made by the caller (a temporary file, a hash, ...).

    ``close`` is called once when the part ended normally. ``abort`` is called when the package fails after
    the sink was made, even if it was closed already, or when the caller calls :meth:`MtomReader.abort`;
    it must not raise.
    """

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PartHeaders:
    """The MIME headers of one part."""

    content_id: str
    """Normalised Content-ID, ``""`` if absent."""
    content_type: str
    """The Content-Type value as received (stripped), ``""`` if absent."""
    transfer_encoding: str
    """Content-Transfer-Encoding, lower-cased, ``""`` if absent."""
    raw: tuple[tuple[str, str], ...]
    """Every header (name as received, value stripped), in order."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A non-root part: its headers, the sink that received it and the decoded byte count."""

    headers: PartHeaders
    sink: PartSink
    size: int


@dataclass(frozen=True, slots=True)
class MtomMessage:
    """A complete MTOM package."""

    root: bytes
    """The root part (the SOAP envelope in XOP form), transfer encoding removed."""
    root_type: MediaType
    """The root part's Content-Type (``text/plain`` when absent, RFC 2045 §5.2); MTOM wants
    ``application/xop+xml; type="application/soap+xml"``, which the caller checks."""
    attachments: Mapping[str, Attachment]
    """The other parts by normalised Content-ID."""


class _Base64:
    """Streaming base64 decoder (RFC 2045 §6.8): whitespace ignored, fewer than 4 characters carried over."""

    __slots__ = ("_carry", "_padded")

    def __init__(self) -> None:
        self._carry = b""
        self._padded = False

    def decode(self, chunk: bytes) -> bytes:
        data = self._carry + chunk.translate(None, _B64_SPACE)
        if not data:
            return b""
        if self._padded:
            raise _bad("base64 attachment has data after its padding")
        cut = len(data) - len(data) % 4
        self._carry = data[cut:]
        self._padded = data[cut - 1 : cut] == b"=" if cut else False
        try:
            return binascii.a2b_base64(data[:cut], strict_mode=True)
        except binascii.Error as exc:
            raise _bad(f"attachment is not valid base64: {exc}") from None

    def finish(self) -> None:
        if self._carry:
            raise _bad("base64 attachment is truncated (length not a multiple of 4)")


class _Part:
    """The part being parsed: where its bytes go (``sink`` None: the root) and how they are decoded."""

    __slots__ = ("decoder", "headers", "sink", "size")

    def __init__(self, headers: PartHeaders, sink: PartSink | None, decoder: _Base64 | None) -> None:
        self.headers = headers
        self.sink = sink
        self.decoder = decoder
        self.size = 0


class MtomReader:
    """Push parser of an MTOM package: root part in memory, attachments streamed to sinks.

    Parameters
    ----------
    related : MultipartRelated
        The package parameters, from :func:`multipart_related`.
    new_sink : callable
        Called with each attachment's headers when its body starts; returns the :class:`PartSink` for it.
    max_root_bytes, max_total_bytes : int
        Limits of the root part and of all attachments together (decoded bytes); over them, TOO_LARGE.
    max_parts : int
        Most parts in the package, root included.

    All problems are :class:`SoapFault` with subcode BAD_MTOM or TOO_LARGE; exceptions of the sink factory
    or a sink propagate as they are. Either way every sink made so far is aborted first.
    """

    def __init__(
        self,
        related: MultipartRelated,
        new_sink: Callable[[PartHeaders], PartSink],
        *,
        max_root_bytes: int,
        max_total_bytes: int,
        max_parts: int = 1000,
    ) -> None:
        _check_boundary(related.boundary)
        self._start = related.start
        self._new_sink = new_sink
        self._max_root = max_root_bytes
        self._max_total = max_total_bytes
        self._max_parts = max_parts
        self._dash = b"--" + related.boundary.encode("ascii")
        self._parser = MultipartParser(
            related.boundary.encode("ascii"),
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            max_header_count=MAX_HEADERS,
        )
        self._state = "preamble"  # -> "parts" -> "epilogue"; or "failed" / "finished"
        self._preamble = bytearray()
        self._scan = 0
        self._parts = 0
        self._field = bytearray()
        self._value = bytearray()
        self._headers: list[tuple[str, str]] = []
        self._part: _Part | None = None
        self._root: bytearray | None = None
        self._root_type: MediaType | None = None
        self._seen: set[str] = set()
        self._total = 0
        self._attachments: dict[str, Attachment] = {}
        self._sinks: list[PartSink] = []

    def feed(self, data: bytes) -> None:
        """Parse the next chunk of the body (any size, 1 byte included)."""
        self._check_usable()
        try:
            if self._state == "preamble":
                data = self._skip_preamble(data)
            if self._state == "parts" and data:
                self._parser.write(data)
        except MultipartParseError as exc:
            self._fail()
            raise _bad(f"malformed multipart/related body: {exc}") from None
        except BaseException:
            self._fail()
            raise

    def finish(self) -> MtomMessage:
        """Check the package is complete and return it; the sinks stay the caller's (see :meth:`abort`)."""
        self._check_usable()
        try:
            message = self._message()
        except BaseException:
            self._fail()
            raise
        self._state = "finished"
        return message

    def abort(self) -> None:
        """Abort every sink made so far, closed ones included (idempotent); the reader cannot be fed after."""
        if self._state != "finished":
            self._state = "failed"
        sinks, self._sinks = self._sinks, []
        error: BaseException | None = None
        for sink in sinks:
            try:
                sink.abort()
            except Exception as exc:  # abort the others all the same
                error = error or exc
        if error is not None:
            raise error

    def _check_usable(self) -> None:
        if self._state in ("failed", "finished"):
            raise RuntimeError(f"MtomReader is {self._state}")

    def _fail(self) -> None:
        self._state = "failed"
        self.abort()

    def _message(self) -> MtomMessage:
        if self._state == "preamble":
            raise _bad("the body holds no multipart boundary line")
        if self._state != "epilogue":
            raise _bad("the multipart/related package is incomplete: the closing boundary is missing")
        if self._root is None or self._root_type is None:
            raise _bad(f"the start parameter names <{self._start}>, which is no part of the package")
        return MtomMessage(
            root=bytes(self._root),
            root_type=self._root_type,
            attachments=MappingProxyType(self._attachments),
        )

    # The preamble (RFC 2046 §5.1.1): everything before the first line that begins with "--boundary".

    def _skip_preamble(self, data: bytes) -> bytes:
        self._preamble += data
        buf, dash = self._preamble, self._dash
        while (p := buf.find(dash, self._scan)) > 0 and buf[p - 1] != _LF:
            self._scan = p + 1
        if p > MAX_PREAMBLE or (p < 0 and len(buf) > MAX_PREAMBLE + len(dash)):
            raise _bad(f"no boundary line within the first {MAX_PREAMBLE} bytes (is the boundary right?)")
        eol = buf.find(b"\n", p + len(dash)) if p >= 0 else -1
        if eol >= 0:
            _check_opening_line(bytes(buf[p + len(dash) : eol]))
            self._state, self._preamble = "parts", bytearray()
            return dash + _CRLF + bytes(buf[eol + 1 :])
        if p >= 0 and len(buf) - p > len(dash) + _MAX_PADDING:
            raise _bad("the first boundary line is too long")
        self._scan = p if p >= 0 else max(self._scan, len(buf) - len(dash))
        return b""

    # python_multipart callbacks.

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._max_parts:
            raise _bad(f"the package has more than {self._max_parts} parts")
        self._headers = []

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        name, value = _header_text(self._field).strip(), _header_text(self._value).strip()
        self._headers.append((name, value))
        self._field, self._value = bytearray(), bytearray()

    def _on_headers_finished(self) -> None:
        headers = _part_headers(self._headers, self._parts)
        cid = headers.content_id
        is_root = self._root is None and (cid == self._start if self._start else self._parts == 1)
        if not cid and not is_root:
            raise _bad(f"part {self._parts} of the package has no Content-ID")
        if cid in self._seen:
            raise _bad(f"Content-ID <{cid}> is used by more than one part")
        if cid:
            self._seen.add(cid)
        decoder = _decoder(headers)
        if is_root:
            self._root, self._root_type = bytearray(), _root_type(headers.content_type)
            self._part = _Part(headers, None, decoder)
        else:
            sink = self._new_sink(headers)
            self._sinks.append(sink)
            self._part = _Part(headers, sink, decoder)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None, "part data before the part's headers"
        chunk = data[start:end]
        if part.decoder is not None:
            chunk = part.decoder.decode(chunk)
        if part.sink is None:
            self._add_to_root(chunk)
            return
        self._total += len(chunk)
        if self._total > self._max_total:
            raise SoapFault(f"the attachments exceed {self._max_total} bytes", subcode=faults.TOO_LARGE)
        part.sink.write(chunk)
        part.size += len(chunk)

    def _add_to_root(self, chunk: bytes) -> None:
        assert self._root is not None
        if len(self._root) + len(chunk) > self._max_root:
            raise SoapFault(f"the root part (SOAP envelope) exceeds {self._max_root} bytes", subcode=faults.TOO_LARGE)
        self._root += chunk

    def _on_part_end(self) -> None:
        part, self._part = self._part, None
        if part is None:  # a part that ended inside its headers
            raise _bad(f"part {self._parts} of the package ends before its headers do")
        if part.decoder is not None:
            part.decoder.finish()
        if part.sink is not None:
            part.sink.close()
            cid = part.headers.content_id
            self._attachments[cid] = Attachment(headers=part.headers, sink=part.sink, size=part.size)

    def _on_end(self) -> None:
        self._state = "epilogue"


def _check_opening_line(rest: bytes) -> None:
    """What follows ``--boundary`` on the first delimiter line: transport padding and CRLF (RFC 2046 §5.1.1)."""
    if not rest.endswith(b"\r"):
        raise _bad("the package uses LF-only line endings; MIME multipart requires CRLF (RFC 2046 §5.1.1)")
    padding = rest[:-1]
    if padding.startswith(b"--"):
        raise _bad("the package has no parts: its first boundary is the closing one")
    if padding.strip(b" \t"):
        raise _bad("the first line starting with the boundary is not a boundary delimiter line")


def _header_text(raw: bytearray) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("a MIME part header is not UTF-8 text") from None


def _part_headers(raw: list[tuple[str, str]], number: int) -> PartHeaders:
    found: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        if key in ("content-id", "content-type", "content-transfer-encoding"):
            if key in found:
                raise _bad(f"part {number} has more than one {name} header")
            found[key] = value
    return PartHeaders(
        content_id=content_id(found.get("content-id", "")),
        content_type=found.get("content-type", ""),
        transfer_encoding=found.get("content-transfer-encoding", "").lower(),
        raw=tuple(raw),
    )


def _decoder(headers: PartHeaders) -> _Base64 | None:
    encoding = headers.transfer_encoding
    if encoding in _IDENTITY:
        return None
    if encoding == "base64":
        return _Base64()
    what = f"<{headers.content_id}>" if headers.content_id else "the root part"
    raise _bad(f"Content-Transfer-Encoding {encoding!r} of {what} is not supported (use binary or base64)")


def _root_type(value: str) -> MediaType:
    if not value:
        return MediaType("text/plain", MappingProxyType({"charset": "us-ascii"}))
    try:
        return parse_media_type(value)
    except SoapFault as exc:
        raise _bad(f"the root part's Content-Type is malformed: {exc.reason}") from None


# --- building MTOM messages -------------------------------------------------------------------------------


def part_content_type(mime_type: str) -> str:
    """The Content-Type of a document's MIME part: its mimeType when that is a well-formed media type
    (parameters allowed), else ``application/octet-stream``, so metadata never reaches a header unchecked."""
    if not mime_type.strip() or "\r" in mime_type or "\n" in mime_type:
        return "application/octet-stream"
    try:
        parse_media_type(mime_type)
    except SoapFault:
        return "application/octet-stream"
    return mime_type.strip()


def new_boundary() -> str:
    """A fresh boundary: ``MIMEBoundary_`` and 32 random hex digits (never found in content by chance)."""
    return f"MIMEBoundary_{uuid.uuid4().hex}"


def new_content_id(n: int | str) -> str:
    """A fresh, globally unique Content-ID (RFC 2045 §7) for part ``n``, without angle brackets."""
    return f"{n}.{uuid.uuid4().hex}@xds-node"


def mtom_content_type(*, boundary: str, root_cid: str, action: str) -> str:
    """The HTTP ``Content-Type`` of an MTOM SOAP 1.2 message (MTOM §3.3; RFC 2387 §3; ITI TF-2 V.4)."""
    _check_boundary(boundary)
    value = (
        f'multipart/related; type="{XOP_MEDIA_TYPE}"; boundary={_quoted(boundary)}; start={_quoted(f"<{root_cid}>")};'
        f' start-info="{SOAP12_MEDIA_TYPE}"'
    )
    return value + (f"; action={_quoted(action)}" if action else "")


def root_part(*, boundary: str, root_cid: str, envelope: bytes, action: str) -> bytes:
    """The opening delimiter, the root part's headers and the envelope (XOP 1.0 §4.1; MTOM §3.3)."""
    content_type = f'{XOP_MEDIA_TYPE}; charset=UTF-8; type="{SOAP12_MEDIA_TYPE}"'
    if action:
        content_type += f"; action={_quoted(action)}"
    return b"--" + _head(boundary, root_cid, content_type) + envelope


def part_head(*, boundary: str, cid: str, content_type: str) -> bytes:
    """The delimiter and headers that precede one attachment's bytes (the part's binary content follows)."""
    return b"\r\n--" + _head(boundary, cid, content_type)


def closing(boundary: str) -> bytes:
    """The closing delimiter (RFC 2046 §5.1.1)."""
    _check_boundary(boundary)
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def render_mtom(
    *,
    envelope: bytes,
    action: str,
    parts: Sequence[tuple[str, str, bytes]],
    boundary: str | None = None,
    root_cid: str | None = None,
) -> tuple[str, bytes]:
    """A whole MTOM message in memory (clients, tests): ``(content_type, body)``.

    ``parts`` are ``(content_id, content_type, data)``. Raises ValueError when the boundary occurs in the
    content (only possible with a caller-chosen ``boundary``).
    """
    boundary = boundary or new_boundary()
    root_cid = root_cid or new_content_id("root")
    dash = b"--" + boundary.encode("ascii")
    if any(dash in data for data in (envelope, *(p[2] for p in parts))):
        raise ValueError(f"the boundary {boundary!r} occurs in the message content")
    chunks = [root_part(boundary=boundary, root_cid=root_cid, envelope=envelope, action=action)]
    for cid, content_type, data in parts:
        chunks += [part_head(boundary=boundary, cid=cid, content_type=content_type), data]
    chunks.append(closing(boundary))
    content_type = mtom_content_type(boundary=boundary, root_cid=root_cid, action=action)
    return content_type, b"".join(chunks)


def _head(boundary: str, cid: str, content_type: str) -> bytes:
    _check_boundary(boundary)
    for value in (cid, content_type):
        if "\r" in value or "\n" in value:
            raise ValueError(f"a MIME header value may not contain a line break: {value!r}")
    lines = (
        boundary,
        f"Content-Type: {content_type}",
        "Content-Transfer-Encoding: binary",
        f"Content-ID: <{cid}>",
        "",
        "",
    )
    return "\r\n".join(lines).encode("utf-8")


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a MIME parameter may not contain a line break: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = [
    "MAX_HEADERS",
    "MAX_PREAMBLE",
    "SOAP12_MEDIA_TYPE",
    "XOP_INCLUDE",
    "XOP_MEDIA_TYPE",
    "Attachment",
    "MediaType",
    "MtomMessage",
    "MtomReader",
    "MultipartRelated",
    "PartHeaders",
    "PartSink",
    "cid_from_href",
    "cid_href",
    "closing",
    "content_id",
    "is_multipart_related",
    "mtom_content_type",
    "multipart_related",
    "new_boundary",
    "new_content_id",
    "parse_media_type",
    "part_content_type",
    "part_head",
    "render_mtom",
    "resolve_include",
    "root_part",
    "soap_action",
    "xop_includes",
]
