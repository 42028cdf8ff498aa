"""XDS.b metadata vocabulary: classification and identification schemes, object types, statuses.

Every ``urn:uuid:`` constant of the profile lives here and nowhere else.

References
----------
ITI TF-3 §4.2.5 (Metadata vocabulary), Table 4.2.5.1-1 and §4.2.3.2 to §4.2.3.4; ITI TF-2 §3.18.4.1.2.3.7.
"""

from typing import Final

# --- DocumentEntry (ITI TF-3 §4.2.3.2) ---------------------------------------------------------------------
DE_STABLE: Final = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
"""objectType of a Stable DocumentEntry."""
DE_ON_DEMAND: Final = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
"""objectType of an On-Demand DocumentEntry."""
DE_AUTHOR: Final = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
"""DocumentEntry.author classification scheme."""
DE_CLASS_CODE: Final = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
"""DocumentEntry.classCode classification scheme."""
DE_CONFIDENTIALITY_CODE: Final = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
"""DocumentEntry.confidentialityCode classification scheme."""
DE_EVENT_CODE: Final = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
"""DocumentEntry.eventCodeList classification scheme."""
DE_FORMAT_CODE: Final = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
"""DocumentEntry.formatCode classification scheme."""
DE_HEALTHCARE_FACILITY_TYPE_CODE: Final = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
"""DocumentEntry.healthcareFacilityTypeCode classification scheme."""
DE_PRACTICE_SETTING_CODE: Final = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
"""DocumentEntry.practiceSettingCode classification scheme."""
DE_TYPE_CODE: Final = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
"""DocumentEntry.typeCode classification scheme."""
DE_PATIENT_ID: Final = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
"""DocumentEntry.patientId identification scheme."""
DE_UNIQUE_ID: Final = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
"""DocumentEntry.uniqueId identification scheme."""
DE_LIMITED_METADATA: Final = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
"""Classification node marking a DocumentEntry as limited metadata (XDR/XDM)."""

# --- SubmissionSet (ITI TF-3 §4.2.3.3) ---------------------------------------------------------------------
SS_NODE: Final = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
"""Classification node that makes a RegistryPackage a SubmissionSet."""
SS_AUTHOR: Final = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
"""SubmissionSet.author classification scheme."""
SS_CONTENT_TYPE_CODE: Final = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
"""SubmissionSet.contentTypeCode classification scheme."""
SS_PATIENT_ID: Final = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
"""SubmissionSet.patientId identification scheme."""
SS_SOURCE_ID: Final = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
"""SubmissionSet.sourceId identification scheme."""
SS_UNIQUE_ID: Final = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
"""SubmissionSet.uniqueId identification scheme."""
SS_LIMITED_METADATA: Final = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
"""Classification node marking a SubmissionSet as limited metadata."""

# --- Folder (ITI TF-3 §4.2.3.4) ----------------------------------------------------------------------------
FOLDER_NODE: Final = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
"""Classification node that makes a RegistryPackage a Folder."""
FOLDER_CODE_LIST: Final = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
"""Folder.codeList classification scheme."""
FOLDER_PATIENT_ID: Final = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
"""Folder.patientId identification scheme."""
FOLDER_UNIQUE_ID: Final = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"
"""Folder.uniqueId identification scheme."""
FOLDER_LIMITED_METADATA: Final = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"
"""Classification node marking a Folder as limited metadata."""

# --- Association documentation (ITI TF-3 §4.2.2.2) --------------------------------------------------------
ASSOCIATION_DOCUMENTATION: Final = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"
"""Classification scheme of a documentation classification on an Association."""

# --- ebRIM object types -----------------------------------------------------------------------------------
_OT = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"
OT_REGISTRY_PACKAGE: Final = _OT + "RegistryPackage"
OT_ASSOCIATION: Final = _OT + "Association"
OT_CLASSIFICATION: Final = _OT + "Classification"
OT_EXTERNAL_IDENTIFIER: Final = _OT + "ExternalIdentifier"

# --- Association types (ITI TF-3 §4.2.2) ------------------------------------------------------------------
HAS_MEMBER: Final = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC: Final = "urn:ihe:iti:2007:AssociationType:RPLC"
APND: Final = "urn:ihe:iti:2007:AssociationType:APND"
XFRM: Final = "urn:ihe:iti:2007:AssociationType:XFRM"
XFRM_RPLC: Final = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS: Final = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF: Final = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
ASSOCIATION_TYPES: Final = frozenset({HAS_MEMBER, RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})
"""Association types a registry accepts."""
RELATIONSHIP_TYPES: Final = frozenset({RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})
"""Document relationship types (GetRelatedDocuments $AssociationTypes)."""
REPLACING_TYPES: Final = frozenset({RPLC, XFRM_RPLC})
"""Relationships that deprecate their target."""

# --- Status (ebRIM StatusType) ----------------------------------------------------------------------------
APPROVED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
SUBMITTED: Final = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"

# --- Response status and error severity (ebRS 3.0, ITI TF-3 §4.2.4) ---------------------------------------
RESPONSE_SUCCESS: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
RESPONSE_FAILURE: Final = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
RESPONSE_PARTIAL_SUCCESS: Final = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
SEVERITY_ERROR: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
SEVERITY_WARNING: Final = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

# --- SubmissionSetStatus slot on HasMember (ITI TF-3 §4.2.2.1.1) ------------------------------------------
SS_STATUS_ORIGINAL: Final = "Original"
SS_STATUS_REFERENCE: Final = "Reference"

# --- Patient identity --------------------------------------------------------------------------------------
BSN_OID: Final = "2.16.840.1.113883.2.4.6.3"
"""Assigning authority of the Dutch citizen service number (BSN)."""

# --- Stored query ids (ITI TF-2 §3.18.4.1.2.3.7) ---------------------------------------------------------
SQ_FIND_DOCUMENTS: Final = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
SQ_FIND_SUBMISSION_SETS: Final = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
SQ_FIND_FOLDERS: Final = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
SQ_GET_ALL: Final = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
SQ_GET_DOCUMENTS: Final = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
SQ_GET_FOLDERS: Final = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
SQ_GET_ASSOCIATIONS: Final = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
SQ_GET_DOCUMENTS_AND_ASSOCIATIONS: Final = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
SQ_GET_SUBMISSION_SETS: Final = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
SQ_GET_SUBMISSION_SET_AND_CONTENTS: Final = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
SQ_GET_FOLDER_AND_CONTENTS: Final = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
SQ_GET_FOLDERS_FOR_DOCUMENT: Final = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
SQ_GET_RELATED_DOCUMENTS: Final = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
SQ_FIND_DOCUMENTS_BY_REFERENCE_ID: Final = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"

# --- Transactions (ITI TF-2 Appendix V, wsa:Action values) -------------------------------------------------
ACTION_REGISTER: Final = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ACTION_REGISTER_RESPONSE: Final = "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"
ACTION_STORED_QUERY: Final = "urn:ihe:iti:2007:RegistryStoredQuery"
ACTION_STORED_QUERY_RESPONSE: Final = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
ACTION_PROVIDE_AND_REGISTER: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ACTION_PROVIDE_AND_REGISTER_RESPONSE: Final = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
ACTION_RETRIEVE: Final = "urn:ihe:iti:2007:RetrieveDocumentSet"
ACTION_RETRIEVE_RESPONSE: Final = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
ACTION_CROSS_GATEWAY_QUERY: Final = "urn:ihe:iti:2007:CrossGatewayQuery"
ACTION_CROSS_GATEWAY_QUERY_RESPONSE: Final = "urn:ihe:iti:2007:CrossGatewayQueryResponse"
ACTION_CROSS_GATEWAY_RETRIEVE: Final = "urn:ihe:iti:2007:CrossGatewayRetrieve"
ACTION_CROSS_GATEWAY_RETRIEVE_RESPONSE: Final = "urn:ihe:iti:2007:CrossGatewayRetrieveResponse"
ACTION_RETRIEVE_IMAGING: Final = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
"""RAD-69 Retrieve Imaging Document Set; its answer has ITI-43's response action."""
ACTION_CROSS_GATEWAY_RETRIEVE_IMAGING: Final = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"
ACTION_CROSS_GATEWAY_RETRIEVE_IMAGING_RESPONSE: Final = (
    "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse"
)
ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE: Final = "urn:ihe:iti:2015:CrossGatewayDocumentProvide"
"""ITI-80 Cross-Gateway Document Provide (XCDR)."""
ACTION_CROSS_GATEWAY_DOCUMENT_PROVIDE_RESPONSE: Final = "urn:ihe:iti:2015:CrossGatewayDocumentProvideResponse"
