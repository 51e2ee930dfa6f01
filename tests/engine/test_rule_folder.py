"""The rules folder's lock (engine/rule_folder.locked): the writes of one change in turn across processes."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from engine import rule_folder


def test_a_folder_the_file_system_cannot_lock_is_written_unlocked_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def cannot_lock(descriptor: int, operation: int) -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(rule_folder.fcntl, "flock", cannot_lock)
    with caplog.at_level(logging.WARNING, logger="engine.rule_folder"), rule_folder.locked(tmp_path):
        (tmp_path / "written").write_text("yes")

    assert (tmp_path / "written").read_text() == "yes"
    assert "rules_folder_unlocked" in caplog.text
