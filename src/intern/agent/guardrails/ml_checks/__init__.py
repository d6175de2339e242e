"""ML checks for a job's approval card, computed by code from the script's syntax tree and Hub metadata.

- `reading`: the script's syntax tree -> `ScriptFacts` (data, model, trainer and the `Recipe`)
- `commands`: the job's command line (inline code, `trl` runs, launchers and their processes)
- `checks`: the lines on the card (push, dataset vs trainer, hardware, timeout)
"""

from intern.agent.guardrails.ml_checks.checks import job_checks
from intern.agent.guardrails.ml_checks.commands import read_trl_command
from intern.agent.guardrails.ml_checks.reading import DatasetRef, ScriptFacts, read_script
from intern.agent.guardrails.ml_checks.recipe import Recipe

__all__ = ["DatasetRef", "Recipe", "ScriptFacts", "job_checks", "read_script", "read_trl_command"]
