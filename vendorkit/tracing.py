"""OpenTelemetry traces and metrics: one span per client call, its inner work inside it.

Installed with the ``vendorkit[otel]`` extra (``opentelemetry-api`` only: the application
chooses the SDK and exporters). Without the API installed, with ``tracing=False``, or
while the application has set neither a TracerProvider nor a MeterProvider, nothing here
runs: the pipeline checks :meth:`Instrumentation.active` once per call and goes its usual
way.

When active, each ``request()`` is one span of kind CLIENT named ``"{method} {route}"``
with OpenTelemetry's HTTP client attributes (``http.request.method``, ``url.template``
- the route template, never the path with its ids -, ``server.address``, ``server.port``,
``http.response.status_code``, ``error.type``) and vendorkit's own (``vendorkit.vendor``,
``vendorkit.attempts``, ``vendorkit.reauthenticated``). What happens inside the call
arrives as the session's events (events.py) and becomes:

- logins, refreshes and logouts: child spans (timed from the event's ``elapsed``; a
  failed one has status ERROR and its ``error.type``);
- retries, re-auths, 429s and rate-limit waits: span events on the call's span;
- metrics: ``http.client.request.duration`` (one per HTTP attempt) and the counters
  ``vendorkit.logins``, ``vendorkit.refreshes``, ``vendorkit.logouts``,
  ``vendorkit.retries``, ``vendorkit.reauths``, ``vendorkit.rate_limited`` and
  ``vendorkit.rate_limit.wait`` (seconds), labelled by vendor and outcome.

No attribute, event or label ever holds a secret: only vendor, method, route, status,
attempt, durations and error type names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .events import CALL_LISTENER, Event

_T = TypeVar("_T")

if TYPE_CHECKING:
    from .response import Response

__all__ = ["Instrumentation", "instrumentation_for"]

try:  # the extra: opentelemetry-api
    from opentelemetry import metrics as _metrics, trace as _trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    _trace = None  # type: ignore[assignment]
    _metrics = None  # type: ignore[assignment]

_SCOPE = "vendorkit"
#: A provider named by the environment is loaded by the API's getters on first use.
_PROVIDER_FROM_ENVIRONMENT = any(
    name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)


class CallRecord:
    """What the instrumentation learns about one call while it runs (one per traced call)."""

    __slots__ = ("attempts", "instrumentation", "method", "reauthenticated", "route", "span",
                 "status")

    def __init__(self, instrumentation: Instrumentation, span: Any, method: str,
                 route: str) -> None:
        self.instrumentation = instrumentation
        self.span = span
        self.method = method
        self.route = route
        self.attempts = 0
        self.status: int | None = None
        self.reauthenticated = False

    def __call__(self, event: Event) -> None:
        self.instrumentation.on_event(self, event)


#: Where the API keeps the providers an application sets (None: none set yet).
_METRICS_STATE = getattr(_metrics, "_internal", None)


def _none_set() -> bool:
    """Whether no provider is set, read from the API's module globals: its getters consult
    os.environ (and raise and catch a KeyError) on every call, ~7 us under load."""
    return (getattr(_trace, "_TRACER_PROVIDER", True) is None
            and getattr(_METRICS_STATE, "_METER_PROVIDER", True) is None
            and not _PROVIDER_FROM_ENVIRONMENT)


def _provider_set() -> tuple[bool, bool]:
    """(tracing, metrics): whether the application set a real provider for each."""
    if _trace is None or _none_set():
        return False, False
    unset = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)
    tracing = not isinstance(_trace.get_tracer_provider(), unset)
    meter_provider = _metrics.get_meter_provider()
    metering = type(meter_provider).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider")
    return tracing, metering


class Instrumentation:
    """Spans and metrics of one session manager's calls (see the module docstring)."""

    def __init__(self, vendor: str, base_url: str) -> None:
        self.vendor = vendor
        parts = urlsplit(base_url)
        self._server = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tracer: Any = None
        self._instruments: dict[str, Any] | None = None
        self._providers: tuple[Any, Any] = (None, None)

    def active(self) -> bool:
        """Whether a provider is set now (checked per call: an application may set one
        after building its clients)."""
        if _none_set():  # the common case, without building the pair below
            return False
        tracing, metering = _provider_set()
        if not (tracing or metering):
            return False
        providers = (_trace.get_tracer_provider(), _metrics.get_meter_provider())
        if providers != self._providers:  # instruments are made once per provider
            self._providers = providers
            self._tracer = _trace.get_tracer(_SCOPE) if tracing else None
            self._instruments = self._make_instruments() if metering else None
        return True

    def _make_instruments(self) -> dict[str, Any]:
        meter = _metrics.get_meter(_SCOPE)
        counter = meter.create_counter
        return {
            "duration": meter.create_histogram(
                "http.client.request.duration", unit="s",
                description="Duration of one HTTP attempt of a vendor API call"),
            "login": counter("vendorkit.logins", description="Logins"),
            "refresh": counter("vendorkit.refreshes", description="Token refreshes"),
            "logout": counter("vendorkit.logouts", description="Logouts and revocations"),
            "retry": counter("vendorkit.retries", description="Attempts retried"),
            "reauth": counter("vendorkit.reauths", description="Re-logins after a rejection"),
            "rate_limited": counter("vendorkit.rate_limited",
                                    description="Answers 429 (too many requests)"),
            "wait": counter("vendorkit.rate_limit.wait", unit="s",
                            description="Seconds spent waiting for rate-limit permits"),
        }

    async def operation(self, run: Callable[[], Awaitable[_T]]) -> _T:
        """Run what happens outside any call (an explicit login, a logout) so that its events
        are counted and its login or logout span is made, a root span of its own."""
        if CALL_LISTENER.get() is not None:
            return await run()
        return await _listened(CallRecord(self, None, "", ""), run)

    async def call(
        self, method: str, route: str, send: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Run one client call (``send``) inside its span."""
        tracer = self._tracer
        attributes = {
            "http.request.method": method, "url.template": route,
            "server.address": self._server, "server.port": self._port,
            "vendorkit.vendor": self.vendor,
        }
        if tracer is None:
            return await _listened(CallRecord(self, None, method, route), send)
        with tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.CLIENT, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ) as span:
            record = CallRecord(self, span, method, route)
            token = CALL_LISTENER.set(record)
            try:
                response = await send()
            except BaseException as exc:
                status = getattr(exc, "status", None) or record.status
                if status:
                    span.set_attribute("http.response.status_code", status)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            else:
                span.set_attribute("http.response.status_code", response.status)
                return response
            finally:
                CALL_LISTENER.reset(token)
                span.set_attribute("vendorkit.attempts", record.attempts)
                span.set_attribute("vendorkit.reauthenticated", record.reauthenticated)

    def on_event(self, record: CallRecord, event: Event) -> None:
        """One session event of a traced call: a child span, a span event, a metric."""
        kind, span = event.kind, record.span
        labels: dict[str, Any] = {"vendorkit.vendor": self.vendor}
        if kind == "request" and event.route == record.route and event.method == record.method:
            record.attempts += 1  # the call's own attempts, not those of a login it awaits
            record.status = event.status
        elif kind == "reauth":
            record.reauthenticated = True
        instruments = self._instruments
        if kind in ("login", "refresh", "logout"):
            outcome = event.outcome or "ok"
            if self._tracer is not None:  # in the call's span, or a root span outside calls
                self._child_span(event, outcome)
            if instruments is not None:
                instruments[kind].add(1, {**labels, "outcome": outcome})
            return
        if instruments is not None:
            if kind == "request":
                status = event.status or 0
                instruments["duration"].record(event.elapsed or 0.0, {
                    **labels, "http.request.method": event.method or "",
                    "url.template": event.route or "", "http.response.status_code": status,
                    "outcome": "ok" if status < 400 else "error",
                })
            elif kind == "wait":
                instruments["wait"].add(event.delay or 0.0, labels)
            elif kind in instruments:
                instruments[kind].add(1, {**labels, "outcome": str(event.cause or event.status)})
        if span is not None and kind in ("retry", "reauth", "rate_limited", "wait"):
            span.add_event(f"vendorkit.{kind}", _event_attributes(event))

    def _child_span(self, event: Event, outcome: str) -> None:
        end = time.time_ns()
        start = end - int((event.elapsed or 0.0) * 1e9)
        span = self._tracer.start_span(
            f"vendorkit.{event.kind}", kind=SpanKind.CLIENT, start_time=start,
            attributes={"vendorkit.vendor": self.vendor, **_event_attributes(event)},
        )
        if outcome != "ok":
            span.set_attribute("error.type", event.cause or outcome)
            span.set_status(Status(StatusCode.ERROR, event.cause or outcome))
        span.end(end_time=end)


async def _listened(record: CallRecord, run: Callable[[], Awaitable[_T]]) -> _T:
    """``run()`` with ``record`` hearing the session's events (``CALL_LISTENER``)."""
    token = CALL_LISTENER.set(record)
    try:
        return await run()
    finally:
        CALL_LISTENER.reset(token)


def _event_attributes(event: Event) -> dict[str, Any]:
    return {f"vendorkit.{name}": value for name, value in event.detail.items()
            if isinstance(value, str | int | float | bool)}


def instrumentation_for(vendor: str, base_url: str, enabled: bool) -> Instrumentation | None:
    """The instrumentation of a session manager, or None when tracing is off or the
    ``opentelemetry-api`` package is not installed."""
    if not enabled or _trace is None:
        return None
    return Instrumentation(vendor, base_url)
