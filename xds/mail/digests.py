"""Notification digests: one mail per mailbox and patient per quiet period, sent by ``xds serve``.

Theory of operation
-------------------
Deliveries join their patient's open digest when they are stored (:mod:`xds.store.inbox`): each one moves the
digest's due time to the end of the mailbox's quiet period, and an urgent one makes it due at once. This sender
wakes every ``interval`` seconds, claims the digests that are due (a conditional update, so several workers or
nodes on one database never mail one digest twice), and mails each to its mailbox's ``notify`` addresses over
the ``[smtp]`` relay. The mail names the mailbox, the number of deliveries and distinct documents, the delivery
references and where to look (a link under ``[inbox] link_base``, else the command) and nothing about the
patient (:func:`xds.mail.messages.digest_message`). Its Message-ID is fixed per digest, so a mail sent again
after a crash between the relay's acceptance and our record is recognisable as the same.

A relay that fails releases the digest (due again after ``[inbox] retry_seconds``); everything is in the
database, so pending digests survive a restart and are sent when they fall due. Each mailing, or failure to
mail, is audited.

References
----------
DUTCH-CONTEXT.md §5 (notifications without floods), §6 (notified before a study is complete).
"""

from __future__ import annotations

import logging
import socket
import threading
from datetime import datetime

from xds.audit import transactions as audits
from xds.mail.messages import digest_message
from xds.mail.send import MailError, send_message
from xds.mail.settings import SmtpSettings
from xds.node import Node
from xds.store.inbox import DueDigest

log = logging.getLogger("xds.mail")

MAX_PER_PASS = 50
"""Digests mailed in one pass at most (the next pass follows after ``interval``)."""


class DigestSender:
    """Mails due digests of ``node`` through ``smtp``; :meth:`run_once` for one pass, :meth:`start` for a thread."""

    def __init__(self, node: Node, smtp: SmtpSettings, *, interval: float = 1.0, node_name: str = "") -> None:
        self.node, self.smtp, self.interval = node, smtp, interval
        self.node_name = node_name or socket.getfqdn() or "xds-node"
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, now: datetime | None = None) -> int:
        """Mail every digest due by ``now``; the number mailed."""
        stale = max(300.0, 4 * self.smtp.timeout)
        sent = 0
        for _ in range(MAX_PER_PASS):
            # one claim at a time, just before its mail: a claim never ages while others are being sent, so a
            # slow relay cannot make another sender take it as stale and mail it too
            claimed = self.node.inbox.claim_due(now=now, stale_after=stale, limit=1)
            if not claimed:
                break
            digest = claimed[0]
            try:
                sent += self._send(digest)
            except Exception as exc:  # not the relay: release it, so the others of this pass still go out
                log.exception("notification digest %d: unexpected failure", digest.id)
                try:
                    retry = self.node.settings.inbox_retry_seconds
                    self.node.inbox.digest_failed(digest.id, f"{type(exc).__name__}: {exc}", retry_after=retry)
                except Exception:
                    log.exception("notification digest %d stays claimed until its claim is stale", digest.id)
        return sent

    def _send(self, digest: DueDigest) -> int:
        settings = self.node.settings
        box = next((m for m in settings.mailboxes if m.name == digest.mailbox), None)
        if box is None or not box.notify:
            self.node.inbox.digest_sent(digest.id, "not mailed: the mailbox has no notification address now")
            return 0
        base = settings.inbox_link_base.rstrip("/")
        only = digest.references[0] if len(digest.references) == 1 else ""
        message = digest_message(
            from_address=self.smtp.from_address,
            to=box.notify,
            mailbox=box.name,
            digest_id=digest.id,
            node_name=self.node_name,
            deliveries=len(digest.references),
            documents=digest.documents,
            references=digest.references,
            urgent=digest.urgent,
            link=f"{base}/{only}" if base and only else base,
            command=f"xds inbox show {only}" if only else f"xds inbox list {box.name}",
        )
        try:
            send_message(self.smtp, message)
        except MailError as exc:
            log.warning("notification digest %d for mailbox %s not mailed: %s", digest.id, box.name, exc)
            self.node.inbox.digest_failed(digest.id, str(exc), retry_after=settings.inbox_retry_seconds)
            self._audit(digest, ok=False, description=f"digest {digest.id} not mailed: {exc}")
            return 0
        self.node.inbox.digest_sent(digest.id, f"notified {', '.join(box.notify)} (digest {digest.id})")
        self._audit(digest, ok=True, description=f"digest {digest.id}: {len(digest.references)} deliveries mailed")
        return 1

    def _audit(self, digest: DueDigest, *, ok: bool, description: str) -> None:
        patient = "" if digest.patient_key.startswith("sender:") else digest.patient_key
        record = self.node.push_record(
            audits.NOTIFICATION,
            ok=ok,
            export=True,
            peer=f"smtp://{self.smtp.host}:{self.smtp.port}",
            patient_ids=(patient,) if patient else (),
            description=description,
        )
        try:
            self.node.audit.append([record])
        except Exception:
            log.exception("the audit record of notification digest %d could not be kept", digest.id)

    def run(self) -> None:
        """The thread's loop: a pass every ``interval`` seconds until :meth:`stop`."""
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("notification digests: pass failed")
            self._stopping.wait(self.interval)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="xds-digests", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a mail being sent is finished first)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


__all__ = ["DigestSender"]
