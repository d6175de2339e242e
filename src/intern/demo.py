"""`intern demo`: the whole pipeline offline, with the real code.

Slack, the Hugging Face Hub, the dataset viewer and the language model are local stand-ins on
127.0.0.1 that speak the real wire formats; everything else — the Slack adapter (slack_bolt over
HTTP, signed requests), the agent loop (litellm), the Hub client (huggingface_hub), approvals, the
job watcher and the database (a temporary SQLite file) — is the product itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
NAMES = {ALICE: "@alice", BOB: "@bob", CAROL: "@carol"}
SECRET = "demo-signing-secret-0123456789abcdef"

SCRIPT = """\
# /// script
# dependencies = ["trl>=0.20", "datasets"]
# ///
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("trl-lib/Capybara", split="train")
config = SFTConfig(
    output_dir="qwen-capybara-sft",
    num_train_epochs=1,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=4,
    learning_rate=2e-5,
    push_to_hub=True,
    hub_model_id="demo-team/qwen2.5-0.5b-capybara-sft",
)
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", train_dataset=dataset, args=config)
trainer.train()
trainer.push_to_hub()
"""


class Screen:
    def __init__(self, fast: bool) -> None:
        self.fast = fast
        self.shown = 0

    async def pause(self, seconds: float = 1.0) -> None:
        if not self.fast:
            await asyncio.sleep(seconds)

    def step(self, text: str) -> None:
        print(f"\n\033[1m▶ {text}\033[0m", flush=True)

    def thread(self, slack: Any, thread: str) -> None:
        """Print what appeared in the stand-in Slack thread since last time."""
        messages = slack.posted(thread_ts=thread)
        for m in messages[self.shown:]:
            print(render_slack(m), flush=True)
        self.shown = len(messages)


def render_slack(m: Any) -> str:
    who = NAMES.get(m.user, "@intern" if m.bot_id or m.user else "?")
    if m.files:
        return f"  [stand-in Slack] {who} shared {', '.join(f['name'] for f in m.files)}: {m.text}"
    if not m.blocks:
        return f"  [stand-in Slack] {who}: {m.text}"
    answered = any(b.get("type") == "context_actions" for b in m.blocks)
    lines = [f"  [stand-in Slack] {who} {'answered' if answered else 'posted a card'}:"]
    for b in m.blocks:
        t = b.get("type")
        if t == "header":
            lines.append(f"    ┌ {b['text']['text']}")
        elif t == "section" and b.get("fields"):
            lines += ["    │ " + f["text"].replace("\n", ": ", 1).replace("*", "") for f in b["fields"]]
        elif t == "section":
            text = b["text"]["text"]
            body = text.splitlines()
            if len(body) > 12:
                body = [*body[:6], "…", *body[-4:]]
            lines += ["    │ " + x for x in body]
        elif t == "actions":
            lines.append("    │ " + "  ".join(f"[{e['text']['text']}]" for e in b["elements"]))
        elif t == "context":
            lines.append("    └ " + b["elements"][0]["text"])
        elif t == "context_actions":
            lines.append("    └ " + "  ".join(f"[{e[k]['text']['text']}]" for e in b["elements"]
                                             for k in ("positive_button", "negative_button") if k in e)
                         + "  (feedback buttons)")
    return "\n".join(lines)


def statuses(slack: Any, channel: str, thread: str) -> str:
    """The thinking status Slack showed under the thread, change by change."""
    shown = [s or "(cleared)" for s in slack.status_of(channel, thread)]
    return " → ".join(shown) if shown else "(none)"


def demo_rule() -> Any:
    """The scripted model: inspect the data, plan, launch a job, report when it ends."""
    from intern.standins.llm import text_reply, tool_calls_reply

    def rule(request: dict[str, Any]) -> Any:
        messages = request.get("messages") or []
        if request.get("tools") is None:
            return text_reply("Summary: fine-tuning Qwen2.5-0.5B on Capybara.")
        last = messages[-1]
        content = last.get("content") if isinstance(last.get("content"), str) else json.dumps(last.get("content"))
        name = last.get("name")
        if last.get("role") == "user" and "[intern guard]" in (content or ""):
            return text_reply("The job is still running: the plan's last items stay open until it ends.")
        if last.get("role") == "user" and "[job alert]" in (content or ""):
            return text_reply("At its early pace this run would not finish in its 2-hour timeout. The first steps are "
                              "often slow (compilation, the dataset cache): I'll keep watching. If the pace does not "
                              "pick up, cancel it with the button and I'll relaunch with a 4h timeout, or halve "
                              "max_length to go faster.")
        if last.get("role") == "user" and "[job update]" in (content or ""):
            return tool_calls_reply([("plan", {"todos": [
                {"id": "1", "content": "Check the dataset format", "status": "completed"},
                {"id": "2", "content": "Launch SFT on a10g-large", "status": "completed"},
                {"id": "3", "content": "Report results", "status": "completed"}]})],
                text="The job finished.")
        if last.get("role") == "tool" and name == "plan" and "[~]" not in (content or "") \
                and "[ ]" not in (content or ""):
            return text_reply("Training finished: loss went from 1.42 to 0.87 over one epoch and the model is at "
                              "`demo-team/qwen2.5-0.5b-capybara-sft` on the Hub. Next, I can run an evaluation "
                              "on a held-out split if you want.")
        if last.get("role") == "user":
            return tool_calls_reply([("hf_inspect_dataset", {"dataset": "trl-lib/Capybara", "split": "train",
                                                             "sample_rows": 1})],
                                    text="Let me check the dataset format first.")
        if name == "hf_inspect_dataset":
            return tool_calls_reply([("plan", {"todos": [
                {"id": "1", "content": "Check the dataset format", "status": "completed"},
                {"id": "2", "content": "Launch SFT on a10g-large", "status": "in_progress"},
                {"id": "3", "content": "Report results", "status": "pending"}]})])
        if name == "plan":
            return tool_calls_reply([("hf_jobs", {"operation": "run", "script": SCRIPT, "dependencies": ["trl"],
                                                  "hardware_flavor": "a10g-large", "timeout": "2h"})],
                                    text="The data is in the conversational `messages` format that SFTTrainer "
                                         "takes as is. Launching a 2-hour SFT run on an A10G.")
        if name == "hf_jobs":
            return text_reply("The job is running; I'll report when it ends.")
        return text_reply("Done.")

    return rule


async def run_demo(*, fast: bool = False) -> int:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    tmp = Path(tempfile.mkdtemp(prefix="intern-demo-"))
    os.environ.setdefault("HF_HOME", str(tmp / "hf-home"))
    from intern.standins.datasets_server import DatasetsServerStandIn
    from intern.standins.hub import HubStandIn
    from intern.standins.hub_jobs import jobs_state
    from intern.standins.hub_models import register_model
    from intern.standins.llm import LLMStandIn
    from intern.standins.slack import (
        SlackEventSender,
        SlackStandIn,
        block_action,
        feedback_action,
        mention_event,
    )

    screen = Screen(fast)
    print("Intern demo — offline. Slack, the Hugging Face Hub, the dataset viewer and the language model are "
          "LOCAL STAND-INS on 127.0.0.1 (marked [stand-in]); the bot, the agent loop, the approval flow, the job "
          "watcher and the database are the real product code.", flush=True)
    async with SlackStandIn() as slack, HubStandIn() as hub, LLMStandIn() as llm, DatasetsServerStandIn() as viewer:
        llm.rule = demo_rule()
        register_model(hub, "Qwen/Qwen2.5-0.5B", parameters={"BF16": 494_032_768})
        viewer.add_dataset("trl-lib/Capybara", features={
            "messages": [{"role": {"dtype": "string", "_type": "Value"},
                          "content": {"dtype": "string", "_type": "Value"}}]},
            rows={"train": [{"messages": [{"role": "user", "content": "What is a transformer?"},
                                          {"role": "assistant", "content": "A neural network architecture…"}]}]},
            num_rows={"train": 15806})
        proc = await start_bot(tmp, slack, hub, llm, viewer)
        try:
            sender = SlackEventSender(f"http://127.0.0.1:{proc.settings.http_port}", SECRET, team_id=slack.team_id,
                                      bot_user_id=slack.bot_user_id)
            screen.step("@alice mentions @intern in #ml (a signed Slack event to the bot's HTTP endpoint)")
            event = mention_event("fine-tune Qwen2.5-0.5B on trl-lib/Capybara and push it to the Hub", user=ALICE)
            print(f"  [stand-in Slack] @alice: {event['text']}")
            await sender.send_event(event)
            thread = event["ts"]
            await wait_for(lambda: any(m.blocks and "Approval" in str(m.blocks) for m in slack.posted(thread_ts=thread)))
            screen.step("Intern inspects the dataset, plans, and asks for approval to spend money")
            print(f"  [stand-in Slack] status under the thread while it works: "
                  f"{statuses(slack, event['channel'], thread)}")
            screen.thread(slack, thread)
            card = next(m for m in slack.posted(thread_ts=thread) if m.blocks and "intern_approve" in str(m.blocks))
            approval = next(e["value"] for b in card.blocks if b["type"] == "actions" for e in b["elements"]
                            if e["action_id"] == "intern_approve")
            await screen.pause()
            screen.step("@bob (not an approver) clicks Approve: refused privately, nothing runs")
            await sender.send_interaction(block_action("intern_approve", approval, user=BOB, channel=card.channel,
                                                       message_ts=card.ts, thread_ts=thread))
            await wait_for(lambda: slack.ephemerals(user=BOB))
            print(f"  [stand-in Slack] (only @bob sees) {slack.ephemerals(user=BOB)[-1].text}")
            await screen.pause()
            screen.step("@carol (a designated approver) clicks Approve: the job is launched on the Hub stand-in")
            await sender.send_interaction(block_action("intern_approve", approval, user=CAROL, channel=card.channel,
                                                       message_ts=card.ts, thread_ts=thread))
            jobs = jobs_state(hub)
            await wait_for(lambda: jobs.created)
            job_id = jobs.created[0].job_id
            await wait_for(lambda: any("launched" in t for t in slack.texts(thread_ts=thread)))
            screen.thread(slack, thread)
            await screen.pause()
            screen.step("The [stand-in] Hub runs the job; Intern follows its stage, logs and GPU metrics")
            jobs.set_stage(job_id, "RUNNING")
            jobs.set_gpu(job_id, utilization=93, memory_used_bytes=17_400_000_000)
            await wait_for(lambda: any("is running" in t for t in slack.texts(thread_ts=thread)))
            # The first steps are slow: at this pace the run would outlast its 2 h timeout.
            jobs.append_logs(job_id, "  1%|          | 10/1000 [00:40<2:45:00, 10.00s/it]",
                             "{'loss': 1.42, 'grad_norm': 0.91, 'learning_rate': 2e-05, 'epoch': 0.01}")
            await wait_for(lambda: any("intern_cancel_job" in str(m.blocks) for m in slack.posted(thread_ts=thread)))
            await wait_for(lambda: any("early pace" in t for t in slack.texts(thread_ts=thread)), 30)
            screen.step("An alert in the thread (with a Cancel button for the requester and approvers); the agent "
                        "is woken with the same fact and answers")
            screen.thread(slack, thread)
            await screen.pause()
            screen.step("The pace picks up; the status card shows progress, ETA, metrics, GPU and cost")
            for step, loss in ((250, 1.13), (500, 0.95), (750, 0.91), (1000, 0.87)):
                left = (1000 - step) * 3
                jobs.append_logs(job_id, f" {step // 10}%|{'█' * (step // 100)}| {step}/1000 [09:{step % 60:02d}<"
                                         f"{left // 60:02d}:{left % 60:02d},  3.10it/s]",
                                 f"{{'loss': {loss}, 'grad_norm': 0.5, 'learning_rate': {2e-5 * (1 - step / 1000):.2e}, "
                                 f"'epoch': {step / 1000:.2f}}}")
                await asyncio.sleep(0.4 if screen.fast else 1.2)
            card = next(m for m in slack.posted(thread_ts=thread) if "Intern status" in str(m.blocks))
            await wait_for(lambda: "loss 0.87" in str(slack.message(card.channel, card.ts).blocks))
            print(render_slack(slack.message(card.channel, card.ts)), flush=True)
            jobs.append_logs(job_id, "{'train_runtime': 2301.5, 'train_loss': 1.04, 'epoch': 1.0}",
                             "Pushed to demo-team/qwen2.5-0.5b-capybara-sft")
            jobs.set_stage(job_id, "COMPLETED")
            await wait_for(lambda: any("Training finished" in t for t in slack.texts(thread_ts=thread)), 30,
                           lambda: screen.thread(slack, thread))
            await wait_for(lambda: any(f.completed for f in slack.files.values()
                                       if f.filename.endswith(".png")), 30)
            screen.step("The job ended: its chart is uploaded into the thread (Slack's external upload flow)")
            screen.thread(slack, thread)
            chart = next(f for f in slack.files.values() if f.completed and f.filename.endswith(".png"))
            saved = tmp / chart.filename
            saved.write_bytes(chart.content or b"")
            print(f"  [stand-in Slack] {chart.title}: {len(chart.content or b'')} bytes — saved as {saved}", flush=True)
            screen.step("@alice rates the answer with the 👍 under it (stored once per person and answer)")
            answer = next(m for m in reversed(slack.posted(thread_ts=thread)) if "context_actions" in str(m.blocks))
            await sender.send_interaction(feedback_action(answer.to_api(slack.workspace), "up", user=ALICE,
                                                          channel=answer.channel))
            await wait_for(lambda: slack.ephemerals(user=ALICE))
            print(f"  [stand-in Slack] (only @alice sees) {slack.ephemerals(user=ALICE)[-1].text}")
            screen.step("Everything is in the database: the audit trail")
            await print_audit(proc)
            print("\nDemo complete. Run `intern chat` with INTERN_MODEL set to try it with a real model, or "
                  "`intern serve` with Slack or Discord credentials.", flush=True)
        finally:
            await proc.stop()
    return 0


async def start_bot(tmp: Path, slack: Any, hub: Any, llm: Any, viewer: Any) -> Any:
    import socket

    from intern.bot.settings import Settings
    from intern.bot.wiring import Process

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(  # type: ignore[call-arg]
        INTERN_DATABASE_URL=f"sqlite:///{tmp / 'demo.db'}", INTERN_MODEL="openai/demo-scripted-model",
        INTERN_LLM_API_BASE=f"{llm.url}/v1", INTERN_LLM_API_KEY="sk-demo-not-a-real-key-000000",
        SLACK_BOT_TOKEN=slack.token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=f"{slack.url}/api/",
        HF_TOKEN=hub.token, HF_ENDPOINT=hub.url, INTERN_DATASETS_SERVER_URL=viewer.url,
        INTERN_APPROVERS=CAROL, INTERN_HTTP_HOST="127.0.0.1", INTERN_HTTP_PORT=port, INTERN_JOB_POLL_SECONDS=0.3,
        INTERN_DOCS_DIR=str(tmp / "docs"),
    )
    proc = Process(settings)
    await proc.start(migrate=True)
    proc.rt.status_throttle_seconds = 0.5
    return proc


async def print_audit(proc: Any) -> None:
    from sqlalchemy import select

    from intern.bot.models import AuditEvent

    async with proc.rt.db.session() as db:
        rows = (await db.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
    for e in rows:
        who = NAMES.get(e.actor, e.actor)
        detail = ", ".join(f"{k}={v}" for k, v in (e.detail or {}).items() if k in ("reason", "decision", "cost", "stage"))
        print(f"  {e.at:%H:%M:%S} {e.kind:<20} by {who:<8} {detail}")


async def wait_for(predicate: Any, timeout: float = 20.0, on_timeout: Any = None) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            if on_timeout is not None:
                on_timeout()
            print("demo: a step did not happen in time", file=sys.stderr)
            if os.environ.get("INTERN_DEMO_DEBUG"):
                import traceback
                traceback.print_stack()
            raise SystemExit(1)
        await asyncio.sleep(0.05)
