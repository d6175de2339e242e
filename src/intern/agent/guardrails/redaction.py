"""Secrets are replaced before text reaches the model, the database, logs or the chat."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "[REDACTED]"

# (name, pattern). Order matters: specific shapes before generic ones.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pem", re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)),
    ("hf", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("hf_oauth", re.compile(r"\bhf_oauth_[A-Za-z0-9_]{20,}\b")),
    ("slack", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}\b")),
    ("slack_app", re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,}\b")),
    ("slack_webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+")),
    ("anthropic", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}\b")),
    ("openai", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}\b")),
    ("github", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("aws_access", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("aws_secret", re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*['\"]?)[A-Za-z0-9/+=]{40}")),
    ("google", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("groq", re.compile(r"\bgsk_[A-Za-z0-9]{40,}\b")),
    ("stripe", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{20,}\b")),
    ("discord", re.compile(r"\b[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")),
    ("bearer", re.compile(r"(?i)(\bauthorization\s*:\s*bearer\s+)[A-Za-z0-9._~+/=-]{12,}")),
    ("url_password", re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)([^@/\s]+)(@)", re.I)),
    ("assignment", re.compile(
        r"(?i)\b([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|PRIVATE_KEY|ACCESS_KEY)[A-Z0-9_]*"
        r"\s*[=:]\s*)(['\"]?)([^\s'\"]{6,})\2")),
)


class Redactor:
    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self.known = sorted({s for s in known_secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        if not text:
            return text
        for secret in self.known:
            if secret in text:
                text = text.replace(secret, MASK)
        for name, pattern in PATTERNS:
            if name == "url_password":
                text = pattern.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
            elif name in ("aws_secret", "bearer"):
                text = pattern.sub(lambda m: f"{m.group(1)}{MASK}", text)
            elif name == "assignment":
                text = pattern.sub(_assignment, text)
            else:
                text = pattern.sub(MASK, text)
        return text

    def redact_obj(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_obj(v) for v in obj]
        return obj


def _assignment(m: re.Match[str]) -> str:
    value = m.group(3)
    if value == MASK or value.startswith("$") or value.startswith("{"):
        return m.group(0)  # already masked, or a reference such as $HF_TOKEN / {{ secrets.X }}
    return f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}"


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
