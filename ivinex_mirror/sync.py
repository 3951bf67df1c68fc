"""The sync loop: tabs, then each tab's fields and records, then links.

Records are paged by `modified_date` (the API's ModifiedSince), so that the
cursor, the largest `modified_date` committed, can move with every page: a run
killed at any moment resumes where its last whole page ended.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

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

# Re-read what changed this long before the cursor, so that edits made in the
# same second as the last page, or stamped by a server clock a little behind,
# are never missed. Re-reading a record is harmless: upserts are idempotent.
OVERLAP = timedelta(minutes=5)

# Where a full pass starts: before any record's modified_date.
BEGINNING = datetime(1970, 1, 1)

# Links are re-read whenever records changed (a link change also stamps both
# records), and at least every this many runs, for instances whose link
# changes do not stamp the records.
LINKS_FULL_EVERY = 12


class UnknownTab(IvinexError):
    """--tab named a tab the instance does not have."""


@dataclass
class Options:
    tab_names: list | None = None
    full: bool = False
    hard_deletes: bool = False
    history: bool = False


@dataclass
class TabResult:
    name: str
    status: str = "ok"
    fetched: int = 0
    changed: int = 0
    deleted: int = 0
    stored: int = 0
    misfits: int = 0
    full_pass: bool = False
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
            "changed": sum(t.changed for t in self.tabs),
            "deleted": sum(t.deleted for t in self.tabs),
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


def sync(client, mirror, *, reporter=None, **options):
    """Mirror the instance (or the tabs named) into the database.

    Options: tab_names, full, hard_deletes, history (see Options). Returns a
    SyncResult; raises IvinexError when the run cannot go on, after recording
    the failure in ivinex_sync_runs."""
    run = SyncResult(mirror.start_run())
    run_sync = _Sync(client, mirror, run, reporter or Reporter(), Options(**options))
    try:
        run_sync.run()
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
    return tabs_ok and run.links_status in ("ok", "unchanged")


class _Sync:
    def __init__(self, client, mirror, run, reporter, options):
        self.client = client
        self.mirror = mirror
        self.run_result = run
        self.reporter = reporter
        self.options = options

    @property
    def run_id(self):
        return self.run_result.run_id

    def warn(self, message):
        self.run_result.warnings.append(message)
        self.reporter.warning(message)

    def run(self):
        tab_names = self.options.tab_names
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

    # Fields

    def prepare_tab(self, tab, only_one):
        """Read the tab's fields and make its table ready. None if refused."""
        try:
            fields = self.client.fetch_fields(tab)
        except PermissionDenied as error:
            self.skip(tab, error, only_one)
            return None
        schema = self.plan_tab(tab, fields)
        self.mirror.save_tab(tab, schema.table, "syncing", schema.label_column)
        self.mirror.ensure_tab_table(tab, schema, self.options.history)
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

    # Records

    def sync_tab(self, tab, schema, only_one):
        result = TabResult(tab.name)
        try:
            self.sync_records(tab, schema, result)
        except PermissionDenied as error:
            self.skip(tab, error, only_one)
            return
        result.stored = self.mirror.finish_tab(tab.tab_id, "ok")
        self.run_result.tabs.append(result)
        self.reporter.tab_finished(tab, result)

    def sync_records(self, tab, schema, result):
        cursor, pass_id, _ = self.mirror.tab_state(tab.tab_id)
        if self.options.full or cursor is None:
            pass_id = self.run_id
            self.mirror.start_full_pass(tab.tab_id, pass_id)
            cursor = None
        self.read_changes(tab, schema, since(cursor), result)
        if pass_id is None and self.mirror_disagrees(tab, schema):
            # Records were deleted (or missed): a full pass finds which.
            pass_id = self.run_id
            self.mirror.start_full_pass(tab.tab_id, pass_id)
            self.read_changes(tab, schema, BEGINNING, result)
        if pass_id is not None:
            self.finish_full_pass(tab, schema, pass_id, result)

    def mirror_disagrees(self, tab, schema):
        """True when the tab's record count upstream differs from the live
        rows of the mirror: one tiny request instead of a full pass."""
        total = self.client.fetch_record_total(tab)
        return total is not None and total != self.mirror.live_count(schema.table)

    def read_changes(self, tab, schema, start, result):
        """Page through the records modified since `start`, oldest first.

        Each page is asked for from the last modified_date seen, skipping the
        records already read at exactly that moment, so offsets stay small
        and a record edited while paging moves to the end, not out of sight."""
        pages = _Paging(start)
        while True:
            page = self.client.fetch_record_page(
                tab, modified_since=pages.since, offset=pages.offset
            )
            if pages.first:
                self.reporter.tab_started(tab, page.total)
            ordered = pages.advance(page.items)
            if not ordered:
                self.warn(
                    f"{tab.name}: the server does not order records by "
                    "modified_date; this run pages by offset and moves the cursor "
                    "only at the end."
                )
            cursor = pages.cursor if pages.ordered else None
            self.save_page(tab, schema, page.items, result, cursor)
            if len(page.items) < self.client.page_size:
                break
        if not pages.ordered and pages.cursor:
            self.mirror.save_page(tab.tab_id, schema.table, [], 0, pages.cursor)

    def save_page(self, tab, schema, records, result, cursor):
        new_keys = {key for record in records for key in record} - set(schema.columns)
        if new_keys:
            self.add_undeclared_fields(tab, schema, sorted(new_keys))
        rows = {}
        for record in records:
            # A record sent twice in one page is stored once, as last sent.
            rows[record["collection_id"]] = self.row_for(tab, schema, record, result)
        changed = self.mirror.save_page(
            tab.tab_id,
            schema.table,
            list(rows.values()),
            self.run_id,
            cursor,
            self.options.history,
        )
        result.fetched += len(records)
        result.changed += len(changed)
        self.reporter.page_saved(tab, len(records))

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
        self.mirror.ensure_tab_table(tab, schema, self.options.history)

    # Deletes

    def finish_full_pass(self, tab, schema, pass_id, result):
        """Rows the pass did not see were deleted upstream, unless the count
        says the pass missed records that were moving while it paged."""
        unseen = self.mirror.unseen_ids(schema.table, pass_id)
        total = self.client.fetch_record_total(tab) if unseen else None
        live_after = self.mirror.live_count(schema.table) - len(unseen)
        if total is not None and live_after < total:
            self.warn(
                f"{tab.name}: records moved while the tab was read; deletes are "
                "left to a full pass in the next run."
            )
            self.mirror.start_full_pass(tab.tab_id, None)
            return
        if unseen:
            self.mirror.save_deletes(
                tab.name, schema.table, unseen, self.options.hard_deletes
            )
        self.mirror.finish_full_pass(tab.tab_id, self.run_id)
        result.deleted += len(unseen)
        result.full_pass = True

    # Links

    def sync_links(self, selected):
        """A pass over AllRelatedItems when anything may have changed; links
        it did not see are gone upstream, so they go once the pass is whole."""
        if not self.links_due():
            self.run_result.links_status = "unchanged"
            self.run_result.links = self.mirror.count_links()
            return
        self.mirror.set_state("links_pass", str(self.run_id))
        try:
            for page in self.client.fetch_link_pages():
                links = [link for link in page.items if _touches(link, selected)]
                self.mirror.save_links(links, self.run_id)
        except PermissionDenied as error:
            self.warn(f"Skipped links: {error}")
            self.run_result.links_status = "skipped"
            return
        self.mirror.remove_unseen_links(self.run_id, selected)
        if selected is None:
            self.mirror.set_state("links_pass", None)
            self.mirror.set_state("links_last_full", str(self.run_id))
        self.run_result.links = self.mirror.count_links()
        self.run_result.links_status = "ok"

    def links_due(self):
        if self.options.full or self.options.tab_names is not None:
            return True
        if self.mirror.get_state("links_pass") is not None:
            return True
        changed = any(t.changed or t.deleted for t in self.run_result.tabs)
        last_full = int(self.mirror.get_state("links_last_full") or 0)
        return changed or self.run_id - last_full >= LINKS_FULL_EVERY


class _Paging:
    """Where the next page of a tab starts: a moment and an offset from it."""

    def __init__(self, start):
        self.since = start
        self.offset = 0
        self.cursor = None
        self.first = True
        self.ordered = True

    def advance(self, records):
        """Take in one page; False when the page was not in modified order."""
        self.first = False
        stamps = [r.get("modified_date") for r in records]
        in_order = None not in stamps and stamps == sorted(stamps)
        was_ordered = self.ordered
        self.ordered = self.ordered and in_order
        if stamps and None not in stamps:
            self.cursor = max([self.cursor or "", *stamps])
        if not self.ordered or not stamps or stamps[-1] == self.since:
            self.offset += len(records)
        else:
            self.since = stamps[-1]
            self.offset = stamps.count(stamps[-1])
        return self.ordered or not was_ordered


def since(cursor):
    """Where an incremental read starts: the cursor less the overlap."""
    if cursor is None:
        return BEGINNING
    try:
        return datetime.fromisoformat(cursor) - OVERLAP
    except ValueError:
        return BEGINNING


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
