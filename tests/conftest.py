"""Fixtures for the core's tests: the toy vendor on 127.0.0.1, and managers that log in to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal

import pytest

from tests.toy import Toy, json_login, oauth2_grant, serve
from vendorkit import RetryPolicy, SessionManager

#: Retries fast enough for a test suite, unless a test brings its own policy.
FAST_RETRY = RetryPolicy(base_delay=0.01, max_delay=0.05)

MakeManager = Callable[..., SessionManager]


class SleepRecorder:
    """A ``RetryPolicy.sleep`` that records every wait instead of sleeping it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def toy() -> AsyncIterator[Toy]:
    """A running toy vendor (one-hour tokens unless a test changes ``toy.token_lifetime``)."""
    async with serve() as running:
        yield running


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def make_manager(toy: Toy) -> AsyncIterator[MakeManager]:
    """Build ``SessionManager``s logging in to the toy; each is closed after the test.

    ``make_manager("json")`` uses the JSON login, ``make_manager("oauth2")`` the OAuth2
    password grant; keyword arguments go to ``SessionManager``.
    """
    managers: list[SessionManager] = []

    def make(kind: Literal["json", "oauth2"] = "json", **options: Any) -> SessionManager:
        auth = options.pop("auth", None) or (
            json_login(toy) if kind == "json" else oauth2_grant(toy)
        )
        options.setdefault("retry", FAST_RETRY)
        manager = SessionManager(toy.base_url, auth, **options)
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        await manager.aclose()



@pytest.fixture
def otel() -> Iterator[tuple[Any, Any]]:
    """OpenTelemetry SDK providers with in-memory exporters, set globally for one test and
    unset after it (the API lets a process set them once; tests must undo that)."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    def unset() -> None:
        trace._TRACER_PROVIDER_SET_ONCE._done = False
        trace._TRACER_PROVIDER = None
        metrics._internal._METER_PROVIDER_SET_ONCE._done = False
        metrics._internal._METER_PROVIDER = None

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    unset()
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    try:
        yield exporter, reader
    finally:
        unset()
        tracer_provider.shutdown()


def metric_points(reader: Any) -> dict[str, list[Any]]:
    """Every data point an InMemoryMetricReader holds, by metric name."""
    data = reader.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points
