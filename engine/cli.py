"""The `mfa-engine` command: serve the API, check and test rules, evaluate locally, manage users, reset the
quickstart's demo data, write the demo GeoIP database."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import logging.config
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.clock import parse_now
from engine.config import CONFIG_PATH_VARIABLE, ConfigError, Settings, load_settings
from engine.errors import DirectoryUnavailable
from engine.log_format import TEXT_FORMAT, logging_config
from engine.metrics import MULTIPROCESS_DIR_VARIABLE
from engine.pipeline import RuleSetRejected
from engine.stores.directory import DirectoryError

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger("engine.cli")
LOCAL_CONFIG = "config.yaml"


def _ascii_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: ASCII digits in low..high, as the admin API reads integers (int() also
    takes "+5", " 5", "5_000" and other scripts' digits)."""
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}")
        return int(text)
    return parse


def _parser() -> argparse.ArgumentParser:
    # One --config for every command, accepted before or after any subcommand: each parser gets
    # it from this parent, with SUPPRESS so that a level without it leaves the others' value.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="config file (default: $MFA_CONFIG, else ./config.yaml, else built-in defaults)")

    def command(group: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                help: str) -> argparse.ArgumentParser:
        return group.add_parser(name, parents=[config], help=help)

    parser = argparse.ArgumentParser(prog="mfa-engine", description="Adaptive-MFA policy engine", parents=[config],
                                     epilog="Every command says on stderr which config file it read.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = command(commands, "serve", help="run the HTTP service")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=_ascii_int(1, 65_535), help="listen port (overrides server.port)")
    serve.add_argument("--workers", type=_ascii_int(1, 64),
                       help="server processes on the port, each with its own sandbox workers (overrides "
                            "server.workers; more than 1 needs store.redis_url)")

    rules = command(commands, "rules", help="work with the rules folder")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = command(rules_commands, "check", help="compile every rule and report errors as file:line: message")
    check.add_argument("dir", nargs="?", help="rules folder (default: rules.dir)")
    test = command(rules_commands, "test", help="run the rule tests (DIR/tests/*.yaml) and print each result")
    test.add_argument("dir", nargs="?", help="rules folder (default: rules.dir)")

    evaluate = command(commands, "evaluate", help="a local dry run: the decision and trace as JSON, no server")
    evaluate.add_argument("--rules", required=True, help="rules folder")
    evaluate.add_argument("--user", required=True, help="JSON file: the `user` of POST /v1/evaluate")
    evaluate.add_argument("--context", help="JSON file: the `context` of POST /v1/evaluate")
    evaluate.add_argument("--now", type=_instant, help="context.now, ISO 8601 (naive means UTC; default: the clock)")

    users = command(commands, "users", help="manage users in the directory")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = command(user_commands, "add", help="create a user (the password is read from stdin or a prompt)")
    add.add_argument("username")
    add.add_argument("--email")
    add.add_argument("--phone", help="E.164 phone number, e.g. +14155550123")
    add.add_argument("--name")
    listing = command(user_commands, "list", help="list users")
    listing.add_argument("--limit", type=_ascii_int(1, 1_000), default=100)
    reset = command(user_commands, "reset-mfa", help="remove every factor and recovery code of a user and clear "
                                                     "the lockout streak (in Redis, when store.redis_url is set)")
    reset.add_argument("user", help="username or user id")

    db = command(commands, "db", help="the user directory's database (directory.url)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    command(db_commands, "migrate", help="apply the directory's pending migrations and print its schema version "
                                         "(serve applies them too, at startup)")

    demo = command(commands, "demo", help="the README quickstart's demo data")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    command(demo_commands, "reset", help="remove the quickstart's user alice and its var/ files, so that it "
                                         "runs again from the top (refused on anything else)")

    keys = command(commands, "keys", help="new keys for secrets.key and tokens.signing_key, printed on stdout "
                                          "(rotation: docs/deployment.md)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    command(key_commands, "secret-key", help="a new secrets.key: 32 random bytes, base64")
    command(key_commands, "reseal", help="after a secrets.key rotation: seal every TOTP secret and rule setting "
                                         "a key in secrets.previous_keys sealed again under secrets.key")
    signing_key = command(key_commands, "signing-key", help="a new tokens.signing_key: a PEM private key, or a "
                                                            "random HS256 secret")
    signing_key.add_argument("--algorithm", choices=("HS256", "RS256", "ES256", "EdDSA"),
                             help="default: tokens.algorithm")

    geoip = command(commands, "geoip", help="GeoIP databases")
    geoip_commands = geoip.add_subparsers(dest="geoip_command", required=True)
    write_demo = command(geoip_commands, "write-demo", help="write a demo database on the documentation ranges")
    write_demo.add_argument("path")
    return parser


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """The config file a command reads (None: built-in defaults) and how it was found."""

    path: Path | None
    how: str

    def describe(self) -> str:
        if self.path is None:
            return f"using built-in defaults (no --config, {CONFIG_PATH_VARIABLE} unset); {self.how}"
        return f"using config {self.path} ({self.how})"


def find_config(option: str | None, environ: Mapping[str, str], cwd: Path) -> ConfigSource:
    """--config, else $MFA_CONFIG, else ./config.yaml (what `./dev serve` runs on), else none."""
    if option:
        return ConfigSource(Path(cwd, option).absolute(), "from --config")
    if environ.get(CONFIG_PATH_VARIABLE):
        return ConfigSource(Path(cwd, environ[CONFIG_PATH_VARIABLE]).absolute(), f"from {CONFIG_PATH_VARIABLE}")
    if (cwd / LOCAL_CONFIG).is_file():
        return ConfigSource((cwd / LOCAL_CONFIG).absolute(), "found in the current directory")
    return ConfigSource(None, f"no {LOCAL_CONFIG} in {cwd.absolute()}")


def _instant(text: str) -> datetime:
    try:
        return parse_now(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = find_config(getattr(args, "config", None), os.environ, Path.cwd())
    # On stderr, so that stdout stays machine-readable (evaluate prints JSON). serve says it
    # first (it runs until stopped: _serve, as its first log line); the others last, so that
    # their first lines stay their own.
    try:
        return _run(args, config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except RuleSetRejected as exc:
        print("the rule set was rejected:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2
    except DirectoryError as exc:  # a schema newer than this engine: another engine version's database
        print(f"directory error: {exc}", file=sys.stderr)
        return 2
    except DirectoryUnavailable as exc:  # its message shows the URL without its password
        print(f"{exc.code}: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.command != "serve":
            print(config.describe(), file=sys.stderr)


def _run(args: argparse.Namespace, config: ConfigSource) -> int:
    try:
        settings = load_settings(config.path)  # every command, geoip too, refuses a config it cannot read
    except ConfigError:
        if args.command == "serve":  # which file the error is about
            print(config.describe(), file=sys.stderr, flush=True)
        raise
    if args.command == "geoip":
        return _write_demo_geoip(args.path)
    if args.command == "serve":
        return _serve(args, settings, config)
    if args.command == "keys" and args.keys_command == "reseal":
        return asyncio.run(_reseal(settings))
    if args.command == "keys":
        return _print_new_key(args.keys_command, args.algorithm if args.keys_command == "signing-key" else None,
                              settings)
    if args.command == "rules":
        if args.rules_command == "test":
            from engine.rules_cli import test_rules

            return test_rules(settings, args.dir)
        from engine.rules_cli import check_rules

        return check_rules(settings, args.dir)
    if args.command == "evaluate":
        from engine.rules_cli import evaluate_locally

        return evaluate_locally(settings, args.rules, args.user, args.context, args.now)
    if args.command == "db":
        return _migrate_directory(settings)
    if args.command == "demo":
        from engine.users_cli import run_demo_reset

        return asyncio.run(run_demo_reset(settings))
    from engine.users_cli import run_users_command

    return asyncio.run(run_users_command(settings, args))


async def _reseal(settings: Settings) -> int:
    from engine.keys_cli import reseal
    from engine.rule_settings import UnreadableSettings

    try:
        report = await reseal(settings)
    except UnreadableSettings as exc:  # nothing of the folder was written; the directory's part was
        print(f"rules folder: {exc}; no key in secrets.key or secrets.previous_keys opens it", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    return 1 if report.unreadable_totp_secrets else 0


def _print_new_key(kind: str, algorithm: str | None, settings: Settings) -> int:
    """A fresh key on stdout, for the operator to put in place (nothing is written or logged)."""
    import base64
    import secrets

    from engine.crypto import KEY_BYTES
    from engine.tokens import SYMMETRIC, generate_private_key_pem

    if kind == "secret-key":
        print(base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii"))
        return 0
    algorithm = algorithm or settings.tokens.algorithm
    if algorithm == SYMMETRIC:
        print(secrets.token_urlsafe(48))  # 64 characters: twice the HS256 minimum
    else:
        print(generate_private_key_pem(algorithm), end="")  # a PEM ends with its own newline
    return 0


def _serve(args: argparse.Namespace, settings: Settings, config: ConfigSource) -> int:
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = args.workers or settings.server.workers
    configure_logging(settings)
    if settings.logging.format == "json":
        log.info("serve_config %s", config.describe())
    else:
        print(config.describe(), file=sys.stderr, flush=True)
    check_workers(settings, workers)
    # With several workers the parent builds the app once too, and drops it: a broken rule set
    # or a missing GeoIP database stops here with exit 2, and the development key, the
    # directory's migrations and the rules' startup history entry are written once, not raced
    # by every worker.
    app = _build_app(settings)
    if app is None:
        return 2
    if workers == 1:
        serve(app, settings, host, port)
        return 0
    del app
    serve_workers(settings, config, host, port, workers)
    return 0


def check_workers(settings: Settings, workers: int) -> None:
    """Raise ConfigError for what several server processes cannot share."""
    if workers == 1:
        return
    if not settings.store.redis_url:
        raise ConfigError(f"server.workers: {workers} processes need store.redis_url (challenges, rate limits "
                          "and lockouts must be shared; the in-process store would be one per process)")
    if not settings.tokens.signing_key:
        raise ConfigError(f"server.workers: {workers} processes need tokens.signing_key (without it each process "
                          "signs with a random secret of its own, and its tokens fail on the others)")
    if settings.rules.watch:
        raise ConfigError("rules.watch: the development reload runs in one process; it cannot be used with "
                          "server.workers above 1 (every worker would reload the shared folder)")


def _build_app(settings: Settings) -> Starlette | None:
    from engine.app import create_app

    try:
        return create_app(settings)
    except FileNotFoundError as exc:  # the GeoIP database: `./dev serve` writes the demo one first
        hint = f" (write the demo one: mfa-engine geoip write-demo {exc.filename})" if exc.filename else ""
        print(f"cannot start: {exc.strerror}: {exc.filename}{hint}", file=sys.stderr)
        return None


def configure_logging(settings: Settings) -> None:
    """The process's log lines as `logging.format` says (engine/log_format.py)."""
    if settings.logging.format == "json":
        logging.config.dictConfig(logging_config(settings))
    else:
        logging.basicConfig(level=settings.logging.level, format=TEXT_FORMAT)


def serving_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the engine, one worker or several.

    uvloop and httptools: the event loop and the HTTP parser of the bare baseline (issue 11),
    about 125 us less per request than asyncio's loop and h11. No access log: a line per
    request formatted on the event loop. The graceful shutdown is bounded: past it uvicorn
    cancels the requests still in flight (a client stalled mid-body among them), and the
    lifespan stops the sandbox workers.
    """
    loop, http = "uvloop", "engine.http.head_limit:BoundedHttpToolsProtocol"
    missing = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name) is None]
    if missing:  # a platform without their wheels: asyncio's loop and h11 still serve, slower
        log.warning("serve_fallback missing=%s using=auto", ",".join(missing))
        loop, http = "auto", "auto"
    # One bound on the request line and headers for either parser: h11 applies it itself,
    # BoundedHttpToolsProtocol reads it from the same option.
    # proxy_headers off: uvicorn would otherwise rewrite the client's address from X-Forwarded-For
    # for any peer in forwarded_allow_ips (127.0.0.1 by default, `*` in many images), letting a
    # client pick the address rate limits and GeoIP see. The hosted pages read the header
    # themselves, from the proxies in http.trusted_proxies only (engine/pages/client_ip.py).
    options = {"loop": loop, "http": http, "access_log": False, "log_level": settings.logging.level.lower(),
               "timeout_graceful_shutdown": settings.http.shutdown_timeout_seconds,
               "h11_max_incomplete_event_size": settings.http.max_header_bytes, "proxy_headers": False}
    if settings.logging.format == "json":
        # uvicorn's own lines (started, stopping, its errors with tracebacks) as JSON too, in
        # every server process: it applies this before anything else in each.
        options["log_config"] = logging_config(settings)
    return options


def serve(app: Starlette, settings: Settings, host: str, port: int) -> None:
    """Run `app` under uvicorn until SIGTERM or SIGINT."""
    import uvicorn

    log.info("serve host=%s port=%s workers=1 environment=%s isolation=%s", host, port, settings.environment,
             settings.sandbox.isolation)
    uvicorn.run(app, host=host, port=port, **serving_options(settings))


def serve_workers(settings: Settings, config: ConfigSource, host: str, port: int, workers: int) -> None:
    """Run `workers` uvicorn processes on one socket until SIGTERM or SIGINT.

    Each builds its own app (worker_app) from the config file found here, passed as
    $MFA_CONFIG; the MFA_* variables are inherited as they are."""
    import uvicorn

    if config.path is None:
        os.environ.pop(CONFIG_PATH_VARIABLE, None)
    else:
        os.environ[CONFIG_PATH_VARIABLE] = str(config.path)
    log.info("serve host=%s port=%s workers=%s environment=%s isolation=%s", host, port, workers,
             settings.environment, settings.sandbox.isolation)
    # The workers' metrics meet in files (engine/metrics.py): a directory of this run's own,
    # private (0700) and removed at exit, so no earlier run's counts and no other user's files
    # are ever summed in. Workers are started afterwards and read the variable at import.
    with tempfile.TemporaryDirectory(prefix="mfa-metrics-") as metrics_dir:
        os.environ[MULTIPROCESS_DIR_VARIABLE] = metrics_dir
        try:
            uvicorn.run(f"{__name__}:worker_app", factory=True, host=host, port=port, workers=workers,
                        **serving_options(settings))
        finally:
            os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)


def worker_app() -> Starlette:
    """The app of one `serve --workers N` process, imported by uvicorn in each of them."""
    from uvicorn.config import STARTUP_FAILURE

    try:
        from engine.app import create_app

        settings = load_settings()  # $MFA_CONFIG, set by serve_workers, and the MFA_* variables
        configure_logging(settings)
        return create_app(settings)
    except Exception:
        # The parent built this app a moment ago; whatever fails now would fail again: exit
        # with uvicorn's startup-failure code, on which it stops instead of restarting us.
        log.exception("worker_start_failed")
        sys.exit(STARTUP_FAILURE)


def _migrate_directory(settings: Settings) -> int:
    from engine.app import migrate_directory

    backend, migrated = migrate_directory(settings)
    applied = ", ".join(str(version) for version in migrated.applied) or "none"
    print(f"directory ({backend}): schema version {migrated.version}; migrations applied now: {applied}")
    return 0


def _write_demo_geoip(path: str) -> int:
    from engine.demo_geoip import write_demo_database

    write_demo_database(path)
    print(f"wrote {path}")
    return 0
