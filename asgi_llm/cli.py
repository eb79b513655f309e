"""The `asgi-llm` command: serve, check-config, hash-key."""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import os
import sys
from collections.abc import Sequence

from asgi_llm.auth.keys import hash_key
from asgi_llm.config.checks import config_warnings
from asgi_llm.config.loader import Config
from asgi_llm.errors import ConfigError
from asgi_llm.server import CONFIG_ENV, DEFAULT_SERVER, SERVERS, CannotServe, load_config, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asgi-llm", description="OpenAI-compatible LLM proxy.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the full stack on an HTTP server")
    run.add_argument("--config", help=f"config file (default: ${CONFIG_ENV} or the embedded default)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--workers", type=int, default=1)
    run.add_argument(
        "--server",
        choices=SERVERS,
        default=DEFAULT_SERVER,
        help=f"the HTTP server (default {DEFAULT_SERVER}; hypercorn and granian also speak HTTP/2)",
    )
    run.add_argument(
        "--allow-unauthenticated", action="store_true", help="serve without auth on a non-loopback address"
    )
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    run.add_argument("--no-access-log", action="store_true", help="no line per request")
    run.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=20.0,
        help="seconds an idle client connection is kept open",
    )
    run.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        help="seconds streams may run on after SIGTERM before they are ended",
    )
    migrate = commands.add_parser("migrate", help="bring the ledger's database schema up to date")
    migrate.add_argument("--config", help=f"config file (default: ${CONFIG_ENV})")
    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("path")
    key = commands.add_parser("hash-key", help="print the sha256: form of an API key")
    key.add_argument(
        "key",
        nargs="?",
        default="-",
        help="the key; `-` or none reads it from stdin (keeps it out of shell history)",
    )
    return parser


def summary(config: Config) -> str:
    models = ", ".join(m.name for m in config.models) or "none"
    deployments = sum(len(m.deployments) for m in config.models)
    parts = [
        f"{len(config.models)} model(s) ({models})",
        f"{deployments} deployment(s)",
        "auth: " + ("on" if config.auth else "OFF"),
        "limits: " + ("on" if config.limits else "off"),
        "cache: " + ("on" if config.cache else "off"),
    ]
    if config.ledger is not None:  # the backend's name only: a URL may hold a password
        parts.append("ledger: " + config.ledger.url.split(":", 1)[0])
    if config.tracing is not None:
        parts.append("tracing: on")
    if config.admin is not None and config.admin.ui:
        parts.append(f"dashboard: {config.admin.ui_path}")
    return ", ".join(parts)


def _print_warnings(config: Config, source: str | None) -> None:
    for warning in config_warnings(config):
        print(f"warning: {source}: {warning}", file=sys.stderr)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_key() -> str:
    """The key from stdin: typed without echo at a terminal, else read whole (a pipe, a
    file), less the one newline `echo` or a here-string adds."""
    if sys.stdin.isatty():
        return getpass.getpass("API key: ")
    text = sys.stdin.read()
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash-key":
        key = _read_key() if args.key == "-" else args.key
        if not key:
            print("error: the key is empty", file=sys.stderr)
            return 1
        print(hash_key(key))
        return 0
    if args.command == "check-config":
        try:
            config = Config.from_file(args.path)
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"ok: {args.path}: {summary(config)}")
        _print_warnings(config, args.path)
        return 0
    if args.config:
        os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.command == "migrate":
        from asgi_llm.ledger.service import migrate_command

        return migrate_command(config)
    _print_warnings(config, config.source)
    if config.auth is None and not _is_loopback(args.host) and not args.allow_unauthenticated:
        print(
            f"error: no auth is configured; refusing to serve on {args.host}. Add an auth: "
            "section or pass --allow-unauthenticated.",
            file=sys.stderr,
        )
        return 1
    warning = "" if config.auth else " WARNING: no auth configured, anyone who can reach it may use it."

    def announce(address: str) -> None:  # once the address is bound: never for a port in use
        print(
            f"asgi-llm: serving http://{address}/v1 with {config.source}: {summary(config)}.{warning}",
            file=sys.stderr,
            flush=True,
        )

    try:
        return serve(
            args.host,
            args.port,
            args.workers,
            server=args.server,
            drain_timeout=args.drain_timeout,
            access_log=not args.no_access_log,
            log_format=args.log_format,
            log_level=args.log_level,
            keep_alive=args.keep_alive_timeout,
            announce=announce,
        )
    except CannotServe as exc:
        print(f"asgi-llm: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
