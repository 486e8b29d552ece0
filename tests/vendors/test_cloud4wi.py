"""Cloud4WiClient against the Cloud4Wi sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from vendorkit import (
    AuthenticationError,
    Cloud4WiClient,
    NotFoundError,
    PermissionDeniedError,
    Token,
    models,
)
from vendorkit.models import ItemList
from vendorkit.testing import SandboxFactory
from vendorkit.token import jwt_claims
from vendorkit.vendors.cloud4wi import Organization

LOGIN = "/v1/sts/login/services"
ORGS_ROUTE = "GET /v2/customers/organizations/{cid}"
Renewal = Callable[[Token | None], Awaitable[None]]
StartRecorder = Callable[[Mapping[tuple[str, str], Any]], Awaitable[Any]]


async def test_login_is_accepted_and_the_token_expires_when_its_jwt_says(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, sandbox):
        token = await client.login()
        counters = sandbox.state.counters
        assert (counters.logins, counters.failed_logins) == (1, 0)
        assert token.expires_at == jwt_claims(token.access_token)["exp"]
        assert token.expires_at == pytest.approx(time.time() + 86_400, abs=5)


async def test_sandbox_refuses_login_shapes_other_than_the_documented_json(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (_, sandbox):
        url, creds = sandbox.base_url + LOGIN, sandbox.credentials
        documented = {"clientKey": creds["client_key"], "clientSecret": creds["client_secret"]}
        async with raw_http.post(url, data=documented) as form:  # urlencoded, not JSON
            assert form.status == 415
        snake = {"client_key": creds["client_key"], "client_secret": creds["client_secret"]}
        async with raw_http.post(url, json=snake) as wrong_names:
            assert wrong_names.status == 400
            assert (await wrong_names.json())["error"] == "Missing required field: clientKey"
        async with raw_http.post(url, json=documented) as right:
            assert right.status == 200
            assert set(await right.json()) == {"token"}


async def test_organizations_are_typed_and_unknown_fields_land_in_extra(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, _):
        orgs = await client.get_organizations("cid-42")
        assert 3 <= len(orgs) <= 7
        for org in orgs:
            assert isinstance(org, Organization)
            assert org.id and org.name and org.created and org.updated
            assert org.cid == "cid-42"
            assert isinstance(org.created_absolute, int)
            assert org.status in ("active", "suspended")
            assert isinstance(org.tags, list)
            assert set(org.extra) == {"portalTheme"}
            assert org.extra["portalTheme"]["layout"] == "split"
        # sortBy=created_absolute, ascending by default
        created = [org.created_absolute for org in orgs if org.created_absolute is not None]
        assert len(created) == len(orgs) and created == sorted(created)


# --- answers the seed leaves open: the organizations body is not documented -----------------

ORG = {"id": "o-1", "name": "Cortina Outlets", "cid": "customer-42", "tags": ["retail"]}


def _jwt(lifetime: int = 3600) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(time.time()) + lifetime})}.c2ln"


async def _organizations_answered(
    recorder: StartRecorder, body: object
) -> ItemList[Organization]:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response(body)  # any JSON, null included

    server = await recorder({("POST", LOGIN): (200, {"token": _jwt()}),
                             ("GET", "/v2/customers/organizations/customer-42"): answer})
    async with Cloud4WiClient("ck-test", "cs-test", base_url=server.base_url) as client:
        return await client.get_organizations("customer-42")


@pytest.mark.parametrize(
    "body",
    [ORG, {"data": [ORG]}, {"code": 0, "data": {"records": [ORG]}}, {"data": ORG},
     {"status": "ok", "result": {"items": [ORG], "total": 1}}],
    ids=["one-object", "data", "data.records", "data.object", "result.items"],
)
async def test_organizations_as_one_object_or_in_an_envelope_are_read(
    recorder: StartRecorder, body: object
) -> None:
    orgs = await _organizations_answered(recorder, body)
    assert orgs == [Organization(id="o-1", name="Cortina Outlets", cid="customer-42",
                                 tags=["retail"])]
    assert orgs.skipped == []


@pytest.mark.parametrize("body", [None, {"data": None}, {"data": {"list": None}}, []],
                         ids=["null", "data-null", "list-null", "empty"])
async def test_organizations_answered_null_or_an_empty_envelope_are_empty(
    recorder: StartRecorder, body: object
) -> None:
    assert await _organizations_answered(recorder, body) == []


async def test_a_null_tags_field_is_empty_and_one_bad_organization_fails_nothing(
    recorder: StartRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    body = [{**ORG, "tags": None}, "o-2", {"id": "o-3", "name": "Lido"}]

    orgs = await _organizations_answered(recorder, body)

    assert [(o.id, o.tags) for o in orgs] == [("o-1", []), ("o-3", [])]
    assert orgs.skipped == ["o-2"]  # not an object: left out, logged, kept
    assert "organizations: 1 of 3 items do not fit Organization" in caplog.text


async def test_wrong_typed_organization_fields_never_become_garbage(
    recorder: StartRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vendorkit")
    for field in ("tags", "name"):  # other tests may have warned already: once per process
        models._WARNED.discard((Organization, field))
    body = [{"id": f"o-{i}", "name": {"en": "Lido"}, "tags": "a,b", "status": 1,
             "created_absolute": "1692929243113"} for i in range(3)]

    orgs = await _organizations_answered(recorder, body)

    for org in orgs:
        assert (org.name, org.tags) == (None, [])  # not "{'en': 'Lido'}", not ['a', ',', 'b']
        assert org.extra == {"name": {"en": "Lido"}, "tags": "a,b"}  # the raw values, kept
        assert (org.status, org.created_absolute) == ("1", 1692929243113)  # numbers convert
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(m.split(":")[0] for m in warned) == ["Organization.name", "Organization.tags"]


async def test_organizations_sort_options_reach_the_server(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, _):
        ascending = await client.get_organizations("cid-7")
        descending = await client.get_organizations("cid-7", sort_reverse=True)
        by_name = await client.get_organizations("cid-7", sort_by="name")
        assert [o.id for o in descending] == [o.id for o in reversed(ascending)]
        assert [o.name for o in by_name] == sorted(str(o.name) for o in ascending)


async def test_customer_id_is_escaped_into_one_path_segment(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, _):
        orgs = await client.get_organizations("acme corp")
        assert {org.cid for org in orgs} == {"acme corp"}


async def test_unknown_customer_raises_not_found_with_the_servers_reason(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, _):
        with pytest.raises(NotFoundError) as caught:
            await client.get_organizations("missing")
        assert caught.value.status == 404
        assert "Customer not found" in str(caught.value)


async def test_expired_token_answered_403_costs_one_relogin_and_one_replay(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("cloud4wi", token_lifetime=1000) as (client, sandbox):
        await client.get_organizations("cid-1")
        first = client.token
        assert first is not None
        state = sandbox.state
        # The server's clock jumps past the first token's expiry; tokens issued from now on
        # outlive the jump. The client still believes its token has 1000 s to go.
        state.clock_skew, state.token_lifetime = 2000, 10_000

        orgs = await client.get_organizations("cid-1")

        assert orgs
        assert (state.counters.logins, state.counters.rejected) == (2, 1)
        assert state.counters.requests[ORGS_ROUTE] == 3
        assert client.stats.reauths == 1
        assert client.token is not None and client.token.access_token != first.access_token
        # It really was the documented expiry answer: 403, not 401.
        url = f"{sandbox.base_url}/v2/customers/organizations/cid-1"
        headers = {"Authorization": f"Bearer {first.access_token}"}
        async with raw_http.get(url, headers=headers) as answer:
            assert (answer.status, await answer.json()) == (403, {"error": "Token expired"})


async def test_a_403_that_survives_relogin_raises_permission_denied(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, sandbox):
        await client.login()
        sandbox.state.faults.fail_next(2, 403)
        with pytest.raises(PermissionDeniedError) as caught:
            await client.get_organizations("cid-1")
        assert caught.value.status == 403
        assert sandbox.state.counters.logins == 2  # one re-login, not a loop
        assert sandbox.state.counters.requests[ORGS_ROUTE] == 2
        token = client.token
        assert token is not None and token.access_token not in str(caught.value)


async def test_a_forbidden_customer_among_readable_ones_costs_one_login_and_loses_no_call(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    # The "forbidden-cid" variant: one customer this key may not read answers 403 with a
    # valid token, Cloud4Wi's own expired-token status. A collector walks its customers.
    async with vendorkit_sandbox("cloud4wi", variants="forbidden-cid") as (client, sandbox):
        read = refused = 0
        for index in range(30):
            if index == 15:
                sandbox.state.revoke_all_tokens()  # a real expiry 403 mid-run still re-logs in
            try:
                await client.get_organizations("cid-forbidden" if index % 3 == 0 else "cid-1")
                read += 1
            except PermissionDeniedError:
                refused += 1

        assert (read, refused) == (20, 10)  # every readable call answered, none lost
        # The first login, the one that proved the 403 lasts, the one after the revocation.
        assert sandbox.state.counters.logins == 3


async def test_short_lived_token_is_replaced_by_a_new_login_before_it_expires(
    vendorkit_sandbox: SandboxFactory, until_renewal: Renewal
) -> None:
    async with vendorkit_sandbox("cloud4wi", token_lifetime=2) as (client, sandbox):
        await client.get_organizations("cid-1")
        first = client.token
        await until_renewal(first)
        await client.get_organizations("cid-1")
        counters = sandbox.state.counters
        assert (counters.logins, counters.rejected, counters.refreshes) == (2, 0, 0)
        assert client.token is not None and first is not None
        assert client.token.access_token != first.access_token


async def test_mass_revocation_mid_run_costs_one_relogin_and_every_call_succeeds(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, sandbox):
        await client.get_organizations("cid-0")
        sandbox.state.revoke_all_tokens()
        results = await asyncio.gather(*(client.get_organizations(f"cid-{i}") for i in range(20)))
        assert all(results)
        assert sandbox.state.counters.logins == 2


async def test_close_logs_out_once_and_the_token_stops_working(
    vendorkit_sandbox: SandboxFactory, raw_http: aiohttp.ClientSession
) -> None:
    async with vendorkit_sandbox("cloud4wi") as (client, sandbox):
        await client.get_organizations("cid-1")
        token = client.token
        assert token is not None
        await client.aclose()
        assert sandbox.state.counters.logouts == 1
        assert sandbox.state.counters.requests["POST /v1/sts/logout"] == 1
        assert client.token is None
        url = f"{sandbox.base_url}/v2/customers/organizations/cid-1"
        headers = {"Authorization": f"Bearer {token.access_token}"}
        async with raw_http.get(url, headers=headers) as answer:
            assert answer.status == 401
    assert sandbox.state.counters.logouts == 1  # closing twice revokes nothing more


async def test_bad_credentials_raise_authentication_error_with_reason_and_no_secret(
    vendorkit_sandbox: SandboxFactory,
) -> None:
    wrong = "cs_wrong_Zk3vQ9mP2xL7nR4t"
    async with vendorkit_sandbox("cloud4wi", client_secret=wrong) as (client, sandbox):
        with pytest.raises(AuthenticationError) as caught:
            await client.get_organizations("cid-1")
        message = str(caught.value)
        assert caught.value.status == 401
        assert "Invalid clientKey or clientSecret" in message
        assert wrong not in message and wrong not in caught.value.body_excerpt
        assert sandbox.state.counters.failed_logins == 1  # a refused login is not retried


async def test_closing_with_a_token_the_server_already_expired_is_not_a_failure(
    vendorkit_sandbox: SandboxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with vendorkit_sandbox("cloud4wi", token_lifetime=1000) as (client, sandbox):
        await client.login()
        sandbox.state.clock_skew = 2000  # the server now answers 403 "Token expired"
        await client.aclose()
        assert sandbox.state.counters.rejected == 1  # the logout was sent, and refused
        assert client.token is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
