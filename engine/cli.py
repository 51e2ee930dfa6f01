"""The `mfa-engine` command: serve the API, check and test rules, evaluate locally, write the demo GeoIP database."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import ConfigError, Settings, load_settings
from engine.pipeline import RuleSetRejected, load_rule_set

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger("engine.cli")


def _ascii_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: ASCII digits in low..high, as the admin API reads integers (int() also
    takes "+5", " 5", "5_000" and other scripts' digits)."""
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}")
        return int(text)
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mfa-engine", description="Adaptive-MFA policy engine")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--config", help="config file (default: $MFA_CONFIG, else built-in defaults)")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=_ascii_int(1, 65_535), help="listen port (overrides server.port)")

    rules = commands.add_parser("rules", help="work with the rules folder")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="compile every rule and report errors as file:line: message")
    check.add_argument("dir", nargs="?", help="rules folder (default: rules.dir)")
    check.add_argument("--config")
    test = rules_commands.add_parser("test", help="run the rule tests (DIR/tests/*.yaml) and print each result")
    test.add_argument("dir", nargs="?", help="rules folder (default: rules.dir)")
    test.add_argument("--config")

    evaluate = commands.add_parser("evaluate", help="a local dry run: the decision and trace as JSON, no server")
    evaluate.add_argument("--rules", required=True, help="rules folder")
    evaluate.add_argument("--user", required=True, help="JSON file: the `user` of POST /v1/evaluate")
    evaluate.add_argument("--context", help="JSON file: the `context` of POST /v1/evaluate")
    evaluate.add_argument("--config")

    users = commands.add_parser("users", help="manage users in the directory")
    users.add_argument("--config")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser("add", help="create a user (the password is read from stdin or a prompt)")
    add.add_argument("username")
    add.add_argument("--email")
    add.add_argument("--phone", help="E.164 phone number, e.g. +14155550123")
    add.add_argument("--name")
    listing = user_commands.add_parser("list", help="list users")
    listing.add_argument("--limit", type=_ascii_int(1, 1_000), default=100)
    reset = user_commands.add_parser("reset-mfa", help="remove every factor and recovery code of a user and clear "
                                                       "the lockout streak (in Redis, when store.redis_url is set)")
    reset.add_argument("user", help="username or user id")

    geoip = commands.add_parser("geoip", help="GeoIP databases")
    geoip_commands = geoip.add_subparsers(dest="geoip_command", required=True)
    demo = geoip_commands.add_parser("write-demo", help="write a demo database on the documentation ranges")
    demo.add_argument("path")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "rules":
            if args.rules_command == "test":
                from engine.rules_cli import test_rules

                return test_rules(_settings(args.config), args.dir)
            return _check_rules(_settings(args.config), args.dir)
        if args.command == "evaluate":
            from engine.rules_cli import evaluate_locally

            return evaluate_locally(_settings(args.config), args.rules, args.user, args.context)
        if args.command == "users":
            from engine.users_cli import run_users_command

            return asyncio.run(run_users_command(_settings(args.config), args))
        return _write_demo_geoip(args.path)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except RuleSetRejected as exc:
        print("the rule set was rejected:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 2


def _settings(path: str | None) -> Settings:
    return load_settings(path)


def _serve(args: argparse.Namespace) -> int:
    from engine.app import create_app

    settings = _settings(args.config)
    configure_logging(settings)
    app = create_app(settings)
    serve(app, settings, args.host or settings.server.host, args.port or settings.server.port)
    return 0


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.logging.level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def serve(app: Starlette, settings: Settings, host: str, port: int) -> None:
    """Run `app` under uvicorn until SIGTERM or SIGINT."""
    import uvicorn

    log.info("serve host=%s port=%s environment=%s isolation=%s", host, port, settings.environment,
             settings.sandbox.isolation)
    # The graceful shutdown is bounded: past it uvicorn cancels the requests still in flight
    # (a client stalled mid-body among them), and the lifespan stops the sandbox workers.
    uvicorn.run(app, host=host, port=port, log_level=settings.logging.level.lower(),
                timeout_graceful_shutdown=settings.http.shutdown_timeout_seconds)


def _check_rules(settings: Settings, folder: str | None) -> int:
    """Exit 1 with one `file:line: message` per error (as compilers print them) when a rule is refused."""
    directory = Path(folder) if folder else settings.path(settings.rules.dir)
    try:
        rule_set = load_rule_set(directory, settings.rules, settings.sandbox.limits())
    except RuleSetRejected as exc:
        for error in exc.errors:
            print(_file_line(directory, error), file=sys.stderr)
        return 1
    print(f"rule set {rule_set.version}: {len(rule_set.rules)} rules compile")
    for rule in rule_set.rules:
        print(f"  {rule.id}  on_error={rule.on_error}  {rule.summary}")
    return 0


def _file_line(directory: Path, error: str) -> str:
    """`10-bad: Line 2: message` as `rules/10-bad.py:2: message`; other errors as they are."""
    from engine.rule_ops import error_plain

    found = error_plain(error, {error.split(":", 1)[0]: ""})
    if found["line"] is None:
        return error
    return f"{directory / (found['rule'] + '.py')}:{found['line']}: {found['message']}"


def _write_demo_geoip(path: str) -> int:
    from engine.demo_geoip import write_demo_database

    write_demo_database(path)
    print(f"wrote {path}")
    return 0
