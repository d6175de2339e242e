"""Rows for run-record tests: a session with its first message, an approval with the job's script,
and the job as the launch recorded it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from intern.bot.models import Approval, Job, Message, Session
from intern.bot.store import Database

SCRIPT = '''
from datasets import load_dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer
ds = load_dataset("trl-lib/Capybara", split="train")
cfg = SFTConfig(output_dir="out", learning_rate=2e-4, num_train_epochs=3, per_device_train_batch_size=8,
                gradient_accumulation_steps=2, max_length=2048, push_to_hub=True, hub_model_id="team/qwen-sft")
SFTTrainer(model="Qwen/Qwen2.5-7B", train_dataset=ds, args=cfg, peft_config=LoraConfig(r=16)).train()
'''


def script_for(model: str, dataset: str) -> str:
    out = "team/" + model.split("/")[-1].lower() + "-tuned"
    return SCRIPT.replace("Qwen/Qwen2.5-7B", model).replace("trl-lib/Capybara", dataset).replace("team/qwen-sft", out)


async def launched_job(db: Database, *, platform: str = "slack", workspace: str = "T0ALPHA", user: str = "U0ASK",
                       task: str = "fine-tune Qwen 7B on Capybara with LoRA", script: str = SCRIPT,
                       flavor: str = "a10g-large", timeout: int = 7200, at: datetime | None = None,
                       hf_job_id: str | None = None) -> Job:
    at = at or datetime.now(UTC)
    async with db.transaction() as s:
        session = Session(platform=platform, workspace=workspace, channel="C0GEN", thread=f"{uuid.uuid4().int % 10**9}",
                          started_by=user, created_at=at)
        s.add(session)
        await s.flush()
        s.add(Message(session_id=session.id, seq=1, role="user", author=user,
                      payload={"role": "user", "content": f"[<@{user}>] {task}"}))
        approval = Approval(session_id=session.id, call_id=f"call-{uuid.uuid4().hex[:8]}", tool="hf_jobs",
                            kind="spend", spec={"operation": "run", "script": script, "hardware_flavor": flavor,
                                                "timeout": f"{timeout}"}, spec_sha256="0" * 64, card={},
                            estimated_cost_usd=3.0, requester=user, platform=platform, workspace=workspace,
                            channel="C0GEN", expires_at=at + timedelta(hours=1), status="approved")
        s.add(approval)
        await s.flush()
        job = Job(session_id=session.id, approval_id=approval.id, hf_job_id=hf_job_id or uuid.uuid4().hex[:24],
                  namespace="team", flavor=flavor, timeout_seconds=timeout, hourly_usd=1.5, estimated_cost_usd=3.0,
                  stage="RUNNING", url="https://hub.test/jobs/team/x", requester=user, platform=platform,
                  workspace=workspace, channel="C0GEN", created_at=at)
        s.add(job)
    return job


def tail(kind: str) -> list[str]:
    lines: dict[str, list[str]] = {
        "oom": ["{'loss': 1.8, 'grad_norm': 1.1, 'learning_rate': 0.0002, 'epoch': 0.1}",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                "of 22.07 GiB of which 1.21 GiB is free."],
        "ok": ["{'loss': 1.42, 'grad_norm': 0.9, 'learning_rate': 0.0001, 'epoch': 2.0}",
               "{'eval_loss': 1.35, 'eval_runtime': 10.0, 'epoch': 3.0}",
               "{'train_runtime': 3600.0, 'train_loss': 1.5, 'epoch': 3.0}"],
    }
    return lines[kind]


def finish_kwargs(kind: str, **extra: Any) -> dict[str, Any]:
    stage = "COMPLETED" if kind == "ok" else "ERROR"
    return {"stage": stage, "message": None, "runtime": 720.0, "cost": 0.3, "lines": tail(kind), "labels": None,
            "redact": lambda s: s, **extra}
