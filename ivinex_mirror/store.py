"""The mirror database: its own bookkeeping tables, a table per tab, links.

Every write that belongs to one page of the API happens in one transaction,
so an interrupted run leaves whole pages or nothing.
"""

import json
import logging
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache

import sqlite_utils
from filelock import FileLock, Timeout

from .schema import OPTION_TYPES, RECORD_ID

logger = logging.getLogger(__name__)

LINK_KEY = ("from_tab", "from_id", "to_tab", "to_id", "link_kind")

MIRROR_TABLE_COLUMNS = {
    "ivinex_tabs": (
        {
            "tab_id": int,
            "name": str,
            "singular_name": str,
            "table_name": str,
            "label_column": str,
            "record_count": int,
            "status": str,
            "last_synced_at": str,
            "cursor": str,
            "full_pass_id": int,
            "last_full_pass": int,
            "extra": str,
        },
        "tab_id",
    ),
    "ivinex_state": ({"key": str, "value": str}, "key"),
    "ivinex_fields": (
        {
            "tab_id": int,
            "field_name": str,
            "label": str,
            "field_type": str,
            "column_name": str,
            "column_type": str,
            "required": int,
            "linked_tab": str,
            "options_table": str,
            "retired": int,
            "extra": str,
        },
        ("tab_id", "field_name"),
    ),
    "ivinex_sync_runs": (
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "tabs": int,
            "records": int,
            "changed": int,
            "deleted": int,
            "links": int,
            "warnings": int,
            "error": str,
        },
        "id",
    ),
    "links": (
        {
            "from_tab": str,
            "from_id": int,
            "to_tab": str,
            "to_id": int,
            "link_kind": str,
            "seen_run": int,
        },
        LINK_KEY,
    ),
}


# The mirror's own columns on every tab table. Field columns never start with
# an underscore (see schema.normalise_name), so these cannot collide.
MIRROR_COLUMNS = {"_seen_run": "INTEGER", "_deleted_at": "TEXT"}


class LockedByAnotherRun(Exception):
    """Another sync holds the database."""


@contextmanager
def run_lock(db_path):
    """Hold the database for one run, so that two runs never interleave.

    The lock is the kernel's (flock on DB.lock), so a run that died, even by
    kill -9, leaves no lock behind: the next run simply takes it."""
    # The real path, so that two names for one file (a link) share a lock.
    path = f"{os.path.realpath(db_path)}.lock"
    # The lock library takes any failure to make its file for "busy": make
    # it first, so that a folder we cannot write in says so.
    with open(path, "a"):
        pass
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise LockedByAnotherRun(
            f"Another sync is running on {db_path} (it holds {path}). Wait for "
            "it to end or stop it, then run again."
        ) from None
    try:
        yield
    finally:
        lock.release()


class NotAMirror(Exception):
    """The database is not one this tool made."""


def _check_is_mirror(db, path, create):
    tables = set(db.table_names())
    if "ivinex_tabs" in tables or (create and not tables):
        return
    db.close()
    if tables:
        raise NotAMirror(
            f"{path} holds tables of another program, not an ivinex-mirror "
            "database; nothing was changed. Name a new file."
        )
    raise NotAMirror(f"{path} is no mirror yet; run `ivinex-mirror sync` first.")


def _create_private(path):
    """A new mirror is readable by its owner alone, as the CRM data in it
    deserves; SQLite gives its journal files the same mode."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def history_table(table):
    return f"{table}_history"


def now_iso():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Mirror:
    """An ivinex-mirror SQLite database."""

    def __init__(self, path, create=True):
        """Open the mirror at `path`, creating it unless `create` is False.
        A database of another program is refused, never changed."""
        if create:
            _create_private(path)
        self.db = sqlite_utils.Database(path)
        _check_is_mirror(self.db, path, create)
        # WAL lets Datasette read while a sync writes, and with NORMAL a commit
        # per page costs no fsync; a crash can lose the last pages, never
        # corrupt the database, and their cursors go with them.
        self.db.execute("pragma journal_mode = wal")
        self.db.execute("pragma synchronous = normal")
        self.ensure_mirror_tables()

    def close(self):
        self.db.close()

    def ensure_mirror_tables(self):
        """Create the bookkeeping tables, or add the columns a newer version
        of the mirror keeps, so that an older database keeps working."""
        for name, (columns, pk) in MIRROR_TABLE_COLUMNS.items():
            table = self.db.table(name)
            if not table.exists():
                table.create(columns, pk=pk)
                continue
            for column, kind in columns.items():
                if column not in table.columns_dict:
                    table.add_column(column, kind)

    # State that outlives a run: cursors, passes in progress, the links pass.

    def get_state(self, key):
        row = self.db.execute("select value from ivinex_state where key = ?", [key])
        found = row.fetchone()
        return None if found is None else found[0]

    def set_state(self, key, value):
        with self.db.conn:
            self.db.table("ivinex_state").upsert({"key": key, "value": value}, pk="key")

    def tab_state(self, tab_id):
        """The tab's cursor, the full pass in progress (if any) and the run
        of its last complete full pass."""
        row = self.db.execute(
            "select cursor, full_pass_id, last_full_pass from ivinex_tabs"
            " where tab_id = ?",
            [tab_id],
        ).fetchone()
        return row or (None, None, None)

    def start_full_pass(self, tab_id, pass_id):
        """A full pass starts from the beginning: its cursor is cleared in
        the same transaction, so a killed pass resumes where it stopped."""
        with self.db.conn:
            self.db.execute(
                "update ivinex_tabs set full_pass_id = ?, cursor = null"
                " where tab_id = ?",
                [pass_id, tab_id],
            )

    def finish_full_pass(self, tab_id, run_id):
        with self.db.conn:
            self.db.execute(
                "update ivinex_tabs set full_pass_id = null, last_full_pass = ?"
                " where tab_id = ?",
                [run_id, tab_id],
            )

    # Runs

    def start_run(self):
        with self.db.conn:
            table = self.db.table("ivinex_sync_runs")
            table.insert({"started_at": now_iso(), "status": "running"})
            return table.last_pk

    def finish_run(self, run_id, status, counts, error=None):
        values = dict(counts, finished_at=now_iso(), status=status, error=error)
        with self.db.conn:
            self.db.table("ivinex_sync_runs").update(run_id, values)

    # Tabs and fields

    def known_tables(self):
        """{tab_id: table name} of every tab mirrored so far."""
        rows = self.db.execute("select tab_id, table_name from ivinex_tabs")
        return dict(rows.fetchall())

    def tables_by_tab_name(self):
        rows = self.db.execute("select name, table_name from ivinex_tabs")
        return dict(rows.fetchall())

    def known_field_types(self, tab_id):
        """{field name: Ivinex field type} as the last run saw them."""
        rows = self.db.execute(
            "select field_name, field_type from ivinex_fields where tab_id = ?",
            [tab_id],
        )
        return dict(rows.fetchall())

    def known_columns(self, tab_id):
        """{field name: column name} of every field of a tab seen so far."""
        rows = self.db.execute(
            "select field_name, column_name from ivinex_fields where tab_id = ?",
            [tab_id],
        )
        return dict(rows.fetchall())

    def save_tab(self, tab, table_name, status, label_column=None):
        row = {
            "tab_id": tab.tab_id,
            "name": tab.name,
            "singular_name": tab.singular_name,
            "table_name": table_name,
            "status": status,
            "extra": json.dumps(tab.extra) if tab.extra else None,
        }
        if label_column is not None:
            row["label_column"] = label_column
        with self.db.conn:
            self.db.table("ivinex_tabs").upsert(row, pk="tab_id")

    def finish_tab(self, tab_id, status):
        """Record a tab's outcome and how many live records its table holds."""
        count = self.live_count(self.known_tables()[tab_id])
        with self.db.conn:
            self.db.table("ivinex_tabs").update(
                tab_id,
                {"status": status, "record_count": count, "last_synced_at": now_iso()},
            )
        return count

    def ensure_tab_table(self, tab, schema, history=False):
        """Create or widen the tab's table, its options tables and its rows in
        ivinex_fields. Columns are only ever added or widened to TEXT, never
        dropped, renamed or narrowed, so no stored value is ever lost."""
        with self.db.conn:
            column_types = self._ensure_columns(schema.table, schema, pk=RECORD_ID)
            if history:
                history_pk = (RECORD_ID, "modified_date")
                self._ensure_columns(history_table(schema.table), schema, history_pk)
            self._save_options(schema)
            self._save_fields(tab, schema, column_types)

    def _ensure_columns(self, table_name, schema, pk):
        """Make the table hold every column; returns {column: SQL type}."""
        table = self.db.table(table_name)
        wanted = {c.name: c.sql_type for c in schema.columns.values()}
        wanted.update(MIRROR_COLUMNS)
        if not table.exists():
            table.create(wanted, pk=pk)
            return wanted
        present = {c.name.lower(): c.type.upper() for c in table.columns}
        for name, sql_type in wanted.items():
            if name.lower() not in present:
                table.add_column(name, sql_type)
        narrower = [
            name
            for name, sql_type in wanted.items()
            if present.get(name.lower(), sql_type) not in (sql_type, "TEXT")
        ]
        if narrower:
            # A field changed type: widen to TEXT, keeping every stored value.
            table.transform(types={name: str for name in narrower})
        return {c.name: c.type.upper() for c in table.columns}

    def _save_options(self, schema):
        for column in schema.columns.values():
            if column.field.field_type not in OPTION_TYPES:
                continue
            options = self.db.table(schema.options_table(column))
            options.create(
                {"option_id": int, "label": str}, pk="option_id", if_not_exists=True
            )
            rows = [
                {"option_id": o.option_id, "label": o.label}
                for o in column.field.options
            ]
            options.upsert_all(rows, pk="option_id")

    def _save_fields(self, tab, schema, column_types):
        rows = []
        for column in schema.columns.values():
            row = _field_row(tab.tab_id, schema, column)
            row["column_type"] = column_types.get(column.name, column.sql_type)
            rows.append(row)
        # A field no longer listed keeps its column and its data.
        self.db.execute(
            "update ivinex_fields set retired = 1 where tab_id = ?", [tab.tab_id]
        )
        self.db.table("ivinex_fields").upsert_all(rows, pk=("tab_id", "field_name"))

    def ensure_foreign_keys(self, schemas, tables_by_tab_name):
        """Declare a foreign key for each dropdown (to its options) and each
        linked-record field whose target tab is mirrored. Safe to repeat."""
        wanted = []
        for schema in schemas:
            for column in schema.columns.values():
                target = _foreign_target(schema, column, tables_by_tab_name)
                if target:
                    wanted.append((schema.table, column.name) + target)
        missing = [fk for fk in wanted if not self._has_foreign_key(*fk)]
        if missing:
            self.db.add_foreign_keys(missing)

    def _has_foreign_key(self, table, column, other_table, other_column):
        return any(
            fk.column == column and fk.other_table == other_table
            for fk in self.db.table(table).foreign_keys
        )

    # Records and links

    def save_page(self, tab_id, table, rows, seen_run, cursor=None, history=False):
        """Upsert one page of rows, and move the tab's cursor, in one
        transaction. Rows may carry different columns; a column a row leaves
        out keeps its stored value. Returns the ids of rows that are new or
        changed (by modified_date), or that come back after a delete."""
        with self.db.conn:
            changed = self._changed_ids(table, rows)
            by_columns = {}
            for row in rows:
                row = dict(row, _seen_run=seen_run, _deleted_at=None)
                by_columns.setdefault(tuple(row), []).append(row)
            for columns, group in by_columns.items():
                sql = _upsert_sql(table, columns, key=(RECORD_ID,))
                self.db.conn.executemany(sql, [tuple(r.values()) for r in group])
            if history and changed:
                self._save_versions(table, changed)
            if cursor is not None:
                self._move_cursor(tab_id, cursor)
        return changed

    def save_cursor(self, tab_id, cursor):
        """Move a tab's cursor on its own: once a tab read out of order by
        the server is read whole."""
        with self.db.conn:
            self._move_cursor(tab_id, cursor)

    def _move_cursor(self, tab_id, cursor):
        self.db.execute(
            "update ivinex_tabs set cursor = ? where tab_id = ?"
            " and (cursor is null or cursor < ?)",
            [cursor, tab_id, cursor],
        )

    def _changed_ids(self, table, rows):
        ids = [row[RECORD_ID] for row in rows]
        stored = dict(
            self.db.execute(
                f"select {RECORD_ID}, coalesce(_deleted_at, '') || modified_date"
                f" from {_quote(table)} where {RECORD_ID} in"
                f" (select value from json_each(?))",
                [json.dumps(ids)],
            ).fetchall()
        )
        return [
            row[RECORD_ID]
            for row in rows
            if stored.get(row[RECORD_ID], "") != row.get("modified_date", "")
        ]

    def _save_versions(self, table, ids):
        """Copy the rows as they now stand into the tab's history table."""
        names = [c.name for c in self.db.table(history_table(table)).columns]
        columns = ", ".join(_quote(n) for n in names)
        self.db.execute(
            f"insert or replace into {_quote(history_table(table))} ({columns})"
            f" select {columns} from {_quote(table)} where {RECORD_ID} in"
            f" (select value from json_each(?))",
            [json.dumps(ids)],
        )

    def live_count(self, table):
        sql = f"select count(*) from {_quote(table)} where _deleted_at is null"
        return self.db.execute(sql).fetchone()[0]

    def unseen_ids(self, table, pass_id):
        """Live rows that a full pass did not see: deleted upstream."""
        sql = (
            f"select {RECORD_ID} from {_quote(table)} where _deleted_at is null"
            " and (_seen_run is null or _seen_run < ?)"
        )
        return [row[0] for row in self.db.execute(sql, [pass_id])]

    def save_deletes(self, tab_name, table, ids):
        """Mark rows deleted upstream, and drop their links, in one
        transaction."""
        marks = "(select value from json_each(?))"
        with self.db.conn:
            self.db.execute(
                f"update {_quote(table)} set _deleted_at = ?"
                f" where {RECORD_ID} in {marks}",
                [now_iso(), json.dumps(ids)],
            )
            self.db.execute(
                f"delete from links where (from_tab = ? and from_id in {marks})"
                f" or (to_tab = ? and to_id in {marks})",
                [tab_name, json.dumps(ids), tab_name, json.dumps(ids)],
            )

    def remove_marked_deletes(self, table):
        """Remove the rows marked deleted (their links went when marked)."""
        with self.db.conn:
            self.db.execute(
                f"delete from {_quote(table)} where _deleted_at is not null"
            )

    def save_links(self, links, run_id):
        """Insert one page of links, marking each as seen by this run."""
        rows = [
            (link.from_tab, link.from_id, link.to_tab, link.to_id, link.kind, run_id)
            for link in links
        ]
        sql = _upsert_sql("links", LINK_KEY + ("seen_run",), key=LINK_KEY)
        with self.db.conn:
            self.db.conn.executemany(sql, rows)

    def unseen_links(self, run_id):
        """Links that a whole pass of this run did not see."""
        sql = f"select {', '.join(LINK_KEY)} from links where seen_run < ?"
        return [tuple(row) for row in self.db.execute(sql, [run_id])]

    def remove_links(self, links):
        with self.db.conn:
            self.db.conn.executemany(
                "delete from links where from_tab = ? and from_id = ?"
                " and to_tab = ? and to_id = ? and link_kind = ?",
                links,
            )

    def count_links(self):
        return self.db.table("links").count


def _field_row(tab_id, schema, column):
    field = column.field
    has_options = field.field_type in OPTION_TYPES
    return {
        "tab_id": tab_id,
        "field_name": field.name,
        "label": field.label,
        "field_type": field.field_type,
        "column_name": column.name,
        "column_type": column.sql_type,
        "required": int(bool(field.required)),
        "linked_tab": field.linked_tab,
        "options_table": schema.options_table(column) if has_options else None,
        "retired": 0,
        "extra": json.dumps(field.extra, ensure_ascii=False) if field.extra else None,
    }


def _foreign_target(schema, column, tables_by_tab_name):
    field_type = column.field.field_type
    if field_type == "Dropdown":
        return schema.options_table(column), "option_id"
    linked_table = tables_by_tab_name.get(column.field.linked_tab)
    if field_type == "LinkedRecord" and linked_table:
        return linked_table, RECORD_ID
    return None


def _quote(name):
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=1024)
def _upsert_sql(table, columns, key):
    names = ", ".join(_quote(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    updates = [c for c in columns if c not in key]
    sql = f"insert into {_quote(table)} ({names}) values ({marks})"
    conflict = ", ".join(_quote(c) for c in key)
    if not updates:
        return sql + f" on conflict ({conflict}) do nothing"
    assignments = ", ".join(f"{_quote(c)} = excluded.{_quote(c)}" for c in updates)
    return sql + f" on conflict ({conflict}) do update set {assignments}"
