"""The community directory: homeCommunityId -> a remote community's endpoints, patient-id domain and TLS.

Theory of operation: the directory is built (:func:`load_directory`) from two sources, the ``[[communities]]``
tables of the configuration file and the entries added with ``xds community add`` (the ``community`` table).
A running gateway holds a :class:`RefreshingDirectory`, which builds it again at most every few seconds, so
``xds community add|remove`` reaches every worker without a restart. A homeCommunityId in both sources is an
error, not a precedence rule: the operator removes one.
This node's own homeCommunityId is never an entry (the node answers itself in-process); one found is dropped
with a warning. The entry types and their validation live in :mod:`xds.communities` (the command line uses
them, and ``xds`` never imports ``xca``) and are re-exported here.

Patient ids: a community with no ``assigning_authority`` uses the same ids as this node (BSN-based affinity
domains need no mapping); otherwise ``assigning_authority`` names the OID of the patient-id domain it uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from xds.communities import SOURCE_CONFIG, SOURCE_DATABASE, Community, Tls, community_from_mapping
from xds.config import Settings
from xds.store.sql import SqlRegistryStore

log = logging.getLogger("xca.directory")


class Directory:
    """The remote communities this node's initiating gateway can reach, by homeCommunityId."""

    def __init__(self, communities: Iterable[Community]) -> None:
        self._by_id: dict[str, Community] = {}
        for c in communities:
            if c.home_community_id in self._by_id:
                raise ValueError(f"homeCommunityId {c.home_community_id} is in the directory twice")
            if c.query_url:  # entries without one are only pushed to (xds push), never queried
                self._by_id[c.home_community_id] = c

    def all(self) -> list[Community]:
        """Every entry, sorted by homeCommunityId."""
        return [self._by_id[k] for k in sorted(self._by_id)]

    def get(self, home_community_id: str) -> Community | None:
        """The entry for ``home_community_id``, or None."""
        return self._by_id.get(home_community_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Community]:
        return iter(self.all())

    def __contains__(self, home_community_id: object) -> bool:
        return home_community_id in self._by_id


DEFAULT_REFRESH_SECONDS = 5.0


class RefreshingDirectory(Directory):
    """A directory built again by ``load`` when it is older than ``every`` seconds (checked on use).

    A rebuild that fails (the database is unreachable; an entry became invalid, such as a TLS file that is
    gone) keeps the last good directory and logs the error: a directory problem never stops the gateway.
    """

    def __init__(
        self,
        load: Callable[[], Directory],
        *,
        every: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(())
        self._load, self._every, self._clock = load, every, clock
        self._current = load()
        self._loaded_at = clock()

    def _fresh(self) -> Directory:
        now = self._clock()
        if now - self._loaded_at >= self._every:
            self._loaded_at = now
            try:
                self._current = self._load()
            except Exception as exc:  # any failure keeps the last good directory
                log.error(
                    "the community directory could not be read again; the last good one stays in use",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
        return self._current

    def all(self) -> list[Community]:
        return self._fresh().all()

    def get(self, home_community_id: str) -> Community | None:
        return self._fresh().get(home_community_id)

    def __len__(self) -> int:
        return len(self._fresh())

    def __iter__(self) -> Iterator[Community]:
        return iter(self._fresh())

    def __contains__(self, home_community_id: object) -> bool:
        return home_community_id in self._fresh()


def load_directory(settings: Settings, store: SqlRegistryStore, *, exclude: str = "") -> Directory:
    """The directory of ``settings.communities`` (TOML) and the database's entries.

    ``exclude`` is this node's own homeCommunityId: an entry for it is dropped with a warning. Raises
    ``ValueError`` naming the entry for an invalid one (also a TLS file that is gone) and for a homeCommunityId
    that is configured twice (in the file, or in the file and the database).
    """
    found: dict[str, Community] = {}
    for n, data in enumerate(settings.communities, 1):
        c = _entry(data, SOURCE_CONFIG, f"[[communities]] #{n}")
        if c.home_community_id in found:
            raise ValueError(f"[[communities]] #{n}: homeCommunityId {c.home_community_id} is configured twice")
        found[c.home_community_id] = c
    for row in store.list_communities():
        data = {k: value for k, value in row.items() if k != "added"}
        c = _entry(data, SOURCE_DATABASE, f"community {row.get('home_community_id')} (database)")
        if c.home_community_id in found:
            raise ValueError(
                f"homeCommunityId {c.home_community_id} is both in [[communities]] of the configuration file and in"
                f" the database: edit the file or run `xds community remove {c.home_community_id}`"
            )
        found[c.home_community_id] = c
    if exclude and found.pop(exclude, None) is not None:
        log.warning(
            "the community directory names this node's own homeCommunityId; entry ignored",
            extra={"home_community_id": exclude},
        )
    return Directory(found.values())


def _entry(data: Mapping[str, Any], source: str, where: str) -> Community:
    try:
        return community_from_mapping(data, source=source)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


__all__ = [
    "DEFAULT_REFRESH_SECONDS",
    "Community",
    "Directory",
    "RefreshingDirectory",
    "Tls",
    "community_from_mapping",
    "load_directory",
]
