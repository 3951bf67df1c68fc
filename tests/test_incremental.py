"""Sequences of upstream changes, each followed by a sync and a verify,
against the real sandbox on a free loopback port."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta

import pytest
import sqlite_utils
from click.testing import CliRunner

from ivinex_mirror.cli import cli
from ivinex_mirror.store import Mirror, run_lock
from ivinex_mirror.sync import sync
from ivinex_mirror.verify import verify

from .conftest import PASSWORD
from .test_sync import mirror_links


def sync_and_verify(client, db_path, **options):
    """One sync, then a verify that must agree; returns the sync's result."""
    mirror = Mirror(db_path)
    try:
        result = sync(client, mirror, **options)
        verdict = verify(client, mirror)
    finally:
        mirror.close()
    disagreeing = [c.name for c in verdict.tabs if not c.agrees]
    assert verdict.agrees, (disagreeing, verdict.links.missing, verdict.links.extra)
    return result


def live_ids(db, table):
    sql = f"select collection_id from [{table}] where _deleted_at is null"
    return {row[0] for row in db.execute(sql)}


def links_of(db, tab, record_id):
    return set(
        db.execute(
            "select from_tab, from_id, to_tab, to_id, link_kind from links"
            " where (from_tab = ? and from_id = ?) or (to_tab = ? and to_id = ?)",
            [tab, record_id, tab, record_id],
        )
    )


def test_a_sequence_of_upstream_changes_is_followed_exactly(
    sandbox, make_client, tmp_path
):
    instance = sandbox.instance
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox, page_size=25)
    first = sync_and_verify(client, db_path)
    assert first.counts["changed"] == sum(len(r) for r in instance.records.values())
    db = sqlite_utils.Database(db_path)

    # Add, update, delete a linked record, relink, add a field, change a field's
    # type, add a tab.
    company_id = min(instance.records["Companies"])
    contact_id = instance.add_record(
        "Contacts",
        {"first_name": "Zoë", "last_name": "Nakamura", "company": company_id},
    )
    instance.update_record("Companies", company_id, {"name": "Renamed GmbH"})
    note_id, note = next(
        (i, r) for i, r in instance.records["Notes"].items() if r.get("contact")
    )
    neighbour = note["contact"]
    instance.delete_record("Notes", note_id)
    related = next(link for link in instance.links() if link["LinkType"] == "Related")
    instance.remove_link(
        related["FromTab"],
        related["FromRecordID"],
        related["ToTab"],
        related["ToRecordID"],
        "Related",
    )
    instance.add_link(
        "Contacts", contact_id, "Tickets", min(instance.records["Tickets"])
    )
    instance.add_field(
        "Contacts", {"FieldName": "nps", "Label": "NPS", "FieldType": "Number"}
    )
    instance.update_record("Contacts", contact_id, {"nps": 9})
    instance.field("Companies", "employees")["FieldType"] = "Text"
    instance.update_record("Companies", company_id, {"employees": "about 40"})
    instance.add_tab("Contracts", "Contract")
    instance.add_field(
        "Contracts", {"FieldName": "title", "Label": "Title", "FieldType": "Text"}
    )
    contract_id = instance.add_record("Contracts", {"title": "Support 2027"})

    client.request_count = 0
    second = sync_and_verify(client, db_path)
    assert db["contacts"].get(contact_id)["nps"] == 9.0
    assert db["companies"].get(company_id)["name"] == "Renamed GmbH"
    assert db["companies"].get(company_id)["employees"] == "about 40"
    assert db["notes"].get(note_id)["_deleted_at"] is not None
    assert note_id not in live_ids(db, "notes")
    assert links_of(db, "Notes", note_id) == set()
    assert neighbour in live_ids(db, "contacts")
    assert db["contracts"].get(contract_id)["title"] == "Support 2027"
    field_row = db.execute(
        "select column_type, field_type from ivinex_fields"
        " where field_name = 'employees'"
    ).fetchone()
    assert field_row == ("TEXT", "Text")
    assert second.counts["deleted"] == 1


def test_a_run_with_nothing_changed_is_small(sandbox, make_client, tmp_path):
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox)
    sync_and_verify(client, db_path)

    client.request_count = 0
    mirror = Mirror(db_path)
    result = sync(client, mirror)
    mirror.close()
    tabs = len(sandbox.instance.tabs)
    # GetTabs, then per tab: its fields, one page of changes, one count.
    assert client.request_count == 1 + 3 * tabs
    assert result.counts["changed"] == 0 and result.links_status == "unchanged"


def test_relabelled_field_changes_only_its_label(sandbox, make_client, tmp_path):
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox)
    sync_and_verify(client, db_path)
    db = sqlite_utils.Database(db_path)
    schema = db["contacts"].schema

    sandbox.instance.field("Contacts", "job_title")["Label"] = "Position"
    sync_and_verify(client, db_path)
    label = db.execute(
        "select label, column_name from ivinex_fields where field_name = 'job_title'"
    ).fetchone()
    assert label == ("Position", "job_title")
    assert db["contacts"].schema == schema


def test_a_removed_field_keeps_its_column_and_is_retired(
    sandbox, make_client, tmp_path
):
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox)
    sync_and_verify(client, db_path)
    db = sqlite_utils.Database(db_path)
    before = db.execute("select count(city) from contacts").fetchone()[0]

    sandbox.instance.remove_field("Contacts", "city")
    sync_and_verify(client, db_path)
    assert db.execute("select count(city) from contacts").fetchone()[0] == before
    retired = db.execute(
        "select retired from ivinex_fields where field_name = 'city'"
        " and tab_id = (select tab_id from ivinex_tabs where name = 'Contacts')"
    ).fetchone()
    assert retired == (1,)


def test_hard_deletes_remove_the_row(sandbox, make_client, tmp_path):
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox)
    sync_and_verify(client, db_path)
    call_id = min(sandbox.instance.records["Calls"])
    sandbox.instance.delete_record("Calls", call_id)

    sync_and_verify(client, db_path, hard_deletes=True)
    db = sqlite_utils.Database(db_path)
    assert db.execute(
        "select count(*) from calls where collection_id = ?", [call_id]
    ).fetchone() == (0,)


def test_history_keeps_every_version_seen(sandbox, make_client, tmp_path):
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox)
    deal_id = min(sandbox.instance.records["Opportunities"])
    sync_and_verify(client, db_path, history=True)
    for amount in (1000, 2500):
        time.sleep(1.05)  # modified_date has whole seconds
        sandbox.instance.update_record("Opportunities", deal_id, {"amount": amount})
        sync_and_verify(client, db_path, history=True)

    db = sqlite_utils.Database(db_path)
    versions = db.execute(
        "select amount from opportunities_history where collection_id = ?"
        " order by modified_date",
        [deal_id],
    ).fetchall()
    original = sandbox.instance.records["Opportunities"][deal_id]
    assert len(versions) == 3 and versions[1:] == [(1000.0,), (2500.0,)]
    assert original["amount"] == 2500


def comparable_content(db_path):
    """Every tab table and the links, without the bookkeeping of runs."""
    db = sqlite_utils.Database(db_path)
    content = {}
    for table in db.execute("select table_name from ivinex_tabs order by 1"):
        columns = [c.name for c in db[table[0]].columns if c.name != "_seen_run"]
        names = ", ".join(f"[{c}]" for c in columns)
        content[table[0]] = db.execute(
            f"select {names} from [{table[0]}] order by collection_id"
        ).fetchall()
    content["links"] = db.execute("select * from links order by 1, 2, 3, 4, 5")
    content["links"] = [row[:5] for row in content["links"]]
    return content


def cli_sync(server, db_path, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ivinex_mirror",
            "sync",
            db_path,
            "--silent",
            "--company",
            server.url,
            "--username",
            "demo",
            *extra,
        ],
        env={**os.environ, "IVINEX_PASSWORD": PASSWORD},
    )


def committed_records(db_path):
    """Records committed so far, read while the sync may be writing."""
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
            tables = db.execute("select table_name from ivinex_tabs").fetchall()
            counts = [db.execute(f"select count(*) from [{t}]") for (t,) in tables]
            return sum(count.fetchone()[0] for count in counts)
    except sqlite3.Error:  # not created yet, or busy: ask again
        return 0


@pytest.mark.parametrize("kill_at", [0.01, 0.4, 0.8])
def test_a_run_killed_at_any_moment_then_resumed_ends_the_same(tmp_path, kill_at):
    from ivinex_mirror.sandbox import SandboxServer, generate_instance

    instance = generate_instance(seed=5, scale=0.3)
    total = sum(len(records) for records in instance.records.values())
    with SandboxServer(instance, password=PASSWORD, latency_ms=15) as server:
        killed, whole = str(tmp_path / "killed.db"), str(tmp_path / "whole.db")
        process = cli_sync(server, killed, "--page-size", "20")
        deadline = time.monotonic() + 60
        while committed_records(killed) < kill_at * total + 1:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait()
        runs = sqlite_utils.Database(killed)["ivinex_sync_runs"]
        assert [r["status"] for r in runs.rows] == ["running"], "killed too late"

        assert cli_sync(server, killed).wait() == 0
        assert cli_sync(server, whole).wait() == 0
    assert comparable_content(killed) == comparable_content(whole)
    # The resumed run went on from the killed run's cursors, not from scratch.
    read = [r["records"] for r in runs.rows]
    whole_read = next(sqlite_utils.Database(whole)["ivinex_sync_runs"].rows)["records"]
    assert read[1] < whole_read


def test_a_second_run_on_the_same_database_is_refused(sandbox, tmp_path):
    db_path = str(tmp_path / "m.db")
    with run_lock(db_path):
        result = CliRunner().invoke(
            cli,
            ["sync", db_path, "--company", sandbox.url, "--username", "demo"],
            env={"IVINEX_PASSWORD": PASSWORD},
        )
    assert result.exit_code == 1
    assert "Another sync is running" in result.output


def test_a_failing_run_does_not_stop_the_schedule(sandbox, tmp_path):
    db_path = str(tmp_path / "m.db")
    sandbox.faults.add("unauthorized", call="GetTabs", times=1)
    process = cli_sync(sandbox, db_path, "--every", "0.3s")
    deadline = time.monotonic() + 20
    statuses = []
    while time.monotonic() < deadline and "ok" not in statuses:
        time.sleep(0.3)
        if os.path.exists(db_path):
            rows = sqlite_utils.Database(db_path)["ivinex_sync_runs"].rows
            statuses = [r["status"] for r in rows]
    process.terminate()
    process.wait(timeout=10)
    assert statuses[:1] == ["failed"] and "ok" in statuses


def test_h8_cursors_stay_in_the_instance_time_zone(
    sandbox, make_client, tmp_path, monkeypatch
):
    """The mirror's machine is in another zone than the instance: the cursor
    is the instance's own modified_date, sent back as the instance writes it,
    so an update made just after a run is never skipped."""
    db_path = str(tmp_path / "m.db")
    client = make_client(sandbox)
    sync_and_verify(client, db_path)
    newest = max(r["modified_date"] for r in sandbox.instance.records["Calls"].values())
    db = sqlite_utils.Database(db_path)
    cursor = db.execute("select cursor from ivinex_tabs where name = 'Calls'")
    assert cursor.fetchone()[0] == newest

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14, far from anywhere
    time.tzset()
    try:
        call_id = min(sandbox.instance.records["Calls"])
        sandbox.instance.update_record("Calls", call_id, {"subject": "Follow-up"})
        sandbox.requests.clear()
        sync_and_verify(client, db_path)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert db["calls"].get(call_id)["subject"] == "Follow-up"
    asked = [
        p["ModifiedSince"]
        for c, p in sandbox.requests
        if c == "GetRecords" and p.get("Tab") == "Calls" and "ModifiedSince" in p
    ]
    expected = datetime.fromisoformat(newest) - timedelta(minutes=5)
    assert asked[0] == expected.strftime("%Y-%m-%d %H:%M:%S")


def test_a_link_removed_while_links_are_read_is_gone_after_the_next_run(
    sandbox, make_client, tmp_path
):
    """Removing a link stamps both of its records; the next run must notice
    them even when the removal came after this run had read that link."""
    client = make_client(sandbox, page_size=25)
    removed = []
    read_link_page = client.fetch_link_page

    def unlink_after_reading(*, offset=0):
        page = read_link_page(offset=offset)
        if not removed:
            link = next(link for link in page.items if link.kind == "Related")
            sandbox.instance.remove_link(
                link.from_tab, link.from_id, link.to_tab, link.to_id, "Related"
            )
            removed.append(link)
        return page

    client.fetch_link_page = unlink_after_reading
    db_path = str(tmp_path / "m.db")
    mirror = Mirror(db_path)
    sync(client, mirror)
    mirror.close()
    sync_and_verify(client, db_path)
    assert removed


def test_links_that_move_while_read_are_never_taken_for_unlinks(
    sandbox, make_client, tmp_path
):
    """Unlinking links already read shifts the later pages, so the pass skips
    a few links that still exist; the run must not drop those."""
    instance = sandbox.instance
    client = make_client(sandbox, page_size=25)
    db_path = str(tmp_path / "m.db")
    sync_and_verify(client, db_path)
    read_link_page = client.fetch_link_page
    early = [link for link in instance.links() if link["LinkType"] == "Related"][:3]

    def unlink_early_links(*, offset=0):
        if offset == 50:
            for link in early:
                instance.remove_link(*list(link.values())[:4], "Related")
        return read_link_page(offset=offset)

    client.fetch_link_page = unlink_early_links
    instance.update_record("Calls", min(instance.records["Calls"]), {"subject": "x"})
    mirror = Mirror(db_path)
    result = sync(client, mirror, concurrency=1)
    mirror.close()

    stored = set(mirror_links(sqlite_utils.Database(db_path)))
    upstream = {tuple(link.values()) for link in instance.links()}
    assert upstream <= stored
    assert any("links moved while" in warning for warning in result.warnings)
    client.fetch_link_page = read_link_page
    sync_and_verify(client, db_path)
