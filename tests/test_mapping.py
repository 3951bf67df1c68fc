"""Field definitions and records, hand-written, through the sync into SQLite.

Each test names the kind of fault it guards against (see the failure cases)."""

import json
import time

import pytest
import sqlite_utils

from ivinex_mirror.client import Page
from ivinex_mirror.schema import normalise_name, plan_columns
from ivinex_mirror.store import MIRROR_COLUMNS, Mirror
from ivinex_mirror.sync import sync

from .fakes import FakeClient, make_field


def run(db_path, tabs, links=()):
    mirror = Mirror(db_path)
    try:
        return sync(FakeClient(tabs, links), mirror)
    finally:
        mirror.close()


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "mirror.db")


def test_every_field_type_maps_to_its_column_type(db_path):
    fields = [
        make_field("title", "Text"),
        make_field("body", "TextArea"),
        make_field("email", "Email"),
        make_field("phone", "Phone"),
        make_field("site", "URL"),
        make_field("attachment", "File"),
        make_field("owner", "User"),
        make_field("amount", "Number"),
        make_field("value", "Currency"),
        make_field("probability", "Percent"),
        make_field("close_date", "Date"),
        make_field("called_at", "DateTime"),
        make_field("active", "Checkbox"),
        make_field("stage", "Dropdown", options=[(1, "Open"), (2, "Won")]),
        make_field("tags", "MultiSelect", options=[(7, "VIP"), (8, "Partner")]),
        make_field("deal", "LinkedRecord", linked_tab="Deals"),
        make_field("mood", "Hologram"),
    ]
    record = {
        "collection_id": "5",
        "created_date": "2026-01-02 03:04:05",
        "title": "Ana",
        "body": "<p>Hello</p>",
        "email": "ana@example.com",
        "phone": "+1 555 0100",
        "site": "https://example.com",
        "attachment": "contract.pdf",
        "owner": "Maria Lopez",
        "amount": 12,
        "value": "1250.50",
        "probability": 40,
        "close_date": "2026-02-28",
        "called_at": "2026-02-28 17:30:00",
        "active": True,
        "stage": "2",
        "tags": [7, "8"],
        "deal": 9,
        "mood": {"happy": True},
    }
    deal = {"collection_id": 9, "name": "Big deal"}
    tabs = {
        "Deals": ([make_field("name")], [deal]),
        "Contacts": (fields, [record]),
    }
    result = run(db_path, tabs)

    db = sqlite_utils.Database(db_path)
    types = {c.name: c.type for c in db["contacts"].columns}
    assert types["collection_id"] == "INTEGER"
    assert types["amount"] == types["value"] == types["probability"] == "REAL"
    assert types["active"] == types["stage"] == types["deal"] == "INTEGER"
    assert types["tags"] == types["close_date"] == types["mood"] == "TEXT"
    row = db["contacts"].get(5)
    assert row["created_date"] == "2026-01-02T03:04:05"
    assert row["value"] == 1250.5 and row["amount"] == 12.0
    assert row["active"] == 1 and row["stage"] == 2 and row["deal"] == 9
    assert json.loads(row["tags"]) == [7, 8]
    assert row["called_at"] == "2026-02-28T17:30:00"
    assert json.loads(row["mood"]) == {"happy": True}
    assert any("Hologram" in w for w in result.warnings)
    stage_options = db["contacts_stage_options"]
    assert {r["option_id"]: r["label"] for r in stage_options.rows} == {
        1: "Open",
        2: "Won",
    }
    fks = {(fk.column, fk.other_table) for fk in db["contacts"].foreign_keys}
    assert ("stage", "contacts_stage_options") in fks
    assert ("deal", "deals") in fks


def test_h1_type_comes_from_the_definition_not_the_first_values(db_path):
    amount = [make_field("amount", "Number")]
    empty = [{"collection_id": 1, "amount": None}, {"collection_id": 2}]
    run(db_path, {"Deals": (amount, empty)})
    db = sqlite_utils.Database(db_path)
    assert db["deals"].columns_dict["amount"] is float

    run(db_path, {"Deals": (amount, [{"collection_id": 3, "amount": 1250.5}])})
    kind = db.execute("select typeof(amount) from deals where collection_id = 3")
    assert kind.fetchone()[0] == "real"


def test_h2_a_value_that_does_not_fit_is_kept_and_warned_about(db_path):
    refs = [make_field("refs", "Number")]
    records = [
        {"collection_id": 1, "refs": "4411;4412"},
        {"collection_id": 2, "refs": 7},
    ]
    result = run(db_path, {"Orders": (refs, records)})

    db = sqlite_utils.Database(db_path)
    assert db["orders"].get(1)["refs"] == "4411;4412"
    assert db["orders"].get(2)["refs"] == 7.0
    assert result.status == "ok"
    assert [t.misfits for t in result.tabs] == [1]
    [warning] = [w for w in result.warnings if "4411;4412" in w]
    assert "Orders" in warning and "'refs'" in warning and "record 1" in warning


def test_h3_an_omitted_field_keeps_its_value(db_path):
    fields = [make_field("name"), make_field("stage")]
    first = [
        {"collection_id": 1, "name": "Ana", "stage": "lead"},
        {"collection_id": 2, "name": "Bo", "stage": "won"},
    ]
    run(db_path, {"Deals": (fields, first)})
    second = [{"collection_id": 1, "stage": "won"}, {"collection_id": 2, "name": "Bob"}]
    run(db_path, {"Deals": (fields, second)})

    rows = list(sqlite_utils.Database(db_path)["deals"].rows)
    assert [(r["name"], r["stage"]) for r in rows] == [("Ana", "won"), ("Bob", "won")]


def test_h4_required_field_updates_in_place_and_nulls_are_named(db_path):
    fields = [make_field("name", required=True)]
    run(db_path, {"Deals": (fields, [{"collection_id": 1, "name": "Old"}])})
    result = run(
        db_path,
        {
            "Deals": (
                fields,
                [
                    {"collection_id": 1, "name": "New"},
                    {"collection_id": 2, "name": None},
                ],
            )
        },
    )
    rows = list(sqlite_utils.Database(db_path)["deals"].rows)
    assert [(r["collection_id"], r["name"]) for r in rows] == [(1, "New"), (2, None)]
    assert any("record 2" in w and "'name'" in w for w in result.warnings)


def test_h5_awkward_field_names_get_one_column_each_by_the_rule(db_path):
    names = ["order", "Deal Value (€)", "Region-Code", "Score [0-10]", "2nd Contact"]
    fields = [make_field(n) for n in names]
    record = {"collection_id": 1, **{n: f"v{i}" for i, n in enumerate(names)}}
    run(db_path, {"Deals": (fields, [record])})
    db = sqlite_utils.Database(db_path)
    before = db["deals"].schema
    assert db.execute('select "order" from deals').fetchone() == ("v0",)
    row = db["deals"].get(1)
    assert row["deal_value"] == "v1" and row["region_code"] == "v2"
    assert row["score_0_10"] == "v3" and row["2nd_contact"] == "v4"

    run(db_path, {"Deals": (fields, [record])})
    assert db["deals"].schema == before


def test_h6_two_fields_that_normalise_alike_keep_their_own_values(db_path):
    fields = [make_field("Lead Source"), make_field("lead_source")]
    record = {"collection_id": 1, "Lead Source": "web", "lead_source": "fair"}
    run(db_path, {"Leads": (fields, [record])})
    row = sqlite_utils.Database(db_path)["leads"].get(1)
    assert row["lead_source"] == "fair" and row["lead_source_2"] == "web"


def test_h6_names_do_not_depend_on_the_order_of_the_fields_report():
    forward = plan_columns([make_field("Status"), make_field("status")], {})
    backward = plan_columns([make_field("status"), make_field("Status")], {})
    assert {k: c.name for k, c in forward.items()} == {
        k: c.name for k, c in backward.items()
    }
    assert forward["status"].name == "status"
    assert forward["Status"].name == "status_2"


def test_h7_a_column_keeps_its_name_across_runs(db_path):
    assert normalise_name("Reorder Qty (Temp_)") == "reorder_qty_temp"
    fields = [make_field("Reorder Qty (Temp_)"), make_field("reorder_qty_temp")]
    run(db_path, {"Stock": (fields, [{"collection_id": 1}])})
    db = sqlite_utils.Database(db_path)
    before = db["stock"].schema
    # Even when the field that claimed the plain name first is gone.
    run(db_path, {"Stock": (fields[:1], [{"collection_id": 1}])})
    assert db["stock"].schema == before
    fields_table = {
        r["field_name"]: (r["column_name"], r["retired"])
        for r in db["ivinex_fields"].rows
    }
    assert fields_table["Reorder Qty (Temp_)"] == ("reorder_qty_temp_2", 0)
    assert fields_table["reorder_qty_temp"] == ("reorder_qty_temp", 1)


def test_h13_an_underscore_field_never_becomes_an_underscore_column(db_path):
    fields = [make_field("_score", "Number")]
    run(db_path, {"Deals": (fields, [{"collection_id": 1, "_score": 3}])})
    db = sqlite_utils.Database(db_path)
    underscored = {c for c in db["deals"].columns_dict if c.startswith("_")}
    assert underscored == set(MIRROR_COLUMNS)
    assert db["deals"].get(1)["score"] == 3.0


def test_undeclared_keys_are_kept_as_text_columns(db_path):
    record = {"collection_id": 1, "name": "Ana", "Secret Code": 42}
    result = run(db_path, {"Deals": ([make_field("name")], [record])})
    assert sqlite_utils.Database(db_path)["deals"].get(1)["secret_code"] == "42"
    assert any("Secret Code" in w for w in result.warnings)


def test_links_are_stored_once_and_unlinks_go(db_path):
    deal = {"collection_id": 1, "modified_date": "2026-03-01 10:00:00"}
    tabs = {"Deals": ([make_field("name")], [deal])}
    deal_products = [
        ("Deals", 1, "Products", 10, "Related"),
        ("Deals", 1, "Products", 11, "Related"),
        ("Deals", 1, "Products", 11, "Related"),
    ]
    first = run(db_path, tabs, deal_products)
    assert first.links == 2

    # Unlinking stamps the deal, which tells the next run to re-read links.
    unlinked = dict(deal, modified_date="2026-03-02 09:00:00")
    second = run(
        db_path, {"Deals": ([make_field("name")], [unlinked])}, deal_products[:1]
    )
    db = sqlite_utils.Database(db_path)
    rows = db.execute("select from_id, to_tab, to_id, link_kind from links").fetchall()
    assert rows == [(1, "Products", 10, "Related")]
    assert second.links == 1


def test_a_sync_run_is_recorded(db_path):
    run(db_path, {"Deals": ([make_field("name")], [{"collection_id": 1}])})
    [row] = sqlite_utils.Database(db_path)["ivinex_sync_runs"].rows
    assert row["status"] == "ok" and row["records"] == 1 and row["tabs"] == 1
    assert row["finished_at"] >= row["started_at"]


class SlowFieldsClient(FakeClient):
    """Answers the first tab's fields last, as a slow server might."""

    def fetch_fields(self, tab):
        if tab.tab_id == min(t.tab_id for t in self.fetch_tabs()):
            time.sleep(0.3)
        return super().fetch_fields(tab)


def test_new_tabs_get_their_tables_in_tab_order_not_answer_order(db_path):
    tabs = {
        "Deals": ([make_field("name")], [{"collection_id": 1}]),
        "deals": ([make_field("name")], [{"collection_id": 2}]),
    }
    mirror = Mirror(db_path)
    sync(SlowFieldsClient(tabs), mirror, concurrency=4)
    mirror.close()
    db = sqlite_utils.Database(db_path)
    tables = dict(db.execute("select name, table_name from ivinex_tabs"))
    assert tables == {"Deals": "deals", "deals": "deals_2"}


class UnorderedClient(FakeClient):
    """A server that ignores modified_date order when asked for changes."""

    def fetch_record_page(self, tab, modified_since=None, offset=0):
        records = sorted(self.records(tab), key=lambda r: -r["collection_id"])
        chunk = records[offset : offset + self.page_size]
        return Page(offset, chunk, len(records))


def test_a_server_that_does_not_order_changes_is_read_by_offset(db_path):
    stamps = ["2026-03-01 10:00:00", "2026-03-03 10:00:00", "2026-03-02 10:00:00"]
    records = [
        {"collection_id": i, "name": f"n{i}", "modified_date": stamp}
        for i, stamp in enumerate(stamps, 1)
    ]
    mirror = Mirror(db_path)
    result = sync(UnorderedClient({"Deals": ([make_field("name")], records)}), mirror)
    mirror.close()

    db = sqlite_utils.Database(db_path)
    assert db["deals"].count == 3
    assert any("does not order records" in w for w in result.warnings)
    cursor = db.execute("select cursor from ivinex_tabs").fetchone()[0]
    assert cursor == "2026-03-03 10:00:00"
