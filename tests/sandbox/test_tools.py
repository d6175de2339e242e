"""The sandbox tools end to end: the real HfApi creates a private Space on the Hub stand-in, which builds
it from the uploaded files and runs the shipped exec server as a subprocess; the tools then talk to that
server over loopback. The registry is the bot's, on a real database."""

from __future__ import annotations

import asyncio

import pytest
from huggingface_hub import HfApi

from intern.agent.context_deps import ToolContext
from intern.agent.errors import ToolArgumentError
from intern.agent.hub import HubClient
from intern.agent.tools.base import ApprovalInfo
from intern.agent.tools.sandbox import (
    headers,
    sandbox_bash_tool,
    sandbox_create_tool,
    sandbox_edit_tool,
    sandbox_read_tool,
    sandbox_tools,
    sandbox_write_tool,
    space_url,
)
from intern.sandbox import TOKEN_ENV, TOKEN_HEADER, space_files
from intern.standins.hub_repos import repo_store
from tests.sandbox.support import World, hub_spaces, rows, run


def test_the_five_tools_and_their_contract_arguments() -> None:
    names = [t.name for t in sandbox_tools]
    assert names == ["sandbox_create", "sandbox_bash", "sandbox_read", "sandbox_write", "sandbox_edit"]
    props = {t.name: set(t.schema()["function"]["parameters"]["properties"]) for t in sandbox_tools}
    assert props["sandbox_create"] == {"hardware"}
    assert {"command", "timeout"} <= props["sandbox_bash"]
    assert "path" in props["sandbox_read"]
    assert {"path", "content"} <= props["sandbox_write"]
    assert {"path", "old_str", "new_str", "replace_all"} <= props["sandbox_edit"]
    assert not any(t.read_only for t in sandbox_tools)  # never offered to the research sub-agent


async def test_first_call_starts_a_private_free_sandbox_then_reuses_it(world: World) -> None:
    first = await run(world.ctx, sandbox_bash_tool, command="echo hello from $SPACE_ID")
    assert not first.is_error, first.content
    assert first.content.startswith("[Started a new sandbox on cpu-basic")
    [space_id] = await hub_spaces(world)
    assert f"hello from {space_id}\n[exit code 0" in first.content

    second = await run(world.ctx, sandbox_bash_tool, command="pwd")
    assert not second.is_error and not second.content.startswith("[Started")
    assert await hub_spaces(world) == [space_id]

    repo = repo_store(world.hub).get("space", space_id)
    assert repo is not None and repo.private and repo.sdk == "docker"
    assert {p: repo.head().files[p] for p in space_files()} == space_files()
    space = world.spaces.spaces[space_id]
    assert space.hardware == "cpu-basic" and space.current_hardware == "cpu-basic"
    token = space.secrets[TOKEN_ENV]
    assert set(space.secrets) == {TOKEN_ENV} and world.hub.token not in token and len(token) >= 32
    [row] = await rows(world)
    assert (row.status, row.space_id, row.hardware, row.hourly_usd) == ("running", space_id, "cpu-basic", 0.0)
    assert row.url == f"http://{space.domain}"
    assert row.token_ciphertext and token not in row.token_ciphertext


async def test_files_through_the_tools(world: World) -> None:
    made = await run(world.ctx, sandbox_write_tool, path="src/train.py",
                     content="def main():\n    lr = 1e-3\n    print(lr)\n\n\nmain()\n")
    assert "created" in made.content and not made.is_error
    page = await run(world.ctx, sandbox_read_tool, path="src/train.py", offset=2, limit=1)
    assert page.content.endswith("lines 2-2 of 6 (more: read again with offset=3)\n     2\t    lr = 1e-3")
    edited = await run(world.ctx, sandbox_edit_tool, path="src/train.py", old_str="lr = 1e-3\nprint(lr)",
                       new_str="lr = 3e-4\nprint('lr', lr)")
    assert not edited.is_error, edited.content
    assert "matched ignoring indentation" in edited.content and "     3\t    print('lr', lr)" in edited.content
    ran = await run(world.ctx, sandbox_bash_tool, command="python3 src/train.py")
    assert ran.content.startswith("lr 0.0003\n[exit code 0")

    await run(world.ctx, sandbox_bash_tool, command="echo 'made by a command' > notes.txt")
    refused = await run(world.ctx, sandbox_write_tool, path="notes.txt", content="overwrite")
    assert refused.is_error and "has not been read" in refused.content
    refused = await run(world.ctx, sandbox_edit_tool, path="notes.txt", old_str="made", new_str="written")
    assert refused.is_error and "has not been read" in refused.content
    ambiguous = await run(world.ctx, sandbox_edit_tool, path="src/train.py", old_str="lr", new_str="rate")
    assert ambiguous.is_error and "matches" in ambiguous.content and "replace_all" in ambiguous.content
    empty = await run(world.ctx, sandbox_write_tool, path="empty.txt", content="")
    assert not empty.is_error
    assert (await run(world.ctx, sandbox_read_tool, path="empty.txt")).content.endswith("empty.txt is empty.")


async def test_bash_output_timeout_and_exit_code(world: World) -> None:
    long = await run(world.ctx, sandbox_bash_tool, command="python3 -c \"print('x' * 60000)\"")
    assert "output cut" in long.content and len(long.content) < 25_500
    slow = await run(world.ctx, sandbox_bash_tool, command="echo before; sleep 30", timeout="1s")
    assert slow.is_error and slow.content.startswith("before\n[timed out after 1s")
    failed = await run(world.ctx, sandbox_bash_tool, command="echo \x1b[31mred\x1b[0m; exit 4", timeout=20)
    assert failed.is_error and failed.content.startswith("red\n[exit code 4, ")  # colours taken out
    with pytest.raises(ToolArgumentError, match="timeout"):
        sandbox_bash_tool.parse({"command": "true", "timeout": "2 weeks"})
    with pytest.raises(ToolArgumentError, match="between"):
        sandbox_bash_tool.parse({"command": "true", "timeout": "2h"})


async def test_parallel_first_calls_share_one_sandbox(world: World) -> None:
    results = await asyncio.gather(*(run(world.ctx, sandbox_bash_tool, command=f"echo {i}") for i in range(3)))
    assert all(not r.is_error for r in results)
    assert sum(r.content.startswith("[Started") for r in results) == 1
    assert len(await hub_spaces(world)) == 1 and len(await rows(world)) == 1


async def test_paid_hardware_needs_a_spend_approval_priced_per_hour(world: World) -> None:
    free = sandbox_create_tool.parse({"hardware": "cpu-basic"})
    paid = sandbox_create_tool.parse({"hardware": "t4-small"})
    assert sandbox_create_tool.policy(free) == "none" and sandbox_create_tool.policy(paid) == "spend"
    assert sandbox_create_tool.describe is not None
    info: ApprovalInfo = await sandbox_create_tool.describe(world.ctx, paid)
    assert (info.kind, info.flavor, info.hourly_usd, info.estimated_cost_usd) == ("spend", "t4-small", 0.4, 0.4)
    assert any("0.40 per hour" in value for _, value in info.fields)
    assert world.hub.calls("/api/spaces/hardware")  # the price is the Hub's Spaces price
    with pytest.raises(ToolArgumentError, match="unknown Space hardware"):
        sandbox_create_tool.parse({"hardware": "h100-mega"})
    with pytest.raises(ToolArgumentError):
        sandbox_create_tool.parse({"hardware": "zero-a10g"})  # Gradio only


async def test_create_on_other_hardware_replaces_the_sandbox(world: World) -> None:
    await run(world.ctx, sandbox_bash_tool, command="touch here")
    [old] = await hub_spaces(world)
    same = await run(world.ctx, sandbox_create_tool, hardware="cpu-basic")
    assert "already running on cpu-basic" in same.content and await hub_spaces(world) == [old]

    made = await run(world.ctx, sandbox_create_tool, hardware="t4-small")
    assert not made.is_error, made.content
    assert "on t4-small ($0.40/hour)" in made.content and "replaces the sandbox on cpu-basic" in made.content
    [new] = await hub_spaces(world)
    assert new != old and world.spaces.spaces[new].current_hardware == "t4-small"
    assert world.spaces.spaces[new].sleep_time == 3600  # a paid Space sleeps when idle even without us
    gone = await run(world.ctx, sandbox_bash_tool, command="ls here")
    assert gone.is_error and "No such file" in gone.content
    statuses = [(r.space_id, r.status, r.hourly_usd) for r in await rows(world)]
    assert statuses == [(old, "deleted", 0.0), (new, "running", 0.4)]


@pytest.mark.parametrize("stage", ["BUILD_ERROR", "RUNTIME_ERROR"])
async def test_a_space_that_fails_to_start_is_deleted_and_explained(world: World, stage: str) -> None:
    world.spaces.fail_builds.append((stage, "ERROR: No matching distribution found for uv==99"))
    result = await run(world.ctx, sandbox_bash_tool, command="echo never")
    assert result.is_error
    assert f"failed to start ({stage}): ERROR: No matching distribution found for uv==99" in result.content
    assert result.content.endswith("The Space was deleted: nothing is left behind.")
    assert await hub_spaces(world) == [] and world.spaces.running() == []
    [row] = await rows(world)
    assert row.status == "deleted" and stage in (row.last_error or "")

    again = await run(world.ctx, sandbox_bash_tool, command="echo retried")
    assert not again.is_error and "retried" in again.content


async def test_a_passing_hub_failure_while_starting_is_waited_out(world: World) -> None:
    world.spaces.fail_runtime = 2
    result = await run(world.ctx, sandbox_bash_tool, command="echo up")
    assert not result.is_error and "up" in result.content
    assert world.spaces.fail_runtime == 0


async def test_a_server_that_crashes_at_start_is_a_runtime_error(world: World,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> dict[str, bytes]:
        files = space_files()
        files["server.py"] = b"import sys\nprint('boom: cannot start', file=sys.stderr)\nsys.exit(3)\n"
        return files

    monkeypatch.setattr("intern.agent.tools.sandbox.space_files", broken)
    result = await run(world.ctx, sandbox_read_tool, path="x")
    assert result.is_error and "(RUNTIME_ERROR)" in result.content and "boom: cannot start" in result.content
    assert await hub_spaces(world) == []


async def test_a_space_deleted_behind_our_back(world: World) -> None:
    await run(world.ctx, sandbox_bash_tool, command="true")
    [space_id] = await hub_spaces(world)
    api = HfApi(endpoint=world.hub.url, token=world.hub.token)
    await asyncio.to_thread(api.delete_repo, space_id, repo_type="space")
    lost = await run(world.ctx, sandbox_bash_tool, command="true")
    assert lost.is_error and "no longer exists" in lost.content
    fresh = await run(world.ctx, sandbox_bash_tool, command="echo again")
    assert fresh.content.startswith("[Started a new sandbox") and "again" in fresh.content


async def test_sessions_have_their_own_sandboxes(world: World) -> None:
    other = await world.new_session("1700000000.000200")
    await run(world.ctx, sandbox_write_tool, path="mine.txt", content="a")
    seen = await run(other, sandbox_bash_tool, command="ls")
    assert "mine.txt" not in seen.content and len(await hub_spaces(world)) == 2


READ_TOKEN = "hf_readOnlyTokenForSandboxes0123456789ab"


def with_read_token(world: World, read: str | None) -> None:
    world.ctx.hub = HubClient(endpoint=world.hub.url, token=world.hub.token, namespace=world.hub.user,
                              read_token=read)


def test_only_the_read_token_goes_to_the_hubs_space_domain_never_the_write_token(world: World) -> None:
    hosted_url = "https://intern-test-intern-sandbox-1.hf.space"
    assert headers(world.ctx, hosted_url, "sandbox-token") == {TOKEN_HEADER: "sandbox-token"}
    with_read_token(world, world.hub.token)  # the write token given as the read one is still not sent
    assert headers(world.ctx, hosted_url, "sandbox-token") == {TOKEN_HEADER: "sandbox-token"}
    with_read_token(world, READ_TOKEN)
    loopback = headers(world.ctx, "http://127.0.0.1:9999", "sandbox-token")
    assert loopback == {TOKEN_HEADER: "sandbox-token"}
    hosted = headers(world.ctx, hosted_url, "sandbox-token")
    assert hosted == {TOKEN_HEADER: "sandbox-token", "Authorization": f"Bearer {READ_TOKEN}"}
    assert "Authorization" not in headers(world.ctx, "https://example.com", "t")
    assert "Authorization" not in headers(world.ctx, "https://evil.hf.space.example.com", "t")


async def test_the_sandbox_gets_the_read_token_as_hf_token_and_never_the_write_token(world: World) -> None:
    with_read_token(world, READ_TOKEN)
    out = await run(world.ctx, sandbox_bash_tool, command="env")
    assert not out.is_error, out.content
    assert f"HF_TOKEN={READ_TOKEN}" in out.content and world.hub.token not in out.content
    [space_id] = await hub_spaces(world)
    space = world.spaces.spaces[space_id]
    assert space.secrets["HF_TOKEN"] == READ_TOKEN
    assert world.hub.token not in {*space.secrets.values(), *space.variables.values()}


def test_https_except_on_loopback() -> None:
    ready = [{"domain": "someone-box.hf.space", "stage": "READY"}]
    assert space_url({"domains": ready}) == "https://someone-box.hf.space"
    assert space_url({"domains": [{"domain": "127.0.0.1:7860", "stage": "READY"}]}) == "http://127.0.0.1:7860"
    assert space_url({"domains": [{"domain": "localhost:80"}]}) == "http://localhost:80"
    assert space_url({"domains": [{"domain": "127.0.0.1.nip.io:80"}]}) == "https://127.0.0.1.nip.io:80"
    assert space_url({}) is None


async def test_without_a_registry_the_tools_say_so(world: World) -> None:
    bare = ToolContext(session_id=world.session_id, config=world.ctx.config, hub=world.ctx.hub,
                       http=world.ctx.http, prices=world.ctx.prices, plan=world.ctx.plan, events=world.ctx.events)
    result = await run(bare, sandbox_bash_tool, command="true")
    assert result.is_error and "no sandbox registry" in result.content
