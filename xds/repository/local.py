"""The registry on the same node, called in-process: ITI-42 and the repository's records in one transaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from xds.model.messages import RegistryResponse, StoredDocument
from xds.model.metadata import Submission
from xds.registry import iti42
from xds.registry.iti42 import RegistryContext
from xds.registry.ports import RegistryTx


class LocalRegistry:
    """Forwards ITI-41 submissions to this node's registry (implements :class:`~xds.repository.ports.Registry`)."""

    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    def register(self, submission: Submission, documents: Sequence[StoredDocument]) -> RegistryResponse:
        def record(tx: RegistryTx, stored: Submission) -> None:
            entry_ids = {de.unique_id: de.id for de in stored.document_entries}
            tx.record_documents([dataclasses.replace(d, entry_uuid=entry_ids[d.unique_id]) for d in documents])

        return iti42.register(submission, self.ctx, within=record)


__all__ = ["LocalRegistry"]
