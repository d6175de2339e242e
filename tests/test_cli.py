"""The command line, run as a person would: real subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from intern.standins.hub import HubStandIn
from intern.standins.hub_jobs import jobs_state
from intern.standins.llm import LLMStandIn
from tests.e2e.harness import job_rule

INTERN = [sys.executable, "-m", "intern.bot.cli"]


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERN_", "SLACK_", "DISCORD_", "HF_TOKEN"))}
    env.update({"INTERN_DATABASE_URL": f"sqlite:///{tmp / 'cli.db'}", "HF_HOME": str(tmp / "hf")})
    env.update(extra)
    return env


def test_help_is_fast_and_lists_the_contract_commands(tmp_path: Path) -> None:
    start = time.perf_counter()
    out = subprocess.run([*INTERN, "--help"], capture_output=True, text=True, env=clean_env(tmp_path), check=True)
    elapsed = time.perf_counter() - start
    for cmd in ("serve", "chat", "demo", "db", "doctor", "sessions", "audit", "docs"):
        assert cmd in out.stdout
    assert elapsed < 5, f"--help took {elapsed:.1f}s: something heavy is imported eagerly"


def test_serve_without_chat_credentials_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    r = subprocess.run([*INTERN, "serve"], capture_output=True, text=True, env=clean_env(tmp_path), timeout=60)
    assert r.returncode != 0
    assert "SLACK_BOT_TOKEN" in r.stderr and "DISCORD_TOKEN" in r.stderr


def test_db_upgrade_then_sessions_list(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    r = subprocess.run([*INTERN, "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "latest schema" in r.stdout
    r = subprocess.run([*INTERN, "sessions", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "No sessions yet" in r.stdout


def test_invalid_setting_is_named(tmp_path: Path) -> None:
    env = clean_env(tmp_path, INTERN_JOB_POLL_SECONDS="often")
    r = subprocess.run([*INTERN, "sessions", "list"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "INTERN_JOB_POLL_SECONDS" in r.stderr


def test_demo_runs_the_whole_pipeline_offline(tmp_path: Path) -> None:
    r = subprocess.run([*INTERN, "demo", "--fast"], capture_output=True, text=True, env=clean_env(tmp_path),
                       timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "STAND-INS" in out and "[stand-in Slack]" in out
    assert "Approval needed: hf_jobs run" in out
    assert "designated approvers" in out  # the bystander's click was refused
    assert "launched on a10g-large" in out
    assert "Training finished" in out
    assert "will not finish before its timeout" in out and "[Cancel job]" in out  # the alert
    assert "step 1000/1000" in out and "GPU 93%" in out  # the status card following the job
    saved = re.search(r"saved as (\S+\.png)", out)
    assert saved is not None and Path(saved.group(1)).read_bytes().startswith(b"\x89PNG")  # the chart
    assert "job_finished" in out and "job_alert" in out  # the audit trail


async def test_chat_in_the_terminal_approves_and_launches(tmp_path: Path) -> None:
    async with HubStandIn() as hub, LLMStandIn() as llm:
        llm.rule = job_rule(flavor="t4-small", timeout="1h")
        env = clean_env(tmp_path, INTERN_MODEL="openai/scripted", INTERN_LLM_API_BASE=f"{llm.url}/v1",
                        INTERN_LLM_API_KEY="sk-standin-0123456789abcdef", HF_TOKEN=hub.token, HF_ENDPOINT=hub.url)
        proc = await asyncio.create_subprocess_exec(*INTERN, "chat", env=env, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        assert proc.stdin is not None and proc.stdout is not None
        seen = ""

        async def read_until(marker: str, timeout: float = 60) -> None:
            nonlocal seen
            deadline = asyncio.get_running_loop().time() + timeout
            while marker not in seen:
                remaining = deadline - asyncio.get_running_loop().time()
                assert remaining > 0, f"never saw {marker!r} in:\n{seen[-3000:]}"
                chunk = await asyncio.wait_for(proc.stdout.read(4096), remaining)  # type: ignore[union-attr]
                assert chunk, f"chat exited early:\n{seen[-3000:]}"
                seen += chunk.decode(errors="replace")

        try:
            await read_until("you>")
            proc.stdin.write(b"fine-tune a small model\n")
            await proc.stdin.drain()
            await read_until("answer `approve`")
            assert "t4-small" in seen and "Estimated max cost" in seen
            proc.stdin.write(b"approve\n")
            await proc.stdin.drain()
            await read_until("launched on t4-small")
            assert len(jobs_state(hub).created) == 1
            proc.stdin.close()
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
