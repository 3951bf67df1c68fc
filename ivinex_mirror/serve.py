"""Serve a mirror with Datasette, described by the mirror's own tables.

Titles, column descriptions, labels, facets and the canned queries that name
tab tables come from ivinex_tabs and ivinex_fields when the server starts,
and again after every sync run that happens while it is up; the sync itself
never writes Datasette metadata, and never rewrites the project's
metadata.yml. The mirror is served read-only: only a sync writes to it.
Records marked deleted upstream are left out of table pages and canned
queries unless asked for with ?_deleted=1.
"""

import asyncio
import copy
import ipaddress
import logging
import sqlite3
import sys
import time
from pathlib import Path

import uvicorn
import yaml
from datasette import hookimpl
from datasette.app import Datasette
from datasette.database import Database
from datasette.filters import FilterArguments
from datasette.plugins import pm
from markupsafe import Markup, escape

logger = logging.getLogger(__name__)

PROJECT_METADATA_FILE = Path(__file__).resolve().parent.parent / "metadata.yml"

# The key under `databases` in metadata.yml whose content goes to the served
# database, whatever its name.
ALL_DATABASES = "*"

SETTINGS = {
    "default_page_size": 50,
    "facet_time_limit_ms": 500,
    "sql_time_limit_ms": 3000,
}

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

# The query argument that shows records deleted upstream on a table page.
SHOW_DELETED_ARG = "_deleted"
LIVE_DESCRIPTION = "the record is not deleted upstream"

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

# How often, at most, a running server looks for a newer sync run.
REFRESH_SECONDS = 1.0


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


def make_datasette(db_path, metadata=None):
    """A Datasette serving the mirror read-only.

    Without metadata, it is built from the mirror and rebuilt after each new
    sync run; given metadata is used as it is."""
    return MirrorDatasette(db_path, metadata=metadata)


def serve(db_path, host="127.0.0.1", port=8001):
    """Serve the mirror over HTTP until interrupted."""
    ds = make_datasette(db_path)
    warn_if_exposed(host)

    # Datasette is not usable before its startup hooks have run.
    asyncio.run(ds.invoke_startup())

    logger.info("Serving %s at http://%s:%s/", db_path, host, port)
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")


def is_loopback(host):
    """Whether host only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host):
    """Log a warning when host lets other machines in; True if it did."""
    if is_loopback(host):
        return False
    logger.warning(
        "Serving on %s, not on a loopback address: anyone who can reach this "
        "machine can read the whole CRM mirror, with no login. Serve on "
        "127.0.0.1 unless every such person may see all of it.",
        host,
    )
    return True


class ReadOnlyDatabase(Database):
    """A mirror file as Datasette sees it: read, never written.

    Datasette already reads mutable files with mode=ro; this also refuses the
    separate write connection it would open for a write query or a plugin."""

    def connect(self, write=False):
        if write:
            raise ServeError(
                f"{self.path} is served read-only; only `ivinex-mirror sync` "
                "writes to it."
            )
        return super().connect(write=False)


class MirrorDatasette(Datasette):
    """Datasette for one mirror, with metadata that follows its sync runs.

    A mirror file that nobody may write (no write permission bits at all) is
    opened immutable: no sync can change it, so SQLite skips all locking.
    Any other file is opened read-only, because a sync may write it while
    it is served."""

    def __init__(self, db_path, metadata=None, refresh_seconds=REFRESH_SECONDS):
        check_mirror(db_path)
        _register_plugin()
        self.mirror_path = Path(db_path)
        self.immutable = is_write_protected(db_path)
        self.follows_syncs = metadata is None and not self.immutable
        self.refresh_seconds = refresh_seconds
        self._label_targets = {}
        self._last_check = time.monotonic()
        self._last_run = latest_run(db_path)

        if metadata is None:
            metadata = build_metadata(db_path, load_project_metadata())
        path = [str(db_path)]
        super().__init__(
            files=[] if self.immutable else path,
            immutables=path if self.immutable else [],
            metadata=metadata,
            settings=SETTINGS,
        )
        self._make_read_only()

    def _make_read_only(self):
        path = str(self.mirror_path)
        for db in [db for db in self.databases.values() if db.path == path]:
            self.remove_database(db.name)
            read_only = ReadOnlyDatabase(self, db.path, is_mutable=db.is_mutable)
            self.add_database(read_only, name=db.name)

    def app(self):
        inner = super().app()

        async def mirror_app(scope, receive, send):
            if scope["type"] == "http":
                self.refresh_metadata()
            await inner(scope, receive, send)

        return mirror_app

    def refresh_metadata(self):
        """Rebuild the metadata if a sync run started or ended since the last
        look; True if it did."""
        if not self.follows_syncs:
            return False
        now = time.monotonic()
        if now - self._last_check < self.refresh_seconds:
            return False
        self._last_check = now

        run = latest_run(self.mirror_path)
        if run is None or run == self._last_run:
            return False
        try:
            metadata = build_metadata(self.mirror_path, load_project_metadata())
        except (ServeError, sqlite3.Error) as exc:
            logger.warning("Kept the previous table descriptions: %s", exc)
            return False

        # Datasette 0.65 reads its metadata from this attribute on every
        # request and offers no public way to replace it.
        self._metadata_local = metadata
        self._label_targets = {}
        self._last_run = run
        logger.info("Table descriptions rebuilt after sync run %s", run[0])
        return True

    async def label_target(self, database, table, column):
        """(table, column, label column) that a foreign key column points to,
        when the table pointed to has a label column; else None."""
        key = (database, table)
        if key not in self._label_targets:
            db = self.get_database(database)
            targets = {}
            for fk in await db.foreign_keys_for_table(table):
                other = self.table_metadata(database, fk["other_table"])
                if other.get("label_column"):
                    targets[fk["column"]] = (
                        fk["other_table"],
                        fk["other_column"],
                        other["label_column"],
                    )
            self._label_targets[key] = targets
        return self._label_targets[key].get(column)


def is_write_protected(db_path):
    """Whether the file has no write permission bit for anyone."""
    return not Path(db_path).stat().st_mode & 0o222


@hookimpl
def filters_from_request(request, database, table, datasette):
    """Datasette plugin hook: a mirror's tab tables list live records only,
    unless the address asks for deleted ones (?_deleted=1) or filters on
    the deletion date itself. Search results and facet counts follow."""
    if not isinstance(datasette, MirrorDatasette) or _shows_deleted(request):
        return None

    async def live_only():
        columns = await datasette.get_database(database).table_columns(table)
        if DELETED_COLUMN not in columns:
            return None
        return FilterArguments(
            [f"{_q(DELETED_COLUMN)} is null"],
            human_descriptions=[LIVE_DESCRIPTION],
        )

    return live_only


@hookimpl
def render_cell(value, column, table, database, datasette):
    """Datasette plugin hook: on a record's own page, a linked record or a
    dropdown option shows its name, as table pages already do (Datasette
    0.65 labels them there only; there the value arrives already labelled)."""
    if not isinstance(datasette, MirrorDatasette) or table is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return None

    async def linked_name():
        target = await datasette.label_target(database, table, column)
        if target is None:
            return None
        other_table, other_column, label_column = target
        result = await datasette.get_database(database).execute(
            f"select {_q(label_column)} from {_q(other_table)}"
            f" where {_q(other_column)} = ?",
            [value],
        )
        row = result.first()
        if row is None or row[0] in (None, ""):
            return None
        href = datasette.urls.row(database, other_table, str(value))
        return Markup(
            f'<a href="{escape(href)}">{escape(row[0])}</a>&nbsp;<em>{value}</em>'
        )

    return linked_name


def _shows_deleted(request):
    if request.args.get(SHOW_DELETED_ARG):
        return True
    if any(DELETED_COLUMN in where for where in request.args.getlist("_where")):
        return True
    return any(key.startswith(DELETED_COLUMN + "__") for key in request.args)


def _register_plugin():
    # This module is its own Datasette plugin: registered once per process,
    # it only acts on the Datasette of a mirror.
    module = sys.modules[__name__]
    if not pm.is_registered(module):
        pm.register(module, name=__name__)


def latest_run(db_path):
    """(id, status, finished_at) of the newest sync run, or None when there
    is none or the mirror cannot be read right now (a sync holds a lock)."""
    try:
        with _connect_read_only(db_path, timeout=0.2) as conn:
            row = conn.execute(
                "select id, status, finished_at from ivinex_sync_runs"
                " order by id desc limit 1"
            ).fetchone()
    except (ServeError, sqlite3.Error):
        return None
    return tuple(row) if row else None


def check_mirror(db_path):
    """Raise ServeError unless db_path is an ivinex-mirror database."""
    with _connect_read_only(db_path):
        pass


def _connect_read_only(db_path, timeout=5.0):
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


def _read_mirror(db_path):
    with _connect_read_only(db_path) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "select name from sqlite_master where type = 'table'"
            )
        ]
        columns = {
            table: [row[1] for row in conn.execute(f"pragma table_info({_q(table)})")]
            for table in tables
        }
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
    return f"{prefix}{_q(DELETED_COLUMN)} is null"


def _label_sql(tab):
    label_column = tab.get("label_column")
    return _q(label_column) if label_column in tab["present"] else "null"


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
        f"from {_q(tab['table_name'])} where {_live(tab)}"
    )


def _linked_records_query(tabs):
    cases = [
        f"    when {_literal(tab['name'])} then (select {_label_sql(tab)} "
        f"from {_q(tab['table_name'])} where collection_id = linked.record_id)"
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
    amount_sql = f"r.{_q(amount['column_name'])}" if amount else "null"
    sql = (
        "with open_deals as (\n"
        f"  select r.{_q(stage['column_name'])} as stage_id, o.label as stage,\n"
        f"    {amount_sql} as amount\n"
        f"  from {_q(tab['table_name'])} as r\n"
        f"  left join {_q(stage['options_table'])} as o\n"
        f"    on o.option_id = r.{_q(stage['column_name'])}\n"
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
    column = _q(owner["column_name"])
    label = _field_label(owner)
    return (
        f"select coalesce(nullif(trim({column}), ''), '(no owner)') as owner, "
        f"{_literal(tab['name'])} as tab, {_literal(label)} as owner_field, "
        f"count(*) as records from {_q(tab['table_name'])} "
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


def _q(name):
    return '"' + name.replace('"', '""') + '"'


def _literal(text):
    return "'" + text.replace("'", "''") + "'"
