"""Secrets are replaced before text reaches the model, the database, logs or the chat.

Two kinds of rule: secret *shapes* (a provider's key format, a JWT, a PEM block) and secret *places*
(the value of `NAME_TOKEN=…`, `"password": "…"`, the password of a URL). Shapes are precise;
places are guarded against code and ML vocabulary (`pad_token = tokenizer.eos_token`,
`max_new_tokens=512`, `token=os.environ["HF_TOKEN"]`), because the bot stores tool-call arguments
through this redactor and a false positive would corrupt a script the model wrote.

What counts as a secret by its shape: a provider's own prefix at the start of a word (`hf_`, `sk-`,
`ghp_`, `xoxb-`, `AKIA`, a Discord token's base64 user id, …) followed by that provider's alphabet for
at least the shortest length it issues, in any case and any mix of letters and digits (a body of one
case, or of digits only, is still a token). A bare random-looking string without such a prefix (a git
hash, a UUID, a job id, a digest, an identifier) is never a secret by its shape: it is masked only in
a secret place or when it is one of the configured secrets.

Speed: every rule starts at one of a few literal needles. The needles are found with `str.find`
and the rule's pattern is only tried there (`pattern.match(text, pos)`), instead of letting the
regex engine try every position of a 30k-character tool output. Rules report spans; the spans of all
rules are merged and the text is rebuilt once.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MASK = "[REDACTED]"

Span = tuple[int, int]

# Value groups a rule may use; the first one that matched is masked, the rest of the match is kept.
_VALUE_GROUPS = ("secret", "qv", "uv")
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")

# Tokenizer vocabulary that shares the word "token" with credentials.
_SPECIAL_TOKEN_NAME = re.compile(
    r"(?i)(?:^|[_.\-\"'])(?:pad|eos|bos|unk|sep|cls|mask|sos|eot|im_start|im_end|image|audio|video|vision|"
    r"think|tool|special|additional_special|decoder_start|start|end|stop|default|boi|eoi|fim_\w+)_?tokens?[\"']?$"
)
_CODE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_NUMBER = re.compile(r"^[0-9][0-9._e+-]*$")
_NOT_SECRETS = frozenset({"true", "false", "null", "none", "nil", "undefined", "required", "optional",
                          "redacted", "changeme", "string", "str", "bool", "int"})


def _not_a_secret(value: str) -> bool:
    """A reference to where a secret comes from, a number, a flag or code: not a secret itself."""
    v = value.strip()
    if not v or v.startswith(("$", "{", "<", "%(", "[REDACTED", "***", "...", "os.", "env.", "process.env")):
        return True
    if "(" in v or v.endswith(")") or v.lower() in _NOT_SECRETS or _NUMBER.match(v):
        return True
    if _CODE_PATH.match(v):
        return True  # args.token, tokenizer.eos_token, settings.hf_token
    return bool(_IDENTIFIER.match(v)) and not any(c.isdigit() for c in v) and len(v) < 16


def _name_before(text: str, end: int, chars: frozenset[str]) -> int:
    """Start of the run of `chars` that ends at `end` (how far a key's name reaches to the left)."""
    i = end
    while i > 0 and text[i - 1] in chars and end - i < 128:
        i -= 1
    return i


_NAME_CHARS = _WORD | frozenset(".-")
_UPPER_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _value_span(m: re.Match[str]) -> Span:
    for g in _VALUE_GROUPS:
        if g in m.re.groupindex and m.group(g) is not None:
            return m.span(g)
    return m.span()


def _value_text(m: re.Match[str]) -> str:
    s, e = _value_span(m)
    return m.string[s:e]


def _accept_named(m: re.Match[str]) -> bool:
    """A secret place whose value is a literal, under a name that is not tokenizer vocabulary."""
    text = m.string
    start = _name_before(text, m.start("key"), _NAME_CHARS)
    if _SPECIAL_TOKEN_NAME.search(text[start:m.end("key")]):
        return False
    return not _not_a_secret(_value_text(m))


@dataclass(frozen=True)
class Rule:
    """A secret pattern. Each pattern starts with literal text, so the regex engine can skip to it.

    `fold` rules run on the lower-cased text (same length, so the spans hold for the original).
    """

    name: str
    patterns: tuple[tuple[str, re.Pattern[str]], ...]  # (literal head, pattern)
    fold: bool = False
    accept: Callable[[re.Match[str]], bool] | None = None

    def spans(self, text: str, folded: str | None) -> Iterator[Span]:
        hay, flags_needed = (folded, False) if self.fold and folded is not None else (text, self.fold)
        for head, pattern in self.patterns:
            # str's substring search is several times faster than the regex engine's prefix scan
            if head and not flags_needed and head not in hay:
                continue
            if flags_needed:  # lower() changed the length (rare Unicode): match case-insensitively
                pattern = re.compile(pattern.pattern, re.IGNORECASE)
            for m in pattern.finditer(hay):
                if self.accept is None or self.accept(m):
                    yield _value_span(m)


def _rule(name: str, *patterns: str, fold: bool = False,
          accept: Callable[[re.Match[str]], bool] | None = None) -> Rule:
    return Rule(name, tuple((_literal_head(p), re.compile(p)) for p in patterns), fold, accept)


def _literal_head(pattern: str) -> str:
    """The literal text every match of `pattern` starts with (a named group's opening is looked into)."""
    if pattern.startswith("(?P<"):
        pattern = pattern[pattern.index(">") + 1:]
    head: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            head.append(pattern[i + 1])
            i += 2
            continue
        if c in ".^$*+?{}[]|()\\":
            break
        head.append(c)
        i += 1
    if i < len(pattern) and pattern[i] in "*?{" and head:
        head.pop()  # the last literal is optional or repeated
    return "".join(head)


def _b(width: int) -> str:
    """A left word boundary written after a head of `width` characters, so the pattern starts with a literal.
    An escape such as the `\\n` of JSON-encoded text counts as a boundary too."""
    return rf"(?:(?<![A-Za-z0-9_].{{{width}}})|(?<=\\[nrt].{{{width}}}))"


def _word(head: str, rest: str) -> str:
    return re.escape(head) + _b(len(head)) + rest


# Values never take a backslash: inside JSON-encoded text (tool-call arguments) masking one would eat
# the escape of the closing quote and break the JSON. `\"secret\"` (and deeper escapes) is a quoted value.
_QUOTED = r"\\*(?P<q>[\"'])(?P<qv>[^\"'\n\\]{4,400}?)\\*(?P=q)"
_ASSIGN_VALUE = rf"(?:{_QUOTED}|(?P<uv>[^\s\"'`,;)}}\]\\]{{4,}}))"
_ENV_OP = r"(?![A-Z0-9_])\\*[\"']?\]?\s*[:=]\s*"
# The last word of an upper-case name that holds a secret (the whole name is read back from there).
_ENV_HEADS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIALS", "DSN", "WEBHOOK_URL",
              "CONNECTION_STRING")
_ENV_KEY_NAMES = re.compile(r"(?:^|_)(?:ACCESS|SECRET|PRIVATE|AUTH|SIGNING|ENCRYPTION|MASTER|SERVICE|API)_?KEY$")
_CODE_HEADS = ("token", "secret", r"passw(?:or)?d", "pwd", r"api[_-]?key", r"access[_-]?key", r"private[_-]?key",
               r"credentials?")
_CODE_OP = r"(?![a-z0-9_])\\*[\"']?\s*[:=][ \t]*"


def _discord_spans(text: str) -> Iterator[Span]:
    """Bot tokens: base64(user id) . 6 chars . 27+ chars. Found from the middle part, then extended left."""
    for m in _DISCORD_TAIL.finditer(text):
        start = _name_before(text, m.start(), _TOKEN_CHARS)
        if start >= 1 and text[start - 1] == "\\" and text[start] in "nrt":
            start += 1  # the letter of an escaped line break (JSON-encoded text) is not the token's
        if 23 <= m.start() - start <= 28 and text[start] in "MNO":  # base64 of a 17- to 20-digit user id
            yield start, m.end()


_TOKEN_CHARS = _WORD | frozenset("-")
_DISCORD_TAIL = re.compile(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}")


def _accept_env(m: re.Match[str]) -> bool:
    text = m.string
    start = _name_before(text, m.start(), _UPPER_NAME)
    if start > 0 and text[start - 1] in _WORD and not _after_escape(text, start):
        return False  # part of a mixed-case identifier such as myTOKEN
    name = text[start:m.end("key")]
    if m.group("key") == "KEY" and not _ENV_KEY_NAMES.search(name):
        return False  # PRIMARY_KEY, CACHE_KEY: not secrets
    return not _not_a_secret(_value_text(m))


def _accept_code(m: re.Match[str]) -> bool:
    """`"password": "…"` anywhere; an unquoted value only as a whole config line (`password: x`)."""
    if m.group("qv") is None and not _whole_line(m):
        return False
    return _accept_named(m)


def _whole_line(m: re.Match[str]) -> bool:
    text = m.string
    start = _name_before(text, m.start(), _NAME_CHARS)
    if start >= 1 and text[start - 1] == "\\" and text[start] in "nrt":
        start += 1  # the name swallowed the letter of an escaped line break (JSON-encoded text)
    escaped = text.rfind("\\n", 0, start)
    line_start = max(text.rfind("\n", 0, start) + 1, escaped + 2 if escaped != -1 else 0)
    lead = text[line_start:start]
    lead = lead[lead.rfind('"') + 1:]  # a JSON string value starts a line too
    return lead.strip() in ("", "export", "-")


def _after_escape(text: str, pos: int) -> bool:
    """`pos` follows an escaped line break or tab of JSON-encoded text (`\\n`, `\\r`, `\\t`)."""
    return pos >= 2 and text[pos - 2] == "\\" and text[pos - 1] in "nrt"


RULES: tuple[Rule, ...] = (
    _rule("pem", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                 r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    # Any case, any mix of letters and digits: the Hub does not promise both cases in a token.
    _rule("hf", _word("hf_", r"[A-Za-z0-9]{30,}\b")),
    _rule("hf_oauth", _word("hf_oauth_", r"[A-Za-z0-9_]{20,}")),
    _rule("hf_org", _word("api_org_", r"[A-Za-z0-9]{30,}\b")),
    _rule("slack", _word("xox", r"[abcdeoprs]-[A-Za-z0-9-]{10,}")),
    _rule("slack_app", _word("xapp-", r"\d+-[A-Za-z0-9-]{10,}")),
    _rule("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9/_-]{8,})"),
    _rule("anthropic", _word("sk-ant-", r"[A-Za-z0-9_-]{20,}")),
    # OpenAI (legacy, proj-, svcacct-, admin-), OpenRouter (sk-or-v1-), DeepSeek and other sk- keys:
    # a body of one piece in any case, or pieces with a digit or a capital (`sk-learn-style` is prose).
    _rule("sk", _word("sk-", r"(?:[A-Za-z0-9]{20,}(?![A-Za-z0-9_-])|(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"
                             r"|(?=[A-Za-z0-9_-]*[0-9A-Z])[A-Za-z0-9_-]{20,})")),
    _rule("github", "gh[pousr]_" + _b(4) + r"[A-Za-z0-9]{30,}", _word("github_pat_", r"[A-Za-z0-9_]{40,}")),
    _rule("gitlab", _word("glpat-", r"[A-Za-z0-9_-]{20,}")),
    _rule("aws_access_key_id", *(_word(p, r"[A-Z0-9]{16}\b") for p in ("AKIA", "ASIA", "ABIA", "ACCA"))),
    _rule("aws_secret", r"secret[_-]?access[_-]?key\\*[\"']?\s*[:=]\s*\\*[\"']?(?P<secret>[a-z0-9/+=]{40})(?![a-z0-9/+=])",
          fold=True),
    _rule("google_api", _word("AIza", r"[0-9A-Za-z_-]{35}")),
    _rule("google_oauth", _word("ya29.", r"[0-9A-Za-z_-]{20,}"), _word("GOCSPX-", r"[0-9A-Za-z_-]{20,}")),
    _rule("groq", _word("gsk_", r"[A-Za-z0-9]{40,}")),
    _rule("stripe", *(f"{k}_(?:live|test)_" + _b(8) + r"[A-Za-z0-9]{20,}" for k in ("sk", "rk"))),
    _rule("stripe_webhook", _word("whsec_", r"[A-Za-z0-9+/=]{24,}")),
    _rule("replicate", _word("r8_", r"[A-Za-z0-9]{30,}")),
    _rule("npm", _word("npm_", r"[A-Za-z0-9]{36,}")),
    _rule("pypi", _word("pypi-AgE", r"[A-Za-z0-9_-]{50,}")),
    _rule("perplexity_xai", _word("pplx-", r"[A-Za-z0-9]{40,}"), _word("xai-", r"[A-Za-z0-9]{40,}")),
    _rule("sendgrid", _word("SG.", r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{30,}")),
    _rule("jwt", _word("eyJ", r"[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    _rule("bearer", _word("bearer", r"\s+(?P<secret>[a-z0-9._~+/=-]{16,})"), fold=True),
    _rule("auth_header", r"authorization[\"']?\s*[:=]\s*[\"']?(?:basic|token|bot)\s+(?P<secret>[a-z0-9._~+/=-]{8,})",
          fold=True),
    # scheme://user:password@host (also postgresql+asyncpg://, redis://:password@host)
    _rule("url_password", r"://[^\s:/@]*:(?P<secret>[^\s/?#]+)@(?=[^\s@/])"),
    _rule("query_secret", *(rf"{sep}(?P<key>access_token|api_key|apikey|token|password|passwd|pwd|secret|"
                            r"client_secret|sig|signature|x-amz-signature|x-amz-security-token)="
                            r"(?P<secret>[^&\s#\"'<>\\]{6,})" for sep in (r"\?", "&")), fold=True, accept=_accept_named),
    # NAME_TOKEN=value, export SLACK_BOT_TOKEN="…", "HF_TOKEN": "…", os.environ["DB_PASSWORD"] = "…"
    _rule("env_assignment", *(f"(?P<key>{h}){_ENV_OP}{_ASSIGN_VALUE}" for h in _ENV_HEADS), accept=_accept_env),
    # "password": "…", api_key='…' in code and JSON; password: hunter2 as a config line
    _rule("code_assignment", *(rf"(?P<key>{h}){_CODE_OP}(?:{_QUOTED}|(?P<uv>[^\s\"'#\\]{{4,}})[ \t]*(?=\r?\n|\\+[rn]|\Z))"
                               for h in _CODE_HEADS), fold=True, accept=_accept_code),
    # --hf-token xyz / --password=xyz on a command line
    _rule("cli_flag", "--" + _b(2).replace("A-Za-z0-9_", "\\w-") + r"(?P<key>[a-z0-9_-]*(?:token|password|passwd|secret|api[-_]key))[ =]"
                      r"(?P<uv>[^\s\"'\\-][^\s\"'\\]{3,})", accept=_accept_named),
)


SHORT_TEXT = 2048
SHORT_CACHE_ENTRIES = 4096


class Redactor:
    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.known = sorted({s for s in known_secrets if s and len(s) >= 6}, key=len, reverse=True)
        # The same short texts (roles, tool names, call ids, short replies) pass through several times
        # per model step: their results are remembered. Long texts are not kept alive for that.
        self._short = functools.lru_cache(maxsize=SHORT_CACHE_ENTRIES)(self._redact)
        # A long text this redactor returned is marked by its type, so redacting it again (the
        # transcript, then the column it is stored in) costs nothing. A redactor that knows other
        # secrets has its own mark and scans it again.
        self._clean: type[str] = type("RedactedText", (str,), {"__slots__": ()})

    def redact(self, text: str) -> str:
        if not text:
            return text
        if len(text) <= SHORT_TEXT:
            return self._short(text)
        if type(text) is self._clean:
            return text
        return self._clean(self._redact(text))

    def _redact(self, text: str) -> str:
        for secret in self.known:
            if secret in text:
                text = text.replace(secret, MASK)
        lowered = text.lower()
        folded = lowered if len(lowered) == len(text) else None
        spans = [*_discord_spans(text)]
        for rule in RULES:
            spans.extend(rule.spans(text, folded))
        return _mask(text, spans) if spans else text

    def redact_obj(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact(k) if isinstance(k, str) else k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            # numbers (most of a long list: a job's metric points) are passed over without a call each
            return type(obj)([v if v.__class__ in _PLAIN else self.redact_obj(v) for v in obj])
        return obj


_PLAIN = frozenset({int, float, bool, type(None)})  # what redaction leaves as it is, by exact type


def _mask(text: str, spans: list[Span]) -> str:
    out: list[str] = []
    pos = 0
    for start, end in _merged(spans):
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _merged(spans: list[Span]) -> Iterator[Span]:
    spans.sort()
    cur_s, cur_e = spans[0]
    for s, e in spans[1:]:
        if s < cur_e:
            cur_e = max(cur_e, e)
            continue
        yield cur_s, cur_e
        cur_s, cur_e = s, e
    yield cur_s, cur_e


class RedactingFilter(logging.Filter):
    """Scrubs log records (message and arguments) with the same redactor."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        record.msg = self.redactor.redact(msg)
        record.args = ()
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
        return True


_base_factory = logging.getLogRecordFactory()
_record_filter: list[RedactingFilter] = []


def redact_every_record(redactor: Redactor) -> None:
    """Every log record of the process is redacted as it is made, whichever handler writes it:
    libraries add handlers of their own (litellm does, and its DEBUG output shows requests), and a
    filter on the root's handlers never sees what those write."""
    _record_filter[:] = [RedactingFilter(redactor)]
    if logging.getLogRecordFactory() is not _redacted_record:
        logging.setLogRecordFactory(_redacted_record)


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if _record_filter:
        _record_filter[0].filter(record)
    return record
