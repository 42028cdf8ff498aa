"""RAD-69 Retrieve Imaging Document Set, Imaging Document Source side (and RAD-75 at the Responding Gateway).

Theory of operation: each DocumentRequest names a DICOM instance by SOP Instance UID (its DocumentUniqueId),
within a study and series, at a RepositoryUniqueId that must be this node's imaging source id
(``XDSUnknownRepositoryId``). An instance that is not stored, or not in the study and series the request puts it
in, is ``XDSDocumentUniqueIdError`` (the same answer as for an instance the consent gate withholds, so nothing
leaks). The instance is returned in the transfer syntax it is stored in, when that is among the request's
TransferSyntaxUIDs; otherwise ``XDSRepositoryError`` located at the SOP Instance UID (this node does not
transcode). An empty transfer-syntax list refuses the request. Some instances missing is PartialSuccess.

The consent gate decides once per (patient, data category) of the studies asked for; the category is the
manifests' classCode code.

References
----------
IHE RAD TF-3 §4.69.4.1.3 (expected actions), §4.69.4.2 (response), §4.75; ITI TF-3 §4.2.4.1 (error codes).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Protocol

from xds import vocabulary as v
from xds.consent.gate import Gate
from xds.consent.model import Requester
from xds.dicom.records import InstanceRecord, StudyRecord
from xds.errors import DocumentUniqueIdError, RepositoryError, UnknownRepositoryId, XDSError
from xds.model.messages import (
    DocumentContent,
    ImagingRetrieveRequest,
    RetrievedDocument,
    RetrieveResponse,
    outcome_status,
)
from xds.registry.transactions import Transaction
from xds.repository.ports import DocumentFiles

log = logging.getLogger("xds.imaging")

TRANSACTION: Final = Transaction(
    id="RAD-69",
    title="Retrieve Imaging Document Set",
    action=v.ACTION_RETRIEVE_IMAGING,
    response_action=v.ACTION_RETRIEVE_RESPONSE,
    mtom=False,
    is_query=False,
    mtom_response=True,
)
DICOM_MIME: Final = "application/dicom"


class ImagingIndex(Protocol):
    """Which studies and instances this node holds."""

    def instances(self, sop_instance_uids: Collection[str]) -> dict[str, InstanceRecord]:
        """The stored instances among ``sop_instance_uids``."""
        ...

    def study(self, study_uid: str) -> StudyRecord | None:
        """A stored study."""
        ...


@dataclass(frozen=True, slots=True)
class ImagingContext:
    """What RAD-69 needs besides the request."""

    source_id: str
    index: ImagingIndex
    files: DocumentFiles
    category: str
    """The data category (classCode code) the gate decides on for images."""
    max_documents: int = 1000
    gate: Gate | None = None


def retrieve_imaging(
    req: ImagingRetrieveRequest, ctx: ImagingContext, requester: Requester, *, home_community_id: str = ""
) -> RetrieveResponse:
    """Answer every DocumentRequest; ``home_community_id`` is put on each answer (RAD-75)."""
    if len(req.documents) > ctx.max_documents:
        raise RepositoryError(f"{len(req.documents)} DocumentRequests; at most {ctx.max_documents} per call")
    if not req.transfer_syntaxes:
        raise RepositoryError("the request names no TransferSyntaxUID: no transfer syntax is acceptable")
    wanted = [d.document.document_unique_id for d in req.documents if d.document.repository_unique_id == ctx.source_id]
    held = ctx.index.instances(wanted) if wanted else {}
    patients: dict[str, str] = {}
    for study_uid in {i.study_uid for i in held.values()}:
        study = ctx.index.study(study_uid)
        if study is not None:
            patients[study_uid] = study.patient_id
    if ctx.gate is not None:
        allowed = ctx.gate.permitted({(p, ctx.category) for p in patients.values()}, requester)
        patients = {s: p for s, p in patients.items() if (p, ctx.category) in allowed}
    accepted = set(req.transfer_syntaxes)
    found: list[RetrievedDocument] = []
    errors: list[XDSError] = []
    for r in req.documents:
        d = r.document
        if d.repository_unique_id != ctx.source_id:
            errors.append(
                UnknownRepositoryId(
                    f"repositoryUniqueId {d.repository_unique_id} is not this imaging source ({ctx.source_id})",
                    location=d.repository_unique_id,
                )
            )
            continue
        instance = held.get(d.document_unique_id)
        if (
            instance is None
            or instance.study_uid != r.study_instance_uid
            or instance.series_uid != r.series_instance_uid
            or instance.study_uid not in patients
        ):
            errors.append(
                DocumentUniqueIdError(
                    f"no instance {d.document_unique_id} in series {r.series_instance_uid} of study"
                    f" {r.study_instance_uid}",
                    location=d.document_unique_id,
                )
            )
            continue
        if instance.transfer_syntax not in accepted:
            errors.append(
                RepositoryError(
                    f"instance {d.document_unique_id} is stored in transfer syntax {instance.transfer_syntax}, which"
                    " the request does not accept (this source does not transcode)",
                    location=d.document_unique_id,
                )
            )
            continue
        if not ctx.files.exists(instance.sha256):
            log.error("instance %s is recorded but its content is missing", instance.sop_instance_uid)
            errors.append(
                RepositoryError(f"instance {d.document_unique_id} cannot be read now", location=d.document_unique_id)
            )
            continue
        found.append(
            RetrievedDocument(
                repository_unique_id=ctx.source_id,
                document_unique_id=instance.sop_instance_uid,
                mime_type=DICOM_MIME,
                content=DocumentContent(ref="", size=instance.size, sha1="", sha256=instance.sha256),
                home_community_id=home_community_id or d.home_community_id,
            )
        )
    status = outcome_status(succeeded=bool(found), failed=bool(errors))
    return RetrieveResponse(status=status, errors=tuple(e.as_item() for e in errors), documents=tuple(found))


__all__ = ["DICOM_MIME", "TRANSACTION", "ImagingContext", "ImagingIndex", "retrieve_imaging"]
