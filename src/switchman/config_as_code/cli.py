"""`switchman export` and `switchman apply`: the URL and token from the environment, one-line errors.

The token is read from SWITCHMAN_API_TOKEN only (never a flag, never the document): flags end up in shell
histories and process listings. Every failure — no token, unreachable server, refused token, invalid
document, a name the server does not know, a refused change — prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import httpx

from switchman.config_as_code.commands import apply_document, export_document
from switchman.config_as_code.document import DocumentError
from switchman.config_as_code.remote import RemoteError

DEFAULT_URL = "http://127.0.0.1:4242"
_TIMEOUT_SECONDS = 30.0


class CommandError(Exception):
    """One line saying why the command could not do its work."""


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "export":
            text = asyncio.run(_export(args.url))
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return 0
        document = _read(args.file)
        for line in asyncio.run(_apply(args.url, document, prune=args.prune, dry_run=args.dry_run)):
            print(line)
        return 0
    except (CommandError, DocumentError, RemoteError) as exc:
        print(f"switchman: {exc}", file=sys.stderr)
        return 2


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None


def _client(url: str | None) -> httpx.AsyncClient:
    given = url or os.environ.get("SWITCHMAN_URL") or DEFAULT_URL
    token = os.environ.get("SWITCHMAN_API_TOKEN", "").strip()
    if not token:
        raise CommandError("SWITCHMAN_API_TOKEN is not set: an admin API token or personal access token")
    base = given.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CommandError(f"{given!r} is not an http or https URL")
    try:
        return httpx.AsyncClient(base_url=base, headers={"Authorization": token}, timeout=_TIMEOUT_SECONDS)
    except httpx.InvalidURL as exc:
        raise CommandError(f"{base!r} is not a usable URL: {exc}") from None


async def _export(url: str | None) -> str:
    async with _client(url) as client:
        return await export_document(client)


async def _apply(url: str | None, document: str, *, prune: bool, dry_run: bool) -> list[str]:
    async with _client(url) as client:
        applied = await apply_document(client, document, prune=prune, dry_run=dry_run)
    return applied.report()
