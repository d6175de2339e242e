"""The cases of the approval card's checks, grouped by training method."""

from tests.mlchecks.cases import grpo, loops, preference, sft
from tests.mlchecks.cases.world import Case

ALL: list[Case] = [*sft.CASES, *preference.CASES, *grpo.CASES, *loops.CASES]
