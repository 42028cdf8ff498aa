"""The remote registry as the repository sees it: ITI-42 and ITI-18 over SOAP, failures sorted by what they mean.

Theory of operation: :class:`SoapRegistry` implements :class:`xds.repository.remote.RemoteRegistryClient` over
:class:`xds.client.SoapClient`. What matters for the repository is whether a failed call could have
registered the submission:

- the registry answered Failure: rejected, its errors are relayed unchanged (:class:`~xds.errors.RelayedErrors`);
- a SOAP ``Sender`` fault: rejected (XDSRegistryError with the fault's reason);
- the connection was never made (refused, name not resolved, connect timeout): nothing registered
  (:class:`~xds.repository.remote.RegistryUnreachable`, XDSRegistryNotAvailable);
- anything after the request went out (read timeout, dropped connection, a ``Receiver`` fault, an answer that
  is not SOAP): :class:`~xds.repository.remote.OutcomeUnknown`, and the repository asks the registry.

References
----------
ITI TF-2 §3.41.4.1.3, §3.42, §3.18.4.1.2.3.7.5 (GetDocuments).
"""

from __future__ import annotations

from collections.abc import Collection

import httpx

from xds import vocabulary as v
from xds.client import ClientError, SoapClient, SoapFaultError
from xds.ebrim import messages
from xds.errors import RegistryError, RegistryNotAvailable, RelayedErrors
from xds.model.messages import QueryParameter, RegistryResponse, StoredQueryRequest
from xds.model.metadata import Submission
from xds.namespaces import RIM, qn
from xds.repository.remote import OutcomeUnknown, RegistryUnreachable

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.PoolTimeout)
_EXTERNAL_IDENTIFIER = qn(RIM, "ExternalIdentifier")


class SoapRegistry:
    """ITI-42 and ITI-18 to the registry at ``url``."""

    def __init__(self, url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._client = SoapClient(url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def register(self, submission: Submission) -> RegistryResponse:
        try:
            response = self._client.register(submission)
        except _NOT_SENT as exc:
            raise RegistryUnreachable(f"registry at {self.url} cannot be reached: {_why(exc)}") from None
        except httpx.TransportError as exc:
            raise OutcomeUnknown(f"registry at {self.url} did not answer: {_why(exc)}") from None
        except SoapFaultError as fault:
            if fault.code.endswith("Sender"):
                raise RegistryError(f"registry at {self.url} refused the request: {fault.reason}") from None
            raise OutcomeUnknown(f"registry at {self.url} failed: {fault.reason}") from None
        except ClientError as exc:
            raise OutcomeUnknown(f"registry at {self.url} sent an unusable answer: {exc}") from None
        if response.status != v.RESPONSE_SUCCESS:
            if not response.errors:
                raise RegistryError(f"registry at {self.url} answered {response.status} without errors")
            raise RelayedErrors(response.errors)
        return response

    def registered(self, unique_ids: Collection[str]) -> set[str]:
        """GetDocuments by uniqueId (LeafClass, so the uniqueIds come back)."""
        values = "(" + ",".join("'" + u.replace("'", "''") + "'" for u in unique_ids) + ")"
        request = StoredQueryRequest(
            query_id=v.SQ_GET_DOCUMENTS,
            parameters=(QueryParameter(name="$XDSDocumentEntryUniqueId", values=(values,)),),
        )
        try:
            reply = self._client.call(v.ACTION_STORED_QUERY, messages.render_adhoc_query_request(request))
        except (httpx.TransportError, ClientError) as exc:
            raise RegistryNotAvailable(f"registry at {self.url} cannot be asked: {exc}") from None
        reply.discard()
        if reply.body.get("status") != v.RESPONSE_SUCCESS:
            raise RegistryNotAvailable(f"registry at {self.url} could not answer GetDocuments")
        return {
            e.get("value", "")
            for e in reply.body.iter(_EXTERNAL_IDENTIFIER)
            if e.get("identificationScheme") == v.DE_UNIQUE_ID
        } & set(unique_ids)


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


__all__ = ["SoapRegistry"]
