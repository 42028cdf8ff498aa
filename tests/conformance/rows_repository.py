"""Table A of the conformance README, rows N1 to N15 and N78 to N83: the repository's NIST cases (ITI-41,
ITI-43), in the same form as :mod:`tests.conformance.rows`.

Chains (README §2.5): a retrieve runs the test's submit section and the query section whose ``repuid``
report fills ``$repuid$`` (12021, 12029, 12360), or 15816's PnR section (15816/Retrieve has no UseReport for
``$repuid$``: it is the SUT repository's id, README §2.4). 15816/Register_Stable (an ITI-42 of a document
held elsewhere) is not needed by the Retrieve section and is left out.

``then`` runs the NIST evaluation sections a submission test defines: the registry side of this node must
hold the forwarded metadata (11966/eval, 11979/eval), must hold nothing after a rejected P&R
(11983/eval_*), and must report this repository's repositoryUniqueId (the ``query`` sections).

``ExpectedErrorMessage`` is a substring match (README §2.7), and "XDSMissingDocument" is also a substring of
"XDSMissingDocumentMetadata", so N9 to N11 name the exact ITI TF error code as well (``tf_codes``).
"""

from __future__ import annotations

from typing import Final

from tests.conformance.rows import Row
from xds.errors import ErrorCode

_UNKNOWN_DOC: Final = (ErrorCode.DOCUMENT_UNIQUE_ID_ERROR,)


def _r41(rid: str, target: str, *chain: str, tf: tuple[str, ...] = (), **kw: object) -> Row:
    return Row(rid, target, "ITI-41", chain, tf_codes=tf, **kw)  # type: ignore[arg-type]


def _r43(rid: str, target: str, *chain: str, tf: tuple[str, ...] = (), **kw: object) -> Row:
    return Row(rid, target, "ITI-43", chain, tf_codes=tf, **kw)  # type: ignore[arg-type]


ROWS: Final[tuple[Row, ...]] = (
    _r41("N1", "11966/submit#submit", then=("11966/eval",)),
    _r41("N2", "11979/submit#submit", then=("11979/eval",)),
    _r41("N3", "11981/submit#submit"),
    _r41("N4", "11981/submit_uppercase_hash#submit"),
    _r41("N5", "11981/submit_bad_hash#submit"),
    _r41("N6", "11981/submit_bad_size#submit"),
    _r41("N7", "12369/hash#submit"),
    _r41("N8", "12369/size#submit"),
    _r41(
        "N9",
        "11983/submit_no_doc#doc_missing",
        tf=(ErrorCode.MISSING_DOCUMENT,),
        then=("11983/eval_no_doc",),
    ),
    _r41(
        "N10",
        "11983/submit_no_metadata#doc_metadata_missing",
        tf=(ErrorCode.MISSING_DOCUMENT_METADATA,),
        then=("11983/eval_no_metadata",),
    ),
    _r41("N11", "11986/submit#submit", tf=(ErrorCode.PATIENT_ID_DOES_NOT_MATCH,)),
    _r41("N12", "12360/submit#submit", then=("12360/query",)),
    _r41("N13", "12021/submit#submit", then=("12021/query",)),
    _r41("N14", "12029/submit#submit", then=("12029/query",)),
    _r41("N15", "12318/init#init", then=("12318/query",)),
    _r43("N78", "12021/retrieve#retrieve_double", "12021/submit", "12021/query"),
    _r43(
        "N79",
        "12029/retrieve#retrieve",
        "12029/submit",
        "12029/query",
        references=(("$docuid1$", "submit/readme.txt"),),
        note="testplan defect: 12029/submit attaches readme.txt as Document01, but 12029/retrieve names"
        " submit/my_document.pdf as its ReferenceDocument; the document must come back as submitted, so the"
        " reference is the file actually sent",
    ),
    _r43("N80", "12360/retrieve#retrieve", "12360/submit", "12360/query"),
    _r43("N81", "15816/Retrieve#retrieve_doc", "15816/PnR"),
    _r43("N82", "15816/Retrieve#retrieve_bad_doc_uid", "15816/PnR", tf=_UNKNOWN_DOC),
    _r43("N83", "15816/Retrieve#retrieve_partial_uid", "15816/PnR", tf=_UNKNOWN_DOC),
)

__all__ = ["ROWS"]
