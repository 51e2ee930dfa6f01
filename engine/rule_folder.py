"""The rules folder on disk: rule files, the `disabled` manifest and the version history, written atomically.

    rules/NN-name.py      one rule each; the file name is the rule id
    rules/disabled.txt    ids of rules kept but not run, one a line (`#` starts a comment)
    rules/tests/*.yaml    rule tests (engine/rule_tests.py); never written here
    rules/settings.json   the rule settings, every value sealed (engine/rule_settings.py):
                          {"format": 1, "settings": {key: {"secret", "updated_at", "sealed"}}}
    rules/.versions.json  the last HISTORY_KEPT activations with their full sources, newest last

Every write is a temporary file in the same folder, fsynced, renamed over the old one, then the
folder fsynced: a crash leaves the old file or the new one, never half of either. The workers of
one server (`serve --workers`) share the folder: `locked` serialises their read-then-write of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("engine.rule_folder")

DISABLED_FILE = "disabled.txt"
HISTORY_FILE = ".versions.json"
SETTINGS_FILE = "settings.json"
SETTINGS_FORMAT = 1
HISTORY_KEPT = 100


def read_disabled(directory: Path) -> frozenset[str]:
    path = directory / DISABLED_FILE
    if not path.is_file():
        return frozenset()
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return frozenset(line for line in lines if line)


def write_rules(directory: Path, sources: Mapping[str, str], disabled: frozenset[str]) -> None:
    """Make the folder hold exactly `sources` (and the manifest of `disabled`); other files are left alone."""
    for rule_id, source in sources.items():
        path = directory / f"{rule_id}.py"
        if not path.is_file() or path.read_bytes() != source.encode("utf-8"):
            _write_atomically(path, source.encode("utf-8"))
    for path in directory.glob("*.py"):
        if path.is_file() and path.stem not in sources:
            path.unlink()
    manifest = "".join(f"{rule_id}\n" for rule_id in sorted(disabled))
    manifest_path = directory / DISABLED_FILE
    if manifest:
        _write_atomically(manifest_path, b"# rules kept in the set but not run (engine/rule_folder.py)\n"
                          + manifest.encode())
    elif manifest_path.exists():
        manifest_path.unlink()
    _fsync_directory(directory)


def read_settings(directory: Path) -> Any:
    """The sealed settings as stored (None without a file); ValueError for a file that is not ours."""
    path = directory / SETTINGS_FILE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(stored, dict) or stored.get("format") != SETTINGS_FORMAT:
        raise ValueError(f"{SETTINGS_FILE} is not in format {SETTINGS_FORMAT}")
    return stored.get("settings")


def write_settings(directory: Path, sealed: Mapping[str, Any]) -> None:
    """Make the folder hold `sealed` (no file when there are no settings)."""
    path = directory / SETTINGS_FILE
    if sealed:
        _write_atomically(path, json.dumps({"format": SETTINGS_FORMAT, "settings": dict(sealed)}, indent=1).encode())
    elif path.exists():
        path.unlink()
    _fsync_directory(directory)


def read_history(directory: Path) -> list[dict[str, Any]]:
    path = directory / HISTORY_FILE
    if not path.is_file():
        return []
    entries = json.loads(path.read_text(encoding="utf-8"))
    return entries if isinstance(entries, list) else []


def append_history(directory: Path, entry: dict[str, Any], *, replace_newest: bool = False) -> list[dict[str, Any]]:
    entries = read_history(directory)
    entries = [*(entries[:-1] if replace_newest else entries), entry][-HISTORY_KEPT:]
    write_history(directory, entries)
    return entries


def write_history(directory: Path, entries: list[dict[str, Any]]) -> None:
    _write_atomically(directory / HISTORY_FILE, json.dumps(entries).encode())
    _fsync_directory(directory)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock (flock on the directory itself: no lock file to leave behind).

    Where the file system cannot lock a directory (some network file systems emulate flock with
    write locks, which a read-only descriptor cannot take), the change goes ahead unlocked, with
    a warning: the lock only keeps several server processes' writes of one change in turn."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError as exc:
            log.warning("rules_folder_unlocked dir=%s error=%s", directory, exc.strerror)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
