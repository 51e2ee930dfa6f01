"""`mfa-engine keys reseal` (a command of engine/cli.py): after a secrets.key rotation, every sealed
secret moved to the new key.

What secrets.key seals at rest: the TOTP secrets in the directory, and the rule settings in the
rules folder (settings.json and each entry of the version history, which a rollback restores).
Each is opened with whichever key sealed it (secrets.key or one of secrets.previous_keys) and,
when that was a previous key, sealed again under secrets.key. Running it twice changes nothing
the second time. Recovery codes and remembered browsers are MACs of values the engine never
kept: they cannot be moved, and keep matching while their key stays in secrets.previous_keys
(docs/deployment.md says when it may go).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import rule_folder
from engine.app import build_directory, build_keyring
from engine.config import Settings
from engine.rule_settings import SettingsVault


@dataclass(frozen=True, slots=True)
class ResealReport:
    totp_secrets: int  # sealed again under secrets.key
    unreadable_totp_secrets: int  # no key opens them: their factors cannot be used
    rule_settings: int  # values in settings.json and the history, sealed again

    def lines(self) -> list[str]:
        return [f"directory: {self.totp_secrets} TOTP secrets sealed again under secrets.key"
                + (f"; {self.unreadable_totp_secrets} open under no configured key (their factors cannot be used: "
                   "re-enrol them, or add the key that sealed them to secrets.previous_keys)"
                   if self.unreadable_totp_secrets else ""),
                f"rules folder: {self.rule_settings} rule setting values sealed again under secrets.key"]


async def reseal(settings: Settings) -> ResealReport:
    """Raises UnreadableSettings when a stored rule setting opens under no configured key."""
    keyring = build_keyring(settings)
    directory = build_directory(settings, keyring)
    try:
        done = await directory.reseal_secrets()
    finally:
        await directory.close()
    folder = settings.path(settings.rules.dir)
    return ResealReport(done.resealed, done.unreadable, reseal_rules_folder(folder, SettingsVault(keyring)))


def reseal_rules_folder(folder: Path, vault: SettingsVault) -> int:
    """The folder's sealed rule settings (settings.json, the history) moved to secrets.key, under
    the folder's lock (a running server may write it too); how many values were."""
    if not folder.is_dir():
        return 0
    count = 0
    with rule_folder.locked(folder):
        stored = rule_folder.read_settings(folder)
        if stored:
            resealed, count = vault.reseal(stored)
            if count:
                rule_folder.write_settings(folder, resealed)
        history = rule_folder.read_history(folder)
        changed: list[dict[str, Any]] = []
        for entry in history:
            sealed = entry.get("settings") if isinstance(entry, dict) else None
            if sealed:
                resealed, moved = vault.reseal(sealed)
                count += moved
                entry = {**entry, "settings": resealed} if moved else entry
            changed.append(entry)
        if changed != history:
            rule_folder.write_history(folder, changed)
    return count
