"""The format classifier on schemas of real public datasets, and the conversation analysis."""

from __future__ import annotations

from typing import Any

import pytest

from intern.agent.datasets_format import (
    LABELS,
    TRAINER_FORMATS,
    analyse_messages,
    classify,
    column_from_type,
    parse_features,
)
from tests.datasets.conftest import SCHEMAS, load_schema

# The exact set each dataset fits as it is, per TRL's dataset types.
EXPECTED: dict[str, set[str]] = {
    "HuggingFaceH4/ultrachat_200k": {"sft_messages", "grpo"},
    "trl-lib/Capybara": {"sft_messages"},
    "OpenAssistant/oasst1": set(),  # one message per row: a tree to rebuild, not text to train on
    "timdettmers/openassistant-guanaco": {"sft_text"},
    "tatsu-lab/alpaca": {"sft_alpaca", "sft_text"},  # its 'text' column holds the formatted example
    "yahma/alpaca-cleaned": {"sft_alpaca"},
    "philschmid/guanaco-sharegpt-style": {"sft_sharegpt"},
    "teknium/OpenHermes-2.5": {"sft_sharegpt"},
    "Anthropic/hh-rlhf": {"dpo_implicit", "reward"},
    "trl-lib/ultrafeedback_binarized": {"dpo_implicit", "reward"},
    # a text prompt next to conversational chosen/rejected: TRL extracts the prompt from the pair
    "HuggingFaceH4/ultrafeedback_binarized": {"sft_messages", "dpo_implicit", "grpo", "reward"},
    "argilla/distilabel-intel-orca-dpo-pairs": set(),  # chosen/rejected are bare answers, prompt is 'input'
    "argilla/ultrafeedback-binarized-preferences-cleaned": {"dpo_implicit", "grpo", "reward"},
    "argilla/dpo-mix-7k": {"dpo_implicit", "reward"},
    "mlabonne/orpo-dpo-mix-40k": {"dpo_implicit", "grpo", "reward"},
    "trl-lib/kto-mix-14k": {"kto", "grpo"},
    "openai/gsm8k": set(),
    "AI-MO/NuminaMath-TIR": {"sft_messages"},
    "trl-lib/ultrafeedback-prompt": {"grpo"},
    "trl-lib/tldr": {"sft_prompt_completion", "grpo"},
    "trl-lib/tldr-preference": {"dpo_explicit", "grpo", "reward"},
    "trl-lib/math_shepherd": {"grpo"},
    "stanfordnlp/imdb": set(),
    "dair-ai/emotion": set(),
    "Salesforce/wikitext": {"sft_text"},
    "HuggingFaceFW/fineweb": {"sft_text"},
    "rajpurkar/squad": set(),
    "databricks/databricks-dolly-15k": set(),
    "Intel/orca_dpo_pairs": set(),
    "lvwerra/stack-exchange-paired": set(),
    "nvidia/HelpSteer2": {"grpo"},
    "HuggingFaceTB/smoltalk": {"sft_messages"},
    "Open-Orca/OpenOrca": set(),
}


def fits_of(line: str) -> set[str]:
    assert line.startswith("Fits: ")
    labels = {part.strip() for part in line.removeprefix("Fits: ").split(",")}
    return set() if labels == {"none"} else labels


def test_every_fixture_has_an_expectation() -> None:
    on_disk = {load_schema(p.stem.replace("__", "/"))["dataset"] for p in SCHEMAS.glob("*.json")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 25


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_fits_line_of_real_dataset_schemas(dataset: str) -> None:
    fx = load_schema(dataset)
    report = classify(fx["features"], fx["rows"])
    line = report.fits_line()
    assert fits_of(line) == EXPECTED[dataset]
    assert set(report.fits) <= set(LABELS)
    if not EXPECTED[dataset]:
        assert line == "Fits: none"
    assert all(not c.startswith("Fits") for c in report.conversions)


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_rows_only_give_the_same_answer_as_features(dataset: str) -> None:
    """With the schema missing (a viewer that only gave rows), the rows alone lead to the same labels."""
    fx = load_schema(dataset)
    assert set(classify(None, fx["rows"]).fits) == EXPECTED[dataset]


def test_sharegpt_conversion_line() -> None:
    fx = load_schema("philschmid/guanaco-sharegpt-style")
    report = classify(fx["features"], fx["rows"])
    [line] = [c for c in report.conversions if "sft_messages" in c]
    assert line.startswith("Convert: sft_sharegpt -> sft_messages by mapping from/value to role/content")
    assert "human → user" in line and "gpt → assistant" in line and "'conversations'" in line


def test_conversions_name_what_to_do() -> None:
    gsm8k = classify(load_schema("openai/gsm8k")["features"])
    assert any(c.startswith("Convert: question/answer -> sft_prompt_completion") for c in gsm8k.conversions)
    assert any(c.startswith("Convert: question -> grpo") for c in gsm8k.conversions)
    squad = classify(load_schema("rajpurkar/squad")["features"])
    assert any("answers['text'][0]" in c and "'context'" in c for c in squad.conversions)
    hh = load_schema("Anthropic/hh-rlhf")
    assert any(c.startswith("Convert: dpo_implicit -> dpo_explicit")
               for c in classify(hh["features"], hh["rows"]).conversions)
    kto = load_schema("trl-lib/kto-mix-14k")
    assert "Convert: kto -> sft_prompt_completion by keeping the rows with label = true" in \
        classify(kto["features"], kto["rows"]).conversions
    orca = load_schema("Intel/orca_dpo_pairs")
    assert any(c.startswith("Convert: question/chosen/rejected -> dpo_explicit by renaming 'question'")
               for c in classify(orca["features"], orca["rows"]).conversions)
    imdb = classify(load_schema("stanfordnlp/imdb")["features"])
    assert any("classification" in c for c in imdb.conversions)


def test_string_pairs_without_a_shared_prompt_are_not_implicit_preferences() -> None:
    features = {"chosen": {"dtype": "string", "_type": "Value"}, "rejected": {"dtype": "string", "_type": "Value"}}
    answers_only = [{"chosen": "Paris is the capital of France.", "rejected": "I think it is Lyon."}] * 3
    assert classify(features, answers_only).fits == []
    with_prompt = [{"chosen": "\n\nHuman: Capital of France?\n\nAssistant: Paris.",
                    "rejected": "\n\nHuman: Capital of France?\n\nAssistant: Lyon."}] * 3
    assert classify(features, with_prompt).fits == ["dpo_implicit", "reward"]
    # no rows: the schema alone cannot tell, so the pair is taken as implicit, and said so
    unverified = classify(features)
    assert unverified.fits == ["dpo_implicit", "reward"]
    assert any("assumed" in n for n in unverified.notes)


def test_mixed_prompt_and_completion_kinds_fit_neither_sft_nor_kto() -> None:
    features = {"prompt": {"dtype": "string", "_type": "Value"},
                "completion": [{"content": {"dtype": "string", "_type": "Value"},
                                "role": {"dtype": "string", "_type": "Value"}}],
                "label": {"dtype": "bool", "_type": "Value"}}
    report = classify(features)
    assert report.fits == ["grpo"]
    assert any("not the same kind" in n for n in report.notes)


# --- the three ways the viewer writes a list of messages ------------------------------------------

STRING = {"dtype": "string", "_type": "Value"}


@pytest.mark.parametrize("messages_type", [
    {"feature": {"content": STRING, "role": STRING}, "_type": "List"},          # datasets >= 4
    [{"content": STRING, "role": STRING}],                                       # older viewer: bare list
    {"feature": {"content": STRING, "role": STRING}, "_type": "LargeList"},
])
def test_messages_column_in_each_list_notation(messages_type: Any) -> None:
    col = column_from_type("messages", messages_type)
    assert col.kind == "conversation"
    assert col.type_text == "list of {content: string, role: string}"


def test_sequence_of_a_dict_is_a_dict_of_lists() -> None:
    # datasets < 4: Sequence({"role", "content"}) decodes to {"role": [...], "content": [...]}, which
    # is not a list of messages, so it is not sft_messages.
    col = column_from_type("messages", {"feature": {"content": STRING, "role": STRING}, "_type": "Sequence"})
    assert col.kind == "struct"
    assert classify({"messages": {"feature": {"content": STRING, "role": STRING}, "_type": "Sequence"}}).fits == []


def test_first_rows_feature_list_form() -> None:
    listed = [{"feature_idx": 0, "name": "prompt", "type": STRING},
              {"feature_idx": 1, "name": "completion", "type": STRING}]
    assert [c.name for c in parse_features(listed)] == ["prompt", "completion"]
    assert classify(listed).fits == ["sft_prompt_completion", "grpo"]


def test_trainer_table_uses_known_labels() -> None:
    assert all(labels <= set(LABELS) for labels in TRAINER_FORMATS.values())


# --- conversation analysis ---------------------------------------------------------------------------

def m(role: str, content: str | None = "x", **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def test_alternation_errors_are_counted_with_an_example() -> None:
    rows = [
        [m("user"), m("assistant")],
        [m("user"), m("user"), m("assistant")],                       # user after user
        [m("user"), m("assistant"), m("assistant")],                  # assistant after assistant
    ]
    a = analyse_messages("messages", rows)
    assert a.rows == 3
    assert a.alternation_errors == 2
    assert "row 1: user after user at turn 1" in a.examples
    assert "alternation errors in 2 row(s)" in a.summary()


def test_system_turns_first_and_misplaced() -> None:
    rows = [[m("system"), m("user"), m("assistant")],
            [m("user"), m("system"), m("assistant")],
            [m("user"), m("assistant")]]
    a = analyse_messages("messages", rows)
    assert a.rows_with_system == 2
    assert a.system_not_first == 1
    assert a.alternation_errors == 0
    assert "system turns in 2 row(s) (1 not first)" in a.summary()


def test_tool_calls_in_openai_format() -> None:
    call = [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]
    good = [m("system"), m("user"), m("assistant", None, tool_calls=call), m("tool", "18°C"), m("assistant")]
    orphan = [m("user"), m("tool", "18°C"), m("assistant")]
    a = analyse_messages("messages", [good, orphan])
    assert a.rows_with_tool_calls == 2
    assert a.alternation_errors == 1
    assert a.empty_turns == 0  # an assistant turn that only calls a tool has no content, rightly
    assert a.examples == ["row 1: a tool turn without a tool call before it at turn 1"]


def test_tool_result_must_follow_the_call_before_the_user_speaks() -> None:
    call = [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
    rows = [[m("user"), m("assistant", None, tool_calls=call), m("user"), m("assistant")]]
    a = analyse_messages("messages", rows)
    assert a.alternation_errors == 1
    assert "user turn before the tool result" in a.examples[0]


def test_sharegpt_roles_are_mapped_and_tool_turns_understood() -> None:
    rows = [[{"from": "system", "value": "You can call tools."}, {"from": "human", "value": "Weather in Paris?"},
             {"from": "function_call", "value": "{\"name\": \"get_weather\"}"},
             {"from": "observation", "value": "18°C"}, {"from": "gpt", "value": "It is 18°C."}]]
    a = analyse_messages("conversations", rows, style="from/value")
    assert a.roles == {"system": 1, "user": 1, "assistant": 2, "tool": 1}
    assert a.rows_with_tool_calls == 1
    assert a.alternation_errors == 0
    assert not a.unknown_roles


def test_unknown_roles_and_endings() -> None:
    rows = [[m("human"), m("gpt")], [m("user"), m("assistant"), m("user")], [m("assistant", ""), m("user")]]
    a = analyse_messages("messages", rows)
    assert set(a.unknown_roles) == {"human", "gpt"}
    assert a.not_ending_with_assistant == 3  # the human/gpt row never has an 'assistant' turn either
    assert a.not_starting_with_user == 2
    assert a.empty_turns == 1
    assert "roles no chat template knows: gpt, human" in a.summary()


def test_truncated_cells_are_unreadable_not_errors() -> None:
    a = analyse_messages("messages", ["[{\"role\": \"user\", \"content\": \"cut here", [m("user"), m("assistant")]])
    assert a.unreadable == 1 and a.alternation_errors == 0


def test_classify_reports_the_messages_analysis() -> None:
    features = {"messages": [{"content": STRING, "role": STRING}], "tools": STRING}
    rows = [{"messages": [m("user"), m("user")], "tools": "[]"}]
    report = classify(features, rows)
    assert report.fits == ["sft_messages"]
    [analysis] = report.messages
    assert analysis.alternation_errors == 1
    assert any("'tools'" in n for n in report.notes)


def test_conversations_stored_as_json_text() -> None:
    rows = [{"messages": "[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]"}]
    report = classify({"messages": STRING}, rows)
    assert report.fits == []
    assert report.conversions == ["Convert: column 'messages' -> sft_messages by parsing its JSON text (json.loads) "
                                  "into a list of messages"]


def test_role_content_column_under_another_name() -> None:
    features = {"conversations": [{"content": STRING, "role": STRING}]}
    report = classify(features, [{"conversations": [m("user"), m("assistant")]}])
    assert report.fits == []
    assert report.conversions == ["Convert: column 'conversations' -> sft_messages by renaming it to 'messages'"]
