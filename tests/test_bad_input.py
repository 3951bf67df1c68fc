"""Each kind of bad input has a rule: names, values, ids, duplicates, and
answers that go wrong. Each test names the kind it guards against."""

import time

import sqlite_utils
from click.testing import CliRunner

from ivinex_mirror.cli import cli
from ivinex_mirror.client import Tab
from ivinex_mirror.store import Mirror
from ivinex_mirror.sync import sync

from .conftest import PASSWORD
from .fakes import FakeClient, make_field
from .test_client import canned_client


def run(db_path, tabs, links=(), client=None):
    mirror = Mirror(db_path)
    try:
        return sync(client or FakeClient(tabs, links), mirror)
    finally:
        mirror.close()


def tables_by_tab(db_path):
    db = sqlite_utils.Database(db_path)
    return dict(db.execute("select name, table_name from ivinex_tabs"))


def test_tab_names_of_every_awkward_kind_get_safe_distinct_tables(tmp_path):
    db_path = str(tmp_path / "m.db")
    injection = "Robert'); DROP TABLE links;--"
    names = [
        "Select",
        "",
        "!!!",
        "X" * 300,
        injection,
        "Links",
        "Contacts History",
        "ivinex_tabs",
        "Contacts FTS",
    ]
    tabs = {name: ([make_field("name")], [{"collection_id": 1}]) for name in names}
    result = run(db_path, tabs, links=[(injection, 1, "Select", 1, "Related")])

    assert tables_by_tab(db_path) == {
        "Select": "select",
        "": "tab",
        "!!!": "tab_2",
        "X" * 300: "x" * 60,
        injection: "robert_drop_table_links",
        "Links": "links_2",
        "Contacts History": "contacts_history_tab",
        "ivinex_tabs": "ivinex_tabs_tab",
        "Contacts FTS": "contacts_fts_tab",
    }
    db = sqlite_utils.Database(db_path)
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    assert [tuple(row) for row in db.execute("select from_tab from links")] == [
        (injection,)
    ]
    assert result.status == "ok"


def test_field_names_of_every_awkward_kind_get_one_column_each(tmp_path):
    db_path = str(tmp_path / "m.db")
    names = ["", "!!!", "y" * 300, "Collection ID", "select", "_deleted_at"]
    record = {"collection_id": 1, **{name: f"v{i}" for i, name in enumerate(names)}}
    run(db_path, {"Deals": ([make_field(n) for n in names], [record])})

    db = sqlite_utils.Database(db_path)
    columns = dict(db.execute("select field_name, column_name from ivinex_fields"))
    assert {name: columns[name] for name in names} == {
        "": "field",
        "!!!": "field_2",
        "y" * 300: "y" * 60,
        "Collection ID": "collection_id_2",
        "select": "select",
        "_deleted_at": "deleted_at",
    }
    row = db["deals"].get(1)
    assert [row[columns[name]] for name in names] == [f"v{i}" for i in range(6)]
    assert row["collection_id"] == 1 and row["_deleted_at"] is None


def test_numbers_with_separators_and_currency_signs_are_read(tmp_path):
    db_path = str(tmp_path / "m.db")
    written = ["1,250.50", "$1,250", "€ 1.250,50", "12,5", "1 250,50", "EUR 99"]
    records = [{"collection_id": i, "amount": v} for i, v in enumerate(written, 1)]
    result = run(db_path, {"Deals": ([make_field("amount", "Currency")], records)})

    amounts = sqlite_utils.Database(db_path).execute(
        "select amount, typeof(amount) from deals order by collection_id"
    )
    assert amounts.fetchall() == [
        (1250.5, "real"),
        (1250.0, "real"),
        (1250.5, "real"),
        (12.5, "real"),
        (1250.5, "real"),
        (99.0, "real"),
    ]
    assert result.counts["warnings"] == 0


def test_dates_in_other_forms_are_read_only_when_unambiguous(tmp_path):
    db_path = str(tmp_path / "m.db")
    fields = [make_field("day", "Date"), make_field("moment", "DateTime")]
    records = [
        {"collection_id": 1, "day": "Dec 31, 2026", "moment": "2026-12-31T17:00:00Z"},
        {"collection_id": 2, "day": "2026-02-30", "moment": "31 December 2026 5pm"},
        {"collection_id": 3, "day": "01/02/2026", "moment": "sometime"},
    ]
    result = run(db_path, {"Meetings": (fields, records)})

    rows = sqlite_utils.Database(db_path).execute(
        "select day, moment from meetings order by collection_id"
    )
    assert rows.fetchall() == [
        ("2026-12-31", "2026-12-31T17:00:00+00:00"),
        ("2026-02-30", "2026-12-31T17:00:00"),
        ("01/02/2026", "sometime"),
    ]
    assert [t.misfits for t in result.tabs] == [3]
    assert any("'2026-02-30' is not a date" in w for w in result.warnings)


def test_a_duplicate_id_within_a_page_is_stored_once_as_last_sent(tmp_path):
    db_path = str(tmp_path / "m.db")
    records = [{"collection_id": 7, "name": "first"}, {"collection_id": 7, "name": "b"}]
    result = run(db_path, {"Deals": ([make_field("name")], records)})

    rows = list(sqlite_utils.Database(db_path)["deals"].rows)
    assert [(r["collection_id"], r["name"]) for r in rows] == [(7, "b")]
    assert any("record 7 came twice" in w for w in result.warnings)


def test_a_linked_record_that_does_not_exist_is_kept_as_its_id(tmp_path):
    db_path = str(tmp_path / "m.db")
    deal = [make_field("company", "LinkedRecord", linked_tab="Companies")]
    tabs = {
        "Companies": ([make_field("name")], [{"collection_id": 1, "name": "Acme"}]),
        "Deals": (deal, [{"collection_id": 5, "company": 999}]),
    }
    result = run(db_path, tabs)
    assert sqlite_utils.Database(db_path)["deals"].get(5)["company"] == 999
    assert result.status == "ok"


def test_records_and_links_with_null_ids_are_left_out_and_named(tmp_path):
    records = [
        {"collection_id": 1, "name": "Ana"},
        {"collection_id": None, "name": "Ghost"},
        {"collection_id": 2, "name": "Bo"},
    ]
    links = [
        {
            "FromTab": "Deals",
            "FromRecordID": 1,
            "ToTab": "Deals",
            "ToRecordID": 2,
            "LinkType": "Related",
        },
        {
            "FromTab": "Deals",
            "FromRecordID": None,
            "ToTab": "Deals",
            "ToRecordID": 2,
            "LinkType": "Related",
        },
    ]
    client, _ = canned_client(
        {
            "GetTabs": {"Tabs": [{"TabID": 1, "TabName": "Deals"}]},
            "GetFields": {"Fields": [{"FieldName": "name", "FieldType": "Text"}]},
            "GetRecords": {"Records": records, "Total": 2},
            "GetAllRelatedItems": {"RelatedItems": links},
        }
    )
    db_path = str(tmp_path / "m.db")
    result = run(db_path, None, client=client)

    db = sqlite_utils.Database(db_path)
    assert [r["name"] for r in db["deals"].rows] == ["Ana", "Bo"]
    assert db["links"].count == 1
    assert result.status == "partial"
    assert [t.unreadable for t in result.tabs] == [1] and result.links_unreadable == 1
    assert any("collection_id missing" in w for w in result.warnings)


def test_a_page_of_nothing_but_unreadable_records_fails_the_page():
    client, _ = canned_client({"GetRecords": {"Records": [{"collection_id": None}]}})
    try:
        client.fetch_record_page(Tab(1, "Deals"))
    except Exception as error:  # noqa: BLE001 - the type is asserted below
        assert type(error).__name__ == "MalformedResponse"
        assert "collection_id missing" in str(error)
    else:
        raise AssertionError("an unreadable page was accepted")


def cli_sync(server, db_path, *extra):
    return CliRunner().invoke(
        cli,
        [
            "sync",
            db_path,
            "--company",
            server.url,
            "--username",
            "demo",
            "--retries",
            "2",
            "--page-size",
            "20",
            *extra,
        ],
        env={"IVINEX_PASSWORD": PASSWORD},
    )


def cursor_of(db_path, tab_name):
    db = sqlite_utils.Database(db_path)
    row = db.execute("select cursor from ivinex_tabs where name = ?", [tab_name])
    return row.fetchone()[0]


def test_h14_rate_limited_then_answered_waits_as_told(sandbox, tmp_path):
    sandbox.faults.add(
        "rate_limited", call="GetRecords", tab="Products", after=1, retry_after=2
    )
    started = time.monotonic()
    result = cli_sync(sandbox, str(tmp_path / "m.db"), "--tab", "Products")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started >= 2


def test_h14_still_rate_limited_fails_in_one_line_and_keeps_the_cursor(
    sandbox, tmp_path
):
    db_path = str(tmp_path / "m.db")
    assert cli_sync(sandbox, db_path, "--tab", "Contacts").exit_code == 0
    before = cursor_of(db_path, "Contacts")
    sandbox.instance.update_record(
        "Contacts", min(sandbox.instance.records["Contacts"]), {"city": "Vigo"}
    )
    sandbox.faults.add("rate_limited", call="GetRecords", times=None, retry_after=0)

    result = cli_sync(sandbox, db_path, "--tab", "Contacts")
    sandbox.faults.clear()
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if "rate limited" in line]
    assert line.startswith("Error: ") and "Traceback" not in result.output
    assert cursor_of(db_path, "Contacts") == before


def test_h15_a_502_page_and_a_truncated_page_fail_naming_what_came(sandbox, tmp_path):
    db_path = str(tmp_path / "m.db")
    sandbox.faults.add(
        "server_error", call="GetRecords", tab="Notes", after=1, times=3, status=502
    )
    failed = cli_sync(sandbox, db_path, "--tab", "Notes")
    assert failed.exit_code == 1
    assert "GetRecords" in failed.output and "502" in failed.output
    assert "text/html" in failed.output and "Traceback" not in failed.output
    cursor = cursor_of(db_path, "Notes")

    sandbox.faults.add("malformed", call="GetRecords", tab="Notes", after=0)
    broken = cli_sync(sandbox, db_path, "--tab", "Notes")
    assert broken.exit_code == 1
    assert "GetRecords" in broken.output and "200" in broken.output
    assert "application/json" in broken.output
    assert cursor_of(db_path, "Notes") == cursor


def test_h10_an_offset_cap_is_paged_around_or_named(make_client, tmp_path):
    """The server refuses offsets past 50. Records are read from the last
    modified_date seen, so offsets stay small and every record is mirrored;
    links have no such window, so that read fails and names the cap."""
    from ivinex_mirror.errors import ApiError
    from ivinex_mirror.sandbox import SandboxServer, generate_instance

    instance = generate_instance(seed=3, scale=0.1)
    with SandboxServer(instance, password=PASSWORD, max_offset=50) as server:
        client = make_client(server, page_size=20)
        db_path = str(tmp_path / "m.db")
        mirror = Mirror(db_path)
        try:
            sync(client, mirror, tab_names=["Contacts"])
        except ApiError as error:
            assert "Offset may not exceed 50" in str(error)
            assert "GetAllRelatedItems" in str(error)
        else:
            raise AssertionError("links past the cap were read")
        finally:
            mirror.close()
        db = sqlite_utils.Database(db_path)
        assert db["contacts"].count == len(instance.records["Contacts"]) > 100


def test_h10_more_records_in_one_second_than_the_cap_fail_naming_it(
    make_client, tmp_path
):
    from ivinex_mirror.errors import ApiError
    from ivinex_mirror.sandbox import SandboxServer, generate_instance

    instance = generate_instance(seed=3, scale=0.1)
    for record in instance.records["Contacts"].values():
        record["modified_date"] = "2026-11-30 12:00:00"  # a bulk import
    with SandboxServer(instance, password=PASSWORD, max_offset=50) as server:
        db_path = str(tmp_path / "m.db")
        mirror = Mirror(db_path)
        try:
            sync(make_client(server, page_size=20), mirror, tab_names=["Contacts"])
        except ApiError as error:
            assert "Offset may not exceed 50" in str(error)
        else:
            raise AssertionError("records past the cap were read")
        finally:
            mirror.close()
    # The cursor stops at the second whose records are not all read yet, so
    # the next run asks for that second again.
    assert cursor_of(db_path, "Contacts") == "2026-11-30 12:00:00"


def test_field_names_sqlite_or_search_reserves_get_a_number(tmp_path):
    db_path = str(tmp_path / "m.db")
    names = ["Rank", "RowID", "_rowid_", "OID", "Contacts FTS"]
    record = {"collection_id": 1, **{name: f"word{i}" for i, name in enumerate(names)}}
    result = run(db_path, {"Contacts": ([make_field(n) for n in names], [record])})

    db = sqlite_utils.Database(db_path)
    columns = dict(db.execute("select field_name, column_name from ivinex_fields"))
    assert [columns[name] for name in names] == [
        "rank_2",
        "rowid_2",
        "rowid_3",
        "oid_2",
        "contacts_fts_2",
    ]
    assert result.status == "ok"
    found = db.execute(
        "select rowid from contacts_fts where contacts_fts match 'word4'"
    ).fetchall()
    assert found == [(1,)]


def cli_plain(*args):
    return CliRunner().invoke(
        cli,
        [*args, "--company", "http://127.0.0.1:9", "--username", "demo"],
        env={"IVINEX_PASSWORD": PASSWORD},
    )


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path):
    other = tmp_path / "other.db"
    sqlite_utils.Database(str(other))["contacts"].insert({"x": 1})
    before = other.read_bytes()

    result = cli_plain("sync", str(other))
    assert result.exit_code == 1 and "another program" in result.output
    assert other.read_bytes() == before


def test_verify_on_a_file_that_is_no_mirror_writes_nothing(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = cli_plain("verify", str(empty))
    assert result.exit_code == 1 and "no mirror yet" in result.output
    assert empty.stat().st_size == 0


def test_a_missing_folder_is_named_not_created(tmp_path):
    result = cli_plain("sync", str(tmp_path / "nowhere" / "m.db"))
    assert result.exit_code == 1 and "There is no folder" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_an_unparsable_company_url_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["sync", str(tmp_path / "m.db"), "--company", "http://[::1"]
        + ["--username", "demo"],
        env={"IVINEX_PASSWORD": PASSWORD},
    )
    assert result.exit_code == 1 and "is not an Ivinex instance URL" in result.output
    assert "Traceback" not in result.output
