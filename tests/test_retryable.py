"""One table decides which failures of the outside world a retry may cure, by exception type: the
Hub's and the database's errors, as their ports declare them, and our own error families."""

from __future__ import annotations

import httpx2
import pytest
from asyncpg import exceptions as pg
from huggingface_hub import errors as hf
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from intern.agent.errors import ToolFeedback, TurnStopped, retryable
from intern.agent.hub import declare_hub_errors
from intern.bot.store import declare_postgres_errors

REQUEST = httpx2.Request("GET", "http://127.0.0.1/api/jobs/x")


def answered(status: int, kind: type[hf.HfHubHTTPError] = hf.HfHubHTTPError) -> hf.HfHubHTTPError:
    return kind(f"{status}", response=httpx2.Response(status, request=REQUEST))


def raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


@pytest.fixture(autouse=True)
def ports() -> None:
    declare_hub_errors()
    declare_postgres_errors()


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_hub_answer_that_may_pass_is_retryable(status: int) -> None:
    assert retryable(answered(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
def test_a_final_hub_answer_is_not(status: int) -> None:
    assert not retryable(answered(status))
    assert not retryable(answered(status, hf.RepositoryNotFoundError))


def test_a_lost_connection_to_the_hub_is_retryable_a_missing_token_is_not() -> None:
    assert retryable(httpx2.ReadTimeout("slow", request=REQUEST))
    assert retryable(httpx2.ConnectError("refused", request=REQUEST))
    assert retryable(httpx2.RemoteProtocolError("cut short", request=REQUEST))
    assert retryable(ConnectionResetError())
    assert retryable(TimeoutError())
    assert not retryable(hf.LocalTokenNotFoundError("no token"))
    assert not retryable(ValueError("bad id"))


def test_database_outages_are_retryable_constraint_violations_are_not() -> None:
    assert retryable(OperationalError("SELECT 1", {}, Exception("database is locked")))
    assert retryable(DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True))
    # SQLAlchemy's asyncpg adapter wraps the driver's error: the driver's is the adapter error's cause.
    adapter_error = raised_from(RuntimeError("adapter"), pg.ConnectionDoesNotExistError("closed"))
    assert retryable(DBAPIError("SELECT 1", {}, adapter_error))
    assert retryable(pg.SerializationError("could not serialize"))
    assert retryable(OSError(101, "Network is unreachable"))
    assert not retryable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not retryable(DBAPIError("SELECT 1", {}, pg.UndefinedTableError("no such table")))


def test_feedback_and_terminal_outcomes_are_never_retried_whatever_they_were_raised_from() -> None:
    assert not retryable(raised_from(ToolFeedback("the Hub did not answer"), httpx2.ReadTimeout("slow")))
    assert not retryable(raised_from(TurnStopped("stopped"), ConnectionResetError()))
    assert retryable(raised_from(RuntimeError("while saving"), OperationalError("UPDATE", {}, Exception())))
