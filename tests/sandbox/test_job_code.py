"""`hf_jobs` with `sandbox_path`, through the real tools: the sandbox Space runs on the Hub stand-in, the
snapshot comes from its exec server, the approval's files are stored in the real database and committed
with the real HfApi to the runs repo. What cannot travel is an argument error naming what to trim."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from huggingface_hub import HfApi, Volume
from huggingface_hub.errors import HfHubHTTPError

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolArgumentError, ToolFeedback
from intern.agent.tools.base import canonical_spec
from intern.agent.tools.jobs import JobsArgs, describe, handle, jobs_tool
from intern.agent.tools.jobs_code import CodePin, code_pin, pin_text
from intern.agent.tools.sandbox import sandbox_bash_tool, sandbox_write_tool
from intern.bot.approvals import ApprovedCode
from intern.bot.models import Approval, ApprovalFile
from intern.standins.hub_jobs import jobs_state
from intern.standins.hub_repos import repo_store
from tests.jobs.test_jobs_tool import Registry
from tests.sandbox.support import World, run

TRAIN = "from helper import push\nprint('training')\npush()\n"
HELPER = "from huggingface_hub import HfApi\n\n\ndef push():\n    HfApi().upload_folder(repo_id='t/m', folder_path='o')\n"


def args(**kw: Any) -> JobsArgs:
    return jobs_tool.parse(json.dumps({"operation": "run", "hardware_flavor": "cpu-basic", **kw}))  # type: ignore[return-value]


async def write(world: World, files: dict[str, str]) -> None:
    for path, content in files.items():
        result = await run(world.ctx, sandbox_write_tool, path=path, content=content)
        assert not result.is_error, result.content


async def bash(world: World, command: str) -> None:
    result = await run(world.ctx, sandbox_bash_tool, command=command)
    assert not result.is_error, result.content


async def argument_error(world: World, **kw: Any) -> str:
    with pytest.raises(ToolArgumentError) as caught:
        await describe(world.ctx, args(**kw))
    return str(caught.value)


async def approved(world: World, a: JobsArgs) -> ToolContext:
    """Store an approval for `a` as the gate does (spec with the manifest, and the files), then the context
    an approved call runs with."""
    info = await describe(world.ctx, a)
    assert info.snapshot is not None
    spec = {**canonical_spec(a), "sandbox_code": info.snapshot.manifest()}
    aid = str(uuid.uuid4())
    async with world.db.transaction() as db:
        db.add(Approval(id=aid, session_id=world.ctx.session_id, call_id=f"call-{aid}", tool="hf_jobs",
                        kind="spend", spec=spec, spec_sha256="0" * 64, card={}, requester="U1", platform="slack",
                        workspace="T1", channel="C1", status="approved",
                        expires_at=datetime.now(UTC) + timedelta(hours=1)))
        await db.flush()
        db.add_all(ApprovalFile(approval_id=aid, path=f.path, size=f.size, sha256=f.sha256, content=f.data)
                   for f in info.snapshot.files)
    world.ctx.deps.approved_code = ApprovedCode(world.rt)
    return world.ctx.for_call(f"call-{aid}", approval_id=aid)


def test_sandbox_path_arguments() -> None:
    with pytest.raises(ToolArgumentError, match="goes with run and scheduled run"):
        jobs_tool.parse({"operation": "logs", "job_id": "x", "sandbox_path": "proj"})
    with pytest.raises(ToolArgumentError, match="names the entry file relative to it"):
        jobs_tool.parse({"operation": "run", "sandbox_path": "proj", "script": "print('hi')\nprint(2)"})
    with pytest.raises(ToolArgumentError, match="names the entry file relative to it"):
        jobs_tool.parse({"operation": "run", "sandbox_path": "proj", "script": "../outside.py"})
    with pytest.raises(ToolArgumentError, match="not both"):
        jobs_tool.parse({"operation": "run", "sandbox_path": "proj", "script": "t.py", "command": ["ls"]})
    assert jobs_tool.parse({"operation": "run", "sandbox_path": "train.py"})  # a file is its own entry
    assert "sandbox_path" in json.dumps(jobs_tool.schema())


async def test_the_card_lists_every_file_and_the_checks_read_the_helper_module(world: World) -> None:
    await write(world, {"proj/train.py": TRAIN, "proj/helper.py": HELPER, "proj/notes.txt": "n\n"})
    await bash(world, "cd proj && python3 -m compileall -q . && ls __pycache__")  # as a smoke test leaves it
    info = await describe(world.ctx, args(sandbox_path="proj", script="train.py", timeout="1h"))
    assert info.snapshot is not None and info.snapshot.kind == "folder"
    assert [f.path for f in info.snapshot.files] == ["helper.py", "notes.txt", "train.py"]
    assert info.snapshot.skipped == ("__pycache__/",)
    assert info.body_label == "Files" and info.body is not None
    for f in info.snapshot.files:
        assert f"{f.path}" in info.body and f.sha256[:12] in info.body
    assert "left out: __pycache__/" in info.body and info.body.endswith(TRAIN)
    fields = dict(info.fields)
    assert "3 files" in fields["Code"] and f"{world.hub.user}/intern-runs" in fields["Code"]
    assert fields["Runs"] == "uv run /project/train.py (in /project)"
    assert not any("No push to the Hub" in c.text for c in info.checks)  # upload_folder in helper.py counts


async def test_a_file_is_its_own_entry(world: World) -> None:
    await write(world, {"solo.py": "print('hello')\n"})
    info = await describe(world.ctx, args(sandbox_path="solo.py"))
    assert info.snapshot is not None and info.snapshot.kind == "file"
    assert [f.path for f in info.snapshot.files] == ["solo.py"]
    assert dict(info.fields)["Runs"] == "uv run /project/solo.py (in /project)"
    message = await argument_error(world, sandbox_path="solo.py", script="other.py")
    assert "is a file, so it is the entry" in message


async def test_what_cannot_travel_is_named(world: World) -> None:
    await write(world, {"proj/train.py": TRAIN})
    await bash(world, "cd proj && head -c 3000 /dev/urandom > weights.bin && ln -s /etc/hostname host && "
                      "mkfifo pipe && mkdir -p data && ln -s data data_link")
    message = await argument_error(world, sandbox_path="proj", script="train.py")
    assert "weights.bin (2.9 KB) is binary or not UTF-8 text" in message
    assert "host is a link to /etc/hostname, outside the folder" in message
    assert "pipe is not a regular file" in message
    assert "data_link is a link to a folder" in message
    assert message.endswith("Nothing was posted, committed or launched.")


async def test_a_folder_over_the_size_limit_says_where_the_bytes_are(world: World) -> None:
    await write(world, {"proj/train.py": TRAIN})
    await bash(world, "cd proj && mkdir out && for i in 1 2 3; do head -c 8000000 /dev/zero | tr '\\0' a "
                      "> out/ckpt_$i.txt; done")
    message = await argument_error(world, sandbox_path="proj", script="train.py")
    assert "holds 4 files, 22.9 MB in all" in message and "20.0 MB of text" in message
    assert "out/ (3 files, 22.9 MB)" in message and "point sandbox_path at a subfolder" in message


async def test_missing_paths_entries_and_empty_folders(world: World) -> None:
    await write(world, {"proj/train.py": TRAIN})
    await bash(world, "mkdir -p empty")
    with pytest.raises(ToolFeedback, match="does not exist"):
        await describe(world.ctx, args(sandbox_path="nope", script="train.py"))
    assert "is an empty folder" in await argument_error(world, sandbox_path="empty", command=["ls"])
    message = await argument_error(world, sandbox_path="proj", script="main.py")
    assert "'main.py' is not a file of sandbox_path" in message and "train.py" in message
    assert "name the entry file in `script`" in await argument_error(world, sandbox_path="proj")


async def test_a_file_holding_a_secret_is_refused(world: World) -> None:
    token = world.hub.token
    await write(world, {"proj/train.py": TRAIN, "proj/keys.py": f"HF = '{token}'\n"})
    message = await argument_error(world, sandbox_path="proj", script="train.py")
    assert "keys.py (line 1)" in message and "does not commit secrets" in message
    assert token not in message


async def test_a_session_without_a_sandbox_gets_an_argument_error(world: World) -> None:
    message = await argument_error(world, sandbox_path="proj", script="train.py")
    assert "no running sandbox" in message
    assert not world.spaces.spaces  # asking did not start an empty sandbox


async def test_the_commit_happens_once_and_a_relaunch_finds_the_job(world: World) -> None:
    await write(world, {"proj/train.py": TRAIN, "proj/helper.py": HELPER})
    a = args(sandbox_path="proj", script="train.py")
    ctx = await approved(world, a)
    first = await code_pin(ctx, "proj", world.hub.user)
    again = await code_pin(ctx, "proj", world.hub.user)  # a resumed turn after a crash before the launch
    assert first == again
    repo = repo_store(world.hub).get("model", f"{world.hub.user}/intern-runs")
    assert repo is not None and repo.private
    assert sum(1 for c in repo.commits.values() if c.title.startswith("Intern run")) == 1

    result = await handle(ctx, a)
    assert not result.is_error, result.content
    assert f"Code: {first.repo} at commit {first.commit}" in result.content
    assert result.artifacts["job"]["code"] == f"{first.repo}@{first.commit}"
    again_result = await handle(ctx, a)  # the same approved call once more: no new commit, no new job
    assert not again_result.is_error
    assert len(jobs_state(world.hub).created) == 1
    assert sum(1 for c in repo.commits.values() if c.title.startswith("Intern run")) == 1

    world.ctx.deps.jobs = registry = Registry()  # the bot's record of launched jobs, as the tool sees it
    registry.add(jobs_state(world.hub).created[0].job_id)
    rerun_args = jobs_tool.parse({"operation": "rerun", "job_id": jobs_state(world.hub).created[0].job_id})
    card = await describe(world.ctx, rerun_args)  # type: ignore[arg-type]
    assert dict(card.fields)["Code"].startswith(f"{first} (runs/")
    rerun = await handle(world.ctx.for_call("call-rerun", approval_id=str(uuid.uuid4())), rerun_args)  # type: ignore[arg-type]
    assert not rerun.is_error, rerun.content
    old, new = jobs_state(world.hub).created
    assert old.labels["intern-code"] == f"{world.hub.user}/intern-runs@{first.commit}"
    assert new.volumes == old.volumes and new.labels["intern-code"] == old.labels["intern-code"]


def test_the_code_label_reads_back_as_repo_at_commit_in_both_forms() -> None:
    commit = "0a1b2c3d" * 5
    pin = CodePin("team/intern-runs", commit, "runs/x")
    assert pin.label() == f"team/intern-runs@{commit}"
    assert pin_text(pin.label()) == f"team/intern-runs@{commit}"
    assert pin_text(f"team--intern-runs--{commit}") == f"team/intern-runs@{commit}"  # launched before


async def test_a_scheduled_run_mounts_the_approved_commit(world: World) -> None:
    await write(world, {"proj/train.py": TRAIN, "proj/helper.py": HELPER})
    a = jobs_tool.parse({"operation": "scheduled run", "schedule": "@daily", "sandbox_path": "proj",
                         "command": ["python", "train.py"]})
    ctx = await approved(world, a)
    result = await handle(ctx, a)  # type: ignore[arg-type]
    assert not result.is_error, result.content
    (created,) = jobs_state(world.hub).created_schedules
    pin = await code_pin(ctx, "proj", world.hub.user)
    assert created.volumes == [pin.volume().to_dict()]
    assert created.command == ["sh", "-c", 'cd /project && exec "$@"', "sh", "python", "train.py"]
    fired = jobs_state(world.hub).fire_schedule(created.job_id)
    assert fired.to_api()["volumes"] == created.volumes


@pytest.mark.parametrize(("volume", "problem"), [
    (Volume(type="model", source="nobody/missing", mount_path="/project"), "not found or not accessible"),
    (Volume(type="model", source="{user}/code", mount_path="project"), "Invalid volume mountPath"),
    (Volume(type="model", source="{user}/code", revision="f" * 40, mount_path="/p"), "Volume revision"),
    (Volume(type="model", source="{user}/code", path="runs/none", mount_path="/p"), "Volume path runs/none"),
])
async def test_the_hub_refuses_bad_volumes(world: World, volume: Volume, problem: str) -> None:
    repo_store(world.hub).add(f"{world.hub.user}/code", files={"runs/a/x.py": "print(1)\n"})
    volume.source = volume.source.replace("{user}", world.hub.user)
    api = HfApi(endpoint=world.hub.url, token=world.hub.token)
    with pytest.raises(HfHubHTTPError, match=problem) as caught:
        await asyncio.to_thread(api.run_job, image="python:3.12", command=["ls"], volumes=[volume],
                                namespace=world.hub.user)
    assert caught.value.response.status_code == 400
    assert not jobs_state(world.hub).created
