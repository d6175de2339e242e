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
from tests.datasets.conftest import all_schemas, load_schema

SCHEMA_TABLE = all_schemas()


def fits_of(line: str) -> set[str]:
    assert line.startswith("Fits: ")
    labels = {part.strip() for part in line.removeprefix("Fits: ").split(",")}
    return set() if labels == {"none"} else labels


def test_the_table_holds_sixty_real_schemas_in_both_viewer_notations() -> None:
    assert len(SCHEMA_TABLE) >= 60
    notations = {type(load_schema(d)["features"]).__name__ for d in SCHEMA_TABLE}
    assert notations == {"dict", "list"}  # /info's mapping and /first-rows' list
    for dataset in SCHEMA_TABLE:
        verdict = load_schema(dataset)["verdict"]
        assert set(verdict["fits"]) <= set(LABELS), dataset


@pytest.mark.parametrize("dataset", SCHEMA_TABLE)
def test_fits_line_of_real_dataset_schemas(dataset: str) -> None:
    """The verdict stored with each schema: the exact `Fits:` labels, and the conversion or the
    warning it must carry when the fixture names one."""
    fx = load_schema(dataset)
    verdict = fx["verdict"]
    report = classify(fx["features"], fx["rows"])
    line = report.fits_line()
    assert fits_of(line) == set(verdict["fits"])
    if not verdict["fits"]:
        assert line == "Fits: none"
    assert all(not c.startswith("Fits") for c in report.conversions)
    if "conversion" in verdict:
        assert any(c.startswith(verdict["conversion"]) for c in report.conversions), report.conversions
    if "note" in verdict:
        assert any(n.startswith(verdict["note"]) for n in report.notes), report.notes


@pytest.mark.parametrize("dataset", SCHEMA_TABLE)
def test_rows_only_give_the_same_answer_as_features(dataset: str) -> None:
    """With the schema missing (a viewer that only gave rows), the rows alone lead to the same labels."""
    fx = load_schema(dataset)
    assert set(classify(None, fx["rows"]).fits) == set(fx["verdict"]["fits"])


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


# --- shapes the table turned up -------------------------------------------------------------------------

BOOL = {"dtype": "bool", "_type": "Value"}


def test_a_prompt_repeated_in_chosen_and_rejected_of_the_same_kind_is_explicit_with_a_warning() -> None:
    features = {"prompt": STRING, "chosen": STRING, "rejected": STRING}
    rows = [{"prompt": "Human: Name a prime.\n\nAssistant:", "chosen": "Human: Name a prime.\n\nAssistant: 7",
             "rejected": "Human: Name a prime.\n\nAssistant: 9"}] * 2
    report = classify(features, rows)
    assert report.fits == ["dpo_explicit", "grpo", "reward"]
    [note] = [n for n in report.notes if n.startswith("The prompt is duplicated")]
    assert "train on the prompt twice" in note
    answers_only = [{"prompt": "Name a prime.", "chosen": "7", "rejected": "9"}]
    assert not any("duplicated" in n for n in classify(features, answers_only).notes)


def test_a_conversational_prompt_repeated_in_chosen_and_rejected_is_explicit_with_a_warning() -> None:
    conv = {"feature": {"content": STRING, "role": STRING}, "_type": "List"}
    prompt = [m("system", "Be brief."), m("user", "Name a prime.")]
    rows = [{"prompt": prompt, "chosen": [*prompt, m("assistant", "7")], "rejected": [*prompt, m("assistant", "9")]}]
    report = classify({"prompt": conv, "chosen": conv, "rejected": conv}, rows)
    assert report.fits == ["dpo_explicit", "grpo", "reward"]
    assert any(n.startswith("The prompt is duplicated") for n in report.notes)


@pytest.mark.parametrize("labels", [{"feature": BOOL, "_type": "List"}, [BOOL],
                                    {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "List"}])
def test_stepwise_supervision_in_each_notation(labels: Any) -> None:
    features = {"prompt": STRING, "completions": {"feature": STRING, "_type": "List"}, "labels": labels}
    assert classify(features).fits == ["grpo", "stepwise"]
    rows = [{"prompt": "2+2?", "completions": ["2+2 = 4.", "The answer is 4."], "labels": [1, 1]}]
    assert classify(None, rows).fits == ["grpo", "stepwise"]
    assert "PRMTrainer" in (classify(features).trainers_line() or "")


def test_unpaired_preference_in_each_notation_is_kto() -> None:
    fx = load_schema("trl-lib/kto-mix-14k")
    listed = [{"feature_idx": i, "name": n, "type": t} for i, (n, t) in enumerate(fx["features"].items())]
    bare = {n: [t["feature"]] if isinstance(t, dict) and t.get("_type") == "List" else t
            for n, t in fx["features"].items()}
    for features in (fx["features"], listed, bare, None):
        assert classify(features, fx["rows"]).fits == ["kto", "grpo"]


@pytest.mark.parametrize(("a", "b", "winner"), [("response_a", "response_b", "winner"),
                                                 ("completion_0", "completion_1", "preference"),
                                                 ("output_1", "output_2", "choice")])
def test_two_responses_and_a_winner_fit_nothing_and_say_how_to_pair_them(a: str, b: str, winner: str) -> None:
    features = {"question": STRING, a: STRING, b: STRING, winner: STRING}
    report = classify(features)
    assert report.fits == []
    [line] = [c for c in report.conversions if c.startswith(f"Convert: {a}/{b}/{winner} -> dpo_explicit")]
    assert "'question' as 'prompt'" in line and "dropping ties" in line
