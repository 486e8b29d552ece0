"""``Response``: what ``SessionManager.request`` hands back, the body already read."""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._constants import ERROR_BODY_EXCERPT, REQUEST_ID_HEADERS
from .errors import ResponseParseError

__all__ = ["Response"]


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
            return _json.loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError):  # Recursion: absurd nesting
            # The body is not quoted: this layer cannot redact it, and it may echo a secret.
            content_type = self.headers.get("Content-Type", "unknown content type")
            raise ResponseParseError(
                f"{self.method} {self.url} -> HTTP {self.status}: expected JSON, got "
                f"{content_type} ({len(self.content)} bytes) that does not parse as JSON"
            ) from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or an empty dict when it is anything else."""
        try:
            value = _json.loads(self.content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return {}
        return value if isinstance(value, dict) else {}

    def excerpt(
        self, limit: int = ERROR_BODY_EXCERPT, *, redact: Callable[[str], str] | None = None
    ) -> str:
        """The start of the body, for error messages; ``redact`` runs before the cut, so a
        secret that straddles the limit is not left half-quoted."""
        text = (redact(self.text) if redact else self.text).strip().replace("\n", " ")
        return text if len(text) <= limit else text[:limit] + "..."
