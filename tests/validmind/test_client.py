"""ValidMindClient against httpx2.MockTransport: auth, org scoping, paging, retries, errors."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
import stamina
from hypothesis import given, settings
from hypothesis import strategies as st

from atryum.config import BackendConfig
from atryum.validmind.client import (
    API_PREFIX,
    AgentsPull,
    ValidMindClient,
    ValidMindError,
    ValidMindNotConfigured,
    parse_json,
    parse_retry_after,
)

MACHINE_KEY = "mk-7f3a-machine-key"
MACHINE_SECRET = "ms-91bd-machine-secret"
API_KEY = "ak-44c2-api-key"
API_SECRET = "as-0e5f-api-secret"
SECRETS = (MACHINE_KEY, MACHINE_SECRET, API_KEY, API_SECRET)
ORG = "org-1"
SLUG = "ai-agent"
BASE = "https://vm.example"

Handler = Callable[[httpx2.Request], httpx2.Response]


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    """Retries keep the configured number of attempts but never wait."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


class FakeVM:
    """A MockTransport handler that records every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def pages(self) -> list[int]:
        return [int(r.url.params["page"]) for r in self.requests]


def backend(**overrides: Any) -> BackendConfig:
    data: dict[str, Any] = {
        "base_url": BASE,
        "machine_key": MACHINE_KEY,
        "machine_secret": MACHINE_SECRET,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "retry_attempts": 3,
        "page_size": 3,
    }
    data.update(overrides)
    return BackendConfig.model_validate(data)


def client_for(handler: Handler, **overrides: Any) -> tuple[ValidMindClient, FakeVM]:
    fake = FakeVM(handler)
    return ValidMindClient(backend(**overrides), transport=httpx2.MockTransport(fake)), fake


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers)


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"cuid": f"rec-{i}", "name": f"Agent {i}", "custom_fields": {"charter": f"c{i}"}}
        for i in range(start, start + n)
    ]


def paged(
    recs: list[dict[str, Any]], *, total: int | None = None, org: str = ORG, **extra: Any
) -> Handler:
    """An /agents endpoint that honours page/limit."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        page = int(request.url.params["page"])
        limit = int(request.url.params["limit"])
        chunk = recs[(page - 1) * limit : page * limit]
        body = {
            "org_cuid": org,
            "org_name": "Org One",
            "results": chunk,
            "total": len(recs) if total is None else total,
            **extra,
        }
        return ok(body)

    return handle


def scripted(bodies: list[Any]) -> Handler:
    """Answer the n-th request with the n-th body (a Response or a JSON-able value)."""
    it = iter(bodies)

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = next(it)
        return body if isinstance(body, httpx2.Response) else ok(body)

    return handle


def agents_page(recs: list[dict[str, Any]], total: int, **extra: Any) -> dict[str, Any]:
    return {"org_cuid": ORG, "org_name": "Org One", "results": recs, "total": total, **extra}


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def cuids(pull: AgentsPull) -> list[str]:
    return [r["cuid"] for r in pull.records]


# ---------------------------------------------------------------------------- auth and scoping


def test_machine_user_headers_preferred_when_both_pairs_set() -> None:
    client, fake = client_for(lambda r: ok({"items": [], "total": 0}))
    with client:
        client.organizations()
    headers = fake.requests[0].headers
    assert headers["X-MACHINE-KEY"] == MACHINE_KEY
    assert headers["X-MACHINE-SECRET"] == MACHINE_SECRET
    assert "X-API-KEY" not in headers
    assert "X-API-SECRET" not in headers
    assert client.auth_mode == "machine_user"


def test_api_key_headers_when_no_machine_user() -> None:
    client, fake = client_for(
        lambda r: ok({"items": [], "total": 0}), machine_key=None, machine_secret=None
    )
    with client:
        client.organizations()
    headers = fake.requests[0].headers
    assert headers["X-API-KEY"] == API_KEY
    assert headers["X-API-SECRET"] == API_SECRET
    assert "X-MACHINE-KEY" not in headers
    assert "X-MACHINE-SECRET" not in headers
    assert client.auth_mode == "api_key"


def test_base_url_gets_the_api_prefix() -> None:
    client, fake = client_for(
        lambda r: ok({"ok": True, "auth_mode": "machine_user"}), base_url=BASE + "/"
    )
    with client:
        assert client.connection()["ok"] is True
    assert str(fake.requests[0].url) == f"{BASE}{API_PREFIX}/connection"


def test_empty_base_url_is_not_configured() -> None:
    with pytest.raises(ValidMindNotConfigured) as info:
        ValidMindClient(BackendConfig())
    assert isinstance(info.value, ValidMindError)
    assert "base_url" in str(info.value)


def test_org_scoped_calls_send_org_header_and_params() -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        path = request.url.path.removeprefix(API_PREFIX)
        if path == "/charter-preview":
            segment = {"kind": "field", "header": "h", "text": "t"}
            return ok({"segments": [segment], "combined": "t"})
        if path == "/evaluate":
            return ok({"verdict": "approved", "reason": "fine"})
        return ok({"items": [{"cuid": "x", "name": "X"}], "total": 1})

    client, fake = client_for(handle)
    with client:
        assert client.organizations() == [{"cuid": "x", "name": "X"}]
        client.model_configs()
        client.record_types(ORG)
        client.custom_fields(ORG, SLUG)
        preview = client.charter_preview(ORG, "rec-1", "charter")
        verdict = client.evaluate({"model_config_cuid": "mc", "tool_name": "t"}, org_cuid=ORG)
    assert preview["combined"] == "t"
    assert verdict["verdict"] == "approved"

    orgs, configs, types, fields, charter, evaluate = fake.requests
    assert "X-Org-CUID" not in orgs.headers
    assert "X-Org-CUID" not in configs.headers
    assert configs.url.path == f"{API_PREFIX}/model-configs"
    for request in (types, fields, charter, evaluate):
        assert request.headers["X-Org-CUID"] == ORG
    assert types.url.path == f"{API_PREFIX}/primary-record-types"
    assert types.url.params["org_cuid"] == ORG
    assert fields.url.params["org_cuid"] == ORG
    assert fields.url.params["primary_record_type_slug"] == SLUG
    assert charter.method == "POST"
    assert json.loads(charter.content) == {"agent_vm_cuid": "rec-1", "charter_field_key": "charter"}
    assert evaluate.method == "POST"
    assert json.loads(evaluate.content) == {
        "model_config_cuid": "mc",
        "tool_name": "t",
        "org_cuid": ORG,
    }


def test_evaluate_takes_the_org_from_the_payload() -> None:
    client, fake = client_for(lambda r: ok({"verdict": "denied", "reason": "no"}))
    with client:
        client.evaluate({"model_config_cuid": "mc", "org_cuid": "org-9"})
    assert fake.requests[0].headers["X-Org-CUID"] == "org-9"


def test_agents_pull_uses_its_own_timeout() -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/agents"):
            return paged(records(1))(request)
        return ok({"items": [], "total": 0})

    client, fake = client_for(handle, connection_timeout_seconds=4, agents_timeout_seconds=90)
    with client:
        client.organizations()
        client.fetch_agents(ORG, SLUG)
    other, agents = fake.requests
    assert other.extensions["timeout"]["read"] == 4
    assert agents.extensions["timeout"]["read"] == 90
    assert agents.extensions["timeout"]["connect"] == 4


# ---------------------------------------------------------------------------- paging


def test_paging_across_several_pages() -> None:
    recs = records(7)
    client, fake = client_for(paged(recs))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.complete is True
    assert pull.problems == []
    assert pull.records == recs
    assert (pull.total, pull.org_cuid, pull.org_name) == (7, ORG, "Org One")
    assert fake.pages == [1, 2, 3]
    first = fake.requests[0]
    assert first.url.params["limit"] == "3"
    assert first.url.params["org_cuid"] == ORG
    assert first.url.params["primary_record_type_slug"] == SLUG
    assert all(r.headers["X-Org-CUID"] == ORG for r in fake.requests)


def test_exact_multiple_of_page_size_stops_without_an_empty_page() -> None:
    client, fake = client_for(paged(records(6)))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.complete and len(pull.records) == 6
    assert fake.pages == [1, 2]


def test_empty_inventory_is_complete() -> None:
    client, fake = client_for(paged([]))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.complete and pull.records == [] and pull.total == 0
    assert fake.pages == [1]


def test_next_page_is_followed_and_null_stops() -> None:
    recs = records(7)
    client, fake = client_for(
        scripted(
            [
                agents_page(recs[0:3], 7, next_page=2),
                agents_page(recs[3:6], 7, next_page=5),
                agents_page(recs[6:7], 7, next_page=None),
            ]
        ),
        # A script answers requests in the order they come; a guessed page would take a turn.
        prefetch_pages=False,
    )
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1, 2, 5]
    assert pull.complete is True
    assert pull.records == recs


def test_next_page_null_before_total_is_incomplete() -> None:
    recs = records(7)
    client, fake = client_for(scripted([agents_page(recs[:3], 7, next_page=None)]))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1]
    assert pull.complete is False
    assert "received 3 of 7 records" in pull.problems


def test_server_ignoring_paging_is_detected_and_incomplete() -> None:
    recs = records(7)

    def same_first_page(request: httpx2.Request) -> httpx2.Response:
        return ok(agents_page(recs[:3], 7))

    client, fake = client_for(same_first_page)
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    # Page 3 may have been asked for ahead (a guess, dropped unread): never more.
    assert sorted(fake.pages) in ([1, 2], [1, 2, 3])
    assert pull.complete is False
    assert cuids(pull) == ["rec-0", "rec-1", "rec-2"]
    assert any(p.startswith("server ignored paging") for p in pull.problems)
    assert "received 3 of 7 records" in pull.problems


def test_server_ignoring_paging_is_complete_when_first_answer_held_everything() -> None:
    recs = records(4)

    def everything_every_time(request: httpx2.Request) -> httpx2.Response:
        return ok(agents_page(recs, 4, next_page=int(request.url.params["page"]) + 1))

    client, fake = client_for(everything_every_time)
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1, 2]
    assert pull.complete is True
    assert pull.records == recs
    assert any(p.startswith("server ignored paging") for p in pull.problems)


def test_truncated_pages_make_the_pull_incomplete() -> None:
    recs = records(7)
    client, fake = client_for(
        scripted([agents_page(recs[0:3], 7), agents_page(recs[3:5], 7), agents_page([], 7)])
    )
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1, 2, 3]
    assert pull.complete is False
    assert len(pull.records) == 5
    assert "received 5 of 7 records" in pull.problems


def test_empty_first_page_with_nonzero_total_is_incomplete() -> None:
    client, fake = client_for(scripted([agents_page([], 5)]))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1]
    assert pull.complete is False
    assert "received 0 of 5 records" in pull.problems


def test_more_records_than_total_is_incomplete() -> None:
    client, _ = client_for(scripted([agents_page(records(3), 2)]))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.complete is False
    assert "received 3 of 2 records" in pull.problems


def test_duplicates_are_dropped_and_noted_and_count_decides_completeness() -> None:
    recs = records(4)
    client, _ = client_for(
        scripted([agents_page(recs[0:3], 4), agents_page([recs[2], recs[3]], 4)])
    )
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert cuids(pull) == ["rec-0", "rec-1", "rec-2", "rec-3"]
    assert pull.complete is True
    assert any("repeated 1 record" in p and "'rec-2'" in p for p in pull.problems)


def test_duplicates_that_leave_a_gap_make_the_pull_incomplete() -> None:
    recs = records(5)
    client, _ = client_for(
        scripted(
            [
                agents_page(recs[0:3], 5),
                agents_page([recs[2], recs[3], recs[3]], 5),
                agents_page([], 5),
            ]
        )
    )
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert cuids(pull) == ["rec-0", "rec-1", "rec-2", "rec-3"]
    assert pull.complete is False
    assert "received 4 of 5 records" in pull.problems


def test_records_without_cuid_are_kept() -> None:
    recs = [{"cuid": "a", "name": "A"}, {"name": "no cuid"}, {"cuid": "", "name": "empty"}]
    client, _ = client_for(scripted([agents_page(recs, 3)]))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.records == recs
    assert pull.complete is True


def test_safety_cap_stops_a_server_that_never_ends() -> None:
    counter = iter(range(10_000))

    def endless(request: httpx2.Request) -> httpx2.Response:
        page = int(request.url.params["page"])
        fresh = [{"cuid": f"r{next(counter)}"} for _ in range(3)]
        return ok(agents_page(fresh, 6, next_page=page + 1))

    client, fake = client_for(endless)
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert len(fake.requests) == 2 + 5  # ceil(6 / 3) + 5
    assert pull.complete is False
    assert any("safety limit" in p for p in pull.problems)


def test_the_next_page_is_asked_for_while_one_is_read() -> None:
    """While page 2 is on its way, page 3 is asked for too (the server can prepare it)."""
    recs = records(12)
    serve = paged(recs)
    page3_asked = threading.Event()
    overlapped: list[bool] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        page = int(request.url.params["page"])
        if page == 3:
            page3_asked.set()
        if page == 2:
            overlapped.append(page3_asked.wait(timeout=10))
        return serve(request)

    client, fake = client_for(handle)
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert overlapped == [True]
    assert pull.records == recs and pull.complete is True
    assert sorted(fake.pages) == [1, 2, 3, 4]


def test_a_failing_guess_the_pull_does_not_need_changes_nothing() -> None:
    """Page 2 says there is no next page: page 3, asked for ahead and failing, is dropped."""
    recs = records(9)
    serve = paged(recs, total=9)

    def handle(request: httpx2.Request) -> httpx2.Response:
        page = int(request.url.params["page"])
        if page == 3:
            return ok({"error": "boom"}, status=500)
        body = json.loads(serve(request).content)
        return ok({**body, "next_page": 2 if page == 1 else None})

    client, fake = client_for(handle)
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert 3 in fake.pages  # the guess was asked for (and failed)
    assert cuids(pull) == [f"rec-{i}" for i in range(6)]
    assert pull.complete is False
    assert pull.problems == ["received 6 of 9 records"]


#: One page of a server as the property test draws it (a function of the page number).
_PAGE_KINDS = ("full",) * 3 + ("short", "empty", "repeat", "jump", "stop", "back", "recount")


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 14),
    claimed=st.integers(0, 16),
    limit=st.integers(1, 4),
    with_next=st.booleans(),
    kinds=st.lists(st.sampled_from(_PAGE_KINDS), min_size=12, max_size=12),
    failing=st.sets(st.integers(2, 12), max_size=2),
)
def test_asking_ahead_never_changes_the_pull(
    n: int,
    claimed: int,
    limit: int,
    with_next: bool,
    kinds: list[str],
    failing: set[int],
) -> None:
    """Whatever the server does, the pull with pages asked ahead is the pull without: the same
    records, problems and verdict, or the same error. A page asked for in vain is always the one
    after a page the pull asks for anyway (the server left plain paging there)."""
    recs = records(n)

    def handle(request: httpx2.Request) -> httpx2.Response:
        page = int(request.url.params["page"])
        if page in failing:
            return ok({"error": "unavailable"}, status=503)
        kind = kinds[min(page, len(kinds)) - 1]
        chunk = recs[(page - 1) * limit : page * limit]
        body: dict[str, Any] = {"org_cuid": ORG, "org_name": "Org One", "total": claimed}
        body["results"] = {
            "short": chunk[:-1],
            "empty": [],
            "repeat": recs[:limit],
        }.get(kind, chunk)
        if kind == "recount":
            body["total"] = claimed + 1
        if with_next:
            more = page * limit < n
            body["next_page"] = {"jump": page + 2, "stop": None, "back": page - 1}.get(
                kind, page + 1 if more else None
            )
        return ok(body)

    def pull(prefetch: bool) -> tuple[AgentsPull | str, list[int]]:
        client, fake = client_for(handle, prefetch_pages=prefetch, page_size=limit)
        with client:
            try:
                return client.fetch_agents(ORG, SLUG), fake.pages
            except ValidMindError as exc:
                return str(exc), fake.pages

    alone, asked_alone = pull(False)
    ahead, asked_ahead = pull(True)
    assert ahead == alone
    assert set(asked_alone) <= set(asked_ahead)
    assert all(p - 1 in asked_alone for p in set(asked_ahead) - set(asked_alone))


def test_next_page_going_backwards_stops_incomplete() -> None:
    recs = records(6)
    client, fake = client_for(
        scripted([agents_page(recs[0:3], 6, next_page=2), agents_page(recs[3:6], 6, next_page=1)])
    )
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1, 2]
    assert len(pull.records) == 6
    assert pull.complete is False
    assert any("next_page 1 after page 2" in p for p in pull.problems)


def test_total_changing_during_the_pull_is_incomplete() -> None:
    recs = records(6)
    client, _ = client_for(scripted([agents_page(recs[0:3], 6), agents_page(recs[3:6], 7)]))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.total == 6
    assert pull.complete is False
    assert any("record count changed" in p for p in pull.problems)


def test_org_comes_from_the_first_page() -> None:
    client, _ = client_for(paged(records(2), org="org-other"))
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert pull.org_cuid == "org-other"
    assert pull.org_name == "Org One"


def test_a_later_page_for_another_org_is_an_error() -> None:
    other = {**agents_page(records(3, 3), 6), "org_cuid": "org-2"}
    client, _ = client_for(scripted([agents_page(records(3), 6), other]))
    with client, pytest.raises(ValidMindError) as info:
        client.fetch_agents(ORG, SLUG)
    assert "GET /agents (page 2)" in str(info.value)
    assert "'org-2'" in str(info.value)


# ---------------------------------------------------------------------------- retries


def test_retries_on_503_then_succeeds() -> None:
    client, fake = client_for(
        scripted(
            [
                httpx2.Response(503, text="busy"),
                httpx2.Response(502, text="bad gateway"),
                {"items": [{"cuid": "o"}], "total": 1},
            ]
        )
    )
    with client:
        assert client.organizations() == [{"cuid": "o"}]
    assert len(fake.requests) == 3


def test_retries_each_page_of_the_pull() -> None:
    recs = records(6)
    client, fake = client_for(
        scripted([agents_page(recs[0:3], 6), httpx2.Response(500), agents_page(recs[3:6], 6)])
    )
    with client:
        pull = client.fetch_agents(ORG, SLUG)
    assert fake.pages == [1, 2, 2]
    assert pull.complete is True


def test_gives_up_after_the_configured_attempts() -> None:
    client, fake = client_for(lambda r: httpx2.Response(503, text="still busy"), retry_attempts=2)
    with client, pytest.raises(ValidMindError) as info:
        client.organizations()
    assert len(fake.requests) == 2
    assert info.value.status == 503
    assert str(info.value) == "ValidMind GET /organizations failed: HTTP 503: still busy"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_no_retry_on_other_4xx(status: int) -> None:
    client, fake = client_for(lambda r: httpx2.Response(status, text="nope"))
    with client, pytest.raises(ValidMindError) as info:
        client.record_types(ORG)
    assert len(fake.requests) == 1
    assert info.value.status == status
    assert info.value.endpoint == "GET /primary-record-types"
    assert f"HTTP {status}: nope" in str(info.value)


def test_retry_on_429() -> None:
    client, fake = client_for(
        scripted([httpx2.Response(429, text="slow down"), {"items": [], "total": 0}])
    )
    with client:
        assert client.model_configs() == []
    assert len(fake.requests) == 2


def test_retry_after_is_honoured_as_the_minimum_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real backoff path (testing mode off) with the sleep recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", slept.append)
    client, fake = client_for(
        scripted(
            [
                httpx2.Response(429, headers={"Retry-After": "7"}),
                httpx2.Response(503, headers={"Retry-After": "3600"}),
                {"items": [], "total": 0},
            ]
        )
    )
    with stamina.set_testing(False), client:
        client.organizations()
    assert len(fake.requests) == 3
    assert slept == [7.0, 30.0]  # Retry-After wins over the short backoff; capped at 30 s


def test_backoff_without_retry_after_is_short_and_jittered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", slept.append)
    client, _ = client_for(
        scripted([httpx2.Response(500), httpx2.Response(500), {"items": [], "total": 0}])
    )
    with stamina.set_testing(False), client:
        client.organizations()
    assert len(slept) == 2
    assert 0.25 <= slept[0] <= 0.75
    assert 0.5 <= slept[1] <= 1.0


def test_retry_wait_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    client, _ = client_for(
        scripted([httpx2.Response(429, headers={"Retry-After": "12"}), {"items": [], "total": 0}])
    )
    with caplog.at_level(logging.INFO, logger="atryum.validmind"), client:
        client.organizations()
    [record] = [r for r in caplog.records if r.name == "atryum.validmind"]
    assert record.__dict__["wait_seconds"] == 12.0
    assert "GET /organizations" in record.getMessage()
    assert "HTTP 429" in record.getMessage()


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5", now=now) == 5.0
    assert parse_retry_after(" 2.5 ", now=now) == 2.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None


# ---------------------------------------------------------------------------- errors


def test_error_carries_endpoint_status_and_500_chars_of_body() -> None:
    body = "E" * 499 + "Z" + "tail-that-must-not-appear" * 40
    client, _ = client_for(lambda r: httpx2.Response(500, text=body), retry_attempts=1)
    with client, pytest.raises(ValidMindError) as info:
        client.fetch_agents(ORG, SLUG)
    err = info.value
    assert err.endpoint == "GET /agents"
    assert err.status == 500
    assert err.body_excerpt == body[:500]
    assert str(err) == f"ValidMind GET /agents failed: HTTP 500: {body[:500]}"
    assert "tail-that" not in str(err)


def test_error_never_contains_credentials() -> None:
    def echo(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, text=f"bad credentials {dict(request.headers)}")

    for overrides in ({}, {"machine_key": None, "machine_secret": None}):
        client, _ = client_for(echo, **overrides)
        with client, pytest.raises(ValidMindError) as info:
            client.organizations()
        assert_no_secrets(str(info.value))
        assert_no_secrets(info.value.body_excerpt)
        assert_no_secrets(repr(info.value))
        assert "[redacted]" in info.value.body_excerpt


def test_malformed_json_is_an_error() -> None:
    client, _ = client_for(lambda r: httpx2.Response(200, text="{not json"))
    with client, pytest.raises(ValidMindError) as info:
        client.organizations()
    assert str(info.value).startswith(
        "ValidMind GET /organizations failed: response is not valid JSON"
    )
    assert info.value.status == 200
    assert info.value.body_excerpt == "{not json"


def test_non_object_json_is_an_error() -> None:
    client, _ = client_for(lambda r: ok([1, 2]))
    with client, pytest.raises(ValidMindError, match="not a JSON object"):
        client.organizations()


@pytest.mark.parametrize(
    ("call", "body", "missing"),
    [
        ("organizations", {"total": 0}, "items"),
        ("model_configs", {"total": 0}, "items"),
        ("connection", {"auth_mode": "machine_user"}, "ok"),
        ("agents", {"org_cuid": ORG, "org_name": "O", "results": []}, "total"),
        ("agents", {"org_cuid": ORG, "org_name": "O", "total": 0}, "results"),
        ("agents", {"org_name": "O", "results": [], "total": 0}, "org_cuid"),
        ("evaluate", {"reason": "r"}, "verdict"),
        ("charter", {"combined": ""}, "segments"),
    ],
)
def test_missing_required_field_is_an_error(call: str, body: dict[str, Any], missing: str) -> None:
    client, _ = client_for(lambda r: ok(body))
    calls: dict[str, Callable[[], Any]] = {
        "organizations": client.organizations,
        "model_configs": client.model_configs,
        "connection": client.connection,
        "agents": lambda: client.fetch_agents(ORG, SLUG),
        "evaluate": lambda: client.evaluate({"model_config_cuid": "mc"}),
        "charter": lambda: client.charter_preview(ORG, "rec-1", "charter"),
    }
    with client, pytest.raises(ValidMindError) as info:
        calls[call]()
    assert str(info.value).endswith(f"response is missing required field {missing!r}")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"org_cuid": ORG, "results": [], "total": "3"}, "field 'total' is a string"),
        ({"org_cuid": ORG, "results": [], "total": True}, "field 'total' is a boolean"),
        ({"org_cuid": ORG, "results": None, "total": 0}, "field 'results' is null"),
        ({"org_cuid": ORG, "results": ["x"], "total": 1}, "results[0] is a string"),
        (
            {"org_cuid": ORG, "results": [{"cuid": "a"}], "total": 2, "next_page": "2"},
            "field 'next_page' is a string",
        ),
    ],
)
def test_wrongly_typed_fields_are_errors(body: dict[str, Any], detail: str) -> None:
    client, _ = client_for(lambda r: ok(body))
    with client, pytest.raises(ValidMindError, match=re.escape(detail)):
        client.fetch_agents(ORG, SLUG)


def test_non_object_items_are_an_error() -> None:
    client, _ = client_for(lambda r: ok({"items": ["org-1"], "total": 1}))
    with client, pytest.raises(ValidMindError, match=r"items\[0\] is a string"):
        client.organizations()


def test_connection_error_is_retried_then_reported() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)

    client, fake = client_for(refuse)
    with client, pytest.raises(ValidMindError) as info:
        client.organizations()
    assert len(fake.requests) == 3
    assert info.value.status is None
    assert str(info.value) == (
        "ValidMind GET /organizations failed: cannot connect: [Errno 111] Connection refused"
    )


def test_connection_error_then_success() -> None:
    calls = iter(range(10))

    def flaky(request: httpx2.Request) -> httpx2.Response:
        if next(calls) == 0:
            raise httpx2.ConnectError("refused", request=request)
        return ok({"items": [], "total": 0})

    client, fake = client_for(flaky)
    with client:
        assert client.organizations() == []
    assert len(fake.requests) == 2


def test_timeout_is_reported() -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    client, fake = client_for(slow, retry_attempts=2)
    with client, pytest.raises(ValidMindError) as info:
        client.fetch_agents(ORG, SLUG)
    assert len(fake.requests) == 2
    assert str(info.value) == "ValidMind GET /agents failed: timed out: timed out"


def test_bad_base_url_is_not_retried() -> None:
    client = ValidMindClient(backend(base_url="vm.example"))
    with client, pytest.raises(ValidMindError, match=r"cannot connect: base_url 'vm\.example'"):
        client.organizations()


def test_userinfo_in_base_url_never_reaches_error_messages() -> None:
    client = ValidMindClient(backend(base_url="ftp://vm-user:url-pass-1234@vm.example"))
    with client, pytest.raises(ValidMindError) as info:
        client.organizations()
    assert "url-pass-1234" not in str(info.value) and "vm-user" not in str(info.value)
    assert "'ftp://[redacted]@vm.example'" in str(info.value)

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("vm-user:url-pass-1234@vm.example refused", request=request)

    client, _ = client_for(refuse, base_url="https://vm-user:url-pass-1234@vm.example")
    with client, pytest.raises(ValidMindError) as info:
        client.organizations()
    assert "url-pass-1234" not in str(info.value)
    assert "cannot connect: [redacted]@vm.example refused" in str(info.value)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()  # NaN and the infinities too: the standard library writes and reads them
    | st.text(),  # lone surrogates too
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(value=_json_values, ascii_only=st.booleans())
def test_an_answer_reads_as_the_standard_library_reads_it(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(body)
    except ValueError:
        with pytest.raises(ValueError):
            parse_json(body)
        return
    # repr: NaN is not equal to itself, and 1 == 1.0 == True would hide a changed type
    assert repr(parse_json(body)) == repr(expected)


@pytest.mark.parametrize("body", [b"[NaN]", b"[-Infinity]", b'["\\ud800"]', b"[1e400]"])
def test_what_orjson_refuses_the_standard_library_still_reads(body: bytes) -> None:
    assert repr(parse_json(body)) == repr(json.loads(body))
