"""``Response``: what ``SessionManager.request`` hands back, the body already read."""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._constants import ERROR_BODY_EXCERPT, REASON_KEYS, REQUEST_ID_HEADERS
from .errors import ResponseParseError

__all__ = ["Response", "new_response"]

_fast_loads: Callable[[bytes], Any] | None
try:  # the speed extra (vendorkit[speed]): several times faster than the stdlib's decoder
    import orjson

    _fast_loads = orjson.loads
except ImportError:  # pragma: no cover - the stdlib decodes alone
    _fast_loads = None


#: Every digit to 0, anything else to a space: 19 zeros in a row after it are a number
#: that may be an integer past 64 bits, which orjson reads as a float (translate() and a
#: substring search run in C, where a regular expression took as long as the decoding).
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def _loads(content: bytes) -> Any:
    """JSON from bytes: orjson when installed, the stdlib for anything orjson refuses (a
    BOM, NaN, a lone surrogate...) or might read differently (an integer past 64 bits), so
    results and errors stay the stdlib's."""
    if _fast_loads is not None and _LONG_NUMBER not in content.translate(_DIGITS):
        try:
            return _fast_loads(content)
        except ValueError:  # orjson.JSONDecodeError; the stdlib decides
            pass
    return _json.loads(content)


@attrs.frozen(slots=True)
class Response:
    """A complete HTTP answer. The body is read before the connection goes back to the pool."""

    status: int
    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    content: bytes = attrs.field(repr=False)
    #: Seconds from sending the request to reading the last byte of the body.
    elapsed: float

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def request_id(self) -> str | None:
        """The server's request id, when it sends one (quote it to the vendor's support)."""
        for name in REQUEST_ID_HEADERS:
            value = self.headers.get(name)
            if value:
                return value
        return None

    @property
    def ok(self) -> bool:
        return self.status < 400

    def json(self) -> Any:
        """The body decoded as JSON; a :class:`ResponseParseError` when it is not JSON."""
        try:
            return _loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: absurd nesting
            # The body is not quoted: this layer cannot redact it, and it may echo a secret.
            content_type = self.headers.get("Content-Type", "unknown content type")
            raise ResponseParseError(
                f"{self.method} {self.url} -> HTTP {self.status}: expected JSON, got "
                f"{content_type} ({len(self.content)} bytes) that does not parse as JSON",
                response=self,
            ) from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or an empty dict when it is anything else."""
        try:
            value = _loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {}
        return value if isinstance(value, dict) else {}

    def reason(
        self, *, redact: Callable[[str], str] | None = None, limit: int = 200
    ) -> str | None:
        """The server's own words for an error, or None: the string values of the keys
        servers put them under (``REASON_KEYS``), joined with ": ", each redacted before
        it is cut to ``limit`` so no secret is left half-quoted."""
        body = self.json_object()
        parts: list[str] = []
        for key in REASON_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
        if not parts:
            return None
        return ": ".join((redact(part) if redact else part)[:limit] for part in parts)

    def excerpt(
        self, limit: int = ERROR_BODY_EXCERPT, *, redact: Callable[[str], str] | None = None
    ) -> str:
        """The start of the body, for error messages; ``redact`` runs before the cut, so a
        secret that straddles the limit is not left half-quoted."""
        text = (redact(self.text) if redact else self.text).strip().replace("\n", " ")
        return text if len(text) <= limit else text[:limit] + "..."


_STATUS, _METHOD, _URL, _HEADERS, _CONTENT, _ELAPSED = (
    getattr(Response, field.name).__set__ for field in attrs.fields(Response)
)


def new_response(
    status: int, method: str, url: str, headers: Mapping[str, str], content: bytes,
    elapsed: float,
) -> Response:
    """``Response(status, method, url, headers, content, elapsed)`` for the transport's hot
    path: each slot stored as the frozen ``__init__`` stores it, without its
    ``object.__setattr__`` lookup per field (1.85 us -> 1.4 us a call here)."""
    response: Response = object.__new__(Response)
    _STATUS(response, status)
    _METHOD(response, method)
    _URL(response, url)
    _HEADERS(response, headers)
    _CONTENT(response, content)
    _ELAPSED(response, elapsed)
    return response
