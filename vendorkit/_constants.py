"""Every default in one place: timeouts, refresh windows, retry bounds, pool sizes."""

from __future__ import annotations

from ._version import __version__

#: Whole-request timeout (connect + send + read), seconds.
DEFAULT_TIMEOUT = 30.0
#: Connect timeout, seconds.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: How long ``aclose()`` may spend on logout / revocation before giving up.
DEFAULT_LOGOUT_TIMEOUT = 5.0

#: Largest answer body read, bytes (64 MiB); an error answer is read up to
#: ERROR_BODY_READ only, enough for its reason and excerpt.
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024
ERROR_BODY_READ = 64 * 1024

#: Connection pool size; aiohttp's own default, so vendorkit is no greedier than raw aiohttp.
DEFAULT_MAX_CONNECTIONS = 100

#: Advisory refresh window: the last min(60 s, half the lifetime). One task refreshes in
#: the background while every call goes on with the still-valid token.
ADVISORY_REFRESH_SECONDS = 60.0
ADVISORY_REFRESH_FRACTION = 0.5
#: Mandatory refresh window: the last min(10 s, a quarter of the lifetime). Calls wait.
MANDATORY_REFRESH_SECONDS = 10.0
MANDATORY_REFRESH_FRACTION = 0.25
#: After a failed background refresh, wait this share of the remaining lifetime (capped)
#: before trying again, so a failing login endpoint is not hammered by every call.
REFRESH_RETRY_FRACTION = 0.25
REFRESH_RETRY_MAX_SECONDS = 5.0

#: Retries: attempts in all (first try included), total time budget, backoff shape.
RETRY_MAX_ATTEMPTS = 5
RETRY_MAX_TIME = 60.0
#: A call waits out 429s for up to this long (a time bound, not an attempt count).
RETRY_MAX_THROTTLE_WAIT = 300.0
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 8.0
#: A server's Retry-After is obeyed up to this many seconds.
RETRY_AFTER_CAP = 60.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})

#: Header names servers use for a request id, tried in order.
REQUEST_ID_HEADERS = ("x-request-id", "x-amzn-requestid", "request-id", "x-correlation-id")
#: Keys under which servers give their reason for an error, in the order they are quoted
#: (OAuth2's ``error`` code first, then its description, then common REST styles).
REASON_KEYS = ("error", "error_description", "message", "msg", "detail")
#: How much of an error body an exception quotes.
ERROR_BODY_EXCERPT = 200

#: Lock for a shared token store: how long a holder may keep it before it expires,
#: and how long a waiter polls for the holder's new token.
STORE_LOCK_TTL = 15.0
STORE_WAIT_TIMEOUT = 20.0
STORE_POLL_INTERVAL = 0.05
#: Redis token store: connect and command timeout, seconds; and after Redis failed, how long
#: to serve from this process's memory before trying Redis again.
STORE_REDIS_TIMEOUT = 2.0
STORE_RETRY_PAUSE = 5.0

USER_AGENT = f"vendorkit/{__version__}"
