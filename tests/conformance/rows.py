"""Table A of the conformance README, rows N16 to N77: the registry's NIST cases (ITI-42, ITI-18, ITI-51).

Each row names the NIST step it checks (``test/section#step``) and the sections that must run first
(``chain``; ``@second`` runs a section for another patient). Steps before the target inside its own section
run as well. Expectations come from the testplan; a row may override them (``status``/``codes``) only for a
documented reason (``note``, which also carries caveats), and may add error codes the ITI TF implies where
the testplan states only a status (``tf_codes``, README "(TF: X)"); a Retrieve row may replace the
testplan's ``<ReferenceDocument>`` list (``references``) and its ``<ExpectedMimeType>`` (``mime_type``; ""
drops it), again with a ``note``. A row the harness cannot replay at all names why in ``skip`` (it is then
reported as skipped with that reason, never left out). ``then`` names the NIST evaluation
sections a row's Table A note refers to ("original must become Deprecated", "replacement must join the
Folder", "nothing stored"); they run after the target step passed, each step against its own testplan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from xds.errors import ErrorCode

META: Final = ErrorCode.REGISTRY_METADATA_ERROR
NOT_IN_SCOPE: Final = "ITI-51 Multi-Patient Query is not implemented (not in issue scope)"


@dataclass(frozen=True, slots=True)
class Row:
    """One Table A row."""

    id: str
    target: str
    tx: str
    chain: tuple[str, ...] = ()
    then: tuple[str, ...] = ()
    status: str | None = None
    codes: tuple[str, ...] | None = None
    tf_codes: tuple[str, ...] = ()
    references: tuple[tuple[str, str], ...] | None = None
    mime_type: str | None = None
    note: str = ""
    xfail: str = ""
    skip: str = ""

    @property
    def section(self) -> str:
        return self.target.partition("#")[0]

    @property
    def step(self) -> str:
        return self.target.partition("#")[2]


def _sections(test: str, names: str, patient: str = "") -> tuple[str, ...]:
    suffix = f"@{patient}" if patient else ""
    return tuple(f"{test}/{name}{suffix}" for name in names.split())


SEED: Final = _sections("12346", "single_doc doc_w_fol two_doc_w_fol doc_for_rplc rplc")
"""Stored-query seed data (README §2.5)."""
SEED_OTHER: Final = _sections(
    "12374", "submit_doc submit_doc_w_fol submit_2doc_w_fol submit_doc_for_rplc rplc", "second"
)
"""The same data for a second patient (12368 needs both)."""


def _r42(rid: str, target: str, *chain: str, tf: tuple[str, ...] = (), **kw: object) -> Row:
    return Row(rid, target, "ITI-42", chain, tf_codes=tf, **kw)  # type: ignore[arg-type]


def _r18(rid: str, target: str, chain: tuple[str, ...] = SEED, **kw: object) -> Row:
    return Row(rid, target, "ITI-18", chain, **kw)  # type: ignore[arg-type]


_MISSING = (
    "classCode",
    "confidentialityCode",
    "creationTime",
    "formatCode",
    "healthcareFacilityTypeCode",
    "languageCode",
    "practiceSettingCode",
    "sourcePatientId",
    "typeCode",
)

ROWS: Final[tuple[Row, ...]] = (
    _r42("N16", "11990/submit#submit"),
    _r42("N17", "11991/submit#submit"),
    _r42("N18", "11992/rplc#rplc", "11992/submit", then=("11992/eval",)),
    _r42("N19", "11995/rplc#rplc", "11995/submit"),
    _r42("N20", "11999/submit#submit_fol"),
    _r42("N21", "12000/submit#submit_doc_w_fol"),
    _r42("N22", "12001/add_to_folder#add", "12001/create_folder"),
    _r42("N23", "12326/add_to_folder#add", "12326/create_folder"),
    _r42(
        "N24",
        "12327/rplc#rplc",
        "12327/submit_doc_w_fol",
        "12327/verify_submission",
        then=("12327/verify_folder_contents",),
    ),
    _r42("N25", "12346/single_doc#submit_doc"),
    _r42("N26", "12004/submit#resubmit_doc"),
    _r42("N27", "12004/submit#resubmit_doc_diff_hash"),
    _r42("N28", "11996/submit#submit"),
    _r42("N29", "11997/submit#submit"),
    _r42("N30", "11998/rplc#rplc", "11998/submit", tf=(ErrorCode.PATIENT_ID_DOES_NOT_MATCH,)),
    _r42("N31", "12002/add_to_folder#add", "12002/create_folder"),
    _r42("N32", "11993/apnd#apnd_rplc", "11993/submit", "11993/rplc", tf=(META,)),
    _r42("N33", "11994/xfrm#xfrm_rplc", "11994/submit", "11994/rplc", tf=(META,)),
    *(_r42(f"N{34 + i}", f"11998a/{attr}#submit", tf=(META,)) for i, attr in enumerate(_MISSING)),
    _r42("N43", "12084/submit#submit", tf=(META,), then=("12084/eval",)),
    _r42(
        "N44",
        "12370/not_configured#submit",
        note="the file also lacks hash, size and repositoryUniqueId (required in ITI-42), so Failure is"
        " over-determined: it does not prove the HasMember documentation-classification rule alone",
    ),
    _r42("N45", "15806/resubmit#submit", "15806/submit", "15806/query"),
    _r42(
        "N46",
        "12379/no_support#no_support",
        codes=(),
        then=("12379/support",),
        note="12379 readme: a registry either stores extra metadata (section 'support') or drops it with the"
        " warning XDSExtraMetadataNotSaved ('no_support'); this registry stores it (ITI TF-3 §4.1.14),"
        " so Success without the warning; the follow-up 12379/support checks that the slots come back",
    ),
    _r42("N47", "21000/submit#submissionset_update_target_self"),
    _r18("N48", "11897/leafclass#leafclass"),
    _r18("N49", "11897/objectref#object_refs"),
    _r18("N50", "11897/classcode_two#classcode_two"),
    _r18("N51", "11897/creationtime_between#creationtime_between"),
    _r18("N52", "11897/and#and"),
    _r18("N53", "11897/refid#refid"),
    _r18("N54", "11897/classcode_scheme_mismatch#classcode_scheme_mismatch"),
    _r18("N55", "11897/old_scheme#old_scheme"),
    _r18(
        "N56",
        "11897/no_matching_classcode#no_matching_classcode",
        status="Success",
        note="source inconsistent: testplan says Failure, its readme and <ExpectedContents><None/> say 'must"
        " return nothing'; current ITI TF-2 §3.18.4.1.3: a query that matches nothing is Success with"
        " 0 results",
    ),
    _r18("N57", "11898/simple#simple"),
    _r18("N58", "11899/basic#basic"),
    _r18("N59", "11901/uniqueid2#uniqueid2"),
    _r18("N60", "11901/homeCommunityId#homeCommunityId"),
    _r18("N61", "11902/uuid#uuid"),
    _r18("N62", "11903/single_from_doc#single_from_doc"),
    _r18("N63", "11904/uniqueids#uniqueids"),
    _r18("N64", "11905/basic#two_doc_uuid_two_ss"),
    _r18("N65", "11906/folder_and_docs#folder_and_docs"),
    _r18("N66", "11907/conf_code#conf_code"),
    _r18("N67", "11908/uuid#uuid"),
    _r18("N68", "11909/no_initial_doc#no_initial_doc"),
    _r18("N69", "11909/uuid#uuid"),
    _r18("N70", "15803/all#leafclass"),
    _r18("N71", "12368/doc_leafclass#leafclass", SEED + SEED_OTHER),
    _r18("N72", "12368/ss_leafclass#ss_uuid", SEED + SEED_OTHER),
    _r18("N73", "12368/fol_leafclass#leafclass", SEED + SEED_OTHER),
    _r18("N74", "12368/doc_objectref#objectref", SEED + SEED_OTHER),
    _r18(
        "N75",
        "21002/query_leaf#query",
        ("21002/original", "21002/update"),
        xfail="prerequisite 21002/update is ITI-57 Metadata Update, which is not implemented (not in issue scope)",
    ),
    Row("N76", "12364/one_pid#object_refs", "ITI-51", _sections("12361", "multi_doc single_doc"), xfail=NOT_IN_SCOPE),
    Row("N77", "12364/nothing#object_refs", "ITI-51", xfail=NOT_IN_SCOPE),
)

__all__ = ["ROWS", "SEED", "SEED_OTHER", "Row"]
