"""Database mistakes, as an operator makes them: one clear line and a non-zero exit from every command
that opens the database (never a traceback), the same diagnosis from `intern doctor`, and no empty
database created where a read-only command was pointed at nothing."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from intern.bot.doctor import run_doctor
from intern.bot.settings import Settings
from tests.support.db import pg_base_url
from tests.support.ports import free_port
from tests.test_cli import INTERN, clean_env

COMMANDS = (["db", "upgrade"], ["sessions", "list"], ["sessions", "show", "x"], ["audit"], ["serve"], ["chat"])
CHAT = {"SLACK_BOT_TOKEN": "xoxb-1-2-abcdefabcdef", "SLACK_SIGNING_SECRET": "s" * 32, "INTERN_MODEL": "openai/m"}


def run(tmp: Path, url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = clean_env(tmp, INTERN_DATABASE_URL=url, **CHAT)
    return subprocess.run([*INTERN, *args], capture_output=True, text=True, env=env, timeout=90,
                          stdin=subprocess.DEVNULL, cwd=tmp)


def assert_one_clear_line(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    lines = [line for line in r.stderr.splitlines() if line.startswith("intern ")]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def bad_urls(tmp: Path) -> list[tuple[str, tuple[str, ...]]]:
    return [
        ("this is not a url", ("INTERN_DATABASE_URL is not a database URL", "sqlite:///")),
        ("mysql://root:hunter2@db.example/intern", ("'mysql'", "does not support", "postgresql://")),
        ("postgresql+pg8000://u@127.0.0.1/intern", ("'pg8000' driver",)),
        (f"sqlite:///{tmp}/missing/folder/intern.db", (f"{tmp}/missing/folder", "does not exist")),
        (f"postgresql://postgres@127.0.0.1:{free_port()}/intern", ("connection refused", "INTERN_DATABASE_URL")),
    ]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_database_command_says_what_is_wrong_in_one_line(tmp_path: Path, command: list[str]) -> None:
    for url, needles in bad_urls(tmp_path):
        r = run(tmp_path, url, command)
        assert_one_clear_line(r, *needles)
        assert "hunter2" not in r.stderr + r.stdout
    if command[0] in ("db", "serve", "chat"):  # these would create the file: the folder is what is missing
        r = run(tmp_path, f"sqlite:///{tmp_path}/missing/folder/intern.db", command)
        assert_one_clear_line(r, "the folder", "mkdir -p")


@pytest.mark.parametrize("command", (["sessions", "list"], ["audit"]), ids=lambda c: " ".join(c))
def test_read_only_commands_do_not_create_a_database(tmp_path: Path, command: list[str]) -> None:
    target = tmp_path / "typo.db"
    r = run(tmp_path, f"sqlite:///{target}", command)
    assert_one_clear_line(r, "there is no Intern database", str(target), "intern db upgrade")
    assert not target.exists()


@contextlib.contextmanager
def read_only_folder(tmp: Path) -> Iterator[Path]:
    """A folder nobody may write to. root writes through permission bits, so where the tests run as
    root the folder is a read-only tmpfs mount instead."""
    folder = tmp / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, timeout=30)
    if mounted.returncode != 0:
        pytest.skip("cannot make a read-only folder as root here (mount refused)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)


def test_a_read_only_folder_is_named(tmp_path: Path) -> None:
    with read_only_folder(tmp_path) as folder:
        r = run(tmp_path, f"sqlite:///{folder}/intern.db", ["db", "upgrade"])
        assert_one_clear_line(r, str(folder), "read-only")
        assert not (folder / "intern.db").exists()


@pytest.mark.postgres
def test_postgres_server_answers_but_the_database_or_user_is_wrong(tmp_path: Path) -> None:
    base = pg_base_url()
    if base is None:
        pytest.skip("INTERN_TEST_DATABASE_URL is not set")
    u = make_url(base)
    missing = u.set(database="intern_no_such_database").render_as_string(hide_password=False)
    r = run(tmp_path, missing, ["sessions", "list"])
    assert_one_clear_line(r, "'intern_no_such_database' does not exist", "createdb")
    stranger = u.set(username="intern_no_such_role").render_as_string(hide_password=False)
    r = run(tmp_path, stranger, ["db", "upgrade"])
    assert_one_clear_line(r, "refused user intern_no_such_role", "fix the user or password")


async def doctor_lines(url: str) -> str:
    out = io.StringIO()
    await run_doctor(Settings(INTERN_DATABASE_URL=url, INTERN_MODEL="openai/m",  # type: ignore[call-arg]
                              INTERN_LLM_API_BASE=None), out=out)
    return "\n".join(line for line in out.getvalue().splitlines() if "Database" in line or "fix:" in line)


async def test_doctor_finds_each_database_mistake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith(("INTERN_", "SLACK_", "DISCORD_", "HF_TOKEN"))]:
        monkeypatch.delenv(name)
    for url, needles in bad_urls(tmp_path):
        text = await doctor_lines(url)
        assert "[FAIL] Database:" in text, (url, text)
        for needle in needles:
            assert needle in text, (url, text)
        assert "Traceback" not in text and "hunter2" not in text


def test_bare_intern_prints_help(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "intern.bot.cli"], capture_output=True, text=True,
                       env=clean_env(tmp_path), timeout=60)
    assert r.returncode == 0 and "usage: intern" in r.stdout and "serve" in r.stdout
