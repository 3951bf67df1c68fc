"""The whole path against the real sandbox on a free loopback port."""

import logging

import pytest
import sqlite_utils
from click.testing import CliRunner

from ivinex_mirror.cli import cli
from ivinex_mirror.errors import PermissionDenied, ServerUnavailable
from ivinex_mirror.schema import COLUMN_TYPES
from ivinex_mirror.store import Mirror
from ivinex_mirror.sync import sync

from .conftest import PASSWORD


def mirror_once(client, db_path, **options):
    mirror = Mirror(db_path)
    try:
        return sync(client, mirror, **options)
    finally:
        mirror.close()


def sandbox_links(instance):
    return sorted(
        (
            link["FromTab"],
            link["FromRecordID"],
            link["ToTab"],
            link["ToRecordID"],
            link["LinkType"],
        )
        for link in instance.links()
    )


def mirror_links(db):
    return sorted(
        db.execute("select from_tab, from_id, to_tab, to_id, link_kind from links")
    )


@pytest.fixture(scope="module")
def seed_one(tmp_path_factory):
    """The demo's data, seed 1 at scale 1.0, mirrored once through the CLI."""
    from ivinex_mirror.sandbox import SandboxServer, generate_instance

    instance = generate_instance(seed=1, scale=1.0)
    db_path = str(tmp_path_factory.mktemp("seed1") / "mirror.db")
    with SandboxServer(instance, password=PASSWORD) as server:
        result = CliRunner().invoke(
            cli,
            ["sync", db_path, "--company", server.url, "--username", "demo"],
            env={"IVINEX_PASSWORD": PASSWORD},
        )
    return instance, sqlite_utils.Database(db_path), result


def test_every_tab_has_a_table_with_every_record(seed_one):
    instance, db, result = seed_one
    assert result.exit_code == 0, result.output
    tables = dict(db.execute("select name, table_name from ivinex_tabs"))
    assert sorted(tables) == sorted(tab["TabName"] for tab in instance.tabs)
    for tab_name, records in instance.records.items():
        table = db[tables[tab_name]]
        assert table.count == len(records), tab_name
        stored_ids = {
            row[0] for row in db.execute(f"select collection_id from [{table.name}]")
        }
        assert stored_ids == set(records), tab_name


def test_every_field_has_a_column_of_the_mapped_type(seed_one):
    instance, db, _ = seed_one
    tab_ids = {tab["TabName"]: tab["TabID"] for tab in instance.tabs}
    for tab_name, fields in instance.fields.items():
        columns = dict(
            db.execute(
                "select field_name, column_name from ivinex_fields where tab_id = ?",
                [tab_ids[tab_name]],
            )
        )
        table = db.execute(
            "select table_name from ivinex_tabs where tab_id = ?", [tab_ids[tab_name]]
        ).fetchone()[0]
        types = {c.name: c.type for c in db[table].columns}
        for field in fields:
            expected = COLUMN_TYPES.get(field["FieldType"], "TEXT")
            assert types[columns[field["FieldName"]]] == expected, field


def test_the_links_table_holds_exactly_the_sandbox_links(seed_one):
    instance, db, _ = seed_one
    assert mirror_links(db) == sandbox_links(instance)
    kinds = {row[0] for row in db.execute("select distinct link_kind from links")}
    assert kinds == {"Embedded", "Related", "Converted", "Copied From"}


def test_the_summary_names_every_tab_and_the_run_is_recorded(seed_one):
    instance, db, result = seed_one
    for tab in instance.tabs:
        assert tab["TabName"] in result.output
    [run] = db["ivinex_sync_runs"].rows
    total = sum(len(records) for records in instance.records.values())
    assert (run["status"], run["records"]) == ("ok", total)
    assert run["links"] == len(instance.links())


def test_the_password_is_nowhere_in_the_database(seed_one):
    _, db, result = seed_one
    with open(db.conn.execute("pragma database_list").fetchone()[2], "rb") as f:
        content = f.read()
    assert PASSWORD.encode() not in content
    assert PASSWORD not in result.output


def test_the_password_is_in_no_log_line(sandbox, make_client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    mirror_once(make_client(sandbox), str(tmp_path / "m.db"))
    assert "GetRecords" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("extra", [-1, 0, 1], ids=["short", "exact", "one-more"])
def test_paging_across_page_edges(sandbox, make_client, tmp_path, extra):
    page_size = 5
    tab_id = sandbox.instance.add_tab("Edge Cases", "Edge Case")
    sandbox.instance.add_field(
        "Edge Cases", {"FieldName": "name", "Label": "Name", "FieldType": "Text"}
    )
    for number in range(2 * page_size + extra):
        sandbox.instance.add_record("Edge Cases", {"name": f"record {number}"})
    client = make_client(sandbox, page_size=page_size)
    mirror_once(client, str(tmp_path / "m.db"), tab_names=[str(tab_id)])
    db = sqlite_utils.Database(str(tmp_path / "m.db"))
    assert db["edge_cases"].count == 2 * page_size + extra


def test_an_empty_tab_gets_an_empty_table(sandbox, make_client, tmp_path):
    sandbox.instance.add_tab("Nothing Yet", "Nothing")
    mirror_once(make_client(sandbox), str(tmp_path / "m.db"), tab_names=["Nothing Yet"])
    db = sqlite_utils.Database(str(tmp_path / "m.db"))
    assert db["nothing_yet"].exists() and db["nothing_yet"].count == 0


def test_the_records_php_door_mirrors_the_same_rows(sandbox, make_client, tmp_path):
    mirror_once(make_client(sandbox), str(tmp_path / "a.db"), tab_names=["Contacts"])
    door = make_client(sandbox, records_endpoint="Records.php")
    mirror_once(door, str(tmp_path / "b.db"), tab_names=["Contacts"])
    a = sqlite_utils.Database(str(tmp_path / "a.db"))
    b = sqlite_utils.Database(str(tmp_path / "b.db"))
    assert list(a["contacts"].rows) == list(b["contacts"].rows)


def test_a_tab_without_permission_is_skipped_and_the_run_is_partial(
    sandbox, make_client, tmp_path
):
    sandbox.denied_tabs.add("Tickets")
    result = mirror_once(make_client(sandbox), str(tmp_path / "m.db"))
    assert result.status == "partial"
    statuses = {t.name: t.status for t in result.tabs}
    assert statuses["Tickets"] == "skipped" and statuses["Contacts"] == "ok"
    assert any("Tickets" in w for w in result.warnings)


def test_a_refused_tab_stops_the_run_when_it_is_the_only_one_asked_for(
    sandbox, make_client, tmp_path
):
    sandbox.denied_tabs.add("Tickets")
    with pytest.raises(PermissionDenied):
        mirror_once(make_client(sandbox), str(tmp_path / "m.db"), tab_names=["Tickets"])


def test_h9_a_failing_page_keeps_whole_pages_and_the_next_run_completes(
    sandbox, make_client, tmp_path
):
    db_path = str(tmp_path / "m.db")
    page_size = 10
    client = make_client(sandbox, page_size=page_size)
    # One failure more than the client's retries: the page is never read.
    sandbox.faults.add(
        "server_error",
        call="GetRecords",
        tab="Contacts",
        after=2,
        times=client.retries + 1,
    )
    with pytest.raises(ServerUnavailable):
        mirror_once(client, db_path, tab_names=["Contacts"])
    db = sqlite_utils.Database(db_path)
    assert db["contacts"].count == 2 * page_size
    assert [r["status"] for r in db["ivinex_sync_runs"].rows] == ["failed"]

    mirror_once(client, db_path)
    assert db["contacts"].count == len(sandbox.instance.records["Contacts"])
    assert mirror_links(db) == sandbox_links(sandbox.instance)


def test_a_malformed_page_writes_nothing_of_itself(sandbox, make_client, tmp_path):
    db_path = str(tmp_path / "m.db")
    sandbox.faults.add("malformed", call="GetRecords", tab="Notes", after=1, times=9)
    client = make_client(sandbox, page_size=5)
    with pytest.raises(Exception) as raised:
        mirror_once(client, db_path, tab_names=["Notes"])
    assert "GetRecords" in str(raised.value)
    assert sqlite_utils.Database(db_path)["notes"].count == 5


def run_cli(server, *args, password=PASSWORD):
    return CliRunner().invoke(
        cli,
        [*args, "--company", server.url, "--username", "demo"],
        env={"IVINEX_PASSWORD": password},
    )


def test_cli_exit_codes(sandbox, tmp_path):
    db_path = str(tmp_path / "m.db")
    wrong = run_cli(sandbox, "sync", db_path, password="wrong")
    assert wrong.exit_code == 1
    assert "password" in wrong.output and "Traceback" not in wrong.output

    unknown = run_cli(sandbox, "sync", db_path, "--tab", "Nope")
    assert unknown.exit_code == 1 and "Available tabs" in unknown.output

    sandbox.denied_tabs.add("Calls")
    partial = run_cli(sandbox, "sync", db_path)
    assert partial.exit_code == 3 and "Calls" in partial.output

    one = run_cli(sandbox, "sync", db_path, "--tab", "Companies", "--silent")
    assert one.exit_code == 0, one.output


def test_cli_reports(sandbox):
    tabs = run_cli(sandbox, "report", "tabs", "--format", "json")
    assert tabs.exit_code == 0, tabs.output
    assert "Contacts" in tabs.output

    fields = run_cli(
        sandbox, "report", "fields", "--tab", "Contacts", "--format", "csv"
    )
    assert fields.exit_code == 0 and fields.output.startswith("name,label,field_type")

    missing = run_cli(sandbox, "report", "records")
    assert missing.exit_code == 2 and "--tab" in missing.output
