"""On Discord too, a project written in the sandbox becomes the job's code: the card's embed lists the
files with their sha256 prefixes, and the approver's click commits them and launches the job with the
commit mounted read-only at /project."""

from __future__ import annotations

import hashlib

from intern.standins.hub_jobs import jobs_state
from intern.standins.hub_repos import repo_store
from tests.discord.harness import DiscordHarness, cards, custom_id
from tests.e2e.harness import wait_until
from tests.e2e.test_sandbox_code import FILES, project_rule


async def test_a_sandbox_project_card_and_launch_on_discord(harness: DiscordHarness) -> None:
    d, p = harness.discord, harness.people
    sandboxes = harness.rt.sandboxes
    sandboxes.poll_seconds, sandboxes.start_timeout_seconds = 0.05, 30.0
    harness.llm.rule = project_rule(FILES, {"sandbox_path": "proj", "script": "train.py"})
    before = {t["id"] for t in d.threads()}
    await d.answered(await d.slash(p.requester, "ask", task="train with the project in the sandbox"))
    thread = next(t["id"] for t in d.threads() if t["id"] not in before)
    await wait_until(lambda: cards(d, thread), timeout=40)
    card = cards(d, thread)[0]
    embed = card.embeds[0]
    shown = embed["description"] + " ".join(f["value"] for f in embed["fields"])
    for path, content in FILES.items():
        assert path.removeprefix("proj/") in shown and hashlib.sha256(content.encode()).hexdigest()[:12] in shown
    assert "read-only at /project" in shown

    await d.answered(await d.click(card, custom_id(card, "approve"), p.approver))
    await wait_until(lambda: jobs_state(harness.hub).created, timeout=20)
    (spec,) = jobs_state(harness.hub).created
    repo = repo_store(harness.hub).get("model", f"{harness.hub.user}/intern-runs")
    assert repo is not None and repo.private
    assert spec.volumes[0]["revision"] == repo.head().oid and spec.volumes[0]["mountPath"] == "/project"
