"""Datasette metadata for a mirror, described by the mirror's own tables.

Titles, column descriptions, labels, facets and the canned queries that name
tab tables come from ivinex_tabs and ivinex_fields, merged with the project's
defaults in metadata.yml. The sync itself never writes Datasette metadata,
and never rewrites the project's metadata.yml. The canned queries leave out
records deleted upstream.
"""

import copy
import sqlite3
from pathlib import Path

import yaml

PROJECT_METADATA_FILE = Path(__file__).resolve().parent.parent / "metadata.yml"

# The key under `databases` in metadata.yml whose content goes to the served
# database, whatever its name.
ALL_DATABASES = "*"

# Field types whose values repeat enough to be worth counting.
FACET_FIELD_TYPES = ("Dropdown", "User", "Checkbox")

# The record fields every tab has; their facets come after the tab's own.
DEFAULT_FIELD_NAMES = (
    "collection_id",
    "created_by",
    "created_date",
    "modified_by",
    "modified_date",
)

MIRROR_TABLES = {
    "ivinex_tabs": {
        "title": "Tabs",
        "description": "The tabs of the CRM and the table that mirrors each.",
        "label_column": "name",
        "facets": ["status"],
    },
    "ivinex_fields": {
        "title": "Fields",
        "description": "The fields of every tab and the column that holds each.",
        "label_column": "label",
        "facets": ["field_type", "retired"],
    },
    "ivinex_sync_runs": {
        "title": "Sync runs",
        "description": "One row per sync run, with what it fetched.",
        "sort_desc": "id",
        "facets": ["status"],
    },
    "links": {
        "title": "Links",
        "description": "Every link between two records, by tab name and id.",
        "facets": ["link_kind", "from_tab", "to_tab"],
    },
}

# Columns the mirror keeps on every tab table for itself.
DELETED_COLUMN = "_deleted_at"
MIRROR_COLUMN_DESCRIPTIONS = {
    DELETED_COLUMN: "When the mirror found the record deleted upstream "
    "(empty while it is live)",
    "_seen_run": "The sync run that last saw the record",
}

RECENT_RECORDS = 100

# The tab that holds the sales pipeline, its stage and amount fields, and
# the stages that count as closed (SQL "like" patterns, lower case).
PIPELINE_TAB_NAMES = ("opportunities", "opportunity", "deals", "deal")
STAGE_FIELD_NAMES = ("stage", "sales stage", "deal stage")
AMOUNT_FIELD_NAMES = ("amount", "value", "deal value")
CLOSED_STAGES = ("closed%", "won%", "lost%")

# The fields that say who owns a record, best first, when a tab has more
# than one User field of its own; a tab with none counts its creator.
OWNER_FIELD_NAMES = ("owner", "record owner", "account owner")
FALLBACK_OWNER_FIELD = "created_by"


class ServeError(Exception):
    """The mirror cannot be served; the message says what to do."""


def load_project_metadata(path=None):
    """The project's Datasette defaults from metadata.yml, or {} without one."""
    path = Path(path) if path is not None else PROJECT_METADATA_FILE
    if not path.is_file():
        return {}

    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ServeError(f"{path} is not valid YAML: {exc}") from None

    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ServeError(f"{path} must hold a mapping of Datasette metadata.")
    return content


def database_name(db_path):
    """The name Datasette serves a database file under: its stem."""
    return Path(db_path).stem


def build_metadata(db_path, project_metadata):
    """Datasette metadata for the mirror at db_path, as of its last sync,
    merged with the project's defaults."""
    mirror = _read_mirror(db_path)
    generated = {"description": _database_description(mirror), "tables": {}}

    for tab in mirror["tabs"]:
        generated["tables"].update(_tab_tables(tab, mirror))
    for table, table_metadata in MIRROR_TABLES.items():
        if table in mirror["columns"]:
            generated["tables"][table] = copy.deepcopy(table_metadata)

    queries = _canned_queries(mirror)
    if queries:
        generated["queries"] = queries
    return _merge_project(generated, project_metadata, database_name(db_path))


def _read_mirror(db_path):
    with connect_read_only(db_path) as conn:
        columns = _table_columns(conn)
        tabs = [dict(row) for row in conn.execute("select * from ivinex_tabs")]
        fields = [
            dict(row)
            for row in conn.execute("select * from ivinex_fields order by rowid")
        ]
        run = _latest_run_row(conn, columns)

    by_tab = {}
    for field in fields:
        by_tab.setdefault(field["tab_id"], []).append(field)
    tabs = [tab for tab in tabs if tab["table_name"] in columns]
    for tab in tabs:
        tab["fields"] = by_tab.get(tab["tab_id"], [])
    return {"tabs": tabs, "columns": columns, "run": run}


def connect_read_only(db_path, timeout=5.0):
    """A read-only connection to the mirror at db_path, closed at the end of
    a with block; ServeError unless the file is an ivinex-mirror database."""
    path = Path(db_path)
    if not path.is_file():
        raise ServeError(
            f"No mirror database at {path}. Run `ivinex-mirror sync` first to "
            "create it."
        )

    conn = sqlite3.connect(
        path.resolve().as_uri() + "?mode=ro", uri=True, timeout=timeout
    )
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'ivinex_tabs'"
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ServeError(f"{path} is not a SQLite database ({exc}).") from None
    if not found:
        conn.close()
        raise ServeError(
            f"{path} is not an ivinex-mirror database: it has no ivinex_tabs "
            "table. Run `ivinex-mirror sync` first to create a mirror, then "
            "serve that file."
        )
    return _ClosingConnection(conn)


class _ClosingConnection:
    """A connection that closes at the end of a with block (sqlite3's own
    context manager only ends the transaction)."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc_info):
        self.conn.close()


def _table_columns(conn):
    """The column names of every table, by table name."""
    tables = "select name from sqlite_master where type = 'table'"
    columns = {}
    for (table,) in conn.execute(tables).fetchall():
        info = conn.execute(f"pragma table_info({quote_name(table)})")
        columns[table] = [row[1] for row in info]
    return columns


def _latest_run_row(conn, columns):
    if "ivinex_sync_runs" not in columns:
        return None
    row = conn.execute(
        "select * from ivinex_sync_runs order by id desc limit 1"
    ).fetchone()
    return dict(row) if row else None


def _database_description(mirror):
    tabs = len(mirror["tabs"])
    text = f"{tabs} tab{'' if tabs == 1 else 's'} of the Ivinex CRM."
    run = mirror["run"]
    if run is None:
        return text + " No sync run recorded yet."
    when = run.get("finished_at") or run.get("started_at")
    return text + f" Last sync run: #{run['id']}, {run['status']}, {when}."


def _tab_tables(tab, mirror):
    """Metadata for a tab's table and for each of its options tables."""
    table = tab["table_name"]
    present = set(mirror["columns"][table])
    fields = [f for f in tab["fields"] if f["column_name"] in present]

    tables = {table: _tab_table(tab, fields, present)}
    for field in fields:
        options = field.get("options_table")
        if options and options in mirror["columns"]:
            tables[options] = _options_table(tab, field)
    return tables


def _tab_table(tab, fields, present):
    columns = {f["column_name"]: _column_description(f) for f in fields}
    for column, description in MIRROR_COLUMN_DESCRIPTIONS.items():
        if column in present:
            columns[column] = description
    metadata = {
        "title": tab["name"],
        "description": _tab_description(tab),
        "columns": columns,
    }
    if tab.get("label_column") in present:
        metadata["label_column"] = tab["label_column"]
    if "modified_date" in present:
        metadata["sort_desc"] = "modified_date"

    facets = _facet_columns(fields)
    if facets:
        metadata["facets"] = facets
    return metadata


def _tab_description(tab):
    count = tab.get("record_count")
    records = "" if count is None else f" {count:,} record{'' if count == 1 else 's'}"
    text = f"The {tab['name']} tab of the Ivinex CRM (tab id {tab['tab_id']}):{records}"
    if tab.get("last_synced_at"):
        text += f", synced {tab['last_synced_at']}"
    if tab.get("status") and tab["status"] != "ok":
        text += f"; last sync status: {tab['status']}"
    return text + "."


def _field_label(field):
    return field.get("label") or field["field_name"]


def _column_description(field):
    label = _field_label(field)
    if field.get("retired"):
        return f"{label} (no longer listed by the CRM)"
    return label


def _facet_columns(fields):
    # Datasette reads query arguments that start with "_" as its own options,
    # so a facet on such a column could not be filtered on; none is offered.
    facets = [
        f
        for f in fields
        if f.get("field_type") in FACET_FIELD_TYPES
        and not f.get("retired")
        and not f["column_name"].startswith("_")
    ]
    facets.sort(key=lambda f: f["field_name"] in DEFAULT_FIELD_NAMES)
    return [f["column_name"] for f in facets]


def _options_table(tab, field):
    label = field.get("label") or field["field_name"]
    return {
        "title": f"{tab['name']}: {label} options",
        "description": (
            f"The options of the {field['field_type']} field {label} of the "
            f"{tab['name']} tab; records hold the option id."
        ),
        "label_column": "label",
        "columns": {"option_id": "Option ID", "label": "Option label"},
    }


def _canned_queries(mirror):
    """The canned queries that must name tab tables, so are made per mirror.

    Each leaves out records deleted upstream where the table marks them."""
    builders = {
        "recently_modified": _recently_modified_query,
        "linked_records": _linked_records_query,
        "open_opportunities_by_stage": _pipeline_query,
        "records_per_owner": _records_per_owner_query,
    }
    queries = {}
    for name, build in builders.items():
        query = build(_record_tabs(mirror))
        if query:
            queries[name] = dict(query, hide_sql=True)
    return queries


def _record_tabs(mirror):
    """Each tab whose table has a record id, with its columns and fields."""
    tabs = []
    for tab in mirror["tabs"]:
        present = set(mirror["columns"][tab["table_name"]])
        if "collection_id" in present:
            fields = [f for f in tab["fields"] if f["column_name"] in present]
            tabs.append(dict(tab, present=present, fields=fields))
    return tabs


def _live(tab, alias=None):
    """A condition that keeps live records only ("1" without deletes)."""
    if DELETED_COLUMN not in tab["present"]:
        return "1"
    prefix = f"{alias}." if alias else ""
    return f"{prefix}{quote_name(DELETED_COLUMN)} is null"


def _label_sql(tab):
    label_column = tab.get("label_column")
    return quote_name(label_column) if label_column in tab["present"] else "null"


def _recently_modified_query(tabs):
    selects = [_recent_select(tab) for tab in tabs if "modified_date" in tab["present"]]
    if not selects:
        return None

    union = "\n  union all\n  ".join(selects)
    sql = (
        "select tab, record_id, label, modified_date, modified_by\n"
        f"from (\n  {union}\n)\n"
        "order by modified_date desc\n"
        f"limit {RECENT_RECORDS}"
    )
    return {
        "title": "Recently modified records",
        "description": (
            f"The {RECENT_RECORDS} most recently modified records across all "
            "tabs, newest first."
        ),
        "sql": sql,
    }


def _recent_select(tab):
    modified_by = "modified_by" if "modified_by" in tab["present"] else "null"
    return (
        f"select {_literal(tab['name'])} as tab, collection_id as record_id, "
        f"{_label_sql(tab)} as label, modified_date, {modified_by} as modified_by "
        f"from {quote_name(tab['table_name'])} where {_live(tab)}"
    )


def _linked_records_query(tabs):
    cases = [
        f"    when {_literal(tab['name'])} then (select {_label_sql(tab)} "
        f"from {quote_name(tab['table_name'])} where collection_id = linked.record_id)"
        for tab in tabs
    ]
    label = "case linked.tab\n" + "\n".join(cases) + "\n  end" if cases else "null"
    sql = (
        "with this(tab) as (\n"
        "  select coalesce((select name from ivinex_tabs\n"
        "    where name = :tab collate nocase or table_name = :tab collate nocase\n"
        "    limit 1), :tab)\n"
        "),\n"
        "linked(tab, record_id, link_kind, direction) as (\n"
        "  select to_tab, to_id, link_kind, 'links to' from links, this\n"
        "  where from_tab = this.tab and from_id = :record_id\n"
        "  union\n"
        "  select from_tab, from_id, link_kind, 'linked from' from links, this\n"
        "  where to_tab = this.tab and to_id = :record_id\n"
        ")\n"
        f"select linked.tab, linked.record_id, {label} as label,\n"
        "  linked.link_kind, linked.direction\n"
        "from linked\n"
        "order by linked.tab, linked.record_id, linked.link_kind, linked.direction"
    )
    return {
        "title": "Records linked to one record",
        "description": (
            "Every record linked to or from one record, by name, with the kind "
            "of link (Embedded, Related, Converted, Copied From). Give the tab "
            "as the CRM names it or as its table (letter case does not matter) "
            "and the record's id."
        ),
        "sql": sql,
    }


def _pipeline_query(tabs):
    pipeline = _pipeline_fields(tabs)
    if pipeline is None:
        return None
    tab, stage, amount = pipeline

    closed = " or ".join(f"lower(o.label) like {_literal(p)}" for p in CLOSED_STAGES)
    stage_sql = f"r.{quote_name(stage['column_name'])}"
    amount_sql = f"r.{quote_name(amount['column_name'])}" if amount else "null"
    sql = (
        "with open_deals as (\n"
        f"  select {stage_sql} as stage_id, o.label as stage,\n"
        f"    {amount_sql} as amount\n"
        f"  from {quote_name(tab['table_name'])} as r\n"
        f"  left join {quote_name(stage['options_table'])} as o\n"
        f"    on o.option_id = {stage_sql}\n"
        f"  where {_live(tab, 'r')} and not coalesce({closed}, 0)\n"
        ")\n"
        "select stage, records, total_amount, average_amount from (\n"
        "  select 0 as part, stage_id, coalesce(stage, '(no stage)') as stage,\n"
        "    count(*) as records, round(sum(amount), 2) as total_amount,\n"
        "    round(avg(amount), 2) as average_amount\n"
        "  from open_deals group by stage_id\n"
        "  union all\n"
        "  select 1, null, 'All open stages', count(*), round(sum(amount), 2),\n"
        "    round(avg(amount), 2)\n"
        "  from open_deals\n"
        ")\n"
        "order by part, stage_id is null, stage_id"
    )
    return {
        "title": f"Open {tab['name'].lower()} by stage",
        "description": _pipeline_description(tab, stage, amount),
        "sql": sql,
    }


def _pipeline_fields(tabs):
    """(tab, stage field, amount field or None) of the sales pipeline."""
    for tab in tabs:
        names = {tab["name"].lower(), tab["table_name"].lower()}
        if not names & set(PIPELINE_TAB_NAMES):
            continue
        stage = _field_named(tab, STAGE_FIELD_NAMES, ("Dropdown",), fallback=False)
        if stage and stage.get("options_table"):
            return tab, stage, _field_named(tab, AMOUNT_FIELD_NAMES, ("Currency",))
    return None


def _field_named(tab, names, field_types, fallback=True):
    """The first live field of these types whose name or label is one of
    names, or else (with fallback) the first of these types at all."""
    fields = [
        f
        for f in tab["fields"]
        if f["field_type"] in field_types and not f.get("retired")
    ]
    for field in fields:
        spellings = {n.lower() for n in (field["field_name"], field.get("label")) if n}
        if spellings & set(names):
            return field
    return fields[0] if fields and fallback else None


def _pipeline_description(tab, stage, amount):
    closed = ", ".join(p.replace("%", "...") for p in CLOSED_STAGES)
    text = (
        f"{tab['name']} whose {_field_label(stage)} is not a closed stage "
        f"({closed}), counted per stage in pipeline order"
    )
    if amount:
        text += f", with the total and average {_field_label(amount)}"
    return text + "; the last row adds up every open stage."


def _records_per_owner_query(tabs):
    selects = []
    for tab in tabs:
        owner = _owner_field(tab)
        if owner:
            selects.append(_owner_select(tab, owner))
    if not selects:
        return None

    union = "\n  union all\n  ".join(selects)
    sql = (
        "select owner, sum(records) over (partition by owner) as owner_total,\n"
        "  tab, owner_field, records\n"
        f"from (\n  {union}\n)\n"
        "order by owner_total desc, owner, records desc, tab"
    )
    return {
        "title": "Records per owner",
        "description": (
            "How many records each person owns, per tab, with their total. "
            "A tab's owner field is its Owner field, else its first field of "
            "type User, else Created By."
        ),
        "sql": sql,
    }


def _owner_field(tab):
    own = [
        f
        for f in tab["fields"]
        if f["field_type"] == "User"
        and f["field_name"] not in DEFAULT_FIELD_NAMES
        and not f.get("retired")
    ]
    if own:
        return _field_named(dict(tab, fields=own), OWNER_FIELD_NAMES, ("User",))
    for field in tab["fields"]:
        if field["column_name"] == FALLBACK_OWNER_FIELD:
            return field
    return None


def _owner_select(tab, owner):
    column = quote_name(owner["column_name"])
    label = _field_label(owner)
    return (
        f"select coalesce(nullif(trim({column}), ''), '(no owner)') as owner, "
        f"{_literal(tab['name'])} as tab, {_literal(label)} as owner_field, "
        f"count(*) as records from {quote_name(tab['table_name'])} "
        f"where {_live(tab)} group by 1"
    )


def _merge_project(generated, project_metadata, name):
    """Project defaults at the top, the served database's entry made of the
    generated metadata, then the project's "*" entry, then its entry for
    this database by name, each later one winning."""
    project = copy.deepcopy(project_metadata or {})
    databases = project.pop("databases", None) or {}
    shared = databases.pop(ALL_DATABASES, None) or {}
    entry = _deep_merge(generated, shared)
    entry = _deep_merge(entry, databases.get(name) or {})
    return dict(project, databases=dict(databases, **{name: entry}))


def _deep_merge(base, extra):
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def quote_name(name):
    """name quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text):
    return "'" + text.replace("'", "''") + "'"
