"""Secret masking: every secret, in every form a server echoes it in, becomes ``***``."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus, urlencode

import pytest

from vendorkit.cli import output
from vendorkit.redaction import MASK, Redactor, redact, secret_forms

#: A password with a quote, a backslash, a slash, a space, a plus and a non-ASCII letter.
AWKWARD = 'Pa"ss\\w/rd +Ünï-7'


def test_a_secret_quoted_verbatim_is_masked() -> None:
    assert redact("bad secret s3cr3t-value here", ["s3cr3t-value"]) == "bad secret *** here"


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_a_secret_echoed_json_escaped_is_masked(ensure_ascii: bool) -> None:
    body = json.dumps({"error": "invalid_client", "password": AWKWARD}, ensure_ascii=ensure_ascii)
    assert AWKWARD not in body  # the echo is not the secret as written

    masked = redact(body, [AWKWARD])

    assert json.loads(masked) == {"error": "invalid_client", "password": MASK}


def test_a_secret_echoed_with_escaped_slashes_is_masked() -> None:
    body = json.dumps({"password": AWKWARD}).replace("/", "\\/")  # PHP's json_encode

    assert json.loads(redact(body, [AWKWARD])) == {"password": MASK}


@pytest.mark.parametrize("encode", [
    lambda s: quote(s, safe=""), quote_plus, lambda s: urlencode({"p": s})[2:],
])
def test_a_secret_echoed_url_encoded_is_masked(encode: object) -> None:
    assert callable(encode)
    echoed = f"GET /login?password={encode(AWKWARD)}&next=1"

    assert redact(echoed, [AWKWARD]) == "GET /login?password=***&next=1"


def test_the_longest_secret_is_masked_first_so_none_is_left_half_shown() -> None:
    masked = redact("token abcdef-123456 and abcdef", ["abcdef", "abcdef-123456"])

    assert masked == "token *** and ***"


def test_empty_and_missing_secrets_are_ignored() -> None:
    assert redact("nothing to hide", ["", None]) == "nothing to hide"
    assert secret_forms("") == frozenset()


def test_a_redactor_is_built_once_and_its_repr_shows_no_secret() -> None:
    redactor = Redactor([AWKWARD, "other-secret", None])

    assert redactor(f"x {AWKWARD} y other-secret") == "x *** y ***"
    assert redactor(json.dumps(AWKWARD)) == f'"{MASK}"'
    shown = repr(redactor)
    assert shown.startswith("Redactor(") and "masked" in shown
    assert "Pa" not in shown and "other-secret" not in shown
    assert Redactor([AWKWARD]) == Redactor([AWKWARD, AWKWARD])


def test_the_cli_prints_a_secret_the_server_echoed_masked_in_every_form(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "_secrets", set())  # this test's secrets only
    output.remember_secrets([AWKWARD, None])

    output.print_json({"echo": AWKWARD, "query": f"password={quote_plus(AWKWARD)}"})
    output.error(f'login refused: {{"password": {json.dumps(AWKWARD)}}}')

    printed = capsys.readouterr()
    assert json.loads(printed.out) == {"echo": MASK, "query": f"password={MASK}"}
    assert printed.err == 'vendorkit: error: login refused: {"password": "***"}\n'
