"""Response.json(): orjson when installed, the stdlib's answer whenever they could differ."""

from __future__ import annotations

import json

import pytest

from vendorkit import ResponseParseError
from vendorkit.response import Response


def _answer(body: bytes) -> Response:
    return Response(200, "GET", "https://api.test/x", {"Content-Type": "application/json"},
                    body, 0.01)


@pytest.mark.parametrize("body", [
    b'{"id": "1", "n": 42, "f": 1.5, "ok": true, "tags": ["a"], "none": null}',
    b"123456789012345678901234567890",  # past 64 bits: orjson would read a float
    b'{"id": 18446744073709551616}',
    b"NaN",
    b"[Infinity, -Infinity]",
    b'\xef\xbb\xbf{"bom": 1}',
    b'"\\ud800"',  # a lone surrogate
    b'{"a": 1, "a": 2}',
])
def test_json_reads_every_body_as_the_standard_library_does(body: bytes) -> None:
    expected = json.loads(body)

    got = _answer(body).json()

    assert repr(got) == repr(expected)


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"[" * 200_000 + b"]" * 200_000])
def test_a_body_that_is_not_json_or_absurdly_deep_raises_a_parse_error(body: bytes) -> None:
    with pytest.raises(ResponseParseError, match="does not parse as JSON"):
        _answer(body).json()
