"""OpenTelemetry: one CLIENT span per call with its login, retries and re-auth inside it,
metrics by vendor and outcome, and no secret anywhere (the SDK's in-memory exporters)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import MakeManager, metric_points
from tests.toy import CLIENT_SECRET, PASSWORD, Toy
from vendorkit import NotFoundError, RetryPolicy
from vendorkit.events import EVENT_KINDS, Event


async def test_a_call_with_a_login_and_one_503_retry_is_one_client_span_holding_both(
    toy: Toy, make_manager: MakeManager,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = otel
    exporter.clear()
    manager = make_manager("oauth2", retry=RetryPolicy(base_delay=0.01))
    toy.answer_next(1, status=503)

    await manager.request("GET", "/data")

    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.name == "GET /data"]
    (login,) = [s for s in spans if s.name == "vendorkit.login"]
    assert call.kind == SpanKind.CLIENT
    assert login.parent is not None and login.parent.span_id == call.context.span_id
    assert call.attributes is not None
    assert call.attributes["http.request.method"] == "GET"
    assert call.attributes["url.template"] == "/data"
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["vendorkit.attempts"] == 2
    assert call.attributes["vendorkit.reauthenticated"] is False
    assert call.attributes["vendorkit.vendor"] == "toy"
    assert [e.name for e in call.events] == ["vendorkit.retry"]
    assert call.events[0].attributes is not None
    assert call.events[0].attributes["vendorkit.cause"] == "503"
    assert call.status.status_code != StatusCode.ERROR

    points = metric_points(reader)
    assert sum(p.count for p in points["http.client.request.duration"]) >= 2
    assert sum(p.value for p in points["vendorkit.logins"]) >= 1
    assert {p.attributes["vendorkit.vendor"] for p in points["vendorkit.retries"]} == {"toy"}

    exported = json.dumps([s.to_json() for s in spans]) + str(points)
    for secret in (PASSWORD, CLIENT_SECRET, *toy.issued):
        assert secret not in exported


async def test_a_refresh_a_429_wait_and_a_logout_show_as_spans_events_and_counters(
    toy: Toy, make_manager: MakeManager,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = otel
    toy.token_lifetime = 1.0  # refresh windows: advisory 0.5 s, mandatory 0.25 s
    manager = make_manager("oauth2", retry=RetryPolicy(base_delay=0.01))
    await manager.request("GET", "/data")
    await asyncio.sleep(0.8)  # in the mandatory window: the next call waits for a refresh
    toy.answer_next(1, status=429, retry_after="1")
    exporter.clear()

    await manager.request("GET", "/data")
    assert await manager.logout() is True

    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.name == "GET /data"]
    # The refresh the call waited for, inside its span (the one-second pause may bring the
    # new one-second token into its windows too: a second refresh, in the same span).
    refreshes = [s for s in spans if s.name == "vendorkit.refresh"]
    (logout,) = [s for s in spans if s.name == "vendorkit.logout"]
    assert refreshes and all(s.parent is not None and s.parent.span_id == call.context.span_id
                             for s in refreshes)
    assert all(s.status.status_code != StatusCode.ERROR for s in refreshes)
    assert logout.attributes is not None and logout.attributes["vendorkit.vendor"] == "toy"
    events = [e.name for e in call.events]
    assert "vendorkit.rate_limited" in events and "vendorkit.wait" in events, events
    assert call.attributes is not None and call.attributes["vendorkit.attempts"] == 2

    points = metric_points(reader)
    assert {(p.attributes["outcome"], p.value) for p in points["vendorkit.refreshes"]} == {
        ("ok", len(refreshes))}
    assert {(p.attributes["outcome"], p.value) for p in points["vendorkit.logouts"]} == {
        ("ok", 1)}
    assert sum(p.value for p in points["vendorkit.rate_limited"]) == 1
    assert sum(p.value for p in points["vendorkit.rate_limit.wait"]) >= 0.5
    exported = json.dumps([s.to_json() for s in spans]) + str(points)
    for secret in (PASSWORD, CLIENT_SECRET, *toy.issued):
        assert secret not in exported


async def test_hooks_get_typed_events_with_route_status_attempt_and_elapsed(
    toy: Toy, make_manager: MakeManager
) -> None:
    seen: list[Event] = []
    manager = make_manager("oauth2", retry=RetryPolicy(base_delay=0.01),
                           event_hooks={kind: [seen.append] for kind in EVENT_KINDS})
    toy.answer_next(1, status=503)

    await manager.request("GET", "/{what}", path_params={"what": "data"})

    assert all(isinstance(event, Event) and event.vendor == "toy" for event in seen)
    login = next(e for e in seen if e.kind == "login")
    assert (login.reason, login.outcome) == ("no token", "ok")
    assert login.expires_in is not None and login.elapsed is not None and login.elapsed > 0
    calls = [e for e in seen if e.kind == "request" and e.route == "/{what}"]
    assert [(e.method, e.status, e.attempt) for e in calls] == [("GET", 503, 1), ("GET", 200, 2)]
    assert all(e.elapsed is not None and e.elapsed > 0 for e in calls)
    (retry,) = [e for e in seen if e.kind == "retry"]
    assert (retry.route, retry.status, retry.attempt, retry.cause) == ("/{what}", 503, 1, "503")
    assert retry.delay is not None and retry.delay >= 0
    assert not any(e.route == "/data" for e in seen)  # the template, never the filled path


async def test_a_failed_call_sets_error_type_and_an_error_status(
    toy: Toy, make_manager: MakeManager,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, _ = otel
    manager = make_manager("json")
    await manager.login()
    exporter.clear()
    toy.answer_next(1, status=404)

    with pytest.raises(NotFoundError):
        await manager.request("GET", "/data")

    (call,) = [s for s in exporter.get_finished_spans() if s.name == "GET /data"]
    assert call.status.status_code == StatusCode.ERROR
    assert call.attributes is not None
    assert call.attributes["error.type"] == "NotFoundError"
    assert call.attributes["http.response.status_code"] == 404


async def test_a_reauthenticated_call_says_so_and_holds_the_new_login(
    toy: Toy, make_manager: MakeManager,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, _ = otel
    manager = make_manager("json")
    await manager.request("GET", "/data")
    exporter.clear()
    toy.revoke_all_tokens()

    await manager.request("GET", "/data")

    spans = exporter.get_finished_spans()
    (call,) = [s for s in spans if s.name == "GET /data"]
    assert call.attributes is not None and call.attributes["vendorkit.reauthenticated"] is True
    assert "vendorkit.reauth" in [e.name for e in call.events]
    assert any(s.name == "vendorkit.login" and s.parent is not None
               and s.parent.span_id == call.context.span_id for s in spans)


async def test_the_route_template_is_named_never_the_path_with_its_ids(
    toy: Toy, make_manager: MakeManager,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, _ = otel
    manager = make_manager("json")
    exporter.clear()

    await manager.request("GET", "/{what}", path_params={"what": "data"})

    names = [s.name for s in exporter.get_finished_spans()]
    assert "GET /{what}" in names and "GET /data" not in names


async def test_tracing_false_makes_no_span(
    toy: Toy, make_manager: MakeManager,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, _ = otel
    manager = make_manager("json", tracing=False)
    exporter.clear()

    await manager.request("GET", "/data")

    assert exporter.get_finished_spans() == ()


async def test_log_records_carry_the_event_fields_in_extra(
    toy: Toy, make_manager: MakeManager, caplog: pytest.LogCaptureFixture
) -> None:
    manager = make_manager("json")
    with caplog.at_level(logging.DEBUG, logger="vendorkit"):
        await manager.request("GET", "/data")

    (record,) = [r for r in caplog.records if getattr(r, "vendorkit_kind", "") == "request"
                 and getattr(r, "vendorkit_route", "") == "/data"]
    assert record.vendorkit_status == 200  # type: ignore[attr-defined]
    assert record.vendorkit_method == "GET"  # type: ignore[attr-defined]
    assert record.vendorkit_attempt == 1  # type: ignore[attr-defined]
    assert record.vendorkit_vendor == "toy"  # type: ignore[attr-defined]
    for secret in (PASSWORD, *toy.issued):
        assert all(secret not in str(vars(r)) for r in caplog.records)


async def test_vendorkit_log_turns_logging_on_without_code(toy: Toy) -> None:
    script = (
        "import asyncio, vendorkit\n"
        "from tests.toy import json_login\n"
        "async def main():\n"
        f"    async with vendorkit.SessionManager({toy.base_url!r}, json_login(None)) as m:\n"
        "        await m.request('GET', '/data')\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stderr=asyncio.subprocess.PIPE,
        env={"VENDORKIT_LOG": "debug"},
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    logged = stderr.decode()

    assert process.returncode == 0, logged[-2000:]
    assert "GET /data -> 200" in logged
    assert PASSWORD not in logged and all(secret not in logged for secret in toy.issued)
