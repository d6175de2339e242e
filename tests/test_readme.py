"""The README's settings block is pasted into `.env` by people setting Intern up: it must load as is."""

from __future__ import annotations

import re
from pathlib import Path

from dotenv import dotenv_values

from intern.bot.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("Configure (environment or a `.env` file)")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block is not None
    return "\n".join(line.strip() for line in block[1].splitlines())


def test_the_settings_block_loads_as_a_dotenv_file_one_variable_a_line(tmp_path: Path) -> None:
    block = settings_block()
    env_file = tmp_path / ".env"
    env_file.write_text(block + "\n", encoding="utf-8")
    values = dotenv_values(env_file)
    assignments = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(assignments) == len(values)  # one variable a line, nothing else on it
    for line in assignments:
        name, _, value = line.partition("=")
        assert values[name] == value and " " not in value and "#" not in value, line
    known = {str(a) for f in Settings.model_fields.values() for a in
             getattr(f.validation_alias, "choices", [f.validation_alias])}
    for name in values:
        assert name in known or name.endswith("_API_KEY"), f"{name} is not a setting Intern reads"
    for name in ("INTERN_MODEL", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "HF_TOKEN", "INTERN_APPROVERS",
                 "INTERN_DATABASE_URL", "INTERN_HTTP_PORT"):
        assert name in values


def test_the_readme_names_port_and_the_fast_demo() -> None:
    text = README.read_text(encoding="utf-8")
    assert "PORT" in text.replace("INTERN_HTTP_PORT", "") and "intern demo --fast" in text
