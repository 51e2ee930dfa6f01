"""Development hot reload (`rules.watch: true`): a hand edit of the rules folder goes through RuleOps.reload.

The same path and the same checks as `POST /admin/rules/reload`: a rejected edit is logged with its
errors (rule, line, message; never the source) and the active set keeps deciding. Only the files
that make the set are watched (`NN-name.py` at the top of the folder and `disabled.txt`): the
engine's temporary files and `.versions.json` are not, and a batch after which the folder already
holds the active set (the engine's own write of an accepted change) is skipped, so a change made
through the API does not come back as a reload, and a reload does not trigger itself.
Fixture edits (`rules/tests/`) are checked on the next rule edit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from engine import rule_folder
from engine.audit import Actor
from engine.errors import EngineError, RulesRejected
from engine.formats import RULE_ID
from engine.rule_ops import RuleOps, Snapshot

log = logging.getLogger("engine.rule_watch")

# watchfiles groups the events of one save (editors write, rename and chmod) until the folder
# has been quiet for STEP_MS, and waits at most DEBOUNCE_MS before reporting a batch.
STEP_MS = 50
DEBOUNCE_MS = 400
MAX_LOGGED_MESSAGE = 300


def is_rule_file(directory: Path) -> Callable[[watchfiles.Change, str], bool]:
    """A watchfiles filter: a top-level rule file or the disabled manifest, nothing else."""
    def accept(change: watchfiles.Change, path: str) -> bool:
        candidate = Path(path)
        if candidate.parent != directory:
            return False
        if candidate.name == rule_folder.DISABLED_FILE:
            return True
        return candidate.suffix == ".py" and RULE_ID.fullmatch(candidate.stem) is not None
    return accept


def folder_holds(directory: Path, snapshot: Snapshot) -> bool:
    """True when the folder's rule files and manifest are exactly `snapshot` (an unreadable file is a difference)."""
    try:
        sources = {path.stem: path.read_bytes().decode("utf-8") for path in directory.glob("*.py")}
        disabled = rule_folder.read_disabled(directory)
    except (OSError, UnicodeDecodeError):
        return False
    return sources == snapshot.sources() and disabled == snapshot.disabled()


async def reload_on_change(ops: RuleOps) -> None:
    """Reload after each batch of edits; never returns (cancel it). Errors are logged, never raised."""
    directory = ops.directory.resolve()
    log.info("rules_watch_started dir=%s", directory)
    try:
        async for _ in watchfiles.awatch(directory, watch_filter=is_rule_file(directory), recursive=False,
                                         step=STEP_MS, debounce=DEBOUNCE_MS):
            await reload_if_changed(ops, directory)
    except Exception as exc:  # the folder went away: the service keeps serving the active set
        log.error("rules_watch_stopped type=%s", type(exc).__name__)


async def reload_if_changed(ops: RuleOps, directory: Path) -> None:
    if folder_holds(directory, ops.active):
        return
    try:
        activation = await ops.reload(Actor.SYSTEM)
    except RulesRejected as exc:
        log.warning("rules_watch_rejected errors=%d active_version=%s", len(exc.errors), ops.active.version)
        for error in exc.errors:
            log.warning("rules_watch_error rule=%s line=%s message=%s", error.get("rule"), error.get("line"),
                        str(error.get("message"))[:MAX_LOGGED_MESSAGE])
    except EngineError as exc:  # a folder that cannot be written (503): the active set is unchanged
        log.warning("rules_watch_failed error=%s active_version=%s", exc.code, ops.active.version)
    else:
        log.info("rules_watch_reloaded version=%s previous=%s", activation.version, activation.previous_version)

