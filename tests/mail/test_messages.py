"""Message builders and readers: digests hold only what they are given, XDM and MDN mails survive a round trip."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from xds.mail.messages import digest_message, mdn_message, parse_message, xdm_message, zip_attachments

NODE = "xds.node.example.org"
FROM = "xds@node.example.org"
SENDER = "gp@practice.example.org"
WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def round_trip(message: EmailMessage) -> EmailMessage:
    return parse_message(message.as_bytes())


def make_zip(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("IHE_XDM/SUBSET01/METADATA.XML", "<SubmitObjectsRequest/>")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


# -- digest ------------------------------------------------------------------------------------------------------------


def digest(**overrides: object) -> EmailMessage:
    values: dict[str, object] = {
        "from_address": FROM,
        "to": ["radiology@hospital.example.org", "oncall@hospital.example.org"],
        "mailbox": "radiology",
        "digest_id": 42,
        "node_name": NODE,
        "deliveries": 3,
        "documents": 12,
        "references": ["D-1a2b3c", "D-4d5e6f", "D-7a8b9c"],
        "urgent": False,
        "command": "xds inbox show D-1a2b3c",
        "date": WHEN,
    }
    values.update(overrides)
    return digest_message(**values)  # type: ignore[arg-type]


def test_digest_headers() -> None:
    message = round_trip(digest())
    assert message["Subject"] == "[xds] 3 new deliveries (12 documents) in mailbox radiology"
    assert message["Message-ID"] == f"<digest-42@{NODE}>"
    assert message["Date"] == "Mon, 06 May 2024 07:08:09 +0000"
    assert message["From"] == FROM
    assert message["To"] == "radiology@hospital.example.org, oncall@hospital.example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Importance"] is None and message["X-Priority"] is None
    assert message.get_content_type() == "text/plain"


def test_digest_message_id_is_deterministic() -> None:
    first, again = digest(date=None), digest(date=None)
    assert first["Message-ID"] == again["Message-ID"] == f"<digest-42@{NODE}>"
    assert first["Date"]


def test_urgent_digest() -> None:
    message = round_trip(digest(urgent=True, deliveries=1, documents=1, references=["D-000001"]))
    assert message["Subject"] == "URGENT: [xds] 1 new delivery (1 document) in mailbox radiology"
    assert message["Importance"] == "high"
    assert message["X-Priority"] == "1"


def test_digest_body_holds_only_what_was_passed() -> None:
    body = round_trip(digest()).get_content()
    for reference in ("D-1a2b3c", "D-4d5e6f", "D-7a8b9c"):
        assert f"  {reference}\n" in body
    assert "Show them with: xds inbox show D-1a2b3c" in body
    assert "Open them at" not in body
    # Every run of digits comes from the counts, the references or the node name: nothing that could be a
    # BSN (nine digits), a birth date or a patient id.
    inputs = " ".join(["3", "12", "D-1a2b3c", "D-4d5e6f", "D-7a8b9c", "xds inbox show D-1a2b3c", NODE, "radiology"])
    allowed = set(re.findall(r"\d+", inputs))
    assert set(re.findall(r"\d+", body)) <= allowed
    assert not re.search(r"\d{6,}", body)


def test_digest_with_link() -> None:
    body = digest(command="", link="https://xds.node.example.org/inbox/radiology").get_content()
    assert "Open them at: https://xds.node.example.org/inbox/radiology" in body
    assert "Show them with" not in body


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"to": []}, "at least one recipient"), ({"node_name": "xds node"}, "cannot form a Message-ID")],
)
def test_digest_refusals(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        digest(**overrides)


# -- XDM ZIP over Email ------------------------------------------------------------------------------------------------


def xdm(tmp_path: Path, **overrides: object) -> tuple[EmailMessage, bytes]:
    data = make_zip(tmp_path / "package.zip")
    values: dict[str, object] = {
        "from_address": SENDER,
        "to": "radiology@hospital.example.org",
        "subject": "XDM package",
        "body": "Please find the XDM package attached.\n",
        "zip_path": tmp_path / "package.zip",
        "filename": "package.zip",
        "message_id": "xdm-1@practice.example.org",
    }
    values.update(overrides)
    return xdm_message(**values), data  # type: ignore[arg-type]


def test_xdm_round_trip(tmp_path: Path) -> None:
    built, data = xdm(tmp_path)
    message = round_trip(built)
    assert message.get_content_type() == "multipart/mixed"
    assert message["Message-ID"] == "<xdm-1@practice.example.org>"
    assert message["Disposition-Notification-To"] == SENDER
    body = message.get_body(("plain",))
    assert body is not None and body.get_content() == "Please find the XDM package attached.\n"
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "application/zip"
    assert attachment.get_content_disposition() == "attachment"
    assert zip_attachments(message, max_bytes=len(data)) == [("package.zip", data)]


def test_xdm_without_mdn_request(tmp_path: Path) -> None:
    message, _ = xdm(tmp_path, request_mdn=False, message_id="")
    assert message["Disposition-Notification-To"] is None
    assert re.fullmatch(r"<[^<>@]+@practice\.example\.org>", str(message["Message-ID"]))


@pytest.mark.parametrize("filename", ["", "../package.zip", "dir/package.zip", "dir\\package.zip"])
def test_xdm_plain_file_name(tmp_path: Path, filename: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        xdm(tmp_path, filename=filename)


# -- MDN ---------------------------------------------------------------------------------------------------------------


def original(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "radiology@hospital.example.org"
    message["Message-ID"] = "<xdm-1@practice.example.org>"
    message["Disposition-Notification-To"] = "receipts@practice.example.org"
    for name, value in headers.items():
        del message[name.replace("_", "-")]
        if value:
            message[name.replace("_", "-")] = value
    message.set_content("package")
    return message


def mdn(source: EmailMessage, *, processed: bool, detail: str) -> EmailMessage:
    built = mdn_message(
        original=source,
        from_address=FROM,
        final_recipient="radiology@hospital.example.org",
        processed=processed,
        detail=detail,
    )
    return round_trip(built)


def notification_fields(message: EmailMessage) -> EmailMessage:
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "disposition-notification"
    text, report = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert report.get_content_type() == "message/disposition-notification"
    fields = report.get_payload(0)
    assert isinstance(fields, EmailMessage)
    return fields


def test_mdn_processed() -> None:
    message = mdn(original(), processed=True, detail="delivered as D-1a2b3c")
    assert message["To"] == "receipts@practice.example.org"
    assert message["From"] == FROM
    assert message["In-Reply-To"] == "<xdm-1@practice.example.org>"
    assert message["References"] == "<xdm-1@practice.example.org>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["Disposition-Notification-To"] is None
    fields = notification_fields(message)
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed"
    assert fields["Final-Recipient"] == "rfc822; radiology@hospital.example.org"
    assert fields["Original-Message-ID"] == "<xdm-1@practice.example.org>"
    assert fields["Reporting-UA"].startswith("node.example.org; xds-node/")
    assert fields["Original-Recipient"] is None
    assert fields["Error"] is None
    text = message.get_body(("plain",))
    assert text is not None and text.get_content() == "delivered as D-1a2b3c\n"


def test_mdn_failed_is_processed_error() -> None:
    source = original(Original_Recipient="rfc822; Radiology@hospital.example.org", References="<earlier@x.org>")
    message = mdn(source, processed=False, detail="not an XDM package:\nno METADATA.XML")
    fields = notification_fields(message)
    assert fields["Disposition"] == "automatic-action/MDN-sent-automatically; processed/error"
    assert fields["Error"] == "not an XDM package: no METADATA.XML"
    assert fields["Original-Recipient"] == "rfc822; Radiology@hospital.example.org"
    assert message["References"] == "<earlier@x.org> <xdm-1@practice.example.org>"


def test_mdn_falls_back_to_from() -> None:
    message = mdn(original(Disposition_Notification_To=""), processed=True, detail="delivered as D-1")
    assert message["To"] == SENDER


def test_mdn_without_message_id() -> None:
    message = mdn(original(Message_ID=""), processed=True, detail="delivered as D-1")
    assert message["In-Reply-To"] is None
    assert notification_fields(message)["Original-Message-ID"] is None


def test_mdn_needs_an_address() -> None:
    with pytest.raises(ValueError, match="no From address"):
        mdn(original(Disposition_Notification_To="", From=""), processed=True, detail="x")


# -- zip_attachments ---------------------------------------------------------------------------------------------------


def mail_with(*parts: tuple[bytes, str, str, str]) -> EmailMessage:
    """A received mail with ``(data, maintype, subtype, filename)`` attachments."""
    message = EmailMessage()
    message["From"] = SENDER
    message.set_content("see attachments")
    for data, maintype, subtype, filename in parts:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return round_trip(message)


def test_zip_types() -> None:
    message = mail_with(
        (b"PK-a", "application", "zip", "a.zip"),
        (b"PK-b", "application", "x-zip-compressed", "b.bin"),
        (b"PK-c", "application", "octet-stream", "C.ZIP"),
        (b"%PDF", "application", "octet-stream", "d.pdf"),
        (b"PK-e", "application", "pdf", "e.zip"),
    )
    assert zip_attachments(message, max_bytes=1000) == [("a.zip", b"PK-a"), ("b.bin", b"PK-b"), ("C.ZIP", b"PK-c")]


def test_zip_size_cap() -> None:
    message = mail_with((b"x" * 600, "application", "zip", "a.zip"), (b"y" * 600, "application", "zip", "b.zip"))
    assert len(zip_attachments(message, max_bytes=1200)) == 2
    with pytest.raises(ValueError, match="exceed 1199 bytes"):
        zip_attachments(message, max_bytes=1199)
    with pytest.raises(ValueError, match="exceed 100 bytes"):
        zip_attachments(message, max_bytes=100)


def test_zip_inside_forwarded_mail_is_not_counted() -> None:
    inner = mail_with((b"PK-inner", "application", "zip", "inner.zip"))
    outer = EmailMessage()
    outer["From"] = SENDER
    outer.set_content("forwarded")
    outer.add_attachment(inner)
    assert zip_attachments(round_trip(outer), max_bytes=1000) == []


def test_zip_without_name_and_no_zip_at_all() -> None:
    raw = (
        b"From: gp@practice.example.org\r\nMIME-Version: 1.0\r\nContent-Type: application/zip\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"PK-raw")
    )
    assert zip_attachments(parse_message(raw), max_bytes=100) == [("", b"PK-raw")]
    assert zip_attachments(parse_message(b"Subject: hi\r\n\r\nno attachment\r\n"), max_bytes=100) == []
