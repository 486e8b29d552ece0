"""The exception tree: one typed error per status, carrying what a person needs to act."""

from __future__ import annotations

import builtins

import attrs
import pytest

from tests.conftest import MakeManager
from tests.toy import Toy
from vendorkit import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectError,
    InvalidGrantError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
    RetryPolicy,
    ServerError,
    TimeoutError,
    TokenResponseError,
    TransportError,
    VendorkitError,
)
from vendorkit.errors import error_for_status
from vendorkit.models import model, structure

STATUSES: list[tuple[int, type[APIError]]] = [
    (400, BadRequestError),
    (409, BadRequestError),
    (422, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (429, RateLimitError),
    (500, ServerError),
    (503, ServerError),
]


@pytest.mark.parametrize(("status", "expected"), STATUSES)
async def test_typed_errors_for_each_status(
    toy: Toy, make_manager: MakeManager, status: int, expected: type[APIError]
) -> None:
    manager = make_manager("json", retry=RetryPolicy.never())
    await manager.login()
    # A 401 is first taken for a dead token: re-login and replay once, then raise.
    toy.answer_next(
        2 if status == 401 else 1,
        status=status,
        retry_after="7" if status == 429 else None,
        headers={"X-Request-Id": f"req-{status}"},
        body={"message": f"toy says no ({status})", "hint": "see docs"},
    )

    with pytest.raises(APIError) as caught:
        await manager.request("GET", "/data", params={"q": "1"})

    error = caught.value
    assert type(error) is expected
    assert (error.status, error.method, error.url) == (status, "GET", "/data")
    assert error.request_id == f"req-{status}"
    assert f"toy says no ({status})" in error.body_excerpt
    assert f"HTTP {status}" in str(error)
    assert f"req-{status}" in str(error)
    assert f"toy says no ({status})" in str(error)
    assert toy.counters.requests["GET /data"] == (2 if status == 401 else 1)
    if status == 429:
        assert isinstance(error, RateLimitError)
        assert error.retry_after == 7.0
    assert manager.stats.errors == 1


async def test_error_body_excerpt_is_short(toy: Toy, make_manager: MakeManager) -> None:
    manager = make_manager("json")
    toy.answer_next(1, status=400, body="x" * 5000)

    with pytest.raises(BadRequestError) as caught:
        await manager.request("GET", "/data")

    assert len(caught.value.body_excerpt) <= 203
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("status", "expected"),
    [(410, BadRequestError), (418, APIError), (502, ServerError), (599, ServerError)],
)
def test_error_for_status_maps_other_statuses(status: int, expected: type[APIError]) -> None:
    error = error_for_status(status, method="DELETE", url="/x")

    assert type(error) is expected
    assert error.status == status
    assert str(error).startswith(f"DELETE /x -> HTTP {status}")


def test_error_messages_say_what_to_do() -> None:
    assert "check the credentials" in str(error_for_status(401, method="GET", url="/"))
    assert "retry later" in str(error_for_status(503, method="GET", url="/"))
    limited = error_for_status(429, method="GET", url="/", retry_after=3.0)
    assert isinstance(limited, RateLimitError)
    assert limited.retry_after == 3.0


def test_exception_tree() -> None:
    assert issubclass(InvalidGrantError, AuthenticationError)
    assert issubclass(TokenResponseError, ResponseParseError)
    assert issubclass(ConnectError, TransportError)
    assert issubclass(TimeoutError, TransportError)
    assert issubclass(TimeoutError, builtins.TimeoutError)  # `except TimeoutError` still works
    assert issubclass(ConfigurationError, ValueError)
    for cls in (ConfigurationError, TransportError, ResponseParseError, APIError):
        assert issubclass(cls, VendorkitError)


@model
@attrs.frozen
class Job:
    job_id: str
    state: str = "queued"


async def test_a_parse_error_keeps_the_whole_response_so_a_created_job_is_never_lost(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    toy.answer_next(1, route="POST /items", status=201, body={"id": "job-9", "state": 3.5},
                    headers={"X-Request-Id": "req-created"})
    response = await manager.request("POST", "/items", json={"name": "x"})

    with pytest.raises(ResponseParseError) as caught:
        structure(response.json(), Job, what="new job", response=response)

    error = caught.value
    assert error.response is response
    assert error.response.json() == {"id": "job-9", "state": 3.5}
    assert error.response.request_id == "req-created"
    assert (error.model, error.field) == ("Job", "job_id")
    assert str(error) == ("new job does not fit Job: Job.job_id: missing "
                          "(POST /items -> HTTP 201)")
    assert toy.counters.requests["POST /items"] == 1


async def test_a_body_that_is_not_json_raises_a_parse_error_with_the_response(
    toy: Toy, make_manager: MakeManager
) -> None:
    manager = make_manager("json")
    toy.answer_next(1, status=200, body="<html>maintenance</html>")
    response = await manager.request("GET", "/data")

    with pytest.raises(ResponseParseError, match="expected JSON") as caught:
        response.json()

    assert caught.value.response is response
    assert caught.value.response.content == b"<html>maintenance</html>"
