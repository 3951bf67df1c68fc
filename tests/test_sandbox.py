"""The sandbox: generated data, the wire contract over HTTP, and its faults."""

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ivinex_mirror.sandbox import SandboxServer, generate_instance
from ivinex_mirror.sandbox.definitions import DEFAULT_FIELDS, FIELD_TYPES, LINK_KINDS

AUTH = ("demo", "demo")
RTL = re.compile("[\u0590-\u05ff\u0600-\u06ff]")
EMOJI = re.compile("[\U0001f300-\U0001faff]")


@pytest.fixture(scope="module")
def instance():
    return generate_instance(seed=1, scale=1.0)


@pytest.fixture(scope="module")
def running(instance):
    with SandboxServer(instance) as server:
        yield server


@pytest.fixture
def server(running):
    """The shared read-only server, with no faults or denials left over."""
    running.faults.clear()
    running.denied_tabs.clear()
    yield running
    running.faults.clear()
    running.denied_tabs.clear()


@pytest.fixture
def writable():
    """A small instance of its own, for tests that change data."""
    with SandboxServer(generate_instance(seed=3, scale=0.1)) as server:
        yield server


def get(server, call, timeout=5, auth=AUTH, **params):
    return requests.get(
        f"{server.url}/API/{call}", params=params, auth=auth, timeout=timeout
    )


def post(server, call, data=None, json=None):
    return requests.post(
        f"{server.url}/API/{call}", data=data, json=json, auth=AUTH, timeout=5
    )


def all_records(instance):
    for tab_name, records in instance.records.items():
        for record in records.values():
            yield tab_name, record


# Generated data


def test_same_seed_gives_same_data_and_another_seed_other_data():
    first = generate_instance(seed=7, scale=0.2)
    again = generate_instance(seed=7, scale=0.2)
    other = generate_instance(seed=8, scale=0.2)

    assert first.tabs == again.tabs
    assert first.fields == again.fields
    assert first.records == again.records
    assert first.links() == again.links()
    assert first.records != other.records
    assert first.links() != other.links()


def test_counts_at_scale_one(instance):
    records = sum(len(records) for records in instance.records.values())
    assert 4000 <= records <= 6000
    assert 6500 <= len(instance.links()) <= 9500


def test_tabs_a_small_business_would_have(instance):
    names = {tab["TabName"] for tab in instance.tabs}
    assert {
        "Contacts",
        "Companies",
        "Opportunities",
        "Notes",
        "Tasks",
        "Tickets",
        "Calls",
        "Leads",
        "Project Tracker",
    } <= names
    assert all(instance.records[name] for name in names)


def test_every_field_type_and_one_unknown_type(instance):
    types = {f["FieldType"] for fields in instance.fields.values() for f in fields}
    assert set(FIELD_TYPES) <= types
    assert types - set(FIELD_TYPES) == {"Signature"}
    assert any(f["Required"] for fields in instance.fields.values() for f in fields)


def test_awkward_field_names_on_the_custom_tab(instance):
    names = {f["FieldName"] for f in instance.fields["Project Tracker"]}
    assert {"2nd Contact", "Order", "Budget (€)", "Status", "status"} <= names
    contact_names = [f["FieldName"] for f in instance.fields["Contacts"]]
    assert all(re.fullmatch("[a-z_]+", name) for name in contact_names)


def test_option_ids_unique_and_values_are_option_ids(instance):
    seen = []
    for tab_name, fields in instance.fields.items():
        for field in fields:
            ids = {option["OptionID"] for option in field["Options"]}
            seen.extend(ids)
            values = [
                r.get(field["FieldName"]) for r in instance.records[tab_name].values()
            ]
            if field["FieldType"] == "Dropdown":
                assert {v for v in values if v not in (None, "")} <= ids
            if field["FieldType"] == "MultiSelect":
                chosen = {i for v in values if isinstance(v, list) for i in v}
                assert chosen <= ids
    assert len(seen) == len(set(seen))
    assert min(seen) >= 14000


def test_linked_record_values_point_at_existing_records(instance):
    checked = 0
    for tab_name, fields in instance.fields.items():
        for field in (f for f in fields if f["FieldType"] == "LinkedRecord"):
            targets = instance.records[field["LinkedTab"]]
            for record in instance.records[tab_name].values():
                value = record.get(field["FieldName"])
                if value is not None:
                    assert value in targets
                    checked += 1
    assert checked > 3000


def test_links_of_all_kinds_between_existing_records(instance):
    links = instance.links()
    assert {link["LinkType"] for link in links} == set(LINK_KINDS)
    for link in links:
        assert link["FromRecordID"] in instance.records[link["FromTab"]]
        assert link["ToRecordID"] in instance.records[link["ToTab"]]
    keys = [tuple(link.values()) for link in links]
    assert keys == sorted(set(keys))


def test_collection_ids_unique_and_default_fields_everywhere(instance):
    ids = [record["collection_id"] for _tab, record in all_records(instance)]
    assert len(ids) == len(set(ids))
    for _tab, record in all_records(instance):
        assert set(DEFAULT_FIELDS) <= set(record)
        assert record["modified_date"] >= record["created_date"]
    listed = {f["FieldName"] for fields in instance.fields.values() for f in fields}
    assert not listed & set(DEFAULT_FIELDS)


def test_names_on_the_main_tabs(instance):
    contact = next(iter(instance.records["Contacts"].values()))
    assert {"first_name", "last_name", "full_name"} <= set(contact)
    for tab_name, label in [
        ("Companies", "name"),
        ("Opportunities", "name"),
        ("Notes", "subject"),
        ("Tickets", "subject"),
        ("Tasks", "subject"),
        ("Calls", "subject"),
        ("Leads", "full_name"),
    ]:
        names = {f["FieldName"] for f in instance.fields[tab_name]}
        assert label in names


def test_values_are_messy_like_real_ones(instance):
    contacts = list(instance.records["Contacts"].values())
    notes = list(instance.records["Notes"].values())
    bodies = [n["body"] for n in notes if isinstance(n.get("body"), str)]
    assert any(RTL.search(c.get("full_name") or "") for c in contacts)
    assert any(re.search("[éèüöäßñłó]", c["last_name"]) for c in contacts)
    assert any(EMOJI.search(body) for body in bodies)
    assert sum("<p>" in body for body in bodies) > len(bodies) / 2
    assert 1 <= sum(len(body) >= 20000 for body in bodies) <= 20

    values = [
        value for _tab, record in all_records(instance) for value in record.values()
    ]
    assert "" in values
    assert None in values
    assert any(
        len(record) < len(instance.fields[tab]) + len(DEFAULT_FIELDS)
        for tab, record in all_records(instance)
    )
    amounts = [o.get("amount") for o in instance.records["Opportunities"].values()]
    assert any(isinstance(a, str) and re.fullmatch(r"\d+\.\d\d", a) for a in amounts)


def test_notes_mention_their_contacts_surname(instance):
    contacts = instance.records["Contacts"]
    linked = [n for n in instance.records["Notes"].values() if n.get("contact")]
    mentioning = [
        n
        for n in linked
        if contacts[n["contact"]]["last_name"] in (n.get("body") or "")
    ]
    assert len(mentioning) > len(linked) / 5


def test_dates_do_not_depend_on_today(instance):
    newest = max(r["modified_date"] for _t, r in all_records(instance))
    assert newest < "2026-11-30 12:00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", newest)


# Reading over HTTP


def test_get_tabs_and_fields(server, instance):
    tabs = get(server, "GetTabs").json()["Tabs"]
    assert tabs == instance.tabs

    by_id = get(server, "GetFields", Tab=1010).json()["Fields"]
    by_name = get(server, "GetFields", Tab="Project Tracker").json()["Fields"]
    assert by_id == by_name == instance.fields["Project Tracker"]


def test_pages_join_to_all_records_and_a_short_page_ends_them(server, instance):
    ids, offset, sizes = [], 0, []
    while True:
        answer = get(
            server, "GetRecords", Tab="Contacts", Offset=offset, Limit=1000
        ).json()
        sizes.append(len(answer["Records"]))
        ids.extend(r["collection_id"] for r in answer["Records"])
        if len(answer["Records"]) < 500:
            break
        offset += 500
    assert sizes == [500, 500, 200]
    assert answer["Total"] == 1200
    assert ids == sorted(instance.records["Contacts"])


def test_records_php_pages_by_collection_type_id(server, instance):
    first = requests.get(
        f"{server.url}/API/Records.php",
        auth=AUTH,
        timeout=5,
        params={"CollectionTypeID": 1002, "Limit": 250},
    ).json()
    rest = requests.get(
        f"{server.url}/API/Records.php",
        auth=AUTH,
        timeout=5,
        params={"CollectionTypeID": 1002, "Offset": 250},
    ).json()
    assert len(first["Records"]) == 250
    ids = [r["collection_id"] for r in first["Records"] + rest["Records"]]
    assert ids == sorted(instance.records["Companies"])


def test_default_limit_is_one_hundred(server):
    assert len(get(server, "GetRecords", Tab="Notes").json()["Records"]) == 100


def test_all_related_items_page_over_every_link(server, instance):
    links, offset = [], 0
    while True:
        page = get(server, "GetAllRelatedItems", Offset=offset, Limit=500).json()[
            "RelatedItems"
        ]
        links.extend(page)
        if len(page) < 500:
            break
        offset += 500
    assert links == instance.links()


def test_related_items_of_one_record_in_both_directions(server, instance):
    link = next(x for x in instance.links() if x["LinkType"] == "Converted")
    items = get(
        server, "GetRelatedItems", Tab=link["ToTab"], RecordID=link["ToRecordID"]
    ).json()["RelatedItems"]
    assert {
        "Tab": link["FromTab"],
        "RecordID": link["FromRecordID"],
        "LinkType": "Converted",
    } in items


def test_modified_since_returns_changes_in_order(server, instance):
    stamps = sorted(r["modified_date"] for r in instance.records["Tasks"].values())
    since = stamps[len(stamps) // 2]
    answer = get(
        server, "GetRecords", Tab="Tasks", ModifiedSince=since, Limit=500
    ).json()
    expected = sorted(
        (r["modified_date"], r["collection_id"])
        for r in instance.records["Tasks"].values()
        if r["modified_date"] >= since
    )
    got = [(r["modified_date"], r["collection_id"]) for r in answer["Records"]]
    assert got == expected
    assert answer["Total"] == len(expected) < len(stamps)


def test_wrong_or_missing_password_is_401(server):
    for auth in [("demo", "wrong"), ("someone", "demo"), None]:
        answer = get(server, "GetTabs", auth=auth)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_tab_and_unknown_call_are_404(server):
    answer = get(server, "GetRecords", Tab="Invoices")
    assert answer.status_code == 404
    assert "Invoices" in answer.json()["Message"]
    assert get(server, "GetInvoices").status_code == 404


def test_denied_tab_is_403_and_other_tabs_still_answer(server):
    server.denied_tabs.add("Tickets")
    assert get(server, "GetRecords", Tab="Tickets").status_code == 403
    assert get(server, "GetFields", Tab=1006).status_code == 403
    assert get(server, "GetRecords", Tab="Calls").status_code == 200


def test_requests_are_counted_after_auth(server):
    before = len(server.requests)
    get(server, "GetFields", Tab="Calls")
    get(server, "GetTabs", auth=("demo", "nope"))
    assert server.requests[before:] == [("GetFields", {"Tab": "Calls"})]


def test_request_log_never_shows_the_password(caplog):
    instance = generate_instance(seed=2, scale=0.05)
    with (
        SandboxServer(instance, password="pa55-word-xyz") as server,
        caplog.at_level(logging.DEBUG, logger="ivinex_mirror"),
    ):
        get(server, "GetTabs", auth=("demo", "pa55-word-xyz"))
        get(server, "GetTabs", auth=("demo", "pa55-word-xyz-wrong"))
    lines = [r.getMessage() for r in caplog.records]
    assert any("GetTabs -> 200" in line for line in lines)
    assert not any("pa55" in line for line in lines)


def test_latency_slows_every_request():
    instance = generate_instance(seed=2, scale=0.05)
    with SandboxServer(instance, latency_ms=150) as server:
        started = time.monotonic()
        get(server, "GetTabs")
        assert time.monotonic() - started >= 0.15


# Faults

ANSWERS = [
    ("unauthorized", {}, 401, "application/json"),
    ("forbidden", {}, 403, "application/json"),
    ("permission", {}, 200, "application/json"),
    ("not_found", {}, 404, "application/json"),
    ("rate_limited", {"retry_after": 2}, 429, "application/json"),
    ("server_error", {"status": 502}, 502, "text/html"),
    ("malformed", {}, 200, "application/json"),
    ("html", {}, 200, "text/html"),
    ("api_error", {}, 200, "application/json"),
]


@pytest.mark.parametrize("kind, options, status, content_type", ANSWERS)
def test_each_fault_kind_answers_once(server, kind, options, status, content_type):
    server.faults.add(kind, call="GetRecords", tab="Contacts", **options)

    answer = get(server, "GetRecords", Tab="Contacts")
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith(content_type)
    if kind == "rate_limited":
        assert answer.headers["Retry-After"] == "2"
    if kind in ("permission", "forbidden"):
        assert "permission" in answer.json()["Message"]
    if kind == "malformed":
        with pytest.raises(ValueError):
            answer.json()

    again = get(server, "GetRecords", Tab="Contacts")
    assert again.status_code == 200
    assert len(again.json()["Records"]) == 100


def test_reset_fault_drops_the_connection(server):
    server.faults.add("reset", call="GetTabs")
    with pytest.raises(requests.ConnectionError):
        get(server, "GetTabs")
    assert get(server, "GetTabs").status_code == 200


def test_stall_fault_outlasts_a_short_timeout(server):
    server.faults.add("stall", call="GetTabs", seconds=1)
    with pytest.raises(requests.Timeout):
        get(server, "GetTabs", timeout=0.2)
    assert get(server, "GetTabs", timeout=2).status_code == 200


def test_faults_match_tab_and_offset_only(server):
    server.faults.add("server_error", tab="Contacts", offset=500, times=2)
    assert get(server, "GetRecords", Tab="Contacts", Offset=0).status_code == 200
    assert get(server, "GetRecords", Tab="Companies", Offset=500).status_code == 200
    assert get(server, "GetRecords", Tab=1001, Offset=500).status_code == 500
    assert get(server, "GetRecords", Tab="Contacts", Offset=500).status_code == 500
    assert get(server, "GetRecords", Tab="Contacts", Offset=500).status_code == 200


def test_unknown_fault_kind_or_option_is_refused(server):
    with pytest.raises(ValueError):
        server.faults.add("explode")
    with pytest.raises(ValueError):
        server.faults.add("stall", secs=3)


def test_admin_endpoints_work_without_auth(server):
    before = requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()
    added = requests.post(
        f"{server.url}/_sandbox/faults",
        timeout=5,
        json={"kind": "rate_limited", "call": "GetFields", "retry_after": 3},
    )
    assert added.status_code == 200

    answer = get(server, "GetFields", Tab="Leads")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    stats = requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()
    assert stats["requests"] == before["requests"] + 1
    assert stats["by_call"]["GetFields"] == before["by_call"].get("GetFields", 0) + 1

    bad = requests.post(f"{server.url}/_sandbox/faults", json={"kind": "x"}, timeout=5)
    assert bad.status_code == 400


# Writing over HTTP


def test_create_and_update_through_records_php(writable):
    instance = writable.instance
    newest = max(r["modified_date"] for _t, r in all_records(instance))
    created = post(
        writable,
        "Records.php",
        json={
            "Records": [
                {"CollectionTypeID": 1001, "first_name": "Zoë", "last_name": "Ñúñez"},
            ]
        },
    ).json()
    assert created[0]["Status"] == "Success"
    new_id = created[0]["CollectionID"]
    record = instance.records["Contacts"][new_id]
    assert record["created_by"] == record["modified_by"] == "demo"
    assert record["created_date"] >= newest

    old = next(iter(instance.records["Leads"].values()))
    old_stamp = old["modified_date"]
    updated = post(
        writable,
        "Records.php",
        json={
            "Records": [
                {
                    "CollectionTypeID": 1008,
                    "CollectionID": old["collection_id"],
                    "company_name": "Müller & Söhne GmbH",
                },
            ]
        },
    ).json()
    assert updated[0]["Status"] == "Success"
    assert old["company_name"] == "Müller & Söhne GmbH"
    assert old["modified_date"] > old_stamp

    changed = get(
        writable, "GetRecords", Tab="Leads", ModifiedSince=old["modified_date"]
    ).json()["Records"]
    assert [r["collection_id"] for r in changed] == [old["collection_id"]]


def test_records_php_reports_errors_per_record(writable):
    answer = post(
        writable,
        "Records.php",
        json={
            "Records": [
                {"CollectionTypeID": 1001, "CollectionID": 999999, "first_name": "X"},
                {"CollectionTypeID": 4242, "name": "Nowhere"},
                {"CollectionTypeID": 1002, "name": "Fine Ltd"},
                {"CollectionTypeID": 1002, "no_such_field": 1, "name": "Bad"},
            ]
        },
    )
    assert answer.status_code == 200
    statuses = [item["Status"] for item in answer.json()]
    assert statuses == ["Error", "Error", "Success", "Error"]
    assert "999999" in answer.json()[0]["Message"]


def test_linked_record_write_makes_an_embedded_link(writable):
    instance = writable.instance
    note_id = next(iter(instance.records["Notes"]))
    company_id = list(instance.records["Companies"])[-1]
    company = instance.records["Companies"][company_id]
    before = company["modified_date"]
    post(
        writable,
        "Records.php",
        json={
            "Records": [
                {
                    "CollectionTypeID": 1004,
                    "CollectionID": note_id,
                    "company": company_id,
                },
            ]
        },
    )
    link = {
        "FromTab": "Notes",
        "FromRecordID": note_id,
        "ToTab": "Companies",
        "ToRecordID": company_id,
        "LinkType": "Embedded",
    }
    assert link in instance.links()
    assert company["modified_date"] > before


def test_add_and_remove_a_related_item(writable):
    instance = writable.instance
    call_id = next(iter(instance.records["Calls"]))
    product_id = next(iter(instance.records["Products"]))
    params = {
        "FromTab": "Calls",
        "FromRecordID": call_id,
        "ToTab": "Products",
        "ToRecordID": product_id,
    }
    before = instance.records["Products"][product_id]["modified_date"]

    assert post(writable, "AddRelatedItem", data=params).json()["Status"] == "Success"
    items = get(
        writable, "GetRelatedItems", Tab="Products", RecordID=product_id
    ).json()["RelatedItems"]
    assert {"Tab": "Calls", "RecordID": call_id, "LinkType": "Related"} in items
    assert instance.records["Products"][product_id]["modified_date"] > before

    assert post(writable, "RemoveRelatedItem", data=params).json()["Status"] == (
        "Success"
    )
    items = get(
        writable, "GetRelatedItems", Tab="Products", RecordID=product_id
    ).json()["RelatedItems"]
    assert {"Tab": "Calls", "RecordID": call_id, "LinkType": "Related"} not in items


def test_delete_record_takes_its_links_along(writable):
    instance = writable.instance
    link = next(
        x
        for x in instance.links()
        if x["LinkType"] == "Embedded"
        and (x["FromTab"], x["ToTab"]) == ("Contacts", "Companies")
    )
    company_id = link["ToRecordID"]
    answer = post(
        writable, "DeleteRecord", data={"Tab": "Companies", "RecordID": company_id}
    )
    assert answer.json() == {"Status": "Success"}

    assert company_id not in instance.records["Companies"]
    assert not [
        x
        for x in instance.links()
        if ("Companies", company_id)
        in ((x["FromTab"], x["FromRecordID"]), (x["ToTab"], x["ToRecordID"]))
    ]
    referrer = instance.records["Contacts"][link["FromRecordID"]]
    assert referrer["company"] is None
    assert referrer["modified_by"] == "demo"
    assert (
        post(
            writable, "DeleteRecord", data={"Tab": "Companies", "RecordID": company_id}
        ).status_code
        == 404
    )


def test_new_fields_and_tabs_appear_in_the_api(writable):
    instance = writable.instance
    instance.add_field(
        "Leads",
        {"FieldName": "Region", "FieldType": "Dropdown", "Options": ["North", "South"]},
    )
    tab_id = instance.add_tab("Invoices", "Invoice")
    fields = get(writable, "GetFields", Tab="Leads").json()["Fields"]
    region = next(f for f in fields if f["FieldName"] == "Region")
    assert [o["Label"] for o in region["Options"]] == ["North", "South"]
    assert get(writable, "GetRecords", Tab=tab_id).json() == {"Records": [], "Total": 0}

    instance.remove_field("Leads", "Region")
    fields = get(writable, "GetFields", Tab="Leads").json()["Fields"]
    assert "Region" not in {f["FieldName"] for f in fields}


def test_serve_forever_reports_its_port_and_stops():
    server = SandboxServer(generate_instance(seed=2, scale=0.05))
    ready = threading.Event()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"on_ready": lambda s: ready.set()}
    )
    thread.start()
    assert ready.wait(5)
    assert server.port != 0
    assert get(server, "GetTabs").status_code == 200
    server.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_concurrent_creates_get_distinct_ids(writable):
    def create(number):
        answer = post(
            writable,
            "Records.php",
            json={"Records": [{"CollectionTypeID": 1009, "name": f"Bundle {number}"}]},
        )
        return answer.json()[0]["CollectionID"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(40)))
    assert len(set(ids)) == 40
    assert set(ids) <= set(writable.instance.records["Products"])
