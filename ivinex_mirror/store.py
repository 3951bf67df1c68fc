"""The mirror database: its own bookkeeping tables, a table per tab, links.

Every write that belongs to one page of the API happens in one transaction,
so an interrupted run leaves whole pages or nothing.
"""

import json
import logging
from datetime import datetime, timezone

import sqlite_utils

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
            "extra": str,
        },
        "tab_id",
    ),
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


def now_iso():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


class Mirror:
    """An ivinex-mirror SQLite database."""

    def __init__(self, path):
        self.db = sqlite_utils.Database(path)
        self.ensure_mirror_tables()

    def close(self):
        self.db.close()

    def ensure_mirror_tables(self):
        for name, (columns, pk) in MIRROR_TABLE_COLUMNS.items():
            self.db.table(name).create(columns, pk=pk, if_not_exists=True)

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
        """Record a tab's outcome and how many records its table holds."""
        table_name = self.known_tables()[tab_id]
        count = self.db.table(table_name).count
        with self.db.conn:
            self.db.table("ivinex_tabs").update(
                tab_id,
                {"status": status, "record_count": count, "last_synced_at": now_iso()},
            )
        return count

    def ensure_tab_table(self, tab, schema):
        """Create or widen the tab's table, its options tables and its rows in
        ivinex_fields. Columns are only ever added, never dropped or renamed."""
        with self.db.conn:
            self._ensure_columns(schema)
            self._save_options(schema)
            self._save_fields(tab, schema)

    def _ensure_columns(self, schema):
        table = self.db.table(schema.table)
        wanted = {c.name: c.sql_type for c in schema.columns.values()}
        if not table.exists():
            table.create(wanted, pk=RECORD_ID)
            return
        present = {name.lower() for name in table.columns_dict}
        for name, sql_type in wanted.items():
            if name.lower() not in present:
                table.add_column(name, sql_type)

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

    def _save_fields(self, tab, schema):
        listed = set()
        for column in schema.columns.values():
            listed.add(column.field.name)
            self.db.table("ivinex_fields").upsert(
                _field_row(tab.tab_id, schema, column), pk=("tab_id", "field_name")
            )
        # A field no longer listed keeps its column and its data.
        for field_name in set(self.known_columns(tab.tab_id)) - listed:
            self.db.execute(
                "update ivinex_fields set retired = 1"
                " where tab_id = ? and field_name = ?",
                [tab.tab_id, field_name],
            )

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

    def save_records(self, table, rows):
        """Upsert one page of rows in one transaction. Rows may carry
        different columns; a column a row leaves out keeps its stored value."""
        by_columns = {}
        for row in rows:
            by_columns.setdefault(tuple(row), []).append(row)
        with self.db.conn:
            for columns, group in by_columns.items():
                sql = _upsert_sql(table, columns, key=(RECORD_ID,))
                self.db.conn.executemany(sql, [tuple(r.values()) for r in group])

    def save_links(self, links, run_id):
        """Insert one page of links, marking each as seen by this run."""
        rows = [
            (link.from_tab, link.from_id, link.to_tab, link.to_id, link.kind, run_id)
            for link in links
        ]
        sql = _upsert_sql("links", LINK_KEY + ("seen_run",), key=LINK_KEY)
        with self.db.conn:
            self.db.conn.executemany(sql, rows)

    def remove_unseen_links(self, run_id, tab_names=None):
        """Drop links a complete pass of this run did not see: they were
        unlinked upstream. With tab_names, only links touching those tabs."""
        sql = "delete from links where seen_run < ?"
        params = [run_id]
        if tab_names is not None:
            marks = ", ".join("?" for _ in tab_names)
            sql += f" and (from_tab in ({marks}) or to_tab in ({marks}))"
            params += list(tab_names) * 2
        with self.db.conn:
            return self.db.execute(sql, params).rowcount

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
