"""The four-pass match of `intern.agent.edit`: each pass, ambiguity, replace_all, and that the change
goes into the original text (everything outside the match stays byte for byte)."""

from __future__ import annotations

import pytest

from intern.agent.edit import EditError, apply_edit, find

SOURCE = (
    "import torch\n"
    "\n"
    "def train(model):\n"
    "    lr = 1e-3   \n"
    "    for step in range(10):\n"
    "        loss = model(step)\n"
    "        print(f\"step {step} \u2014 loss \u201c{loss}\u201d\")\n"
    "    return model\n"
)


def test_pass_1_exact_fragment_inside_a_line() -> None:
    edit = apply_edit(SOURCE, "range(10)", "range(20)")
    assert edit.pass_no == 1 and edit.count == 1
    assert edit.text == SOURCE.replace("range(10)", "range(20)")
    assert edit.lines == (5,)


def test_pass_2_ignores_trailing_whitespace_and_keeps_the_rest() -> None:
    old = "    lr = 1e-3\n    for step in range(10):"  # the file has three trailing spaces after 1e-3
    assert find(SOURCE, old)[0] == 2
    edit = apply_edit(SOURCE, old, "    lr = 3e-4\n    for step in range(10):")
    assert edit.pass_no == 2
    assert edit.text == SOURCE.replace("    lr = 1e-3   \n", "    lr = 3e-4\n")


def test_pass_3_ignores_indentation_and_moves_new_str_by_the_difference() -> None:
    old = "for step in range(10):\n    loss = model(step)\n"  # quoted without the function's indentation
    new = "for step in range(10):\n    loss = model(step) * 2\n    loss.backward()\n"
    edit = apply_edit(SOURCE, old, new)
    assert edit.pass_no == 3
    assert "    for step in range(10):\n        loss = model(step) * 2\n        loss.backward()\n" in edit.text
    assert edit.text.startswith("import torch\n\ndef train(model):\n    lr = 1e-3   \n")  # untouched
    assert edit.text.endswith("    return model\n")


def test_pass_4_normalises_unicode_dashes_quotes_and_spaces() -> None:
    old = "print(f\"step {step} - loss \"{loss}\"\")"  # ASCII where the file has an em dash and curly quotes
    assert find(SOURCE, old)[0] == 4
    edit = apply_edit(SOURCE, old, "print(step, loss)")
    assert edit.pass_no == 4
    assert "        print(step, loss)\n" in edit.text
    assert "\u201c" not in edit.text and SOURCE.count("\n") == edit.text.count("\n")
    nbsp = "x\u00a0=\u00a01\n"
    assert apply_edit(nbsp, "x = 1", "x = 2").text == "x = 2\n"


def test_a_looser_pass_is_not_used_when_a_stricter_one_matches() -> None:
    text = "a = 1\n  a = 1\n"
    edit = apply_edit(text, "  a = 1", "  a = 2")
    assert edit.pass_no == 1 and edit.text == "a = 1\n  a = 2\n"


def test_ambiguous_match_is_refused_with_the_lines() -> None:
    text = "x = 1\ny = 2\nx = 1\n"
    with pytest.raises(EditError) as err:
        apply_edit(text, "x = 1", "x = 3")
    assert "matches 2 places" in str(err.value) and "lines 1, 3" in str(err.value)
    assert "replace_all" in str(err.value)


def test_ambiguity_in_a_fuzzy_pass_is_refused_too() -> None:
    text = "    x = 1\n        x = 1\n"
    with pytest.raises(EditError) as err:
        apply_edit(text, "x = 1  ", "x = 2")
    assert "ignoring indentation" in str(err.value)


def test_replace_all_replaces_every_match() -> None:
    text = "x = 1\ny = 2\nx = 1\n"
    edit = apply_edit(text, "x = 1", "x = 3", replace_all=True)
    assert edit.count == 2 and edit.text == "x = 3\ny = 2\nx = 3\n" and edit.lines == (1, 3)


def test_replace_all_with_fuzzy_match_reindents_each_place() -> None:
    text = "def a():\n    call()\n\ndef b():\n        call()\n"
    edit = apply_edit(text, "call()", "call(1)\nmore()", replace_all=True)
    assert edit.pass_no == 1  # exact fragments first
    edit = apply_edit(text, "call()\n", "call(1)\nmore()\n", replace_all=True)
    assert edit.text == "def a():\n    call(1)\nmore()\n\ndef b():\n        call(1)\nmore()\n"
    edit = apply_edit(text, " call() \n", "call(1)\nmore()\n", replace_all=True)
    assert edit.pass_no == 3
    assert edit.text == "def a():\n    call(1)\n    more()\n\ndef b():\n        call(1)\n        more()\n"


def test_not_found_names_the_closest_line() -> None:
    with pytest.raises(EditError) as err:
        apply_edit(SOURCE, "    for stepp in range(100):", "x")
    assert "not found" in str(err.value) and "closest line is 5" in str(err.value)


def test_crlf_files_keep_their_line_endings() -> None:
    text = "a = 1\r\nb = 2\r\nc = 3\r\n"
    edit = apply_edit(text, "a = 1\nb = 2\n", "a = 10\nb = 20\n")
    assert edit.pass_no == 2
    assert edit.text == "a = 10\r\nb = 20\r\nc = 3\r\n"


def test_empty_or_unchanged_old_str_is_refused() -> None:
    with pytest.raises(EditError, match="empty"):
        apply_edit("x", "", "y")
    with pytest.raises(EditError, match="same"):
        apply_edit("x", "x", "x")


def test_whitespace_only_old_str_never_matches_blank_lines_loosely() -> None:
    with pytest.raises(EditError):
        apply_edit("a\n\n\nb\n", "   \n", "x")
