"""`intern doctor` on the model endpoint: a connection to INTERN_LLM_API_BASE (never a paid call)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.governance import test_doctor
from tests.governance.test_doctor import Stands, doctor, full_env
from tests.test_cli import INTERN, clean_env

stands = test_doctor.stands  # the doctor's stand-ins, in place of the governance conftest's


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_model_endpoint_that_answers_is_reported_without_a_model_call(
        stands: Stands, migrated_url: str, tmp_path: Path) -> None:
    _, text = await doctor(full_env(stands, migrated_url, tmp_path / "docs"))
    assert f"[ok]   LLM: INTERN_LLM_API_BASE {stands.llm.url}/v1 answers (HTTP" in text
    assert stands.llm.chat_requests == []


async def test_a_model_endpoint_nobody_listens_on_fails_with_the_setting_and_the_url(
        stands: Stands, migrated_url: str, tmp_path: Path) -> None:
    env = full_env(stands, migrated_url, tmp_path / "docs")
    env["INTERN_LLM_API_BASE"] = base = f"http://127.0.0.1:{closed_port()}/v1"
    code, text = await doctor(env, live_llm=True)
    assert code == 1
    assert f"[FAIL] LLM: INTERN_LLM_API_BASE {base} cannot be reached (connection refused)" in text
    assert "fix: start the model server there, or fix INTERN_LLM_API_BASE" in text
    assert "a live call" not in text  # no paid call is attempted once the endpoint is known to be away


def test_serve_without_a_model_warns_at_start(tmp_path: Path) -> None:
    env = clean_env(tmp_path, SLACK_BOT_TOKEN="xoxb-1-2-abcdefabcdef", SLACK_SIGNING_SECRET="s" * 32,
                    INTERN_DATABASE_URL=f"sqlite:///{tmp_path}/missing/intern.db")
    r = subprocess.run([*INTERN, "serve"], capture_output=True, text=True, env=env, timeout=60)
    assert "INTERN_MODEL is not set" in r.stderr and "intern doctor" in r.stderr
    assert r.returncode == 2  # here the database folder is missing too, so it stops after the warning


async def test_the_docs_index_line_gives_its_age_and_sets(stands: Stands, migrated_url: str, tmp_path: Path) -> None:
    from intern.agent.docs.index import Page, write_index

    docs = tmp_path / "docs"
    write_index(docs, [Page("trl", "/docs/trl/index", "TRL", "Get started", 0, "# TRL\n"),
                       Page("peft", "/docs/peft/index", "PEFT", "Get started", 0, "# PEFT\n")], source="live")
    _, text = await doctor(full_env(stands, migrated_url, docs))
    assert f"[ok]   Docs: index at {docs}: 2 pages in 2 set(s) (peft, trl) from the live docs, built 0h ago" in text
