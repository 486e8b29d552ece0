"""Secret masking, the one home of the rule: each secret and the forms a server echoes it in.

A server that quotes what it was sent rarely quotes it verbatim: a JSON error body escapes
``"`` and ``\\`` (and non-ASCII, and sometimes ``/``), and a form or query echo is
percent-encoded. So every secret is masked in each of those forms, longest form first, so
that a secret inside another secret cannot leave part of the longer one behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

import attrs

__all__ = ["MASK", "Redactor", "SecretFields", "redact", "secret_forms"]

#: What a secret is replaced with.
MASK = "***"


def secret_forms(secret: str) -> frozenset[str]:
    """``secret`` as written, JSON-escaped (ASCII-only or not, ``/`` escaped or not) and
    URL-encoded (``quote`` with nothing safe, and ``quote_plus``); empty for ``""``."""
    if not secret:
        return frozenset()
    escaped = json.dumps(secret)[1:-1]
    escaped_unicode = json.dumps(secret, ensure_ascii=False)[1:-1]
    return frozenset({
        secret,
        escaped,
        escaped_unicode,
        escaped.replace("/", "\\/"),  # PHP's json_encode and others escape the solidus
        escaped_unicode.replace("/", "\\/"),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    })


def _forms(secrets: Iterable[str | None]) -> tuple[str, ...]:
    forms = {form for secret in secrets if secret for form in secret_forms(secret)}
    return tuple(sorted(forms, key=lambda form: (-len(form), form)))


@attrs.frozen(slots=True)
class Redactor:
    """Replaces every given secret, in every form it may be echoed in, with ``***``.

    Built once from the secrets (``Redactor(secrets)``) and called on each text; its repr
    shows how many forms it masks, never one of them.
    """

    forms: tuple[str, ...] = attrs.field(
        converter=_forms, repr=lambda forms: f"<{len(forms)} masked>"
    )

    def __call__(self, text: str) -> str:
        for form in self.forms:
            text = text.replace(form, MASK)
        return text


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret of ``secrets`` masked (``None`` and ``""`` are skipped)."""
    return Redactor(secrets)(text)


class SecretFields(dict[str, str]):
    """A login's fields (a password, a client secret among them): a plain dict to send,
    whose repr shows the keys only, so a traceback rendered with ``capture_locals=True``
    (or a debugger's variable view) does not print the credentials."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{key!r}: {MASK!r}" for key in self) + "}"
