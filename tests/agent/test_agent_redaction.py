"""Redaction: a corpus of realistic secret shapes is masked, ordinary ML text and code pass unchanged,
and nothing secret leaves the agent: not to the transcript, not to the model, not in the events."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from intern.agent.guardrails.redaction import MASK, RedactingFilter, Redactor
from intern.agent.llm import LiteLLM
from intern.standins.llm import LLMStandIn
from tests.agent.agent_fakes import ScriptedLLM, echo_tool, reply, task, text_tool
from tests.agent.agent_secret_corpus import HF, KNOWN_SETTING, ORDINARY, SECRETS, SLACK_BOT, pem, rand

REDACTOR = Redactor([KNOWN_SETTING])


def test_the_corpus_is_large_enough() -> None:
    assert len(SECRETS) >= 30
    assert len({label for label, _, _ in SECRETS}) == len(SECRETS)


@pytest.mark.parametrize(("label", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_each_secret_shape_is_masked(label: str, text: str, secret: str) -> None:
    out = REDACTOR.redact(text)
    assert MASK in out and secret not in out
    # nothing but masking happened: what is left is the original text, in order
    pos = 0
    for fragment in out.split(MASK):
        found = text.find(fragment, pos)
        assert found >= 0, f"{fragment!r} was altered"
        pos = found + len(fragment)


@pytest.mark.parametrize("text", ORDINARY, ids=[f"ordinary-{i}" for i in range(len(ORDINARY))])
def test_ordinary_ml_text_and_code_is_unchanged(text: str) -> None:
    assert REDACTOR.redact(text) == text


def test_redaction_is_idempotent_and_keeps_the_surrounding_text() -> None:
    text = "\n".join(t for _, t, _ in SECRETS)
    once = REDACTOR.redact(text)
    assert REDACTOR.redact(once) == once
    assert "psql --password=" in once and "--host db" in once


def test_known_secrets_from_the_settings_are_masked_wherever_they_appear() -> None:
    secret = "plain-looking-" + rand(12)
    r = Redactor([secret, "short"])
    assert r.redact(f"a{secret}b and {secret}") == f"a{MASK}b and {MASK}"
    assert r.redact("short words stay") == "short words stay"  # under six characters: not a secret


def test_nested_objects_are_redacted() -> None:
    obj = {"a": [f"token {HF}", {"b": (SLACK_BOT, 3)}], "n": None}
    out = REDACTOR.redact_obj(obj)
    assert out == {"a": [f"token {MASK}", {"b": (MASK, 3)}], "n": None}


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    filt = RedactingFilter(REDACTOR)
    logger.addFilter(filt)
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("pushing with %s", HF)
            try:
                raise RuntimeError(f"bad token {SLACK_BOT}")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.removeFilter(filt)
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert HF not in text and SLACK_BOT not in text and text.count(MASK) >= 2


def test_a_thirty_thousand_character_output_is_handled_whole() -> None:
    filler = "\n".join(ORDINARY) * 20
    text = filler[:15_000] + f"\nHF_TOKEN={HF}\n" + filler[:15_000]
    out = REDACTOR.redact(text)
    assert HF not in out and out.replace(MASK, HF) == text


# --- on the way out ---------------------------------------------------------------------------------

async def test_nothing_secret_leaves_the_agent(llm: LLMStandIn, harness: Any) -> None:
    leaky_output = (f"Loaded config:\nHF_TOKEN={HF}\nSLACK_BOT_TOKEN={SLACK_BOT}\n"
                    f"db: postgresql://intern:Sup3rS3cret{rand(8)}@db:5432/intern\n{pem('RSA ')}\ntraining ok")
    url_password = leaky_output.split("intern:")[1].split("@")[0]
    secrets = [HF, SLACK_BOT, url_password, KNOWN_SETTING, "PRIVATE KEY-----\n"]
    llm.enqueue_tool_calls([("read_config", {"text": "config.yaml"})])
    llm.enqueue_text(f"The config uses {SLACK_BOT} and {KNOWN_SETTING}; training is ok.")
    h = harness(LiteLLM(api_base=f"{llm.url}/v1", api_key="sk-test-key-1234"), [text_tool("read_config", leaky_output)],
                model="openai/standin-model", known_secrets=(KNOWN_SETTING,))

    outcome = await h.agent.run([{"role": "user", "content": f"Use my token {HF} to push."}])

    assert outcome.status == "done"
    wire = json.dumps(llm.chat_requests)
    stored = json.dumps(h.transcript.messages)
    events = repr(h.sink.events)
    for secret in secrets:
        assert secret not in wire, "sent to the model"
        assert secret not in stored, "stored in the transcript"
        assert secret not in events, "emitted as an event"
    assert outcome.reply is not None and SLACK_BOT not in outcome.reply
    assert MASK in stored and MASK in events and MASK in wire
    assert "training ok" in stored  # the rest of the output is intact


async def test_secrets_in_the_models_own_arguments_are_not_shown_or_sent_back(harness: Any) -> None:
    llm = ScriptedLLM().queue(reply(None, ("echo", {"text": f"login with {HF}"})), reply("done"))
    h = harness(llm, [echo_tool()])

    await h.agent.run([task()])

    assert HF not in repr(h.sink.events)  # the status card shows the call's arguments
    assert HF not in json.dumps(llm.chat_requests[-1]["messages"])  # the model's history view


@pytest.mark.parametrize(("label", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_inside_json_encoded_arguments_secrets_go_and_the_json_stays_valid(label: str, text: str, secret: str) -> None:
    blob = json.dumps({"script": text, "nested": json.dumps({"file": text})})
    out = json.loads(REDACTOR.redact(blob))  # still valid JSON: no escape was eaten
    assert secret not in out["script"] and secret not in json.loads(out["nested"])["file"]


def test_ordinary_text_inside_json_is_unchanged() -> None:
    blob = json.dumps({"script": ORDINARY[0], "files": ORDINARY[1:]})
    assert REDACTOR.redact(blob) == blob
