"""Secret shapes, generated: every token a provider may issue (any case, digits only, the shortest
length it issues) is masked wherever it stands, and what only looks random (git hashes, UUIDs, job
ids, identifiers, repo ids) passes unchanged.

The rule under test (see the redaction module): a secret by shape starts with its provider's prefix at
the start of a word; a bare random-looking string is a secret only in a secret place or when it is a
configured secret."""

from __future__ import annotations

import base64
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intern.agent.guardrails.redaction import MASK, Redactor

REDACTOR = Redactor()
PROPERTY = settings(max_examples=150, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

DIGITS = string.digits
UPPER_DIGITS = string.ascii_uppercase + DIGITS
HEX = "0123456789abcdef"
ALNUM = string.ascii_letters + DIGITS
B64URL = ALNUM + "-_"


def body(alphabet: str, size: int, max_size: int | None = None) -> st.SearchStrategy[str]:
    """A token body from `alphabet`, or from one case or the digits of it only: formats allow those."""
    narrowed = [a for a in (alphabet, string.ascii_lowercase, string.ascii_uppercase, DIGITS,
                            "".join(c for c in alphabet if not c.isdigit()))
                if a and set(a) <= set(alphabet)]
    return st.sampled_from(narrowed).flatmap(
        lambda a: st.text(alphabet=a, min_size=size, max_size=max_size or size))


def discord_token() -> st.SearchStrategy[str]:
    # the first part is the base64 of the bot's user id, a snowflake of 17 to 20 digits
    user = st.integers(10**16, 10**20 - 1).map(
        lambda i: base64.urlsafe_b64encode(str(i).encode()).decode().rstrip("="))
    return st.tuples(user, body(B64URL, 6), body(B64URL, 27, 38)).map(".".join)


TOKENS: dict[str, st.SearchStrategy[str]] = {
    "hub": body(ALNUM, 34, 40).map(lambda b: "hf_" + b),
    "hub oauth": body(ALNUM + "_", 20, 60).map(lambda b: "hf_oauth_" + b),
    "hub org": body(ALNUM, 34).map(lambda b: "api_org_" + b),
    "slack bot": st.tuples(body(DIGITS, 10, 13), body(DIGITS, 10, 13), body(ALNUM, 24)).map(
        lambda p: "xoxb-" + "-".join(p)),
    "slack user": st.tuples(body(DIGITS, 10, 13), body(DIGITS, 10, 13), body(DIGITS, 10, 13), body(HEX, 32)).map(
        lambda p: "xoxp-" + "-".join(p)),
    "slack app": st.tuples(body(UPPER_DIGITS, 10), body(DIGITS, 13), body(HEX, 64)).map(
        lambda p: f"xapp-1-A{p[0]}-{p[1]}-{p[2]}"),
    "openai legacy": body(ALNUM, 20, 51).map(lambda b: "sk-" + b),
    "openai project": st.tuples(st.sampled_from(["proj", "svcacct", "admin"]), body(B64URL, 20, 160)).map(
        lambda p: f"sk-{p[0]}-{p[1]}"),
    "anthropic": body(B64URL, 20, 95).map(lambda b: "sk-ant-api03-" + b),
    "deepseek": body(HEX, 32).map(lambda b: "sk-" + b),
    "github classic": st.tuples(st.sampled_from("pousr"), body(ALNUM, 36)).map(lambda p: f"gh{p[0]}_{p[1]}"),
    "github fine-grained": st.tuples(body(ALNUM, 22), body(ALNUM, 59)).map(lambda p: f"github_pat_{p[0]}_{p[1]}"),
    "gitlab": body(B64URL, 20).map(lambda b: "glpat-" + b),
    "aws key id": st.tuples(st.sampled_from(["AKIA", "ASIA"]), body(UPPER_DIGITS, 16)).map("".join),
    "google": body(B64URL, 35).map(lambda b: "AIza" + b),
    "groq": body(ALNUM, 52).map(lambda b: "gsk_" + b),
    "replicate": body(ALNUM, 37).map(lambda b: "r8_" + b),
    "npm": body(ALNUM, 36).map(lambda b: "npm_" + b),
    "stripe": st.tuples(st.sampled_from(["sk_live_", "sk_test_", "rk_live_"]), body(ALNUM, 24, 99)).map("".join),
    "perplexity": body(ALNUM, 48).map(lambda b: "pplx-" + b),
    "xai": body(ALNUM, 80).map(lambda b: "xai-" + b),
    "discord": discord_token(),
}

# Where a token may stand: prose, quotes, code, JSON, a command line, a log line.
BEFORE = st.sampled_from(["", " ", "token ", "using ", "(", '"', "'", "`", "\n", "login: ", "[", "<"])
AFTER = st.sampled_from(["", " ", ".", ",", ")", '"', "'", "`", "\n", " is set", ";", "]", ">"])


@PROPERTY
@given(kind=st.sampled_from(sorted(TOKENS)), data=st.data(), before=BEFORE, after=AFTER)
def test_every_token_a_provider_may_issue_is_masked_whole(kind: str, data: st.DataObject, before: str,
                                                          after: str) -> None:
    token = data.draw(TOKENS[kind], label=kind)
    text = f"step 1: {before}{token}{after} done"
    assert REDACTOR.redact(text) == f"step 1: {before}{MASK}{after} done"


@PROPERTY
@given(kind=st.sampled_from(sorted(TOKENS)), data=st.data())
def test_a_token_inside_json_encoded_text_goes_and_the_json_stays_valid(kind: str, data: st.DataObject) -> None:
    token = data.draw(TOKENS[kind], label=kind)
    blob = json.dumps({"log": f"env\n{token}\nend", "args": json.dumps({"t": token})})
    out = json.loads(REDACTOR.redact(blob))
    assert out["log"] == f"env\n{MASK}\nend" and json.loads(out["args"]) == {"t": MASK}


def test_single_case_and_shortest_tokens_that_were_missed() -> None:
    for token in ("hf_" + "a" * 34, "hf_" + "Q" * 34, "hf_" + "7" * 34, "sk-" + "abcdefghij" * 5,
                  "MTAwMDAwMDAwMDAwMDAwMDA.GhIjKl." + "a" * 27):
        assert REDACTOR.redact(f"printed {token} here") == f"printed {MASK} here", token


# --- what is not a secret ----------------------------------------------------------------------------

WORD = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)
SNAKE = st.lists(st.text(alphabet=string.ascii_lowercase + DIGITS, min_size=1, max_size=12), min_size=1,
                 max_size=6).map("_".join)
CAMEL = st.tuples(WORD, st.lists(WORD.map(str.capitalize), max_size=5)).map(lambda p: p[0] + "".join(p[1]))
ORDINARY = st.one_of(
    st.text(alphabet=HEX, min_size=40, max_size=40).map(lambda h: f"commit {h}\nAuthor: A <a@b.c>"),
    st.tuples(st.text(alphabet=HEX, min_size=7, max_size=12), WORD).map(lambda p: f"{p[0]} fix {p[1]} loader"),
    st.uuids().map(lambda u: f"session {u} started"),
    st.uuids().map(lambda u: f'{{"approval_id": "{u}", "status": "pending"}}'),
    st.text(alphabet=HEX, min_size=24, max_size=24).map(lambda j: f"job {j} is RUNNING on a10g-large"),
    st.text(alphabet=HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    SNAKE.map(lambda s: f"{s} = load()"),
    SNAKE.map(lambda s: f"from huggingface_hub import hf_{s}"),
    CAMEL.map(lambda c: f"const {c} = new {c.capitalize()}Factory();"),
    st.tuples(WORD, WORD, WORD).map(lambda p: f"https://huggingface.co/{p[0]}-{p[1]}/{p[2]}-sk-v2"),
    st.tuples(WORD, st.integers(0, 10**6), st.floats(0, 10, allow_nan=False)).map(
        lambda p: f"{{'{p[0]}': {p[2]!r}, 'step': {p[1]}}}"),
    st.lists(WORD, min_size=2, max_size=6).map(lambda ws: "task-" + "-".join(ws)),
    st.lists(WORD, min_size=2, max_size=6).map(lambda ws: "sk-" + "-".join(ws)),
)


@PROPERTY
@given(text=ORDINARY)
def test_hashes_uuids_job_ids_and_identifiers_pass_unchanged(text: str) -> None:
    assert REDACTOR.redact(text) == text
