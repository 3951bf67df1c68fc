"""The sync loop: tabs, then each tab's fields and records, then links."""

import logging
from dataclasses import dataclass, field

from .errors import IvinexError, PermissionDenied
from .schema import (
    MIRROR_TABLES,
    TabSchema,
    pick_label_column,
    plan_columns,
    record_row,
    table_name_for,
    undeclared_field,
)

logger = logging.getLogger(__name__)


class UnknownTab(IvinexError):
    """--tab named a tab the instance does not have."""


@dataclass
class TabResult:
    name: str
    status: str = "ok"
    fetched: int = 0
    stored: int = 0
    misfits: int = 0
    error: str | None = None


@dataclass
class SyncResult:
    run_id: int
    tabs: list = field(default_factory=list)
    links: int = 0
    links_status: str = "not run"
    warnings: list = field(default_factory=list)
    status: str = "running"

    @property
    def counts(self):
        return {
            "tabs": sum(1 for t in self.tabs if t.status == "ok"),
            "records": sum(t.fetched for t in self.tabs),
            "links": self.links,
            "warnings": len(self.warnings),
        }


class Reporter:
    """Hears about a sync's progress. The CLI draws bars; tests stay quiet."""

    def tab_started(self, tab, total):
        pass

    def page_saved(self, tab, count):
        pass

    def tab_finished(self, tab, result):
        pass

    def warning(self, message):
        logger.warning(message)


def sync(client, mirror, *, tab_names=None, reporter=None):
    """Mirror the instance (or the tabs named) into the database.

    Returns a SyncResult; raises IvinexError when the run cannot go on, after
    recording the failure in ivinex_sync_runs."""
    run = SyncResult(mirror.start_run())
    run_sync = _Sync(client, mirror, run, reporter or Reporter())
    try:
        run_sync.run(tab_names)
    except BaseException as error:
        run.status = "failed"
        message = str(error) or type(error).__name__
        mirror.finish_run(run.run_id, "failed", run.counts, error=message)
        raise
    run.status = "ok" if _complete(run) else "partial"
    mirror.finish_run(run.run_id, run.status, run.counts)
    return run


def _complete(run):
    tabs_ok = all(t.status == "ok" for t in run.tabs)
    return tabs_ok and run.links_status == "ok"


class _Sync:
    def __init__(self, client, mirror, run, reporter):
        self.client = client
        self.mirror = mirror
        self.run_result = run
        self.reporter = reporter

    def warn(self, message):
        self.run_result.warnings.append(message)
        self.reporter.warning(message)

    def run(self, tab_names):
        tabs = select_tabs(self.client.fetch_tabs(), tab_names)
        only_one = tab_names is not None and len(tabs) == 1
        prepared = []
        for tab in tabs:
            schema = self.prepare_tab(tab, only_one)
            if schema is not None:
                prepared.append((tab, schema))
        self.ensure_foreign_keys(prepared)
        for tab, schema in prepared:
            self.sync_tab(tab, schema, only_one)
        selected = None if tab_names is None else [tab.name for tab in tabs]
        self.sync_links(selected)

    def prepare_tab(self, tab, only_one):
        """Read the tab's fields and make its table ready. None if refused."""
        try:
            fields = self.client.fetch_fields(tab)
        except PermissionDenied as error:
            self.skip(tab, error, only_one)
            return None
        schema = self.plan_tab(tab, fields)
        self.mirror.save_tab(tab, schema.table, "syncing", schema.label_column)
        self.mirror.ensure_tab_table(tab, schema)
        for column in schema.columns.values():
            if not column.known_type:
                self.warn(
                    f"{tab.name}: field {column.field.name!r} has the unknown type "
                    f"{column.field.field_type!r}; its values are stored as text."
                )
        return schema

    def plan_tab(self, tab, fields):
        tables = self.mirror.known_tables()
        table = tables.get(tab.tab_id)
        if table is None:
            table = table_name_for(tab.name, set(MIRROR_TABLES) | set(tables.values()))
        columns = plan_columns(fields, self.mirror.known_columns(tab.tab_id))
        return TabSchema(table, columns, pick_label_column(columns))

    def skip(self, tab, error, only_one):
        if only_one:
            raise error
        self.warn(f"Skipped tab {tab.name}: {error}")
        self.run_result.tabs.append(TabResult(tab.name, "skipped", error=str(error)))

    def ensure_foreign_keys(self, prepared):
        by_name = self.mirror.tables_by_tab_name()
        self.mirror.ensure_foreign_keys([s for _, s in prepared], by_name)

    def sync_tab(self, tab, schema, only_one):
        result = TabResult(tab.name)
        try:
            for number, page in enumerate(self.client.fetch_record_pages(tab)):
                if number == 0:
                    self.reporter.tab_started(tab, page.total)
                self.save_page(tab, schema, page.items, result)
        except PermissionDenied as error:
            self.skip(tab, error, only_one)
            return
        result.stored = self.mirror.finish_tab(tab.tab_id, "ok")
        self.run_result.tabs.append(result)
        self.reporter.tab_finished(tab, result)

    def save_page(self, tab, schema, records, result):
        new_keys = {key for record in records for key in record} - set(schema.columns)
        if new_keys:
            self.add_undeclared_fields(tab, schema, sorted(new_keys))
        rows = [self.row_for(tab, schema, record, result) for record in records]
        self.mirror.save_records(schema.table, rows)
        result.fetched += len(rows)
        self.reporter.page_saved(tab, len(rows))

    def row_for(self, tab, schema, record, result):
        row, misfits = record_row(record, schema.columns)
        record_id = record.get("collection_id")
        for field_name, reason in misfits:
            result.misfits += 1
            self.warn(
                f"{tab.name}: record {record_id}, field {field_name!r}: {reason}; "
                "stored as given."
            )
        for column in schema.columns.values():
            name = column.field.name
            # An omitted key is not a null, so only a value sent empty counts.
            if column.field.required and name in record and record[name] in ("", None):
                self.warn(
                    f"{tab.name}: record {record_id} has no value in the required "
                    f"field {column.field.name!r}."
                )
        return row

    def add_undeclared_fields(self, tab, schema, keys):
        """Keep keys that the Fields report does not list, as text columns."""
        self.warn(
            f"{tab.name}: records carry fields the Fields report does not list "
            f"({', '.join(keys)}); they are kept as text columns."
        )
        fields = [c.field for c in schema.columns.values()]
        fields += [undeclared_field(key) for key in keys]
        schema.columns = plan_columns(fields, self.mirror.known_columns(tab.tab_id))
        self.mirror.ensure_tab_table(tab, schema)

    def sync_links(self, selected):
        """One full pass over AllRelatedItems; links it did not see are gone
        upstream, so they go from the mirror too once the pass completes."""
        run_id = self.run_result.run_id
        try:
            for page in self.client.fetch_link_pages():
                links = [link for link in page.items if _touches(link, selected)]
                self.mirror.save_links(links, run_id)
        except PermissionDenied as error:
            self.warn(f"Skipped links: {error}")
            self.run_result.links_status = "skipped"
            return
        self.mirror.remove_unseen_links(run_id, selected)
        self.run_result.links = self.mirror.count_links()
        self.run_result.links_status = "ok"


def _touches(link, selected):
    return selected is None or link.from_tab in selected or link.to_tab in selected


def select_tabs(tabs, tab_names):
    """The tabs a run covers: all of them, or those named by name or id."""
    if tab_names is None:
        return sorted(tabs, key=lambda tab: tab.tab_id)
    by_key = {}
    for tab in tabs:
        by_key[tab.name.lower()] = tab
        by_key[str(tab.tab_id)] = tab
    unknown = [name for name in tab_names if name.lower() not in by_key]
    if unknown:
        available = ", ".join(tab.name for tab in tabs)
        raise UnknownTab(
            f"No tab named {', '.join(unknown)} on this instance. "
            f"Available tabs: {available}."
        )
    chosen = {by_key[name.lower()].tab_id: by_key[name.lower()] for name in tab_names}
    return sorted(chosen.values(), key=lambda tab: tab.tab_id)
