"""`export` and `apply` against an admin API client: the CLI's commands without the command line."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from switchman.config_as_code import planner, remote
from switchman.config_as_code.document import Document, expand, parse, render
from switchman.config_as_code.planner import Step


@dataclass(frozen=True)
class Applied:
    steps: list[Step]
    dry_run: bool
    signing_secrets: list[tuple[str, str]] = field(default_factory=list)  # of webhook channels created

    def report(self) -> list[str]:
        """The plan, one line per step, a summary line, then the signing secret of each webhook channel
        created (shown this once, as the API shows it once)."""
        if not self.steps:
            return ["no changes"]
        counts = {op: sum(1 for s in self.steps if s.op == op) for op in ("create", "update", "delete")}
        summary = ", ".join(f"{n} to {op}" for op, n in counts.items() if n)
        tail = f"plan: {summary} (dry run: nothing changed)" if self.dry_run else f"applied: {summary}"
        secrets = [
            f"signing secret of notification channel {channel} (shown once; give it to the receiver): {secret}"
            for channel, secret in self.signing_secrets
        ]
        return [*(step.describe() for step in self.steps), tail, *secrets]


async def export_document(client: httpx.AsyncClient) -> str:
    """The server's configuration as YAML: no ids, no secrets (channel URLs as `${VAR}` placeholders)."""
    return render((await remote.read_state(client)).document)


async def apply_document(
    client: httpx.AsyncClient,
    text: str,
    *,
    prune: bool = False,
    dry_run: bool = False,
    environ: dict[str, str] | None = None,
) -> Applied:
    """Make the server match the document. Everything is checked (the document, its `${VAR}`s, the
    names it refers to) before the first change; `dry_run` plans only."""
    desired = _expanded(parse(text), environ)
    current = await remote.read_state(client)
    await remote.check_references(client, desired, current, prune=prune)
    steps = planner.plan(desired, current.document, prune=prune, url_hints=current.url_hints)
    if not dry_run:
        await remote.execute(client, steps, current)
    return Applied(steps, dry_run, current.new_signing_secrets)


def _expanded(document: Document, environ: dict[str, str] | None) -> Document:
    for i, project in enumerate(document["projects"]):
        for j, channel in enumerate(project["notificationChannels"]):
            channel["url"] = expand(channel["url"], f"projects[{i}].notificationChannels[{j}].url", environ)
    return document
