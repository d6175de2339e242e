"""Prompts are data shipped with the package: each renders with strict undefined variables, the system
prompt's tables come from the pricing module, and an installed wheel carries and loads them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import jinja2
import pytest

from intern.agent import prompts
from intern.agent.guardrails.ml_checks.guide import size_guide_markdown
from intern.agent.pricing import STATIC_FLAVORS, Flavor, hardware_table_markdown

ROOT = Path(__file__).resolve().parents[2]

# Every prompt file and the variables it takes; a new prompt must be added here to be tested.
VARIABLES: dict[str, dict[str, Any]] = {
    "system.md": {"today": "2025-06-01", "hub_namespace": "acme", "hardware_table": "HW", "size_guide": "SG"},
    "research.md": {"today": "2025-06-01"},
    "compaction.md": {},
}


def test_every_prompt_file_is_known_here() -> None:
    assert set(prompts.names()) == set(VARIABLES)


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_each_prompt_renders_with_its_variables_and_nothing_else(name: str) -> None:
    text = prompts.render(name, **VARIABLES[name])
    assert "{{" not in text and "{%" not in text and len(text) > 500
    for missing in VARIABLES[name]:
        partial = {k: v for k, v in VARIABLES[name].items() if k != missing}
        with pytest.raises(jinja2.UndefinedError):
            prompts.render(name, **partial)


def test_the_system_prompt_tables_come_from_the_pricing_data() -> None:
    text = prompts.system_prompt(today="2025-06-01", namespace="acme")
    assert hardware_table_markdown() in text and size_guide_markdown() in text
    assert "This session began on 2025-06-01" in text and "`acme`" in text
    live = [Flavor("gpu-test-x9", "Test GPU", 7.25, 1, "X9", 99), *STATIC_FLAVORS[:2]]
    text = prompts.system_prompt(today="2025-06-01", namespace=None, flavors=live)
    assert "| gpu-test-x9 | 1x X9 | 99 GB | ? | 7.25 |" in text and "| h200x8 |" not in text
    assert "| l4x4 | 4x L4 | 24 GB | yes |" in hardware_table_markdown()  # per GPU, never the sum
    assert "| t4-small | 1x T4 | 16 GB | no |" in hardware_table_markdown()
    assert "(the Hub token's owner)" in text


def test_the_system_prompt_mandates_research_a_checklist_and_fixed_scope() -> None:
    text = prompts.system_prompt(today="2025-06-01", namespace="acme")
    research = section(text, "# Research comes before implementation")
    for step in ("landmark papers", "citation graph", "method and experiment sections", "Extract the recipe",
                 "Verify the dataset", "Verify the model"):
        assert step in research
    checklist = section(text, "# Pre-flight checklist")
    items = ["Reference recipe", "Dataset format verified", "Smoke test result", "Push target",
             "Timeout, with its reason", "Monitoring"]
    assert [checklist.index(f"**{i}**") for i in items] == sorted(checklist.index(f"**{i}**") for i in items)
    failures = section(text, "# Known failure modes")
    assert "push_to_hub=True" in failures and "30 minutes" in failures
    ladder = failures[failures.index("Out of GPU memory"):]
    rungs = [ladder.index(r) for r in ("gradient_accumulation_steps", "gradient_checkpointing=True", "more memory")]
    assert rungs == sorted(rungs)
    assert "Never silently switch method" in ladder and "sequence length" in ladder
    scope = section(text, "# Scope belongs to the team")
    assert "without asking in the thread" in scope


def test_the_system_prompt_sends_the_agent_to_the_teams_earlier_runs_before_a_plan() -> None:
    text = prompts.system_prompt(today="2025-06-01", namespace="acme")
    steps = section(text, "# How a task goes")
    assert "before\n   planning any training run, call `team_history`" in steps
    checklist = section(text, "# Pre-flight checklist")
    assert "**What earlier runs teach** — from `team_history`" in checklist
    assert checklist.index("**What earlier runs teach**") < checklist.index("**Dataset format verified**")


def test_the_research_prompt_is_read_only_and_asks_for_a_ranked_recipe_table() -> None:
    text = prompts.research_prompt(today="2025-06-01")
    assert "read-only" in text
    assert "| rank | paper | result | dataset (format verified?) | method and hyper-parameters |" in text
    assert "**Sources**" in text and "verified" in text


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n# ", start + len(heading))
    return text[start:end if end != -1 else len(text)]


def test_an_installed_wheel_carries_and_loads_the_prompts(tmp_path: Path) -> None:
    """Build the wheel from a copy of the project, install it into a fresh venv (no dependencies; the
    current site-packages stay visible for jinja2 and friends), and render the prompts from there."""
    src = tmp_path / "project"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", src / "pyproject.toml")
    readme = ROOT / "README.md"
    if readme.exists():
        shutil.copy(readme, src / "README.md")
    else:  # the lead's README may not exist yet; the build only needs the file to be there
        (src / "README.md").write_text("# intern\n")
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(src)])
    (wheel,) = dist.glob("intern-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)])
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    # The venv's own site-packages comes first; ours is appended by a plain path entry, which does not
    # run our editable-install hook, so `intern` can only come from the wheel.
    (site / "zz_outer_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet",
         str(wheel)])

    probe = (
        "import intern, intern.agent.prompts as p\n"
        "print(intern.__file__)\n"
        "print(sorted(p.names()))\n"
        "text = p.system_prompt(today='2025-06-01', namespace='acme')\n"
        "from intern.agent.pricing import hardware_table_markdown\n"
        "assert hardware_table_markdown() in text\n"
        "assert 'ranked' in p.research_prompt(today='2025-06-01')\n"
        "print(len(p.compaction_prompt()) > 200)\n"
    )
    out = run([str(python), "-c", probe], cwd=tmp_path).splitlines()
    assert Path(out[0]).is_relative_to(venv), out[0]
    assert out[1] == "['compaction.md', 'research.md', 'system.md']"
    assert out[2] == "True"


def run(cmd: list[str], cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME",)}
    # keep the network guard's folder on PYTHONPATH, drop anything that would put our src/ first
    env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                        if p and not Path(p).resolve().is_relative_to(ROOT / "src"))
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd[:4]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout
