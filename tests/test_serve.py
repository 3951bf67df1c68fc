"""Serving a mirror: metadata built from ivinex_tabs / ivinex_fields, and
Datasette's answers through its in-process client."""

import asyncio
import base64
import logging
import sqlite3

import pytest
import sqlite_utils
from click.testing import CliRunner

from ivinex_mirror import serve
from ivinex_mirror.cli import cli
from ivinex_mirror.metadata import ServeError, build_metadata, load_project_metadata
from ivinex_mirror.search import ensure_search
from ivinex_mirror.serve import make_datasette
from tests.conftest import PASSWORD
from tests.test_search import mirror_sandbox

SYNCED = "2024-05-01T10:00:00+00:00"
OPTIONS = "contacts_contact_type_options"


def field(tab_id, name, label, field_type, column=None, **extra):
    column_type = {"Checkbox": "INTEGER", "Dropdown": "INTEGER"}.get(field_type)
    return dict(
        {
            "tab_id": tab_id,
            "field_name": name,
            "label": label,
            "field_type": field_type,
            "column_name": column or name,
            "column_type": column_type or "TEXT",
            "required": 0,
            "linked_tab": None,
            "options_table": None,
            "retired": 0,
            "extra": None,
        },
        **extra,
    )


def default_fields(tab_id):
    return [
        field(tab_id, "collection_id", "Record ID", "RecordID"),
        field(tab_id, "created_by", "Created By", "User"),
        field(tab_id, "created_date", "Created Date", "DateTime"),
        field(tab_id, "modified_by", "Modified By", "User"),
        field(tab_id, "modified_date", "Modified Date", "DateTime"),
    ]


def record(collection_id, modified, **values):
    return dict(
        collection_id=collection_id,
        created_by="ana@example.com",
        created_date="2024-04-01T09:00:00",
        modified_by="ana@example.com",
        modified_date=modified,
        **values,
    )


def build_mirror(path):
    """A mirror of two tabs, Companies and Contacts, in the sync's layout."""
    db = sqlite_utils.Database(path)
    db["ivinex_tabs"].insert_all(
        [
            tab(1001, "Contacts", "Contact", "contacts", "full_name", 3),
            tab(1002, "Companies", "Company", "companies", "legal_name", 2),
        ],
        pk="tab_id",
    )
    db["ivinex_fields"].insert_all(
        default_fields(1001)
        + [
            field(1001, "Full Name", "Full Name", "Text", "full_name"),
            field(
                1001,
                "contact_type",
                "Contact Type",
                "Dropdown",
                options_table=OPTIONS,
            ),
            field(1001, "company", "Company", "LinkedRecord", linked_tab="Companies"),
            field(1001, "do_not_call", "Do Not Call", "Checkbox"),
            field(1001, "owner", "Account Owner", "User"),
            field(1001, "fax", "Fax", "Phone", retired=1),
        ]
        + default_fields(1002)
        + [field(1002, "legal_name", "Company Name", "Text")],
        pk=("tab_id", "field_name"),
    )

    db[OPTIONS].insert_all(
        [
            {"option_id": 14795, "label": "Lead"},
            {"option_id": 14796, "label": "Client"},
        ],
        pk="option_id",
    )
    db["companies"].insert_all(
        [
            record(1, "2024-04-20T08:00:00", legal_name="Acme Ltd"),
            record(2, "2024-04-28T16:30:00", legal_name="Globex"),
        ],
        pk="collection_id",
    )
    db["contacts"].insert_all(
        [
            contact(78, "2024-04-25T11:00:00", "Ana Lima", 14795, 1, 0, "bo"),
            contact(79, "2024-04-30T12:00:00", "Ben Okafor", 14796, 2, 1, "bo"),
            contact(80, "2024-04-10T07:00:00", "Cai Wen", 14795, 1, 0, "cy"),
        ],
        pk="collection_id",
        foreign_keys=[
            ("contact_type", OPTIONS, "option_id"),
            ("company", "companies", "collection_id"),
        ],
    )

    db["links"].insert_all(
        [
            link("Contacts", 78, "Companies", 1, "Embedded"),
            link("Contacts", 79, "Companies", 2, "Embedded"),
            link("Contacts", 80, "Companies", 1, "Embedded"),
            link("Companies", 1, "Contacts", 79, "Related"),
            link("Contacts", 79, "Notes", 5, "Related"),
        ],
        pk=("from_tab", "from_id", "to_tab", "to_id", "link_kind"),
    )
    db["ivinex_sync_runs"].insert_all(
        [sync_run(run_id) for run_id in range(1, 26)], pk="id"
    )
    db.close()
    return path


def tab(tab_id, name, singular, table, label_column, count):
    return {
        "tab_id": tab_id,
        "name": name,
        "singular_name": singular,
        "table_name": table,
        "label_column": label_column,
        "record_count": count,
        "status": "ok",
        "last_synced_at": SYNCED,
        "extra": None,
    }


def contact(collection_id, modified, name, kind, company, do_not_call, owner):
    return record(
        collection_id,
        modified,
        full_name=name,
        contact_type=kind,
        company=company,
        do_not_call=do_not_call,
        owner=owner,
        fax=None,
    )


def link(from_tab, from_id, to_tab, to_id, kind):
    return {
        "from_tab": from_tab,
        "from_id": from_id,
        "to_tab": to_tab,
        "to_id": to_id,
        "link_kind": kind,
        "seen_run": 25,
    }


def sync_run(run_id):
    return {
        "id": run_id,
        "started_at": f"2024-04-{run_id:02d}T10:00:00+00:00",
        "finished_at": f"2024-04-{run_id:02d}T10:05:00+00:00",
        "status": "ok",
        "tabs": 2,
        "records": run_id * 10,
        "links": 5,
        "warnings": 0,
        "error": None,
    }


@pytest.fixture
def mirror(tmp_path):
    return build_mirror(tmp_path / "mirror.db")


def get_json(ds, path):
    async def fetch():
        await ds.invoke_startup()
        response = await ds.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    return asyncio.run(fetch())


def get_text(ds, path):
    async def fetch():
        await ds.invoke_startup()
        response = await ds.client.get(path)
        assert response.status_code == 200, response.text
        return response.text

    return asyncio.run(fetch())


# Metadata


def test_tab_table_metadata_comes_from_the_crm(mirror):
    tables = build_metadata(mirror, {})["databases"]["mirror"]["tables"]

    contacts = tables["contacts"]
    assert contacts["title"] == "Contacts"
    assert contacts["label_column"] == "full_name"
    assert contacts["sort_desc"] == "modified_date"
    assert contacts["columns"]["full_name"] == "Full Name"
    assert contacts["columns"]["contact_type"] == "Contact Type"
    assert contacts["columns"]["fax"] == "Fax (no longer listed by the CRM)"
    assert contacts["facets"] == [
        "contact_type",
        "do_not_call",
        "owner",
        "created_by",
        "modified_by",
    ]
    assert "3 records" in contacts["description"]

    options = tables[OPTIONS]
    assert options["title"] == "Contacts: Contact Type options"
    assert options["label_column"] == "label"
    assert tables["companies"]["label_column"] == "legal_name"
    assert tables["ivinex_sync_runs"]["title"] == "Sync runs"


def test_no_facet_on_a_column_starting_with_an_underscore(mirror):
    db = sqlite_utils.Database(mirror)
    db["contacts"].add_column("_score", int)
    db["ivinex_fields"].insert(field(1001, "_score", "Score", "Dropdown"))
    db.close()

    contacts = build_metadata(mirror, {})["databases"]["mirror"]["tables"]["contacts"]

    assert contacts["columns"]["_score"] == "Score"
    assert "_score" not in contacts["facets"]


def test_build_metadata_follows_a_relabelled_field(mirror):
    first = build_metadata(mirror, {})
    with sqlite3.connect(mirror) as conn:
        conn.execute(
            "update ivinex_fields set label = 'Kind of Contact'"
            " where field_name = 'contact_type'"
        )
    conn.close()

    second = build_metadata(mirror, {})

    columns = "databases", "mirror", "tables", "contacts", "columns"
    assert dig(first, columns)["contact_type"] == "Contact Type"
    assert dig(second, columns)["contact_type"] == "Kind of Contact"


def dig(mapping, keys):
    for key in keys:
        mapping = mapping[key]
    return mapping


def test_project_queries_go_to_the_served_database(mirror):
    project = load_project_metadata()

    metadata = build_metadata(mirror, project)

    assert metadata["title"] == "Ivinex CRM mirror"
    assert metadata["license"] == "Apache-2.0"
    assert "*" not in metadata["databases"]
    queries = metadata["databases"]["mirror"]["queries"]
    assert set(queries) == {
        "links_of_record",
        "sync_runs",
        "recently_modified",
        "linked_records",
        "records_per_owner",
    }
    assert set(project["databases"]["*"]["queries"]) == {"links_of_record", "sync_runs"}


def test_a_sync_never_touches_the_project_metadata_file(mirror):
    before = serve.PROJECT_METADATA_FILE.read_bytes()
    db = sqlite_utils.Database(mirror)
    db["ivinex_sync_runs"].insert(sync_run(26))
    db.close()

    build_metadata(mirror, load_project_metadata())

    assert serve.PROJECT_METADATA_FILE.read_bytes() == before


def test_load_project_metadata_without_a_file(tmp_path):
    assert load_project_metadata(tmp_path / "absent.yml") == {}


def test_load_project_metadata_refuses_a_list(tmp_path):
    path = tmp_path / "metadata.yml"
    path.write_text("- one\n- two\n")

    with pytest.raises(ServeError, match="mapping"):
        load_project_metadata(path)


# Refusals


def test_missing_database_names_the_sync_command(tmp_path):
    with pytest.raises(ServeError, match="ivinex-mirror sync"):
        make_datasette(tmp_path / "nothing.db")


def test_database_that_is_not_a_mirror_is_refused(tmp_path):
    other = tmp_path / "other.db"
    sqlite_utils.Database(other)["dogs"].insert({"name": "Rex"})

    with pytest.raises(ServeError, match="no ivinex_tabs table"):
        make_datasette(other)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    other = tmp_path / "notes.db"
    other.write_text("not a database at all, just some text " * 20)

    with pytest.raises(ServeError, match="not a SQLite database"):
        make_datasette(other)


# Serving


def test_rows_show_linked_company_and_option_labels(mirror):
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/contacts.json?_shape=objects&_labels=on")

    rows = {row["collection_id"]: row for row in data["rows"]}
    assert set(rows) == {78, 79, 80}
    assert rows[79]["company"] == {"value": 2, "label": "Globex"}
    assert rows[79]["contact_type"] == {"value": 14796, "label": "Client"}
    assert rows[78]["full_name"] == "Ana Lima"


def test_a_record_page_names_its_linked_record_and_option(mirror):
    ds = make_datasette(mirror)

    html = get_text(ds, "/mirror/contacts/79")

    assert '<a href="/mirror/companies/2">Globex</a>&nbsp;<em>2</em>' in html
    assert f'<a href="/mirror/{OPTIONS}/14796">Client</a>' in html


def test_a_record_page_shows_the_id_of_a_record_without_a_name(mirror):
    db = sqlite_utils.Database(mirror)
    db["companies"].update(2, {"legal_name": None})
    db.close()
    ds = make_datasette(mirror)

    html = get_text(ds, "/mirror/contacts/79")

    assert '<td class="col-company type-int">2</td>' in html


def test_rows_are_sorted_newest_first(mirror):
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/contacts.json?_shape=objects")

    assert [row["collection_id"] for row in data["rows"]] == [79, 78, 80]


def test_facets_from_metadata_are_computed(mirror):
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/contacts.json?_shape=objects")

    facets = data["facet_results"]
    assert {"contact_type", "do_not_call", "owner"} <= set(facets)
    counts = {r["value"]: r["count"] for r in facets["contact_type"]["results"]}
    assert counts == {14795: 2, 14796: 1}
    labels = {r["label"] for r in facets["contact_type"]["results"]}
    assert labels == {"Lead", "Client"}
    owners = {r["value"]: r["count"] for r in facets["owner"]["results"]}
    assert owners == {"bo": 2, "cy": 1}


def test_table_page_shows_title_and_column_descriptions(mirror):
    ds = make_datasette(mirror)

    html = get_text(ds, "/mirror/contacts")

    assert "<h1>Contacts</h1>" in html
    assert "<dt>do_not_call</dt><dd>Do Not Call</dd>" in html
    assert 'data-column-description="Account Owner"' in html


@pytest.mark.parametrize("tab", ["Contacts", "contacts", "CONTACTS"])
def test_linked_records_query_names_each_linked_record(mirror, tab):
    ds = make_datasette(mirror)

    rows = get_json(
        ds, f"/mirror/linked_records.json?tab={tab}&record_id=79&_shape=array"
    )

    assert [tuple(row.values()) for row in rows] == [
        ("Companies", 1, "Acme Ltd", "Related", "linked from"),
        ("Companies", 2, "Globex", "Embedded", "links to"),
        ("Notes", 5, None, "Related", "links to"),
    ]


def test_links_of_record_query_shows_the_stored_links(mirror):
    ds = make_datasette(mirror)

    rows = get_json(
        ds, "/mirror/links_of_record.json?tab=contacts&record_id=79&_shape=array"
    )

    assert [(r["from_tab"], r["from_id"], r["to_tab"], r["to_id"]) for r in rows] == [
        ("Companies", 1, "Contacts", 79),
        ("Contacts", 79, "Companies", 2),
        ("Contacts", 79, "Notes", 5),
    ]


def test_sync_runs_query_lists_the_last_twenty(mirror):
    ds = make_datasette(mirror)

    rows = get_json(ds, "/mirror/sync_runs.json?_shape=array")

    assert [r["id"] for r in rows] == list(range(25, 5, -1))


def test_recently_modified_spans_every_tab(mirror):
    ds = make_datasette(mirror)

    rows = get_json(ds, "/mirror/recently_modified.json?_shape=array")

    assert [(r["tab"], r["record_id"], r["label"]) for r in rows] == [
        ("Contacts", 79, "Ben Okafor"),
        ("Companies", 2, "Globex"),
        ("Contacts", 78, "Ana Lima"),
        ("Companies", 1, "Acme Ltd"),
        ("Contacts", 80, "Cai Wen"),
    ]


def test_served_database_refuses_writes(mirror):
    ds = make_datasette(mirror)
    db = ds.get_database("mirror")

    with pytest.raises(ServeError, match="read-only"):
        asyncio.run(db.execute_write("delete from contacts"))
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        asyncio.run(db.execute("delete from contacts"))

    assert sqlite_utils.Database(mirror)["contacts"].count == 3


def test_running_server_picks_up_a_new_sync_run(mirror):
    ds = make_datasette(mirror)
    ds.refresh_seconds = 0
    assert ds.table_metadata("mirror", "contacts")["columns"]["owner"] == (
        "Account Owner"
    )

    db = sqlite_utils.Database(mirror)
    db.execute("update ivinex_fields set label = 'Owner' where field_name = 'owner'")
    db["ivinex_sync_runs"].insert(sync_run(26))
    db.conn.commit()
    db.close()
    get_json(ds, "/mirror.json")

    assert ds.table_metadata("mirror", "contacts")["columns"]["owner"] == "Owner"


def test_given_metadata_is_kept_as_it_is(mirror):
    ds = make_datasette(mirror, metadata={"title": "Fixed"})
    ds.refresh_seconds = 0
    sqlite_utils.Database(mirror)["ivinex_sync_runs"].insert(sync_run(26))

    assert ds.refresh_metadata() is False
    assert ds.metadata("title") == "Fixed"


def test_serve_runs_datasette_on_the_given_address(mirror, monkeypatch):
    calls = []
    monkeypatch.setattr(
        serve.uvicorn, "run", lambda app, **options: calls.append((app, options))
    )

    serve.serve(mirror, port=8123)

    [(app, options)] = calls
    assert callable(app)
    assert options["host"] == "127.0.0.1"
    assert options["port"] == 8123


def test_serve_refuses_a_missing_database_before_listening(tmp_path, monkeypatch):
    monkeypatch.setattr(serve.uvicorn, "run", pytest.fail)

    with pytest.raises(ServeError, match="ivinex-mirror sync"):
        serve.serve(tmp_path / "absent.db")


# Host


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_serve_quietly(host, caplog):
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        assert serve.warn_if_exposed(host) is False
    assert caplog.records == []


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "crm.lan"])
def test_other_hosts_warn_that_the_mirror_is_open(host, caplog):
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        assert serve.warn_if_exposed(host) is True
    message = caplog.records[0].getMessage()
    assert host in message
    assert "anyone who can reach this machine" in message
    assert "no login" in message


def test_cli_serve_on_all_interfaces_warns(mirror, monkeypatch, caplog):
    monkeypatch.setattr(serve.uvicorn, "run", lambda app, **options: None)

    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        result = CliRunner().invoke(cli, ["serve", str(mirror), "--host", "0.0.0.0"])

    assert result.exit_code == 0, result.output
    assert "0.0.0.0" in caplog.text
    assert "anyone who can reach this machine" in caplog.text


# Canned queries for day one

STAGES = "opportunities_stage_options"


def add_opportunities(path):
    """An Opportunities tab: two open stages, two closed ones, a record with
    no stage and one deleted upstream."""
    db = sqlite_utils.Database(path)
    db["ivinex_tabs"].insert(
        tab(1003, "Opportunities", "Opportunity", "opportunities", "name", 7)
    )
    db["ivinex_fields"].insert_all(
        default_fields(1003)
        + [
            field(1003, "name", "Name", "Text"),
            field(1003, "lead_source", "Lead Source", "Dropdown"),
            field(1003, "stage", "Stage", "Dropdown", options_table=STAGES),
            field(1003, "amount", "Amount", "Currency"),
        ]
    )
    db[STAGES].insert_all(
        [
            {"option_id": 1, "label": "Prospecting"},
            {"option_id": 2, "label": "Proposal"},
            {"option_id": 3, "label": "Closed Won"},
            {"option_id": 4, "label": "Closed Lost"},
        ],
        pk="option_id",
    )
    db["opportunities"].insert_all(
        [
            deal(1, 1, 1000.0),
            deal(2, 1, 500.0),
            deal(3, 2, 2000.0),
            deal(4, 3, 9999.0),
            deal(5, 4, 7.0),
            deal(6, None, 100.0),
            deal(7, 2, 300.0, _deleted_at="2024-04-30T09:00:00+00:00"),
        ],
        pk="collection_id",
    )
    db.close()


def deal(collection_id, stage, amount, _deleted_at=None):
    return record(
        collection_id,
        f"2024-03-{collection_id:02d}T09:00:00",
        name=f"Deal {collection_id}",
        lead_source=None,
        stage=stage,
        amount=amount,
        _deleted_at=_deleted_at,
    )


def test_open_opportunities_by_stage_with_totals(mirror):
    add_opportunities(mirror)
    ds = make_datasette(mirror)

    rows = get_json(ds, "/mirror/open_opportunities_by_stage.json?_shape=array")

    assert [tuple(row.values()) for row in rows] == [
        ("Prospecting", 2, 1500.0, 750.0),
        ("Proposal", 1, 2000.0, 2000.0),
        ("(no stage)", 1, 100.0, 100.0),
        ("All open stages", 4, 3600.0, 900.0),
    ]
    query = ds.metadata("queries", database="mirror")["open_opportunities_by_stage"]
    assert query["title"] == "Open opportunities by stage"


def test_no_pipeline_query_without_a_stage_field(mirror):
    add_opportunities(mirror)
    db = sqlite_utils.Database(mirror)
    db.execute(
        "update ivinex_fields set field_name = 'phase', label = 'Phase'"
        " where field_name = 'stage'"
    )
    db.close()

    queries = build_metadata(mirror, {})["databases"]["mirror"]["queries"]

    assert "open_opportunities_by_stage" not in queries


def test_records_per_owner(mirror):
    ds = make_datasette(mirror)

    rows = get_json(ds, "/mirror/records_per_owner.json?_shape=array")

    assert [tuple(row.values()) for row in rows] == [
        ("ana@example.com", 2, "Companies", "Created By", 2),
        ("bo", 2, "Contacts", "Account Owner", 2),
        ("cy", 1, "Contacts", "Account Owner", 1),
    ]


def test_generated_queries_are_listed_with_their_titles(mirror):
    ds = make_datasette(mirror)

    html = get_text(ds, "/mirror")

    for title in (
        "Recently modified records",
        "Records linked to one record",
        "Records per owner",
        "Last 20 sync runs",
    ):
        assert title in html


# Records deleted upstream


def mark_deleted(path, table, *record_ids):
    db = sqlite_utils.Database(path)
    if serve.DELETED_COLUMN not in db[table].columns_dict:
        db[table].add_column(serve.DELETED_COLUMN, str)
    for record_id in record_ids:
        db[table].update(record_id, {serve.DELETED_COLUMN: "2024-05-01T10:00:00"})
    db.close()


def test_table_pages_leave_deleted_records_out(mirror):
    mark_deleted(mirror, "contacts", 80)
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/contacts.json?_shape=objects")

    assert [row["collection_id"] for row in data["rows"]] == [79, 78]
    assert data["filtered_table_rows_count"] == 2
    assert serve.LIVE_DESCRIPTION in data["human_description_en"]
    facet = data["facet_results"]["contact_type"]["results"]
    assert {r["value"]: r["count"] for r in facet} == {14795: 1, 14796: 1}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("_deleted=1", [79, 78, 80]),
        ("_deleted_at__notblank=1", [80]),
        ("_deleted=0", [79, 78]),
    ],
)
def test_deleted_records_are_shown_only_when_asked_for(mirror, query, expected):
    mark_deleted(mirror, "contacts", 80)
    ds = make_datasette(mirror)

    data = get_json(ds, f"/mirror/contacts.json?_shape=objects&{query}")

    assert [row["collection_id"] for row in data["rows"]] == expected


def test_a_deleted_record_keeps_its_own_page(mirror):
    mark_deleted(mirror, "contacts", 80)
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/contacts/80.json?_shape=objects")

    assert data["rows"][0]["full_name"] == "Cai Wen"


def test_search_leaves_deleted_records_out(mirror):
    db = sqlite_utils.Database(mirror)
    ensure_search(db)
    db.close()
    mark_deleted(mirror, "contacts", 80)
    ds = make_datasette(mirror)

    hidden = get_json(ds, "/mirror/contacts.json?_search=Cai&_shape=objects")
    shown = get_json(ds, "/mirror/contacts.json?_search=Cai&_deleted=1&_shape=objects")

    assert hidden["rows"] == []
    assert [row["collection_id"] for row in shown["rows"]] == [80]


def test_canned_queries_leave_deleted_records_out(mirror):
    mark_deleted(mirror, "contacts", 80)
    ds = make_datasette(mirror)

    recent = get_json(ds, "/mirror/recently_modified.json?_shape=array")
    owners = get_json(ds, "/mirror/records_per_owner.json?_shape=array")

    assert "Cai Wen" not in [row["label"] for row in recent]
    assert "cy" not in [row["owner"] for row in owners]


def test_deletion_column_is_described(mirror):
    mark_deleted(mirror, "contacts", 80)

    contacts = build_metadata(mirror, {})["databases"]["mirror"]["tables"]["contacts"]

    assert contacts["columns"][serve.DELETED_COLUMN].startswith("When the mirror")
    assert serve.DELETED_COLUMN not in contacts["facets"]


def test_tables_without_the_deletion_column_are_not_filtered(mirror):
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/links.json?_shape=objects")

    assert data["filtered_table_rows_count"] == 5
    assert serve.LIVE_DESCRIPTION not in (data["human_description_en"] or "")


# Search across tabs


def test_search_all_tabs_page_lists_every_searchable_tab(mirror):
    db = sqlite_utils.Database(mirror)
    ensure_search(db)
    db.close()
    ds = make_datasette(mirror)

    index = get_text(ds, "/")
    page = get_text(ds, "/-/search?q=Lima")

    assert 'id="search-all-q"' in index
    assert 'data-searchable-url="/mirror/contacts"' in page
    assert 'data-searchable-url="/mirror/companies"' in page


# Safe by default


def test_a_write_protected_mirror_is_opened_immutable(mirror):
    mirror.chmod(0o444)
    ds = make_datasette(mirror)

    data = get_json(ds, "/mirror/contacts.json?_shape=objects")

    assert ds.immutable is True
    assert ds.get_database("mirror").is_mutable is False
    assert len(data["rows"]) == 3
    with pytest.raises(ServeError, match="read-only"):
        asyncio.run(ds.get_database("mirror").execute_write("delete from links"))


def test_a_writable_mirror_is_opened_read_only(mirror):
    ds = make_datasette(mirror)

    assert ds.immutable is False
    assert ds.get_database("mirror").is_mutable is True


def test_no_page_shows_a_credential(sandbox, make_client, tmp_path):
    path = mirror_sandbox(make_client(sandbox), tmp_path / "mirror.db")
    ds = make_datasette(path)
    token = base64.b64encode(f"demo:{PASSWORD}".encode()).decode()
    queries = ds.metadata("queries", database="mirror")
    tables = sqlite_utils.Database(path).table_names()
    pages = ["/", "/mirror", "/-/search?q=demo"]
    pages += [f"/-/{name}.json" for name in SITE_PAGES]
    pages += [f"/mirror/{table}" for table in tables]
    pages += [f"/mirror/{name}?tab=Contacts&record_id=1" for name in queries]

    for page in pages:
        text = get_text(ds, page)
        assert PASSWORD not in text, page
        assert token not in text, page


SITE_PAGES = ("metadata", "settings", "versions", "plugins", "databases", "threads")
