"""Serve a mirror with Datasette, described by the mirror's own tables.

Titles, column descriptions, labels and facets come from ivinex_tabs and
ivinex_fields when the server starts, and again after every sync run that
happens while it is up; the sync itself never writes Datasette metadata.
The mirror is served read-only: only a sync writes to it.
"""

import asyncio
import copy
import ipaddress
import logging
import sqlite3
import time
from pathlib import Path

import uvicorn
import yaml
from datasette.app import Datasette
from datasette.database import Database

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

RECENT_RECORDS = 100

# How often, at most, a running server looks for a newer sync run.
REFRESH_SECONDS = 5.0


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

    recent = _recently_modified_query(mirror)
    if recent:
        generated["queries"] = {"recently_modified": recent}
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
    """Datasette for one mirror, with metadata that follows its sync runs."""

    def __init__(self, db_path, metadata=None, refresh_seconds=REFRESH_SECONDS):
        check_mirror(db_path)
        self.mirror_path = Path(db_path)
        self.follows_syncs = metadata is None
        self.refresh_seconds = refresh_seconds
        self._last_check = time.monotonic()
        self._last_run = latest_run(db_path)

        if metadata is None:
            metadata = build_metadata(db_path, load_project_metadata())
        super().__init__(files=[str(db_path)], metadata=metadata, settings=SETTINGS)
        self._make_read_only()

    def _make_read_only(self):
        path = str(self.mirror_path)
        for db in [db for db in self.databases.values() if db.path == path]:
            self.remove_database(db.name)
            self.add_database(ReadOnlyDatabase(self, db.path), name=db.name)

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
        self._last_run = run
        logger.info("Table descriptions rebuilt after sync run %s", run[0])
        return True


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
    metadata = {
        "title": tab["name"],
        "description": _tab_description(tab),
        "columns": {f["column_name"]: _column_description(f) for f in fields},
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


def _column_description(field):
    label = field.get("label") or field["field_name"]
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


def _recently_modified_query(mirror):
    selects = []
    for tab in mirror["tabs"]:
        present = set(mirror["columns"][tab["table_name"]])
        if {"collection_id", "modified_date"} <= present:
            selects.append(_recent_select(tab, present))
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


def _recent_select(tab, present):
    label_column = tab.get("label_column")
    label = _q(label_column) if label_column in present else "null"
    modified_by = "modified_by" if "modified_by" in present else "null"
    return (
        f"select {_literal(tab['name'])} as tab, collection_id as record_id, "
        f"{label} as label, modified_date, {modified_by} as modified_by "
        f"from {_q(tab['table_name'])}"
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
