"""The exceptions vendorkit raises.

::

    VendorkitError
     +-- ConfigurationError          bad arguments or missing environment variables
     +-- TokenStoreError             a shared token store failed (``strict=True``) or timed out
     +-- TransportError              the request got no HTTP answer
     |    +-- ConnectError           could not connect, or the connection dropped
     |    +-- TimeoutError           no complete answer in time (also a builtin TimeoutError)
     +-- ResponseParseError          an answer that does not have the documented shape
     |    +-- TokenResponseError     a login answer without a usable token
     +-- APIError                    an HTTP error status
          +-- BadRequestError        400, 409, 410, 422
          +-- AuthenticationError    401, and failed logins
          |    +-- InvalidGrantError a refresh token the server no longer accepts
          +-- PermissionDeniedError  403
          +-- NotFoundError          404
          +-- RateLimitError         429, with ``retry_after``
          +-- ServerError            5xx
          +-- RedirectError          a 3xx not followed: to another origin, or on a login
          +-- ResponseTooLargeError  a body past ``max_body_size``; status and headers kept

Messages never contain a secret: bodies are quoted only as a short excerpt, and token
responses are described by their keys, never their values.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .response import Response

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConnectError",
    "InvalidGrantError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectError",
    "ResponseTooLargeError",
    "ResponseParseError",
    "ServerError",
    "TimeoutError",
    "TokenResponseError",
    "TokenStoreError",
    "TransportError",
    "VendorkitError",
    "error_for_status",
]


class VendorkitError(Exception):
    """Root of every error vendorkit raises."""


class ConfigurationError(VendorkitError, ValueError):
    """An argument or environment variable is missing or invalid; names it, never its value."""


class TokenStoreError(VendorkitError):
    """A shared token store (Redis, a file) could not be used: unreachable with
    ``strict=True``, or another process held the login lock past the wait timeout."""


class TransportError(VendorkitError):
    """The request got no HTTP answer. Safe to retry for idempotent calls."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        request_sent: bool = True,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        #: False only when the connection was never made, so the server cannot have seen it.
        self.request_sent = request_sent
        #: False for failures that waiting will not cure, such as an untrusted certificate.
        self.retryable = retryable


class ConnectError(TransportError):
    """Could not connect, or the server closed the connection before a full answer."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """No complete answer within the timeout."""


class ResponseParseError(VendorkitError):
    """A response body does not have the shape the vendor documents.

    ``response`` is the whole answer when there was one (status, headers, ``content``,
    ``.json()``), so nothing the server said is lost: after a POST that created a job,
    ``exc.response.json()`` still holds its id. ``model`` and ``field`` name what did not
    fit, when a typed model was being read.
    """

    def __init__(
        self,
        message: str,
        *,
        response: Response | None = None,
        model: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.response = response
        self.model = model
        self.field = field


class TokenResponseError(ResponseParseError):
    """A login or refresh answer carried no usable token (keys are named, values never)."""


class APIError(VendorkitError):
    """The server answered with an error status."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int,
        method: str = "",
        url: str = "",
        request_id: str | None = None,
        body_excerpt: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        self.headers: Mapping[str, str] = headers or {}


class BadRequestError(APIError):
    """400, 409, 410 or 422: the request itself is wrong; fix it before trying again."""


class AuthenticationError(APIError):
    """401, or a login the server refused: check the credentials."""


class InvalidGrantError(AuthenticationError):
    """The server no longer accepts a refresh token (``invalid_grant``): log in again."""


class PermissionDeniedError(APIError):
    """403: the credentials are valid but not allowed to do this."""


class NotFoundError(APIError):
    """404: no such resource."""


class RateLimitError(APIError):
    """429: too many requests. ``retry_after`` is the server's wait, in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed; usually worth retrying later."""


class ResponseTooLargeError(APIError):
    """An answer whose body is larger than the client's ``max_body_size``: not read past
    it. ``status`` and ``headers`` are the answer's; ``limit`` is the cap in bytes."""

    def __init__(self, message: str, *, limit: int = 0, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.limit = limit


class RedirectError(APIError):
    """A redirect vendorkit refused to follow: to another origin (scheme, host or port),
    a loop, or any redirect of a login, refresh or logout, whose credentials must never be
    re-sent elsewhere. ``source`` and ``target`` name the two origins (or URLs)."""

    def __init__(self, message: str, *, source: str = "", target: str = "",
                 **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.source = source
        self.target = target

    @classmethod
    def refused(cls, response: Any, source: str, target: str, *, loop: bool = False
                ) -> RedirectError:
        """The error for ``response`` (a 3xx) from ``source`` pointing at ``target``."""
        from urllib.parse import urlsplit

        parts = urlsplit(target)
        shown = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port
                                                               else "")
        why = ("more than 10 redirects" if loop
               else f"HTTP {response.status} from {source} to {shown}: a redirect is followed "
                    "only within the vendor's origin, and never for a login, refresh or logout")
        return cls(
            f"{response.method} {urlsplit(response.url).path}: refused to follow {why}",
            status=response.status, method=response.method, url=urlsplit(response.url).path,
            request_id=response.request_id, headers=response.headers, source=source,
            target=shown,
        )


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: BadRequestError,
    410: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}

_ADVICE: dict[type[APIError], str] = {
    BadRequestError: "check the request's parameters",
    AuthenticationError: "check the credentials",
    PermissionDeniedError: "the credentials lack access to this resource",
    NotFoundError: "check the path and identifiers",
    RateLimitError: "slow down and retry later",
    ServerError: "the server failed; retry later",
    APIError: "see the response body",
}


def error_class(status: int) -> type[APIError]:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else APIError


def error_for_status(
    status: int,
    *,
    method: str,
    url: str,
    request_id: str | None = None,
    body_excerpt: str = "",
    headers: Mapping[str, str] | None = None,
    retry_after: float | None = None,
    detail: str | None = None,
) -> APIError:
    """Build the typed error for an HTTP error answer, with a message a person can act on."""
    cls = error_class(status)
    message = f"{method} {url} -> HTTP {status}"
    if detail:
        message += f": {detail}"
    message += f" ({_ADVICE.get(cls, _ADVICE[APIError])})"
    if request_id:
        message += f" [request id {request_id}]"
    kwargs: dict[str, object] = {
        "status": status,
        "method": method,
        "url": url,
        "request_id": request_id,
        "body_excerpt": body_excerpt,
        "headers": headers,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)  # type: ignore[arg-type]
