"""The table of training formats: the labels of the `Fits:` line, what each TRL trainer takes, and
the column namings the detection in `datasets_format` recognises. Data only; no logic.

The labels follow TRL's dataset types, plus `sft_sharegpt` and `sft_alpaca` (common shapes TRL does
not take as they are) and `stepwise` (stepwise supervision, for process reward models).
"""

from __future__ import annotations

LABELS = ("sft_messages", "sft_text", "sft_prompt_completion", "sft_sharegpt", "sft_alpaca",
          "dpo_explicit", "dpo_implicit", "kto", "grpo", "reward", "stepwise")

# What each TRL trainer accepts as it is (trainers that convert data themselves list what they convert).
TRAINER_FORMATS: dict[str, frozenset[str]] = {
    "SFTTrainer": frozenset({"sft_messages", "sft_text", "sft_prompt_completion"}),
    "DPOTrainer": frozenset({"dpo_explicit", "dpo_implicit"}),
    "ORPOTrainer": frozenset({"dpo_explicit", "dpo_implicit"}),
    "CPOTrainer": frozenset({"dpo_explicit", "dpo_implicit"}),
    "KTOTrainer": frozenset({"kto", "dpo_explicit", "dpo_implicit"}),  # it unpairs preference data
    "BCOTrainer": frozenset({"kto", "dpo_explicit", "dpo_implicit"}),
    "GRPOTrainer": frozenset({"grpo"}),
    "RLOOTrainer": frozenset({"grpo"}),
    "OnlineDPOTrainer": frozenset({"grpo"}),
    "NashMDTrainer": frozenset({"grpo"}),
    "XPOTrainer": frozenset({"grpo"}),
    "RewardTrainer": frozenset({"reward"}),
    "PRMTrainer": frozenset({"stepwise"}),
    "GKDTrainer": frozenset({"sft_messages", "sft_prompt_completion"}),
}

TRAINERS_BY_LABEL: dict[str, tuple[str, ...]] = {
    "sft_messages": ("SFTTrainer",),
    "sft_text": ("SFTTrainer",),
    "sft_prompt_completion": ("SFTTrainer",),
    "dpo_explicit": ("DPOTrainer", "KTOTrainer (unpairs it)"),
    "dpo_implicit": ("DPOTrainer", "KTOTrainer (unpairs it)"),
    "kto": ("KTOTrainer",),
    "grpo": ("GRPOTrainer", "RLOOTrainer"),
    "reward": ("RewardTrainer",),
    "stepwise": ("PRMTrainer",),
}

# --- messages -------------------------------------------------------------------------------------

MEDIA_TYPES = frozenset({"Image", "Audio", "Video", "Pdf", "Nifti"})
ROLE_KEYS = frozenset({"role", "content"})
SHAREGPT_KEYS = frozenset({"from", "value"})
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
                  "system": "system", "function_call": "assistant", "tool_call": "assistant",
                  "observation": "tool", "function_response": "tool", "tool": "tool"}
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "ipython", "function"})
TOOL_ROLES = frozenset({"tool", "ipython", "function"})
CONVERSATION_NAMES = ("conversations", "conversation", "dialog", "dialogue", "chat", "turns", "messages")

# --- column namings -----------------------------------------------------------------------------------

PROMPT_ALIASES = ("prompt", "question", "problem", "instruction", "query", "input")
ANSWER_ALIASES = ("completion", "answer", "solution", "response", "output", "answers", "target")
CONTEXT_ALIASES = ("context", "passage", "document")

# Instruction-input-output data under its usual namings (Alpaca, Dolly, Evol-Instruct, Platypus…).
ALPACA_INSTRUCTION = ("instruction", "instructions")
ALPACA_INPUT = ("input", "context", "inputs")
ALPACA_OUTPUT = ("output", "response", "outputs")

# Stepwise supervision (TRL's PRM format): a prompt, the steps of a completion, one label per step.
STEPWISE_COMPLETIONS = "completions"
STEPWISE_LABELS = "labels"

# Two responses side by side and a column that says which one won: pairwise judgements (Chatbot
# Arena, SHP, PKU-SafeRLHF, HelpSteer3), not preference data until they are paired as chosen/rejected.
RESPONSE_BASES = ("conversation", "response", "completion", "answer", "output", "human_ref", "summary",
                  "generation", "reply")
PAIR_SUFFIXES = (("_a", "_b"), ("_A", "_B"), ("_0", "_1"), ("_1", "_2"), ("1", "2"))
WINNER_NAMES = ("winner", "better_response_id", "preferred", "preference", "overall_preference", "choice",
                "labels", "label")
# A list of candidate responses and the index of the one chosen (summarize_from_feedback).
CANDIDATE_LISTS = ("summaries", "responses", "candidates", "completions", "answers", "generations")
PREFERENCE_PROMPTS = ("prompt", "history", "question", "instruction", "context", "info")
