"""Proxies and CA bundles: ``proxy=``, ``ssl=`` and what the environment says of them.

As httpx and requests do, the environment is honoured unless ``trust_env=False``:
``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (either case) less ``NO_PROXY``, and
``SSL_CERT_FILE`` when ``ssl=True``. It is read once, when the client is built, and each
origin's proxy is decided once, so the hot path pays a dict lookup at most (aiohttp's own
``trust_env`` re-reads the environment, and looks up ``~/.netrc``, on a thread per request).
"""

from __future__ import annotations

import logging
import os
import ssl as _ssl
import urllib.request
from urllib.parse import urlsplit

from yarl import URL

from .errors import ConfigurationError

__all__ = ["ProxyRoutes", "SSLSetting", "ssl_context"]

logger = logging.getLogger("vendorkit")

#: What ``ssl=`` takes: verify with the system's CAs (True), do not verify (False), an
#: ``SSLContext``, or the path of a CA bundle (PEM file, or an OpenSSL hashed directory).
SSLSetting = _ssl.SSLContext | bool | str | os.PathLike[str]

_PROXY_SCHEMES = ("http", "https")
_ORIGINS_KEPT = 256


def _proxy_url(value: str, name: str) -> URL | None:
    """``value`` as a proxy URL (``host:port`` alone means http); None for a scheme aiohttp
    cannot speak. The URL may hold credentials: no message quotes it."""
    try:
        url = URL(value if "://" in value else "http://" + value)
        scheme, host = url.scheme, url.host
    except ValueError:
        scheme, host = "malformed", None
    if scheme in _PROXY_SCHEMES and host:
        return url
    if name == "proxy":
        raise ConfigurationError(
            f"proxy must be an http:// or https:// URL with a host, got a {scheme} URL"
        )
    logger.warning("vendorkit: ignoring %s: a %s URL is not a proxy aiohttp can use",
                   name, scheme)
    return None


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names ``host`` (``name`` or ``name:port``): ``*``, the name,
    or a domain it is below (``example.com`` and ``.example.com`` both cover
    ``api.example.com``), as curl, requests and httpx read it."""
    if no_proxy.strip() == "*":
        return True
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host  # [::1]:80 keeps ::1
    if name.startswith("[") and "]" in name:
        name = name[1:name.index("]")]
    for entry in no_proxy.lower().split(","):
        entry = entry.strip().lstrip(".")
        if entry and (entry in (name, host) or name.endswith("." + entry)
                      or host.endswith("." + entry)):
            return True
    return False


class ProxyRoutes:
    """Which proxy a request goes through (None: straight to the server): ``proxy=`` for
    every request, else the environment's proxy for the URL's scheme unless ``NO_PROXY``
    names its host. ``build`` returns None when no request would use a proxy."""

    __slots__ = ("_by_origin", "_environment", "_explicit")

    def __init__(self, explicit: URL | None, environment: dict[str, str]) -> None:
        self._explicit = explicit
        self._environment = environment
        self._by_origin: dict[tuple[str, str], URL | None] = {}

    @classmethod
    def build(cls, proxy: str | None, *, trust_env: bool) -> ProxyRoutes | None:
        if proxy is not None:
            return cls(_proxy_url(proxy, "proxy"), {})
        if not trust_env:
            return None
        environment = urllib.request.getproxies_environment()  # lower-case keys, "no" too
        if not any(scheme in environment for scheme in (*_PROXY_SCHEMES, "all")):
            return None
        return cls(None, environment)

    def for_url(self, url: str) -> URL | None:
        if self._explicit is not None:
            return self._explicit
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        try:
            return self._by_origin[key]
        except KeyError:
            pass
        environment = self._environment
        value = environment.get(parts.scheme) or environment.get("all")
        host = parts.netloc.rpartition("@")[2]
        chosen = None
        if value and not _bypassed(host.lower(), environment.get("no", "")):
            chosen = _proxy_url(value, f"the {parts.scheme} proxy of the environment")
        if len(self._by_origin) >= _ORIGINS_KEPT:
            self._by_origin.clear()
        self._by_origin[key] = chosen
        return chosen


def ssl_context(ssl: SSLSetting, *, trust_env: bool) -> _ssl.SSLContext | bool:
    """What aiohttp's connector gets for ``ssl=``: a CA bundle path becomes a context that
    trusts that bundle alone; True becomes one that trusts ``SSL_CERT_FILE`` alone when
    ``trust_env`` and it names a file (as with httpx and requests); the rest is kept."""
    if isinstance(ssl, _ssl.SSLContext | bool):
        if ssl is not True or not trust_env:
            return ssl
        bundle = os.environ.get("SSL_CERT_FILE", "")
        if not os.path.isfile(bundle):
            return True
        name = "SSL_CERT_FILE"
    elif isinstance(ssl, str | os.PathLike):
        bundle, name = os.fspath(ssl), "ssl"
    else:
        raise ConfigurationError(
            "ssl must be True, False, an ssl.SSLContext or the path of a CA bundle, "
            f"got {type(ssl).__name__}"
        )
    try:
        if os.path.isdir(bundle):
            return _ssl.create_default_context(capath=bundle)
        return _ssl.create_default_context(cafile=bundle)
    except (OSError, _ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "unreadable"
        raise ConfigurationError(
            f"{name} names {bundle!r}, which is not a usable CA bundle ({reason})"
        ) from None
