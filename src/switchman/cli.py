"""Command line: `switchman serve | worker | migrate | secrets new-key | secrets rotate | export | apply`.

Start-up problems (bad configuration, unreachable database) end the process with one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from switchman import __version__
from switchman.config import ConfigurationError, Settings, load_settings
from switchman.logs import configure_logging


class StartupError(Exception):
    """A one-line reason the process cannot start."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchman",
        description="Open, Unleash-compatible Signals & Actions: outside signals turned into flag changes.",
    )
    parser.add_argument("--version", action="version", version=f"switchman {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the HTTP API (and, unless --no-worker, a signal worker)")
    serve.add_argument("--host", default=None, help="address to bind (default: SWITCHMAN_HOST or 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=None, help="port to bind (default: SWITCHMAN_PORT or 4242)"
    )
    serve.add_argument("--no-worker", action="store_true", help="do not run a signal worker in this process")

    worker = sub.add_parser("worker", help="run a signal worker alone (for several replicas on PostgreSQL)")
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics and /health on this port (default: SWITCHMAN_WORKER_METRICS_PORT; 0: none)",
    )
    sub.add_parser("migrate", help="apply pending database migrations and exit")

    secrets_command = sub.add_parser("secrets", help="the key that seals webhook signing secrets (ADR 0020)")
    secrets_sub = secrets_command.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    secrets_sub.add_parser("new-key", help="print a new key for SWITCHMAN_SECRET_KEY")
    secrets_sub.add_parser(
        "rotate",
        help="re-seal every signing secret with SWITCHMAN_SECRET_KEY (opening them with it or with "
        "SWITCHMAN_PREVIOUS_SECRET_KEYS); afterwards the previous keys can be dropped",
    )

    # Configuration as code (ADR 0031): clients of a running switchman's admin API, no database settings.
    url_help = (
        "the switchman to talk to (default: SWITCHMAN_URL or http://127.0.0.1:4242); "
        "the token comes from SWITCHMAN_API_TOKEN"
    )
    export = sub.add_parser("export", help="write the configuration of a running switchman as YAML")
    export.add_argument("--url", default=None, help=url_help)
    export.add_argument("-o", "--output", default=None, help="write to this file (default: standard output)")
    apply = sub.add_parser("apply", help="make a running switchman match a configuration file")
    apply.add_argument("-f", "--file", required=True, help="the YAML document (`-`: standard input)")
    apply.add_argument("--url", default=None, help=url_help)
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.add_argument("--prune", action="store_true", help="also delete what the document does not name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("export", "apply"):
        from switchman.config_as_code.cli import run

        return run(args)
    if args.command == "secrets" and args.secrets_command == "new-key":
        from switchman.secret_box import new_key

        print(new_key())
        return 0
    try:
        overrides: dict[str, object] = {}
        if args.command == "serve":
            if args.host is not None:
                overrides["host"] = args.host
            if args.port is not None:
                overrides["port"] = args.port
            if args.no_worker:
                overrides["run_worker"] = False
        if args.command == "worker" and args.metrics_port is not None:
            overrides["worker_metrics_port"] = args.metrics_port
        settings = load_settings(**overrides)
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "migrate":
            asyncio.run(_preflight(settings, apply_migrations=True, check_backend=False))
            print("switchman: database is at the latest schema revision", file=sys.stderr)
            return 0
        if args.command == "secrets":
            asyncio.run(_preflight(settings, apply_migrations=settings.migrate_on_start, check_backend=False))
            resealed = asyncio.run(_reseal(settings))
            print(f"switchman: {resealed} signing secret(s) re-sealed with the current key", file=sys.stderr)
            return 0
        if args.command == "worker":
            asyncio.run(_preflight(settings, apply_migrations=settings.migrate_on_start))
            from switchman.worker import run_standalone

            _freeze_startup_heap()
            asyncio.run(run_standalone(settings))
            return 0
        asyncio.run(_preflight(settings, apply_migrations=settings.migrate_on_start))
        _serve(settings)
        return 0
    except (ConfigurationError, StartupError) as exc:
        print(f"switchman: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _reseal(settings: Settings) -> int:
    from switchman.db.engine import Database
    from switchman.notifications.service import reseal_all as reseal_channels
    from switchman.secret_box import SecretBox, SecretBoxError
    from switchman.signal_endpoints.verifications import reseal_all

    keys = settings.secret_keys()
    if not keys:
        raise StartupError("SWITCHMAN_SECRET_KEY is not set: there is no key to re-seal with")
    db = Database(settings.async_database_url, pool_size=1)
    try:
        async with db.transaction() as conn:
            box = SecretBox(keys)
            # endpoints' signing secrets, then notification channels' URLs and secrets (ADR 0027)
            return await reseal_all(conn, box) + await reseal_channels(conn, box)
    except SecretBoxError as exc:
        raise StartupError(f"nothing was re-sealed: {exc}") from None
    finally:
        await db.dispose()


async def _preflight(settings: Settings, *, apply_migrations: bool, check_backend: bool = True) -> None:
    """Reach the database (and migrate it) and probe a remote flag backend before serving, turning
    failures into one line."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from switchman.db.engine import Database
    from switchman.db.migrate import migrate

    where = settings.async_database_url.render_as_string(hide_password=True)
    try:
        if apply_migrations:
            await migrate(settings.async_database_url)
        db = Database(settings.async_database_url, pool_size=1)
        try:
            await db.ping()
            if settings.init_client_api_tokens:
                # Unknown project/environment → ConfigurationError: one line, before serving.
                from switchman.api_tokens.service import ensure_client_tokens

                async with db.transaction() as conn:
                    await ensure_client_tokens(conn, settings.init_client_api_tokens)
        finally:
            await db.dispose()
    except (OSError, OperationalError, DBAPIError, TimeoutError) as exc:
        reason = (
            str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            if str(exc).strip()
            else type(exc).__name__
        )
        raise StartupError(f"cannot use the database at {where}: {reason}") from exc
    if check_backend:
        from switchman.flags.factory import check_flag_backend

        await check_flag_backend(settings)  # a remote Unleash: its URL and token, once


def _serve(settings: Settings) -> None:
    import uvicorn

    from switchman.app import create_app

    app = create_app(settings)
    _freeze_startup_heap()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


def _freeze_startup_heap() -> None:
    """Move everything alive after start-up out of the garbage collector's reach.

    The ~130,000 objects created by importing FastAPI, SQLAlchemy, pydantic and the app never die, but
    every full collection walks them: up to 80 ms pauses that made the ingestion p99 (ADR 0005).
    """
    import gc

    gc.collect()
    gc.freeze()
