"""The exec server shipped in the sandbox Space, run for real in a subprocess on loopback, laid out as in
the Space (server.py beside intern_edit.py)."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from pathlib import Path

from tests.sandbox.support import Server


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that never reaps it counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


async def wait_dead(pids: list[int], seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        survivors = [p for p in pids if alive(p)]
        if not survivors:
            return []
        await asyncio.sleep(0.05)
    return [p for p in pids if alive(p)]


# ---------------------------------------------------------------- authentication

async def test_every_route_needs_the_token_but_health(server: Server) -> None:
    assert (await server.client.get(f"{server.url}/health")).status_code == 200
    for route in ("bash", "read", "write", "edit"):
        missing = await server.client.post(f"{server.url}/{route}", json={"command": "touch pwned", "path": "x"})
        wrong = await server.post(route, {"command": "touch pwned", "path": "x", "content": "x"},
                                  token=server.token[:-1] + "x")
        assert missing.status_code == 401 and wrong.status_code == 401
        # the server hangs up on a caller without the token, and says so: no request is sent down a dead line
        assert missing.headers["connection"] == "close" and wrong.headers["connection"] == "close"
        assert "token" in wrong.json()["error"]
    assert not (server.workdir / "pwned").exists() and not (server.workdir / "x").exists()


async def test_commands_never_see_the_token(server: Server) -> None:
    body = await server.ok("bash", command="echo ${INTERN_SANDBOX_TOKEN:-unset}; env", timeout=10)
    assert body["output"].startswith("unset\n")
    assert server.token not in body["output"]


# ---------------------------------------------------------------- bash

async def test_bash_runs_in_the_work_folder_with_stderr_and_exit_code(server: Server) -> None:
    body = await server.ok("bash", command="pwd; echo out; echo err >&2; exit 3", timeout=10)
    assert body["exit_code"] == 3 and not body["timed_out"]
    assert body["output"] == f"{server.workdir}\nout\nerr\n"


async def test_timeout_kills_the_command_and_everything_it_started(server: Server) -> None:
    # a child that spawns grandchildren: one in the group, one in a subshell, one that left the group (setsid)
    command = ("sleep 300 & echo $! > pids; "
               "(sleep 301 & echo $! >> pids; sleep 302) & echo $! >> pids; "
               "setsid sleep 303 & echo $! >> pids; "
               "echo started; wait")
    started = time.monotonic()
    body = await server.ok("bash", command=command, timeout=1)
    assert body["timed_out"] and body["output"] == "started\n"
    assert time.monotonic() - started < 10
    pids = [int(p) for p in (server.workdir / "pids").read_text().split()]
    assert len(pids) == 4
    assert await wait_dead(pids) == []


async def test_a_background_command_outlives_its_call_until_the_server_stops(server: Server) -> None:
    body = await server.ok("bash", command="nohup sleep 300 > /dev/null 2>&1 & echo $!", timeout=10)
    pid = int(body["output"].strip())
    await asyncio.sleep(0.2)
    assert alive(pid)
    server.proc.terminate()
    server.proc.wait(timeout=10)
    assert await wait_dead([pid]) == []


async def test_long_output_is_cut_head_and_tail_with_a_note(server: Server) -> None:
    body = await server.ok("bash", command="python3 -c \"print('A' * 30000 + 'END')\"", timeout=30)
    out = body["output"]
    assert body["output_bytes"] == 30004
    assert out.startswith("A" * 10_000) and out.endswith("AEND\n")
    assert "output cut: 5,004 characters omitted" in out
    assert len(out) < 25_000 + 300

    body = await server.ok("bash", command="head -c 5000000 /dev/zero | tr '\\0' 'z'; echo TAIL", timeout=30)
    assert body["output_bytes"] == 5_000_005
    assert body["output"].endswith("zTAIL\n") and "bytes omitted" in body["output"]
    assert len(body["output"]) < 25_300


async def test_bad_requests_get_a_reason(server: Server) -> None:
    r = await server.post("bash", {"command": "true", "timeout": 0})
    assert r.status_code == 400 and "timeout" in r.json()["error"]
    r = await server.post("read", {"path": ""})
    assert r.status_code == 400 and "path" in r.json()["error"]
    r = await server.post("nope", {})
    assert r.status_code == 404


# ---------------------------------------------------------------- read

async def test_read_pages_with_line_numbers(server: Server) -> None:
    (server.workdir / "notes.txt").write_text("".join(f"line {i}\n" for i in range(1, 51)))
    body = await server.ok("read", path="notes.txt", offset=10, limit=5)
    assert body["content"].split("\n") == [f"{i:6d}\tline {i}" for i in range(10, 15)]
    assert (body["start"], body["end"], body["total_lines"], body["next_offset"]) == (10, 14, 50, 15)
    last = await server.ok("read", path=str(server.workdir / "notes.txt"), offset=48)
    assert last["end"] == 50 and last["next_offset"] is None
    r = await server.post("read", {"path": "notes.txt", "offset": 51})
    assert r.status_code == 400 and "50 lines" in r.json()["error"]


async def test_read_stops_a_page_at_the_output_limit_and_cuts_long_lines(server: Server) -> None:
    (server.workdir / "wide.txt").write_text(("x" * 1000 + "\n") * 100 + "y" * 5000 + "\n")
    body = await server.ok("read", path="wide.txt")
    assert 20 <= body["end"] < 30 and body["next_offset"] == body["end"] + 1
    assert len(body["content"]) <= 25_000
    tail = await server.ok("read", path="wide.txt", offset=101)
    assert tail["content"].endswith("y" * 2000 + " ... [3,000 more characters on this line]")


async def test_read_refuses_binary_files_folders_and_missing_files(server: Server) -> None:
    (server.workdir / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    r = await server.post("read", {"path": "blob.bin"})
    assert r.status_code == 400 and "binary" in r.json()["error"]
    r = await server.post("read", {"path": "."})
    assert r.status_code == 400 and "folder" in r.json()["error"]
    r = await server.post("read", {"path": "missing.txt"})
    assert r.status_code == 404 and "does not exist" in r.json()["error"]


# ---------------------------------------------------------------- write

async def test_a_new_file_needs_no_read_and_folders_are_created(server: Server) -> None:
    body = await server.ok("write", path="pkg/sub/mod.py", content="x = 1\n")
    assert body["created"] and body["bytes"] == 6
    assert (server.workdir / "pkg/sub/mod.py").read_text() == "x = 1\n"


async def test_overwrite_requires_a_read_of_the_current_content(server: Server) -> None:
    target = server.workdir / "train.py"
    target.write_text("print('v1')\n")
    r = await server.post("write", {"path": "train.py", "content": "print('v2')\n"})
    assert r.status_code == 409 and "has not been read" in r.json()["error"]
    assert target.read_text() == "print('v1')\n"

    await server.ok("read", path="train.py")
    assert not (await server.ok("write", path="train.py", content="print('v2')\n"))["created"]
    assert target.read_text() == "print('v2')\n"

    await server.ok("bash", command="echo \"print('v3')\" >> train.py", timeout=10)
    r = await server.post("write", {"path": "train.py", "content": "print('v4')\n"})
    assert r.status_code == 409 and "changed since it was last read" in r.json()["error"]
    await server.ok("read", path="train.py")
    await server.ok("write", path="train.py", content="print('v4')\n")
    assert target.read_text() == "print('v4')\n"


async def test_write_is_atomic(server: Server) -> None:
    target = server.workdir / "big.txt"
    contents = [("a" * 4_000_000).encode(), ("b" * 4_000_000).encode()]
    target.write_bytes(contents[0])
    target.chmod(0o751)
    inode = target.stat().st_ino
    await server.ok("read", path="big.txt", limit=1)
    await server.ok("write", path="big.txt", content=contents[1].decode())
    # the new file was made beside the old one while that one still existed, then renamed over it
    assert target.stat().st_ino != inode
    partial: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = target.read_bytes()
            if data not in contents:
                partial.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 9):
            await server.ok("write", path="big.txt", content=contents[i % 2].decode())
    finally:
        stop.set()
        thread.join()
    assert partial == []  # a reader saw the old file or the new one, never a part
    assert target.read_bytes() == contents[0]
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert sorted(os.listdir(server.workdir)) == ["big.txt"]  # no temporary file left


# ---------------------------------------------------------------- edit

SCRIPT = ("def train(model):\n"
          "    lr = 1e-3   \n"
          "    for step in range(10):\n"
          "        loss = model(step)\n"
          "        print(f\"step {step} \u2014 loss\")\n"
          "    return model\n")


async def prepared(server: Server, name: str = "train.py", text: str = SCRIPT) -> Path:
    path = server.workdir / name
    path.write_text(text)
    await server.ok("read", path=name)
    return path


async def test_edit_needs_a_read_first(server: Server) -> None:
    (server.workdir / "train.py").write_text(SCRIPT)
    r = await server.post("edit", {"path": "train.py", "old_str": "range(10)", "new_str": "range(20)"})
    assert r.status_code == 409 and "Read it first" in r.json()["error"]
    r = await server.post("edit", {"path": "nothing.py", "old_str": "a", "new_str": "b"})
    assert r.status_code == 404


async def test_edit_pass_1_exact(server: Server) -> None:
    path = await prepared(server)
    body = await server.ok("edit", path="train.py", old_str="range(10)", new_str="range(20)")
    assert body["match"] == "exact" and body["replacements"] == 1
    assert path.read_text() == SCRIPT.replace("range(10)", "range(20)")
    assert "     3\t    for step in range(20):" in body["snippet"]


async def test_edit_pass_2_trailing_whitespace(server: Server) -> None:
    path = await prepared(server)
    body = await server.ok("edit", path="train.py", old_str="    lr = 1e-3\n    for step in range(10):\n",
                           new_str="    lr = 2e-4\n    for step in range(10):\n")
    assert body["match"] == "ignoring trailing whitespace"
    assert path.read_text() == SCRIPT.replace("    lr = 1e-3   \n", "    lr = 2e-4\n")


async def test_edit_pass_3_indentation(server: Server) -> None:
    path = await prepared(server)
    body = await server.ok("edit", path="train.py", old_str="loss = model(step)",
                           new_str="loss = model(step)\nloss.backward()")
    assert body["match"] == "exact"  # a fragment matches exactly first
    path = await prepared(server)
    body = await server.ok("edit", path="train.py", old_str="for step in range(10):\n    loss = model(step)",
                           new_str="for step in range(5):\n    loss = model(step)\n    loss.backward()")
    assert body["match"] == "ignoring indentation"
    assert ("    for step in range(5):\n        loss = model(step)\n        loss.backward()\n"
            in path.read_text())


async def test_edit_pass_4_unicode(server: Server) -> None:
    path = await prepared(server)
    body = await server.ok("edit", path="train.py", old_str='print(f"step {step} - loss")',
                           new_str='print(f"step {step}: loss")')
    assert body["match"] == "ignoring indentation and unicode dashes, quotes and spaces"
    assert '        print(f"step {step}: loss")\n' in path.read_text()


async def test_edit_ambiguity_is_refused_and_replace_all_changes_every_place(server: Server) -> None:
    path = await prepared(server, "cfg.py", "batch = 8\nother = 1\nbatch = 8\n")
    r = await server.post("edit", {"path": "cfg.py", "old_str": "batch = 8", "new_str": "batch = 16"})
    assert r.status_code == 422 and "matches 2 places" in r.json()["error"]
    assert path.read_text() == "batch = 8\nother = 1\nbatch = 8\n"
    body = await server.ok("edit", path="cfg.py", old_str="batch = 8", new_str="batch = 16", replace_all=True)
    assert body["replacements"] == 2 and path.read_text() == "batch = 16\nother = 1\nbatch = 16\n"


async def test_edits_chain_without_rereading_but_not_after_an_outside_change(server: Server) -> None:
    path = await prepared(server)
    await server.ok("edit", path="train.py", old_str="range(10)", new_str="range(20)")
    await server.ok("edit", path="train.py", old_str="range(20)", new_str="range(30)")
    path.write_text(path.read_text() + "# touched\n")
    r = await server.post("edit", {"path": "train.py", "old_str": "range(30)", "new_str": "range(40)"})
    assert r.status_code == 409 and "changed since" in r.json()["error"]


async def test_the_servers_own_environment_and_command_line_do_not_hold_the_token(server: Server) -> None:
    body = await server.ok("bash", command="cat /proc/$PPID/environ /proc/$PPID/cmdline 2>&1; "
                                           "tr '\\0' '\\n' < /proc/$PPID/environ 2>&1 | grep -c SANDBOX_TOKEN=",
                           timeout=10)
    assert server.token not in body["output"]
    environ = await asyncio.to_thread(Path(f"/proc/{server.proc.pid}/environ").read_bytes)  # as root sees it
    assert server.token.encode() not in environ


async def test_a_caller_without_the_token_is_refused_before_its_body_is_read(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /bash HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 50000000\r\n\r\n{")  # a body that never comes
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), timeout=5)
    assert status.startswith(b"HTTP/1.1 401")
    writer.close()
