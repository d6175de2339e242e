"""Secrets are replaced before text reaches the model, the database, logs or the chat.

Two kinds of rule: secret *shapes* (a provider's key format, a JWT, a PEM block) and secret *places*
(the value of `NAME_TOKEN=…`, `"password": "…"`, the password of a URL). Shapes are precise;
places are guarded against code and ML vocabulary (`pad_token = tokenizer.eos_token`,
`max_new_tokens=512`, `token=os.environ["HF_TOKEN"]`), because the bot stores tool-call arguments
through this redactor and a false positive would corrupt a script the model wrote.

Every rule names a few literal needles; a rule runs only when one of them occurs in the text, so
the common case (no secret at all) costs a handful of substring searches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MASK = "[REDACTED]"

# Value groups a rule may use; the first one that matched is masked, the rest of the match is kept.
_VALUE_GROUPS = ("secret", "qv", "uv")

# Tokenizer vocabulary that shares the word "token" with credentials.
_SPECIAL_TOKEN_NAME = re.compile(
    r"(?i)(?:^|[_.\-\"'])(?:pad|eos|bos|unk|sep|cls|mask|sos|eot|im_start|im_end|image|audio|video|vision|"
    r"think|tool|special|additional_special|decoder_start|start|end|stop|default|boi|eoi|fim_\w+)_?tokens?[\"']?$"
)
_CODE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_NUMBER = re.compile(r"^[0-9][0-9._e+-]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
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


def _value(m: re.Match[str]) -> str:
    for g in _VALUE_GROUPS:
        if g in m.re.groupindex and m.group(g) is not None:
            return m.group(g)
    return m.group(0)


def _accept_place(m: re.Match[str]) -> bool:
    name = m.groupdict().get("name") or ""
    if _SPECIAL_TOKEN_NAME.search(name):
        return False
    return not _not_a_secret(_value(m))


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    needles: tuple[str, ...]  # literal hints, compared case-insensitively when `fold` is set
    fold: bool = False
    accept: Callable[[re.Match[str]], bool] | None = None

    def applies(self, text: str, folded: str) -> bool:
        hay = folded if self.fold else text
        return any(n in hay for n in self.needles) if self.needles else True

    def sub(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    def _replace(self, m: re.Match[str]) -> str:
        if self.accept is not None and not self.accept(m):
            return m.group(0)
        for g in _VALUE_GROUPS:
            if g in m.re.groupindex and m.group(g) is not None:
                s, e = m.span(g)
                base = m.start()
                whole = m.group(0)
                return whole[: s - base] + MASK + whole[e - base:]
        return MASK


def _r(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_ASSIGN_VALUE = r"(?:(?P<q>[\"'])(?P<qv>[^\"'\n]{1,400}?)(?P=q)|(?P<uv>[^\s\"'`,;)}\]]{4,}))"

RULES: tuple[Rule, ...] = (
    Rule("pem", _r(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                   r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"), ("PRIVATE KEY",)),
    Rule("hf", _r(r"\bhf_(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])[A-Za-z0-9]{30,}\b"), ("hf_",)),
    Rule("hf_oauth", _r(r"\bhf_oauth_[A-Za-z0-9_]{20,}"), ("hf_oauth_",)),
    Rule("hf_org", _r(r"\bapi_org_[A-Za-z0-9]{30,}\b"), ("api_org_",)),
    Rule("slack", _r(r"\bxox[abcdeoprs]-[A-Za-z0-9-]{10,}"), ("xox",)),
    Rule("slack_app", _r(r"\bxapp-\d+-[A-Za-z0-9-]{10,}"), ("xapp-",)),
    Rule("slack_webhook", _r(r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)(?P<secret>[A-Za-z0-9/_-]{8,})"),
         ("hooks.slack.com",)),
    Rule("anthropic", _r(r"\bsk-ant-[A-Za-z0-9_-]{20,}"), ("sk-ant-",)),
    # OpenAI (legacy, proj-, svcacct-, admin-), OpenRouter (sk-or-v1-), DeepSeek and other sk- keys.
    Rule("sk", _r(r"\bsk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}"), ("sk-",)),
    Rule("github", _r(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
         ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    Rule("gitlab", _r(r"\bglpat-[A-Za-z0-9_-]{20,}"), ("glpat-",)),
    Rule("aws_access_key_id", _r(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"), ("AKIA", "ASIA", "ABIA", "ACCA")),
    Rule("aws_secret", _r(r"(?i)(?:aws_?)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"),
         ("secret",), fold=True),
    Rule("google_api", _r(r"\bAIza[0-9A-Za-z_-]{35}"), ("AIza",)),
    Rule("google_oauth", _r(r"\b(?:ya29\.[0-9A-Za-z_-]{20,}|GOCSPX-[0-9A-Za-z_-]{20,})"), ("ya29.", "GOCSPX-")),
    Rule("groq", _r(r"\bgsk_[A-Za-z0-9]{40,}"), ("gsk_",)),
    Rule("stripe", _r(r"\b(?:sk|rk|whsec)_(?:live|test)_[A-Za-z0-9]{20,}"), ("_live_", "_test_")),
    Rule("replicate", _r(r"\br8_[A-Za-z0-9]{30,}"), ("r8_",)),
    Rule("npm", _r(r"\bnpm_[A-Za-z0-9]{36,}"), ("npm_",)),
    Rule("pypi", _r(r"\bpypi-AgE[A-Za-z0-9_-]{50,}"), ("pypi-",)),
    Rule("perplexity_xai", _r(r"\b(?:pplx|xai)-[A-Za-z0-9]{40,}"), ("pplx-", "xai-")),
    Rule("sendgrid", _r(r"\bSG\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{30,}"), ("SG.",)),
    Rule("discord", _r(r"\b[MNO][A-Za-z\d_-]{23,27}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}"), ()),
    Rule("jwt", _r(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), ("eyJ",)),
    Rule("auth_header", _r(r"(?i)\b(?:bearer|(?<=authorization: )(?:basic|token|bot))\s+(?P<secret>[A-Za-z0-9._~+/=-]{16,})"),
         ("bearer", "authorization"), fold=True),
    # scheme://user:password@host (also postgresql+asyncpg://, redis://:password@host)
    Rule("url_password", _r(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]*:(?P<secret>[^\s/?#]+)@(?=[^\s@/]+)"), ("://",)),
    Rule("query_secret", _r(r"(?i)[?&](?P<name>access_token|api_key|apikey|token|password|passwd|pwd|secret|"
                            r"client_secret|sig|signature|x-amz-signature|x-amz-security-token)="
                            r"(?P<secret>[^&\s#\"'<>]{6,})"),
         ("token=", "key=", "password=", "passwd=", "pwd=", "secret=", "sig=", "signature="), fold=True,
         accept=_accept_place),
    # NAME_TOKEN=value, export SLACK_BOT_TOKEN="…", "HF_TOKEN": "…", os.environ["DB_PASSWORD"] = "…"
    Rule("env_assignment", _r(
        r"\b(?P<name>[A-Z0-9_]*?(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|ACCESS_KEY|SECRET_KEY|"
        r"PRIVATE_KEY|AUTH_KEY|SIGNING_KEY|ENCRYPTION_KEY|MASTER_KEY|SERVICE_KEY|CREDENTIALS|DSN|"
        r"WEBHOOK_URL|CONNECTION_STRING))\b[\"']?\]?\s*(?:=|:)\s*" + _ASSIGN_VALUE),
         ("TOKEN", "SECRET", "PASSW", "KEY", "CREDENTIALS", "DSN", "WEBHOOK", "CONNECTION"), accept=_accept_place),
    # "password": "…", api_key='…', client_secret = "…" in code, JSON and YAML (quoted values only)
    Rule("quoted_assignment", _r(
        r"(?i)(?P<name>[\"']?[A-Za-z0-9_.-]*?(?:token|secret|password|passwd|pwd|api_?key|access_?key|"
        r"secret_?key|private_?key|client_?secret|credentials?)[\"']?)\s*(?:=|:)\s*"
        r"(?P<q>[\"'])(?P<qv>[^\"'\n]{4,400}?)(?P=q)"),
         ("token", "secret", "passw", "pwd", "key", "credential"), fold=True, accept=_accept_place),
    # password: hunter2 (YAML, .env, INI): a whole line, unquoted
    Rule("line_assignment", _r(
        r"(?im)^[ \t]*(?:export[ \t]+)?(?P<name>[a-z0-9_.-]*(?:password|passwd|secret|api_?key|access_?token|"
        r"auth_?token|client_?secret|token))[ \t]*[:=][ \t]*(?P<uv>[^\s\"'#]{4,})[ \t]*$"),
         ("token", "secret", "passw", "key"), fold=True, accept=_accept_place),
    # --hf-token xyz / --password=xyz on a command line
    Rule("cli_flag", _r(r"(?i)(?<![\w-])--(?P<name>[a-z0-9_-]*(?:token|password|passwd|secret|api[-_]key))[ =]"
                        r"(?P<uv>[^\s\"'-][^\s\"']{3,})"),
         ("--",), accept=_accept_place),
)


class Redactor:
    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.known = sorted({s for s in known_secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        if not text:
            return text
        for secret in self.known:
            if secret in text:
                text = text.replace(secret, MASK)
        folded = text.lower()
        for rule in RULES:
            if rule.applies(text, folded):
                new = rule.sub(text)
                if new != text:
                    text, folded = new, new.lower()
        return text

    def redact_obj(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(self.redact_obj(v) for v in obj)
        return obj


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
