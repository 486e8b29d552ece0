"""URL rules, stated once: which base URLs are accepted, what an origin is, how a path
segment and a header value are made safe to send.

- A base URL is absolute http(s), has no userinfo (``https://vendor@evil`` reads as the
  vendor but goes to ``evil``), and is https unless its host is loopback or the caller
  passes ``allow_insecure_http=True``: plain http elsewhere sends credentials in clear.
- Loopback means the literal name ``localhost`` or a loopback IP literal. Names under
  ``.localhost`` are not: without systemd-resolved they go to DNS like any other name.
- An origin is scheme, host and port (default ports filled in): the boundary a credential
  or a redirect must not cross.
- A path parameter is one percent-encoded segment; ``.`` and ``..`` are refused, since a
  client or proxy would resolve them into another path.
- Error messages name the argument, never a value that could hold a secret.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, quote, urlsplit

from .errors import ConfigurationError

__all__ = [
    "check_base_url",
    "check_header_value",
    "is_loopback",
    "origin",
    "path_param",
    "same_origin",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: C0 controls and DEL; a horizontal tab is allowed inside a field value (RFC 9110, 5.5).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``), bracketed
    or not; False for every other name, ``*.localhost`` included."""
    host = host.lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def check_base_url(name: str, url: str, *, allow_insecure_http: bool = False) -> str:
    """Validate a base URL argument: absolute http(s) with a host and no userinfo, and
    https unless the host is loopback or ``allow_insecure_http`` is set; returned stripped
    of surrounding blanks and trailing slashes."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{name} is required")
    url = url.strip()
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ConfigurationError(
            f"{name} must not hold a user name or password (user@host): credentials go in "
            "the client's own arguments, and user@ can disguise the host it really names"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{name} must be an absolute http(s) URL such as https://host, got {url!r}"
        )
    _port(name, parts)
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{name} uses plain http:// to a non-loopback host; credentials would cross the "
            "network in clear. Use https://, or pass allow_insecure_http=True"
        )
    return url.rstrip("/")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute http(s) URL, lower-cased, the port written
    only when it is not the scheme's default; a :class:`ConfigurationError` otherwise."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigurationError("an origin needs an absolute http(s) URL with a host")
    port = _port("URL", parts) or _DEFAULT_PORTS[scheme]
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def same_origin(a: str, b: str) -> bool:
    """True when both are absolute http(s) URLs of one scheme, host and port (``https://h``
    and ``https://h:443`` are one origin); False for anything else, relative URLs included."""
    try:
        return origin(a) == origin(b)
    except ConfigurationError:
        return False


def path_param(name: str, value: str) -> str:
    """``value`` as one percent-encoded path segment (``/``, ``?`` and ``#`` included);
    a :class:`ConfigurationError` naming ``name`` for a blank value, ``.`` or ``..``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} is required and must be a non-empty string")
    if value in (".", ".."):
        raise ConfigurationError(
            f"{name} must not be '.' or '..': the path would resolve to another resource"
        )
    return quote(value, safe="")


def check_header_value(value: str, *, name: str = "a header value") -> str:
    """``value`` unchanged if it can be sent as an HTTP header value; a
    :class:`ConfigurationError` naming ``name`` (never quoting the value) if it holds CR, LF
    or another control character, which would end the header or smuggle another one."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string")
    if _CONTROL.search(value):
        raise ConfigurationError(
            f"{name} holds a control character (CR, LF or another) and cannot be sent in "
            "an HTTP header"
        )
    return value


def _port(name: str, parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise ConfigurationError(f"{name} has an invalid port") from None
