"""The hosted pages' applications, wherever they are registered: config.yaml's `clients:` first,
then those added through the admin API (the directory's clients table, engine/stores/clients.py).

Read at the time of use, never cached: the directory is shared by every instance, so a client
deleted or changed through one instance is refused (or changed) on every other at its next
/login and its next /v1/token. A config client's id shadows a directory row of the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from engine import formats
from engine.config import ClientSettings
from engine.stores.directory import ClientRecord, UserDirectory


class Source(StrEnum):
    CONFIG = "config"  # config.yaml: changed only there (and a restart)
    ADMIN = "admin"  # the admin API: PUT/DELETE /admin/clients/{client_id}


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str  # may be empty for a config client: pages then show the client_id
    redirect_uris: tuple[str, ...]  # matched exactly
    public: bool  # cannot keep a secret: PKCE (S256) is then required
    source: Source

    @classmethod
    def from_config(cls, client_id: str, settings: ClientSettings) -> Client:
        return cls(client_id, settings.name, tuple(settings.redirect_uris), settings.public, Source.CONFIG)

    @classmethod
    def from_record(cls, record: ClientRecord) -> Client:
        return cls(record.client_id, record.name, record.redirect_uris, record.public, Source.ADMIN)

    @property
    def display_name(self) -> str:
        return self.name or self.client_id


class ClientRegistry:
    def __init__(self, configured: Mapping[str, ClientSettings], directory: UserDirectory) -> None:
        self.configured = configured
        self.directory = directory

    def in_config(self, client_id: str) -> bool:
        return client_id in self.configured

    async def find(self, client_id: str) -> Client | None:
        """The client, or None: an id that is no client id is not looked up. The directory is read
        only for an id config does not have (DirectoryUnavailable when it does not answer)."""
        if formats.CLIENT_ID.fullmatch(client_id) is None:
            return None
        settings = self.configured.get(client_id)
        if settings is not None:
            return Client.from_config(client_id, settings)
        record = await self.directory.get_client(client_id)
        return None if record is None else Client.from_record(record)

    async def all(self) -> list[Client]:
        """Config's clients, then the directory's that config does not shadow, each by client_id."""
        configured = [Client.from_config(client_id, settings) for client_id, settings in sorted(self.configured.items())]
        added = [Client.from_record(record) for record in await self.directory.list_clients()
                 if record.client_id not in self.configured]
        return configured + added
