"""Event hooks and counters: how an application sees logins, refreshes, retries and re-auths."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

__all__ = ["Event", "EventKind", "EventHook", "Stats"]

logger = logging.getLogger("vendorkit")

EventKind = Literal["login", "refresh", "reauth", "logout", "retry", "request", "error"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "login", "refresh", "reauth", "logout", "retry", "request", "error",
)


@attrs.frozen(slots=True)
class Event:
    """Something the session layer did. ``detail`` never holds a secret."""

    kind: EventKind
    vendor: str
    detail: Mapping[str, Any] = attrs.field(factory=dict)


EventHook = Callable[[Event], None]


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

    def as_dict(self) -> dict[str, int]:
        return attrs.asdict(self)


class EventBus:
    """Counts every event and calls the hooks registered for its kind; a failing hook is logged."""

    __slots__ = ("_hooks", "stats", "vendor")

    def __init__(self, vendor: str, hooks: Mapping[str, Iterable[EventHook]] | None = None) -> None:
        self.vendor = vendor
        self.stats = Stats()
        self._hooks: dict[str, list[EventHook]] = {kind: [] for kind in EVENT_KINDS}
        for kind, callbacks in (hooks or {}).items():
            if kind not in self._hooks:
                from .errors import ConfigurationError

                raise ConfigurationError(
                    f"event_hooks: unknown event kind {kind!r}; expected one of {EVENT_KINDS}"
                )
            self._hooks[kind].extend(callbacks)

    def add(self, kind: EventKind, hook: EventHook) -> None:
        self._hooks[kind].append(hook)

    def emit(self, kind: EventKind, **detail: Any) -> None:
        stats = self.stats
        if kind == "request":
            stats.requests += 1
        elif kind == "error":
            stats.errors += 1
        else:
            attr = {"login": "logins", "refresh": "refreshes", "reauth": "reauths",
                    "logout": "logouts", "retry": "retries"}[kind]
            setattr(stats, attr, getattr(stats, attr) + 1)
        hooks = self._hooks[kind]
        if hooks:
            event = Event(kind, self.vendor, detail)
            for hook in hooks:
                try:
                    hook(event)
                except Exception:
                    logger.exception("vendorkit: %s event hook %r failed", kind, hook)
