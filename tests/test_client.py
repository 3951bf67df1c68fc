"""The HTTP client: canned answers for the wire format, the real sandbox for
paging, retries and every row of the contract's error table."""

import functools
import json
import logging
import socket
import time
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from ivinex_mirror.client import (
    Field,
    IvinexClient,
    Link,
    Option,
    Tab,
    instance_url,
)
from ivinex_mirror.errors import (
    ApiError,
    AuthenticationFailed,
    IvinexError,
    MalformedResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
)
from ivinex_mirror.sandbox import SandboxServer, generate_instance

from .conftest import PASSWORD as SECRET

CANNED_URL = "http://127.0.0.1:9"


# Canned answers: a transport that never touches the network.


class Answer(NamedTuple):
    status: int
    body: object
    content_type: str = "application/json"


class CannedAdapter(BaseAdapter):
    """Answers each call name with its canned Answer."""

    def __init__(self, answers):
        super().__init__()
        self.answers = answers
        self.sent = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        answer = self.answers[urlsplit(request.url).path.rsplit("/", 1)[-1]]
        body = answer.body
        response = requests.Response()
        response.status_code = answer.status
        response._content = (
            body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        response.headers["Content-Type"] = answer.content_type
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def canned_client(answers, **options):
    """A client whose calls get `answers`: {call: Answer, or a 200 JSON body}."""
    adapter = CannedAdapter(
        {
            call: answer if isinstance(answer, Answer) else Answer(200, answer)
            for call, answer in answers.items()
        }
    )
    session = requests.Session()
    session.mount(CANNED_URL + "/", adapter)
    client = IvinexClient(CANNED_URL, "demo", SECRET, session=session, **options)
    return client, adapter


def sent_params(adapter, index=-1):
    query = parse_qs(urlsplit(adapter.sent[index].url).query)
    return {key: values[0] for key, values in query.items()}


def test_instance_url_is_normalised():
    assert instance_url("acme.ivinex.com") == "https://acme.ivinex.com"
    assert instance_url(" https://Acme.Ivinex.com/ ") == "https://acme.ivinex.com"
    assert instance_url("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert instance_url("https://acme.ivinex.com/API/") == "https://acme.ivinex.com"
    client = IvinexClient("https://acme.ivinex.com//", "demo", SECRET)
    assert client.api_root == "https://acme.ivinex.com/API/"


@pytest.mark.parametrize(
    "company", ["", "not a url", "ftp://acme.ivinex.com", "https://", "http://h:99999"]
)
def test_a_company_that_is_no_url_is_refused_clearly(company):
    with pytest.raises(IvinexError, match="is not an Ivinex instance URL"):
        IvinexClient(company, "demo", SECRET)


def test_a_company_url_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(IvinexError) as caught:
        IvinexClient(f"https://demo:{SECRET}@acme.ivinex.com", "demo", SECRET)
    assert SECRET not in str(caught.value)
    assert "must not carry a username or password" in str(caught.value)


@pytest.mark.parametrize(
    "options", [{"page_size": 0}, {"page_size": 501}, {"records_endpoint": "Records"}]
)
def test_bad_options_are_refused(options):
    with pytest.raises(IvinexError):
        IvinexClient(CANNED_URL, "demo", SECRET, **options)


def test_tabs_tolerate_letter_case_strings_and_extra_keys():
    client, _ = canned_client(
        {
            "GetTabs": {
                "TABS": [
                    {
                        "tabid": "1001",
                        "TABNAME": "Contacts",
                        "singularname": "Contact",
                        "Icon": "user",
                    },
                    {"TabID": 1002, "TabName": "Notes"},
                ]
            }
        }
    )

    tabs = client.fetch_tabs()

    assert tabs == [
        Tab(1001, "Contacts", "Contact", {"Icon": "user"}),
        Tab(1002, "Notes", None, {}),
    ]
    assert hash(tabs[0]) == hash(Tab(1001, "Contacts", "Contact", {}))


def test_a_bare_list_is_read_as_the_list():
    client, _ = canned_client({"GetTabs": [{"TabID": 7, "TabName": "Deals"}]})
    assert client.fetch_tabs() == [Tab(7, "Deals", None, {})]


def test_fields_tolerate_strings_for_numbers_and_flags():
    client, adapter = canned_client(
        {
            "GetFields": {
                "fields": [
                    {
                        "FieldName": "type",
                        "Label": "Type",
                        "FieldType": "Dropdown",
                        "Required": "true",
                        "Options": [
                            {"optionid": "14795", "LABEL": "Lead", "Color": "red"}
                        ],
                        "LinkedTab": None,
                    },
                    {
                        "fieldname": "company",
                        "FIELDTYPE": "LinkedRecord",
                        "required": "0",
                        "linkedtab": "Companies",
                        "Help": "the employer",
                    },
                    {"FieldName": "mood", "FieldType": "Hologram", "Required": 1},
                ]
            }
        }
    )

    fields = client.fetch_fields(Tab(1001, "Contacts"))

    assert sent_params(adapter) == {"Tab": "Contacts"}
    assert fields[0] == Field(
        "type", "Type", "Dropdown", True, (Option(14795, "Lead"),), None, {}
    )
    assert fields[0].options[0].extra == {"Color": "red"}
    assert fields[1] == Field(
        "company",
        "company",
        "LinkedRecord",
        False,
        (),
        "Companies",
        {"Help": "the employer"},
    )
    # Unknown types pass through as sent; the schema module decides.
    assert (fields[2].field_type, fields[2].required) == ("Hologram", True)


def test_records_keep_their_keys_but_the_id_key_is_normalised():
    records = [
        {"CollectionID": "78", "Status": "Open", "status": "x", "first_name": "Ana"},
        {"COLLECTION_ID": 79, "Status": "Won"},
        {"collection_id": 80.0},
    ]
    client, adapter = canned_client(
        {"GetRecords": {"records": records, "TOTAL": "3"}}, page_size=5
    )

    pages = list(
        client.fetch_record_pages(Tab(1, "Deals"), modified_since="2024-01-02 03:04:05")
    )

    assert len(pages) == 1
    assert (pages[0].offset, pages[0].total) == (0, 3)
    assert pages[0].items == [
        {"collection_id": 78, "Status": "Open", "status": "x", "first_name": "Ana"},
        {"collection_id": 79, "Status": "Won"},
        {"collection_id": 80},
    ]
    assert sent_params(adapter) == {
        "Tab": "Deals",
        "ModifiedSince": "2024-01-02 03:04:05",
        "Offset": "0",
        "Limit": "5",
    }


def test_the_records_php_door_names_the_tab_by_its_id():
    client, adapter = canned_client(
        {"Records.php": {"Records": [{"collection_id": 1}]}},
        records_endpoint="Records.php",
    )
    list(client.fetch_record_pages(Tab(1001, "Contacts")))
    assert sent_params(adapter) == {
        "CollectionTypeID": "1001",
        "Offset": "0",
        "Limit": "500",
    }


def test_links_and_related_items_are_normalised():
    client, adapter = canned_client(
        {
            "GetAllRelatedItems": {
                "relateditems": [
                    {
                        "fromtab": "Contacts",
                        "FROMRECORDID": "78",
                        "ToTab": "Notes",
                        "ToRecordID": 5,
                        "LinkType": "copied_from",
                        "Note": "n",
                    },
                    {
                        "FromTab": "Deals",
                        "FromRecordID": 1,
                        "ToTab": "Products",
                        "ToRecordID": "2",
                        "LinkType": "Bundled",
                    },
                ]
            },
            "GetRelatedItems": [
                {"tab": "Notes", "recordid": "5", "linktype": "related"}
            ],
        }
    )

    links = next(client.fetch_link_pages()).items
    related = client.fetch_related_items("Contacts", 78)

    assert links == [
        Link("Contacts", 78, "Notes", 5, "Copied From"),
        Link("Deals", 1, "Products", 2, "Bundled"),
    ]
    assert links[0].extra == {"Note": "n"}
    assert related == [
        {"tab": "Notes", "record_id": 5, "link_kind": "Related", "extra": {}}
    ]
    assert sent_params(adapter) == {"Tab": "Contacts", "RecordID": "78"}


@pytest.mark.parametrize(
    "body, words",
    [
        ({"Data": []}, "without a 'Records' list (its keys: Data)"),
        ({"Records": None}, "without a 'Records' list"),
        ("just text", "JSON str instead of a 'Records' list"),
        ({"Records": [{"first_name": "Ana"}]}, "a record without collection_id"),
        ({"Records": [{"collection_id": "A-7"}]}, "'A-7', which is not a whole number"),
        ({"Records": ["Ana"]}, "a record that is not a JSON object"),
    ],
)
def test_json_without_the_expected_shape_is_malformed(body, words):
    client, _ = canned_client({"GetRecords": body})
    with pytest.raises(MalformedResponse) as caught:
        list(client.fetch_record_pages(Tab(1, "Deals")))
    assert words in str(caught.value)
    assert "GetRecords for tab 'Deals' at offset 0" in str(caught.value)


def test_a_server_that_ignores_offset_is_not_paged_forever():
    page = {"Records": [{"collection_id": 1}, {"collection_id": 2}]}
    client, adapter = canned_client({"GetRecords": page}, page_size=2)

    with pytest.raises(MalformedResponse, match="seems to ignore Offset"):
        list(client.fetch_record_pages(Tab(1, "Deals")))
    assert len(adapter.sent) == 2


def test_pages_shorter_than_asked_while_total_says_more_are_warned(caplog):
    client, _ = canned_client(
        {"GetRecords": {"Records": [{"collection_id": 1}], "Total": 40}}, page_size=5
    )
    with caplog.at_level(logging.WARNING, logger="ivinex_mirror.client"):
        pages = list(client.fetch_record_pages(Tab(1, "Deals")))
    assert len(pages) == 1
    assert "may cap its pages" in caplog.text


def test_other_4xx_answers_are_api_errors_naming_the_status():
    client, _ = canned_client(
        {"GetRecords": Answer(400, {"Status": "Error", "Message": "Offset too deep"})}
    )
    with pytest.raises(ApiError) as caught:
        list(client.fetch_record_pages(Tab(1, "Deals"), offset=10000))
    assert caught.value.status == 400
    assert "at offset 10000 with HTTP 400 (application/json): Offset too deep" in str(
        caught.value
    )


def test_credentials_travel_only_in_the_authorization_header():
    client, adapter = canned_client({"GetTabs": {"Tabs": []}})
    client.fetch_tabs()
    request = adapter.sent[0]
    assert SECRET not in request.url
    assert request.headers["Authorization"].startswith("Basic ")
    assert SECRET not in repr(client)


# The real sandbox: paging, retries and the error table.


@pytest.fixture(scope="module")
def instance():
    return generate_instance(seed=11, scale=0.2)


@pytest.fixture(scope="module")
def server(instance):
    with SandboxServer(instance, port=0, username="demo", password=SECRET) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_faults(request):
    """Each test starts without faults or denied tabs left by another."""
    yield
    if "server" in request.fixturenames:
        running = request.getfixturevalue("server")
        running.faults.clear()
        running.denied_tabs.clear()


@pytest.fixture
def connect(server, make_client):
    return functools.partial(make_client, server)


def calls_since(server, start, call):
    return [params for name, params in server.requests[start:] if name == call]


def tab_named(client, name):
    return next(tab for tab in client.fetch_tabs() if tab.name == name)


def test_tabs_and_fields_match_the_instance(connect, instance):
    client = connect()

    tabs = client.fetch_tabs()

    assert [(t.tab_id, t.name, t.singular_name) for t in tabs] == [
        (t["TabID"], t["TabName"], t["SingularName"]) for t in instance.tabs
    ]
    for tab in tabs:
        fields = client.fetch_fields(tab)
        assert [f.name for f in fields] == [
            f["FieldName"] for f in instance.fields[tab.name]
        ]
        assert all(isinstance(f, Field) and f.field_type for f in fields)


def test_fields_carry_options_and_linked_tabs(connect, instance):
    client = connect()
    fields = [f for tab in client.fetch_tabs() for f in client.fetch_fields(tab)]

    dropdowns = [f for f in fields if f.field_type == "Dropdown"]
    linked = [f for f in fields if f.field_type == "LinkedRecord"]

    assert dropdowns and all(f.options for f in dropdowns)
    assert all(isinstance(o.option_id, int) for f in dropdowns for o in f.options)
    assert linked and all(f.linked_tab for f in linked)


@pytest.fixture
def paging_tab(instance, connect):
    """A tab of its own with `count` records, made on demand."""
    made = []

    def make(name, count):
        instance.add_tab(name, name)
        made.append(name)
        ids = [instance.add_record(name, {}) for _ in range(count)]
        return tab_named(connect(), name), ids

    return make


@pytest.mark.parametrize(
    "count, pages", [(0, [0]), (4, [4, 0]), (5, [4, 1]), (8, [4, 4, 0])]
)
def test_paging_stops_at_a_short_or_empty_page(
    server, connect, paging_tab, count, pages
):
    tab, ids = paging_tab(f"Paging {count}", count)
    client = connect(page_size=4)
    start = len(server.requests)

    got = list(client.fetch_record_pages(tab))

    assert [len(page.items) for page in got] == pages
    assert [page.offset for page in got] == [4 * i for i in range(len(pages))]
    assert [r["collection_id"] for page in got for r in page.items] == ids
    offsets = [int(p["Offset"]) for p in calls_since(server, start, "GetRecords")]
    assert offsets == [4 * i for i in range(len(pages))]


def test_paging_resumes_from_an_offset(connect, paging_tab):
    tab, ids = paging_tab("Paging resumed", 7)
    got = list(connect(page_size=3).fetch_record_pages(tab, offset=3))
    assert [r["collection_id"] for page in got for r in page.items] == ids[3:]


def test_the_records_php_door_gives_the_same_records(connect, instance):
    plain = connect(page_size=50)
    door = connect(page_size=50, records_endpoint="Records.php")
    tab = tab_named(plain, "Contacts")

    by_name = [r for page in plain.fetch_record_pages(tab) for r in page.items]
    by_id = [r for page in door.fetch_record_pages(tab) for r in page.items]

    assert by_name == by_id
    assert len(by_name) == len(instance.records["Contacts"]) > 50


def test_modified_since_narrows_the_records(connect, instance):
    client = connect()
    tab = tab_named(client, "Contacts")
    records = list(instance.records["Contacts"].values())
    since = sorted(r["modified_date"] for r in records)[len(records) // 2]

    got = [
        r
        for page in client.fetch_record_pages(tab, modified_since=since)
        for r in page.items
    ]

    assert got and all(r["modified_date"] >= since for r in got)
    assert len(got) == sum(r["modified_date"] >= since for r in records)


def test_links_are_paged_completely(connect, instance):
    pages = list(connect(page_size=100).fetch_link_pages())
    got = [
        (lk.from_tab, lk.from_id, lk.to_tab, lk.to_id, lk.kind)
        for page in pages
        for lk in page.items
    ]
    want = [
        (
            lk["FromTab"],
            lk["FromRecordID"],
            lk["ToTab"],
            lk["ToRecordID"],
            lk["LinkType"],
        )
        for lk in instance.links()
    ]
    assert got == want
    assert len(pages) > 1


def test_related_items_of_one_record(connect, instance):
    link = next(lk for lk in instance.links() if lk["LinkType"] == "Related")
    items = connect().fetch_related_items(link["FromTab"], link["FromRecordID"])
    assert {
        "tab": link["ToTab"],
        "record_id": link["ToRecordID"],
        "link_kind": "Related",
        "extra": {},
    } in items


def test_401_is_authentication_failed(server, connect):
    server.faults.add("unauthorized", call="GetTabs")
    with pytest.raises(AuthenticationFailed) as caught:
        connect().fetch_tabs()
    assert str(caught.value) == (
        f"Ivinex refused the username or password for {server.url}. Check "
        "--username and the password (IVINEX_PASSWORD or `ivinex-mirror auth`)."
    )


def test_a_wrong_password_is_authentication_failed(server):
    client = IvinexClient(server.url, "demo", "wrong", retries=0)
    with client, pytest.raises(AuthenticationFailed) as caught:
        client.fetch_tabs()
    assert caught.value.status == 401


def test_403_is_permission_denied_for_the_tab(server, connect):
    server.denied_tabs.add("Notes")
    client = connect()
    with pytest.raises(PermissionDenied) as caught:
        client.fetch_fields("Notes")
    assert (caught.value.tab, caught.value.status) == ("Notes", 403)
    assert "denied user 'demo' access to tab 'Notes' (GetFields, HTTP 403" in str(
        caught.value
    )
    assert client.fetch_fields("Contacts")


def test_200_with_a_permission_error_is_permission_denied(server, connect):
    server.faults.add("permission", call="GetRecords", tab="Contacts")
    client = connect()
    with pytest.raises(PermissionDenied) as caught:
        list(client.fetch_record_pages(tab_named(client, "Contacts")))
    assert (caught.value.tab, caught.value.status) == ("Contacts", 200)
    assert "You do not have permission" in str(caught.value)


def test_403_on_a_call_without_a_tab_names_the_call(server, connect):
    server.faults.add("forbidden", call="GetAllRelatedItems")
    with pytest.raises(PermissionDenied, match="the GetAllRelatedItems call"):
        list(connect().fetch_link_pages())


def test_404_names_the_unknown_tab(connect):
    with pytest.raises(NotFound) as caught:
        connect().fetch_fields("No Such Tab")
    assert "Ivinex has no tab 'No Such Tab' (GetFields answered HTTP 404" in str(
        caught.value
    )


def test_404_on_a_call_names_the_call(server, connect):
    server.faults.add("not_found", call="GetTabs")
    with pytest.raises(NotFound, match="answered HTTP 404 to GetTabs"):
        connect().fetch_tabs()


def test_429_on_page_2_waits_as_told_then_succeeds(server, connect, instance):
    client = connect(page_size=4)
    tab = tab_named(client, "Contacts")
    server.faults.add("rate_limited", call="GetRecords", offset=4, retry_after=1)
    sent_before = client.request_count
    started = time.monotonic()

    records = [r for page in client.fetch_record_pages(tab) for r in page.items]

    assert time.monotonic() - started >= 1.0
    assert len(records) == len(instance.records["Contacts"])
    # Every page of 4, the short or empty last one, and the one retry.
    assert client.request_count - sent_before == len(records) // 4 + 1 + 1


def test_429_that_lasts_is_rate_limited(server, connect):
    server.faults.add("rate_limited", call="GetTabs", times=None, retry_after=0)
    client = connect(retries=2)
    with pytest.raises(RateLimited) as caught:
        client.fetch_tabs()
    assert "\n" not in str(caught.value)
    assert "rate limited GetTabs (HTTP 429) after 2 retries" in str(caught.value)
    assert client.request_count == 3


def test_500_then_success_is_retried(server, connect):
    server.faults.add("server_error", call="GetTabs", times=2)
    client = connect(retries=2)
    assert client.fetch_tabs()
    assert client.request_count == 3


def test_5xx_that_lasts_is_server_unavailable_naming_status_and_type(server, connect):
    server.faults.add("server_error", call="GetRecords", times=None, status=502)
    client = connect(retries=1)
    with pytest.raises(ServerUnavailable) as caught:
        list(client.fetch_record_pages(tab_named(client, "Contacts")))
    message = str(caught.value)
    assert (
        "GetRecords for tab 'Contacts' at offset 0 with HTTP 502 (text/html)" in message
    )
    assert "Traceback" not in message
    assert caught.value.status == 502


def test_a_reset_connection_is_retried(server, connect):
    server.faults.add("reset", call="GetTabs")
    client = connect()
    assert client.fetch_tabs()
    assert client.request_count == 2


def test_resets_that_last_are_server_unavailable(server, connect):
    server.faults.add("reset", call="GetTabs", times=None)
    with pytest.raises(ServerUnavailable, match="the connection was reset"):
        connect(retries=1).fetch_tabs()


def test_a_stall_past_the_timeout_is_server_unavailable(server, connect):
    server.faults.add("stall", call="GetTabs", times=None, seconds=1)
    client = connect(retries=1, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match=r"no answer within 0\.2 s"):
        client.fetch_tabs()
    assert time.monotonic() - started < 1.0


def test_an_unreachable_host_is_server_unavailable(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = IvinexClient(url, "demo", SECRET, retries=1, backoff_factor=0)

    with caplog.at_level(logging.DEBUG), pytest.raises(ServerUnavailable) as caught:
        client.fetch_tabs()

    assert "the connection was refused" in str(caught.value)
    assert "GET /API/GetTabs -> no answer" in caplog.text
    assert SECRET not in caplog.text + str(caught.value)


def test_truncated_json_is_malformed_naming_call_status_and_type(server, connect):
    server.faults.add("malformed", call="GetRecords", offset=4)
    client = connect(page_size=4)
    pages = client.fetch_record_pages(tab_named(client, "Contacts"))

    assert len(next(pages).items) == 4
    with pytest.raises(MalformedResponse) as caught:
        next(pages)
    message = str(caught.value)
    assert (
        "GetRecords for tab 'Contacts' at offset 4 with HTTP 200 and content "
        "type application/json" in message
    )
    assert "the JSON is broken" in message


def test_an_html_page_is_malformed(server, connect):
    server.faults.add("html", call="GetTabs")
    with pytest.raises(MalformedResponse) as caught:
        connect().fetch_tabs()
    assert "content type text/html" in str(caught.value)
    assert "HTML page" in str(caught.value)


def test_an_api_error_in_a_200_is_api_error(server, connect):
    server.faults.add("api_error", call="GetFields")
    with pytest.raises(ApiError) as caught:
        connect().fetch_fields("Contacts")
    assert caught.value.status == 200
    assert "Internal error while processing the request" in str(caught.value)


def test_the_password_is_in_no_log_line_nor_message(server, connect, caplog):
    server.faults.add("unauthorized", call="GetTabs")
    server.faults.add("server_error", call="GetFields", times=None)
    messages = []
    client = connect(retries=1)

    with caplog.at_level(logging.DEBUG):
        for action in (client.fetch_tabs, lambda: client.fetch_fields("Contacts")):
            with pytest.raises(IvinexError) as caught:
                action()
            messages.append(str(caught.value))
        assert client.fetch_tabs()

    assert "GET /API/GetTabs -> 401 in" in caplog.text
    assert "GET /API/GetFields?Tab=Contacts -> 500 in" in caplog.text
    assert "GET /API/GetTabs -> 200 in" in caplog.text
    for text in [caplog.text, *messages]:
        assert SECRET not in text
        assert "Authorization" not in text
        assert "Basic " not in text
