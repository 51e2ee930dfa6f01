"""Administration of the hosted pages' clients (the admin API's /admin/clients, engine/http/clients_admin.py).

Only clients added here can be changed here: one of config.yaml is ClientInConfig (409), config
being its source of truth (a DELETE still removes a row this API added under its id earlier).
Unknown: NotFound (404). Every change is written to the audit trail
with the actor `admin` (engine/audit.py) once it is made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engine.audit_trail import AuditTrail
from engine.clients import Client, ClientRegistry
from engine.clock import Clock
from engine.errors import ClientInConfig, NotFound

log = logging.getLogger("engine.admin")

_IN_CONFIG = "the client is defined in config.yaml: change it there"


class ClientAdmin:
    def __init__(self, registry: ClientRegistry, clock: Clock, audit: AuditTrail) -> None:
        self.registry = registry
        self.clock = clock
        self.audit = audit

    async def list_clients(self) -> list[Client]:
        return await self.registry.all()

    async def get_client(self, client_id: str) -> Client:
        client = await self.registry.find(client_id)
        if client is None:
            raise NotFound("no such client")
        return client

    async def put_client(self, client_id: str, name: str, redirect_uris: Sequence[str],
                         public: bool) -> tuple[Client, bool]:
        """The client as stored, and whether it was created (else replaced). Values are checked by the caller
        (the directory refuses, with ValueError, an id or redirect URI the pages could not serve)."""
        if self.registry.in_config(client_id):
            raise ClientInConfig(_IN_CONFIG, field="client_id")
        now = self.clock.now()
        record, created = await self.registry.directory.put_client(client_id, name, redirect_uris, public, now)
        log.info("admin_client_%s client_id=%s", "created" if created else "updated", client_id)
        await self.audit.record("client.created" if created else "client.updated", now, client_id=client_id,
                                name=record.name, redirect_uris=list(record.redirect_uris), public=record.public)
        return Client.from_record(record), created

    async def delete_client(self, client_id: str) -> None:
        """Its outstanding authorization codes stop at /v1/token, and /login refuses it, on every instance.
        An id of config.yaml deletes the row this API added under it before config took the id (which
        config shadows, and which would be in force again once the id leaves config.yaml); without
        one, ClientInConfig."""
        if not await self.registry.directory.delete_client(client_id):
            if self.registry.in_config(client_id):
                raise ClientInConfig(_IN_CONFIG, field="client_id")
            raise NotFound("no such client")
        log.info("admin_client_deleted client_id=%s", client_id)
        await self.audit.record("client.deleted", self.clock.now(), client_id=client_id)
