"""Find and replace in a file's text, forgiving the small slips a model makes when it quotes a file.

Four passes; the first that finds anything decides (an ambiguous exact match is refused, it never falls
through to a looser pass):

1. the exact text;
2. line by line, ignoring trailing whitespace (and CR line endings);
3. line by line, ignoring indentation as well;
4. as 3, with unicode dashes, quotes and spaces read as their ASCII forms.

Passes 2 to 4 match whole lines. The replacement always goes into the ORIGINAL text at the place that
matched, so the rest of the file stays byte for byte as it was. When indentation was ignored, `new_str`
is moved by the indentation difference between `old_str` and the file, so its inner indentation holds.

Standard library only: the sandbox Space runs this same file beside its exec server (as intern_edit.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

PASSES = {
    1: "exact",
    2: "ignoring trailing whitespace",
    3: "ignoring indentation",
    4: "ignoring indentation and unicode dashes, quotes and spaces",
}

_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_SINGLE_QUOTES = "\u2018\u2019\u201a\u201b\u2032\u2035\uff07"
_DOUBLE_QUOTES = "\u201c\u201d\u201e\u201f\u2033\u2036\uff02"
_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_UNICODE_TABLE = str.maketrans(
    {**dict.fromkeys(_DASHES, "-"), **dict.fromkeys(_SINGLE_QUOTES, "'"), **dict.fromkeys(_DOUBLE_QUOTES, '"'),
     **dict.fromkeys(_SPACES, " "), **dict.fromkeys(_INVISIBLE, "")}
)


class EditError(ValueError):
    """The edit cannot be applied; the message tells the model what to do instead."""


@dataclass(frozen=True)
class Match:
    start: int  # offsets into the original text
    end: int
    indent_from: str = ""  # indentation of old_str's first non-blank line (passes 3 and 4)
    indent_to: str = ""  # indentation of the file's line that it matched
    crlf: bool = False  # the matched lines end with CRLF


@dataclass(frozen=True)
class Edit:
    text: str
    count: int
    pass_no: int
    lines: tuple[int, ...]  # 1-based line, in the new text, where each replacement starts
    new_lines: int  # how many lines one replacement spans

    @property
    def how(self) -> str:
        return PASSES[self.pass_no]


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # end of the content, before "\r\n" or "\n"
    next: int  # start of the following line
    content: str


def apply_edit(text: str, old: str, new: str, *, replace_all: bool = False) -> Edit:
    """Replace `old` by `new` in `text`; raise EditError when `old` is missing, empty or ambiguous."""
    if not old:
        raise EditError("old_str is empty. To create a file or replace all of it, write the whole file instead.")
    if old == new:
        raise EditError("old_str and new_str are the same: there is nothing to change.")
    pass_no, matches = find(text, old)
    if not matches:
        raise EditError(not_found_message(text, old))
    if len(matches) > 1 and not replace_all:
        raise EditError(ambiguous_message(text, matches, pass_no))
    return _replace(text, matches, new, pass_no)


def find(text: str, old: str) -> tuple[int, list[Match]]:
    """The first pass that matches, and its non-overlapping matches in order (0 and [] if none)."""
    exact = _exact(text, old)
    if exact:
        return 1, exact
    lines = _lines(text)
    normalisers: tuple[tuple[int, Callable[[str], str]], ...] = ((2, _rstrip), (3, _strip), (4, _unicode))
    for pass_no, norm in normalisers:
        found = _line_matches(lines, old, norm, reindent=pass_no >= 3)
        if found:
            return pass_no, found
    return 0, []


def _rstrip(line: str) -> str:
    return line.rstrip(" \t\r\f\v")


def _strip(line: str) -> str:
    return line.strip(" \t\r\f\v")


def _unicode(line: str) -> str:
    return line.translate(_UNICODE_TABLE).strip(" \t\r\f\v")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _exact(text: str, old: str) -> list[Match]:
    out, pos = [], text.find(old)
    while pos != -1:
        out.append(Match(pos, pos + len(old)))
        pos = text.find(old, pos + len(old))
    return out


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    start = 0
    while start < len(text) or not out:
        nl = text.find("\n", start)
        nxt = len(text) if nl == -1 else nl + 1
        end = len(text) if nl == -1 else (nl - 1 if nl > start and text[nl - 1] == "\r" else nl)
        out.append(_Line(start, end, nxt, text[start:end]))
        if nl == -1:
            break
        start = nxt
    return out


def _line_matches(lines: list[_Line], old: str, norm: Callable[[str], str], *, reindent: bool) -> list[Match]:
    wanted = old.split("\n")
    with_newline = old.endswith("\n")
    if with_newline:
        wanted.pop()
    target = [norm(w) for w in wanted]
    if not any(target):
        return []  # whitespace alone would match every blank line
    have = [norm(line.content) for line in lines]
    n, out, i = len(target), [], 0
    while i + n <= len(lines):
        if have[i] == target[0] and have[i:i + n] == target:
            out.append(_line_match(lines[i:i + n], wanted, with_newline, reindent))
            i += n
        else:
            i += 1
    return out


def _line_match(window: list[_Line], wanted: list[str], with_newline: bool, reindent: bool) -> Match:
    first, last = window[0], window[-1]
    end = last.next if with_newline else last.end
    crlf = first.next - first.end == 2
    if not reindent:
        return Match(first.start, end, crlf=crlf)
    k = next(k for k, w in enumerate(wanted) if w.strip())
    return Match(first.start, end, _indent(wanted[k]), _indent(window[k].content), crlf)


def _adapt(new: str, m: Match) -> str:
    if m.indent_from != m.indent_to:
        shifted = []
        for line in new.split("\n"):
            if line.strip():
                # deeper than old_str's first line: keep the extra; shallower: align with the file's line
                lead = _indent(line)
                extra = lead[len(m.indent_from):] if lead.startswith(m.indent_from) else ""
                line = m.indent_to + extra + line[len(lead):]
            shifted.append(line)
        new = "\n".join(shifted)
    if m.crlf:
        new = new.replace("\r\n", "\n").replace("\n", "\r\n")
    return new


def _replace(text: str, matches: list[Match], new: str, pass_no: int) -> Edit:
    parts: list[str] = []
    pos, offsets = 0, []
    length = 0
    rep = new
    for m in matches:
        parts.append(text[pos:m.start])
        length += m.start - pos
        offsets.append(length)
        rep = _adapt(new, m) if pass_no > 1 else new
        parts.append(rep)
        length += len(rep)
        pos = m.end
    parts.append(text[pos:])
    result = "".join(parts)
    lines = tuple(result.count("\n", 0, off) + 1 for off in offsets)
    return Edit(result, len(matches), pass_no, lines, rep.count("\n") + 1)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def ambiguous_message(text: str, matches: list[Match], pass_no: int) -> str:
    where = ", ".join(str(line_of(text, m.start)) for m in matches[:10])
    more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
    how = "" if pass_no == 1 else f" ({PASSES[pass_no]})"
    return (f"old_str matches {len(matches)} places{how}, starting at lines {where}{more}. Include more of the "
            "surrounding lines so that it matches exactly one place, or set replace_all=true to change all of them.")


def not_found_message(text: str, old: str) -> str:
    msg = ("old_str was not found in the file, not even ignoring trailing whitespace, indentation and unicode "
           "dashes, quotes and spaces.")
    first = next((line.strip() for line in old.split("\n") if line.strip()), "")
    candidates = [line.content.strip() for line in _lines(text)]
    close = difflib.get_close_matches(first, candidates, n=1, cutoff=0.6) if first else []
    if close:
        number = candidates.index(close[0]) + 1
        msg += f" The closest line is {number}: {close[0][:200]!r}."
    return msg + " Read the file again and copy old_str from it exactly."
