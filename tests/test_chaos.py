"""Seeded random faults: each kind fires and is counted, and a seed replays."""

import json

import pytest
import requests

from ivinex_mirror.sandbox import SandboxServer, generate_instance
from ivinex_mirror.sandbox.chaos import FAILING, KINDS, Chaos, parse_kinds

AUTH = ("demo", "demo")
REQUESTS = 12


@pytest.fixture
def serve():
    """Start a small sandbox of its own with the given Chaos."""
    servers = []

    def start(chaos):
        server = SandboxServer(generate_instance(seed=5, scale=0.05), chaos=chaos)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def get(server, call, timeout=5, **params):
    return requests.get(
        f"{server.url}/API/{call}", params=params, auth=AUTH, timeout=timeout
    )


def contacts_page(server, timeout=5):
    return get(server, "GetRecords", timeout, Tab="Contacts", Limit=10)


def snapshot(instance):
    """Every record's id and modified_date, and every link."""
    records = {
        tab: {rid: r["modified_date"] for rid, r in recs.items()}
        for tab, recs in instance.records.items()
    }
    return records, list(instance.link_keys())


def values(instance):
    """Every record's values, without the stamps that follow the wall clock."""
    stamps = ("created_date", "modified_date")
    return {
        tab: {rid: {k: v for k, v in r.items() if k not in stamps} for rid, r in recs}
        for tab, recs in ((tab, recs.items()) for tab, recs in instance.records.items())
    }


def variants_of(chaos, kind):
    return {
        name.split(":", 1)[1]
        for name in chaos.variants
        if name.split(":", 1)[0] == kind
    }


def test_5xx_answers_an_html_error_page(serve):
    chaos = Chaos(seed=1, rate=1.0, kinds=["5xx"])
    server = serve(chaos)

    answers = [contacts_page(server) for _ in range(REQUESTS)]

    assert {a.status_code for a in answers} <= {500, 502, 503, 504}
    assert len({a.status_code for a in answers}) > 1
    assert all(a.headers["Content-Type"].startswith("text/html") for a in answers)
    assert chaos.counts == {"5xx": REQUESTS}


def test_reset_drops_the_connection(serve):
    chaos = Chaos(seed=1, rate=1.0, kinds=["reset"])
    server = serve(chaos)

    for _ in range(3):
        with pytest.raises(requests.ConnectionError):
            contacts_page(server)

    assert chaos.counts == {"reset": 3}


def test_stall_outlasts_the_client_timeout(serve):
    chaos = Chaos(seed=1, rate=1.0, kinds=["stall"], stall_seconds=0.6)
    server = serve(chaos)

    with pytest.raises(requests.ReadTimeout):
        contacts_page(server, timeout=0.2)

    assert chaos.counts == {"stall": 1}


def test_429_says_when_to_retry(serve):
    chaos = Chaos(seed=1, rate=1.0, kinds=["429"], retry_after=3)
    server = serve(chaos)

    answer = contacts_page(server)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert chaos.variants == {"429:random": 1}


def test_malformed_bodies_are_not_the_json_asked_for(serve):
    chaos = Chaos(seed=2, rate=1.0, kinds=["malformed"])
    server = serve(chaos)
    with chaos.paused():
        whole = contacts_page(server).content

    for _ in range(REQUESTS * 2):
        answer = contacts_page(server)
        assert answer.status_code == 200
        assert_broken(answer, whole)

    assert chaos.counts == {"malformed": REQUESTS * 2}
    assert variants_of(chaos, "malformed") == {"truncated", "empty", "html", "envelope"}


def assert_broken(answer, whole):
    """Cut short, empty, an HTML page, or the records under another key."""
    body = answer.content
    if answer.headers["Content-Type"].startswith("text/html"):
        assert body.lstrip().startswith(b"<!DOCTYPE html>")
        return
    try:
        payload = json.loads(body)
    except ValueError:
        assert len(body) < len(whole) and whole.startswith(body)
        return
    assert "Records" not in payload
    assert payload["Data"] == json.loads(whole)["Records"]


def test_error_200_carries_the_error_in_the_body(serve):
    chaos = Chaos(seed=3, rate=1.0, kinds=["error-200"])
    server = serve(chaos)

    answers = [contacts_page(server) for _ in range(REQUESTS)]

    assert {a.status_code for a in answers} == {200}
    assert {a.json()["Status"] for a in answers} == {"Error"}
    messages = " ".join(a.json()["Message"] for a in answers)
    assert "permission" in messages and "Internal error" in messages
    assert chaos.counts == {"error-200": REQUESTS}


def test_shift_changes_records_while_a_tab_is_paged(serve):
    chaos = Chaos(seed=4, rate=0.0, kinds=["shift"], shift_rate=1.0)
    server = serve(chaos)
    before = snapshot(server.instance)
    ids_before = set(server.instance.records["Contacts"])

    pages = [
        get(server, "GetRecords", Tab="Contacts", Offset=offset, Limit=10)
        for offset in range(0, 50, 4)
    ]

    assert all(page.status_code == 200 for page in pages)
    assert snapshot(server.instance) != before
    assert set(server.instance.records["Contacts"]) > ids_before
    assert chaos.counts["shift"] == len(pages)
    assert {"add", "modify", "reorder"} <= variants_of(chaos, "shift")


def test_shift_makes_and_removes_links_while_links_are_paged(serve):
    chaos = Chaos(seed=4, rate=0.0, kinds=["shift"], shift_rate=1.0)
    server = serve(chaos)
    links_before = set(server.instance.link_keys())

    for offset in range(0, 100, 10):
        assert get(server, "GetAllRelatedItems", Offset=offset, Limit=10).ok

    links_after = set(server.instance.link_keys())
    assert links_after - links_before and links_before - links_after
    assert variants_of(chaos, "shift") == {"link-add", "link-remove"}


def test_shift_leaves_other_calls_alone(serve):
    chaos = Chaos(seed=4, rate=0.0, kinds=["shift"], shift_rate=1.0)
    server = serve(chaos)
    before = snapshot(server.instance)

    assert get(server, "GetTabs").ok
    assert get(server, "GetFields", Tab="Contacts").ok

    assert snapshot(server.instance) == before
    assert not chaos.counts


def test_rate_limit_answers_429_past_the_rate(serve):
    chaos = Chaos(seed=1, rate=0.0, rate_limit=5)
    server = serve(chaos)

    statuses = [get(server, "GetTabs").status_code for _ in range(12)]
    limited = get(server, "GetTabs")

    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 7
    assert int(limited.headers["Retry-After"]) >= 1
    assert chaos.variants == {"429:rate-limit": 8}


def test_every_kind_fires_when_all_are_on(serve):
    chaos = Chaos(seed=6, rate=0.5, stall_seconds=0.3)
    server = serve(chaos)

    for offset in range(0, 400, 10):
        try:
            get(server, "GetRecords", 0.1, Tab="Notes", Offset=offset, Limit=10)
        except requests.RequestException:
            continue

    assert set(chaos.counts) == set(KINDS)
    assert sum(chaos.counts.values()) == sum(chaos.variants.values())


def test_same_seed_same_decisions():
    calls = [("GetRecords", {"Tab": "Contacts", "Offset": n}) for n in range(50)]
    calls += [("GetTabs", {})] * 20

    def decisions(seed, order):
        chaos = Chaos(seed=seed, rate=0.5)
        return [chaos.decide(call, "GET", params) for call, params in order]

    first = decisions(9, calls)
    assert decisions(9, calls) == first
    assert decisions(10, calls) != first
    assert {d.kind for d in first} >= set(FAILING)
    # Repeats of one request get decisions of their own.
    assert len({d for d in first[50:]}) > 1


def test_decisions_do_not_depend_on_the_order_requests_arrive():
    calls = [("GetFields", {"Tab": tab}) for tab in ("A", "B", "C", "D", "E")]
    forward = Chaos(seed=3, rate=0.6)
    backward = Chaos(seed=3, rate=0.6)

    ahead = {p["Tab"]: forward.decide(c, "GET", p) for c, p in calls}
    behind = {p["Tab"]: backward.decide(c, "GET", p) for c, p in reversed(calls)}

    assert ahead == behind


def test_reseed_starts_over_from_the_new_seed():
    chaos = Chaos(seed=1, rate=0.5)
    first = [chaos.decide("GetTabs") for _ in range(10)]
    chaos.reseed(1)

    assert [chaos.decide("GetTabs") for _ in range(10)] == first


def test_a_seed_replays_the_same_faults_and_changes_over_http(serve):
    def play():
        chaos = Chaos(seed=11, rate=0.4, stall_seconds=0.3)
        server = serve(chaos)
        seen = []
        for offset in range(0, 150, 10):
            try:
                answer = get(server, "GetRecords", 0.1, Tab="Tasks", Offset=offset)
                seen.append((answer.status_code, answer.content[:30]))
            except requests.RequestException as error:
                seen.append(type(error).__name__)
        return seen, chaos.summary(), values(server.instance)

    assert play() == play()


def test_paused_serves_the_truth(serve):
    chaos = Chaos(seed=1, rate=1.0, rate_limit=1)
    server = serve(chaos)

    with chaos.paused():
        answers = [contacts_page(server) for _ in range(5)]

    assert all(a.status_code == 200 and "Records" in a.json() for a in answers)
    assert not chaos.counts
    assert chaos.enabled


def test_planned_faults_come_first(serve):
    chaos = Chaos(seed=1, rate=1.0, kinds=["5xx"])
    server = serve(chaos)
    server.faults.add("not_found", call="GetTabs")

    assert get(server, "GetTabs").status_code == 404
    assert get(server, "GetTabs").status_code >= 500
    assert chaos.counts == {"5xx": 1}


def test_stats_show_the_faults_injected(serve):
    chaos = Chaos(seed=1, rate=1.0, kinds=["error-200"])
    server = serve(chaos)
    get(server, "GetTabs")

    stats = requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()

    assert stats["chaos"]["by_kind"] == {"error-200": 1}
    assert stats["chaos"]["requests"] == 1


def test_kinds_are_checked():
    assert parse_kinds("5xx, shift,reset") == ("5xx", "reset", "shift")
    with pytest.raises(ValueError, match="Unknown fault kind 500"):
        Chaos(kinds="500")
    with pytest.raises(ValueError, match="from 0 to 1"):
        Chaos(rate=1.5)
