"""The dependency container the HTTP layer reads from `app.state.services`; built only by app.py."""

from __future__ import annotations

from dataclasses import dataclass

from engine.audit_trail import AuditTrail
from engine.client_admin import ClientAdmin
from engine.clients import ClientRegistry
from engine.clock import Clock
from engine.config import Settings
from engine.crypto import Keyring
from engine.decisions import DecisionRecorder
from engine.enrollment import Enrollment
from engine.flow import Flow
from engine.geo import GeoLocator
from engine.passwords import PasswordHasher
from engine.pipeline import Executor, Pipeline
from engine.rule_ops import RuleOps
from engine.sms.gateway import SmsGateway
from engine.sms.sender import SmsSender
from engine.stores.challenges import ChallengeStore
from engine.stores.directory import UserDirectory
from engine.tokens import TokenIssuer
from engine.user_admin import UserAdmin


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    flow: Flow
    enrollment: Enrollment
    pipeline: Pipeline
    executor: Executor
    geo: GeoLocator
    directory: UserDirectory
    store: ChallengeStore
    passwords: PasswordHasher
    tokens: TokenIssuer
    keyring: Keyring
    gateway: SmsGateway
    sms_sender: SmsSender
    clock: Clock
    api_keys: tuple[bytes, ...]
    decisions: DecisionRecorder
    rules: RuleOps
    audit: AuditTrail

    @property
    def users(self) -> UserAdmin:
        """User and factor administration (engine/user_admin.py), the same use cases as the CLI's."""
        return UserAdmin(self.directory, self.store, self.passwords, self.clock, self.settings.sms, self.audit)

    @property
    def clients(self) -> ClientRegistry:
        """The hosted pages' clients: config.yaml's, then the directory's, read at each use (engine/clients.py)."""
        return ClientRegistry(self.settings.clients, self.directory)

    @property
    def client_admin(self) -> ClientAdmin:
        return ClientAdmin(self.clients, self.clock, self.audit)
