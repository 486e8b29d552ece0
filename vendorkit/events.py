"""Events, counters and log lines: how an application sees what the session layer did.

Every event is one typed :class:`Event`. The bus counts it in :class:`Stats`, hands it to
the hooks registered for its kind, and to :func:`log_event`: logging is one consumer of
the events, as stamina's logging is one instrumentation hook, so a log line and an event
can never say different things.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from .errors import ConfigurationError

__all__ = ["Event", "EventHook", "EventKind", "Stats", "log_event"]

logger = logging.getLogger("vendorkit")

EventKind = Literal["login", "refresh", "reauth", "logout", "retry", "request", "error",
                    "rate_limited", "wait"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "login", "refresh", "reauth", "logout", "retry", "request", "error", "rate_limited", "wait",
)


@attrs.frozen(slots=True)
class Event:
    """Something the session layer did. No field ever holds a secret.

    ``route`` is the path as the client declared it (``/v2/customers/organizations/{cid}``),
    never the raw path with ids. Fields that do not apply to a kind are None.
    """

    kind: EventKind
    vendor: str
    method: str | None = None
    route: str | None = None
    #: The HTTP status of the answer, where there was one.
    status: int | None = None
    #: Which attempt of the call (1 = the first try); for ``retry``, the one that failed.
    attempt: int | None = None
    #: Seconds the request took (``request``), or the whole call (``error``).
    elapsed: float | None = None
    #: ``retry``: seconds until the next attempt; ``wait``: seconds waited for a permit.
    delay: float | None = None
    #: ``retry`` and ``error``: the status or exception type that caused it.
    cause: str | None = None
    #: ``login``: why (``no token``, ``rejected``, ``refresh refused``, ``explicit``).
    reason: str | None = None
    #: ``login`` and ``refresh``: seconds the new token lives, if known.
    expires_in: float | None = None
    #: ``login``, ``refresh``, ``logout``: ``"ok"``, or ``"error"`` for one that failed
    #: (``cause`` then names the error type). Failures are not counted in ``Stats``.
    outcome: str | None = None

    @property
    def detail(self) -> dict[str, Any]:
        """The fields that apply to this event, as a dict (for log ``extra`` and JSON)."""
        return {k: v for k, v in attrs.asdict(self).items()
                if v is not None and k not in ("kind", "vendor")}


EventHook = Callable[[Event], None]

#: A listener for the events of the call running in this context (tracing.py sets it for
#: the span of a traced call; a login flight inherits it from the call that started it).
CALL_LISTENER: contextvars.ContextVar[EventHook | None] = contextvars.ContextVar(
    "vendorkit_call_listener", default=None
)


@attrs.define(slots=True)
class Stats:
    """Counters of one session manager, for dashboards, the demo and the benchmarks."""

    requests: int = 0
    errors: int = 0
    retries: int = 0
    logins: int = 0
    refreshes: int = 0
    reauths: int = 0
    logouts: int = 0
    #: Answers 429 (too many requests).
    rate_limited: int = 0
    #: Seconds calls spent waiting for a rate-limit permit or a server's pause.
    waited: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return attrs.asdict(self)


_COUNTER = {"request": "requests", "error": "errors", "retry": "retries", "login": "logins",
            "refresh": "refreshes", "reauth": "reauths", "logout": "logouts",
            "rate_limited": "rate_limited", "wait": "waited"}


def _where(event: Event) -> str:
    return f"{event.method} {event.route}" if event.method else "-"


def _lifetime(event: Event) -> str:
    return "never" if event.expires_in is None else f"{event.expires_in:.0f}"


#: How each kind is logged: (level, message). One table, so every kind logs the same way.
_LOG_LINES: dict[str, tuple[int, Callable[[Event], str]]] = {
    "request": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} {_where(e)} -> {e.status} "
                f"in {(e.elapsed or 0) * 1000:.1f} ms (attempt {e.attempt})"),
    "retry": (logging.INFO, lambda e: f"vendorkit: {e.vendor} {_where(e)} failed ({e.cause}) "
              f"on attempt {e.attempt}; retrying in {e.delay or 0:.2f} s"),
    "reauth": (logging.INFO, lambda e: f"vendorkit: {e.vendor} rejected the token on "
               f"{_where(e)} (HTTP {e.status}); logging in again and replaying"),
    "login": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} login failed ({e.cause})"
              if e.outcome == "error" else f"vendorkit: {e.vendor} logged in ({e.reason}), "
              f"token expires in {_lifetime(e)} s"),
    "refresh": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} refresh failed ({e.cause})"
                if e.outcome == "error" else f"vendorkit: {e.vendor} token refreshed, "
                f"expires in {_lifetime(e)} s"),
    "logout": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} token revoked"),
    "error": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} {_where(e)} failed ({e.cause})"),
    "rate_limited": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} {_where(e)} answered 429 "
                     f"(attempt {e.attempt})"),
    "wait": (logging.DEBUG, lambda e: f"vendorkit: {e.vendor} {_where(e)} waited "
             f"{e.delay or 0:.2f} s for a rate-limit permit"),
}


def log_event(event: Event) -> None:
    """The logging consumer: one record per event, its fields also in ``extra``
    (``vendorkit_<field>``), so JSON log handlers get them as fields."""
    level, message = _LOG_LINES[event.kind]
    if logger.isEnabledFor(level):
        extra = {"vendorkit_" + k: v for k, v in event.detail.items()}
        extra["vendorkit_kind"], extra["vendorkit_vendor"] = event.kind, event.vendor
        logger.log(level, "%s", message(event), extra=extra)


class EventBus:
    """Counts every event, logs it, and calls the hooks registered for its kind; a failing
    hook is logged, never raised into the call that emitted the event."""

    __slots__ = ("_hooks", "stats", "vendor")

    def __init__(self, vendor: str, hooks: Mapping[str, Iterable[EventHook]] | None = None) -> None:
        self.vendor = vendor
        self.stats = Stats()
        self._hooks: dict[str, list[EventHook]] = {kind: [] for kind in EVENT_KINDS}
        for kind, callbacks in (hooks or {}).items():
            if kind not in self._hooks:
                raise ConfigurationError(
                    f"event_hooks: unknown event kind {kind!r}; expected one of {EVENT_KINDS}"
                )
            self._hooks[kind].extend(callbacks)

    def add(self, kind: EventKind, hook: EventHook) -> None:
        self._hooks[kind].append(hook)

    def wants(self, kind: EventKind) -> bool:
        """Whether an event of ``kind`` would reach a hook or a log handler: the hot path
        counts without building the event when nobody is listening."""
        return (bool(self._hooks[kind]) or logger.isEnabledFor(_LOG_LINES[kind][0])
                or CALL_LISTENER.get() is not None)

    def count(self, kind: EventKind) -> None:
        """Count an event that nobody listens to (see :meth:`wants`)."""
        stats = self.stats
        attr = _COUNTER[kind]
        setattr(stats, attr, getattr(stats, attr) + 1)

    def emit(self, kind: EventKind, **fields: Any) -> None:
        if kind == "wait":
            self.stats.waited += fields.get("delay") or 0.0
        elif fields.get("outcome") != "error":
            self.count(kind)
        hooks = self._hooks[kind]
        listener = CALL_LISTENER.get()
        if not hooks and listener is None and not logger.isEnabledFor(_LOG_LINES[kind][0]):
            return
        event = Event(kind, self.vendor, **fields)
        log_event(event)
        for hook in (*hooks, listener) if listener is not None else hooks:
            try:
                hook(event)
            except Exception:
                logger.exception("vendorkit: %s event hook %r failed", kind, hook)


def configure_logging_from_env(environ: Mapping[str, str] = os.environ) -> None:
    """``VENDORKIT_LOG=debug|info`` turns the ``vendorkit`` logger on without code (as
    ``OPENAI_LOG`` does): a stderr handler at that level, unless one is attached already."""
    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(
        environ.get("VENDORKIT_LOG", "").strip().lower()
    )
    if level is None:
        return
    logger.setLevel(level)
    if not any(getattr(h, "vendorkit_env", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.vendorkit_env = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


configure_logging_from_env()
