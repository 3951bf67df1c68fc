"""The sync loop: tabs, then each tab's fields and records, then links.

Records are paged by `modified_date` (the API's ModifiedSince), so that the
cursor, the largest `modified_date` committed, can move with every page: a run
killed at any moment resumes where its last whole page ended.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .errors import IvinexError, NotFound, PermissionDenied
from .fetcher import Fetcher
from .schema import (
    MIRROR_TABLES,
    TabSchema,
    pick_label_column,
    plan_columns,
    table_name_for,
    undeclared_field,
)
from .search import ensure_search, reserved_columns
from .values import record_row

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

# Links a pass did not see are checked one record at a time, up to this many
# records; beyond it (a mass unlink), the pass is trusted.
CONFIRM_LIMIT = 1000

# Requests in flight at once: tabs are read side by side, links by page.
DEFAULT_CONCURRENCY = 4


class UnknownTab(IvinexError):
    """--tab named a tab the instance does not have."""


@dataclass
class Options:
    tab_names: list | None = None
    full: bool = False
    hard_deletes: bool = False
    history: bool = False
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass
class TabResult:
    name: str
    status: str = "ok"
    fetched: int = 0
    changed: int = 0
    deleted: int = 0
    stored: int = 0
    misfits: int = 0
    unreadable: int = 0
    full_pass: bool = False
    error: str | None = None


@dataclass
class SyncResult:
    run_id: int
    tabs: list = field(default_factory=list)
    links: int = 0
    links_status: str = "not run"
    links_unreadable: int = 0
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
        ensure_search(mirror.db)
    except BaseException as error:
        run.status = "failed"
        message = str(error) or type(error).__name__
        mirror.finish_run(run.run_id, "failed", run.counts, error=message)
        raise
    run.status = "ok" if _complete(run) else "partial"
    mirror.finish_run(run.run_id, run.status, run.counts)
    return run


def _complete(run):
    """Everything asked for is in the mirror: no tab skipped, no record or
    link left out for being unreadable."""
    tabs_ok = all(t.status == "ok" and not t.unreadable for t in run.tabs)
    links_ok = run.links_status in ("ok", "unchanged") and not run.links_unreadable
    return tabs_ok and links_ok


class _Sync:
    """One run. Read tasks run on the fetcher's threads and only call the
    client; everything that touches the database happens here, on the
    calling thread, as their events arrive."""

    def __init__(self, client, mirror, run, reporter, options):
        self.client = client
        self.mirror = mirror
        self.run_result = run
        self.reporter = reporter
        self.options = options
        self.fetcher = Fetcher(client, options.concurrency)
        self.tabs = {}  # tab_id: (tab, schema, TabResult)
        self.passes = {}  # tab_id: id of the full pass under way, or None
        self.fields_read = {}  # tab_id: fields, until the tab is prepared
        self.tabs_read = set()  # tab_ids whose records are all read
        self.totals = {}  # tab_id: record count upstream, once asked
        self.skipped = set()  # tab_ids refused
        self.full_tabs = set()  # tab_ids to read whole: a field changed type
        self.links_state = None  # None, "reading", "refused"
        self.only_one = False

    @property
    def run_id(self):
        return self.run_result.run_id

    def warn(self, message):
        self.run_result.warnings.append(message)
        self.reporter.warning(message)

    def run(self):
        wait = True
        try:
            self.run_steps()
        except KeyboardInterrupt:
            # Whole pages are committed; requests in flight are not waited for.
            wait = False
            raise
        finally:
            self.fetcher.close(wait=wait)

    def run_steps(self):
        tab_names = self.options.tab_names
        tabs = select_tabs(self.client.fetch_tabs(), tab_names)
        self.only_one = tab_names is not None and len(tabs) == 1
        for tab in tabs:
            self.fetcher.submit(self.read_fields, tab)
        self.handle_events()
        # In tab order, not in the order answers came, so that new tabs whose
        # names fold alike get the same tables on every run.
        for tab in tabs:
            if tab.tab_id in self.fields_read:
                self.prepare_tab(tab, self.fields_read.pop(tab.tab_id))
        self.ensure_foreign_keys()
        for tab_id in list(self.tabs):
            self.start_records(tab_id)
        self.handle_events()
        # Links only once every record is read: a link made or removed while
        # the links were being read stamps its records, and a run that had
        # already read those stamps would never look at that link again.
        if self.links_due():
            self.start_links()
            self.handle_events()
        self.finish_links()

    def handle_events(self):
        handlers = {
            "fields": self.on_fields,
            "refused": self.on_refused,
            "page": self.on_page,
            "tab read": self.on_tab_read,
            "total": self.on_total,
            "links": self.on_links,
            "links refused": self.on_links_refused,
            "related": self.on_related,
            "failed": self.on_failed,
        }
        for kind, *details in self.fetcher.events():
            handlers[kind](*details)

    def on_failed(self, error):
        raise error

    # Fields

    def read_fields(self, tab):
        try:
            fields = self.fetcher.call(self.client.fetch_fields, tab)
        except PermissionDenied as error:
            self.fetcher.emit("refused", tab, error)
            return
        self.fetcher.emit("fields", tab, fields)

    def on_fields(self, tab, fields):
        self.fields_read[tab.tab_id] = fields

    def prepare_tab(self, tab, fields):
        """Make the tab's table ready for its records."""
        schema = self.plan_tab(tab, fields)
        before = self.mirror.known_field_types(tab.tab_id)
        if any(before.get(f.name, f.field_type) != f.field_type for f in fields):
            # Stored values follow the old type; re-read them under the new.
            self.full_tabs.add(tab.tab_id)
        self.mirror.save_tab(tab, schema.table, "syncing", schema.label_column)
        self.mirror.ensure_tab_table(tab, schema, self.options.history)
        self.tabs[tab.tab_id] = (tab, schema, TabResult(tab.name))
        for column in schema.columns.values():
            if not column.known_type:
                self.warn(
                    f"{tab.name}: field {column.field.name!r} has the unknown type "
                    f"{column.field.field_type!r}; its values are stored as text."
                )

    def plan_tab(self, tab, fields):
        tables = self.mirror.known_tables()
        table = tables.get(tab.tab_id)
        if table is None:
            table = table_name_for(tab.name, set(MIRROR_TABLES) | set(tables.values()))
        known = self.mirror.known_columns(tab.tab_id)
        columns = plan_columns(fields, known, reserved_columns(table))
        return TabSchema(table, columns, pick_label_column(columns))

    def on_refused(self, tab, error):
        """No permission for the tab: skip it, or stop if it was all we had."""
        if self.only_one:
            raise error
        if tab.tab_id in self.skipped:
            return  # refused twice: its count and its records
        self.skipped.add(tab.tab_id)
        self.tabs.pop(tab.tab_id, None)
        self.warn(f"Skipped tab {tab.name}: {error}")
        self.run_result.tabs.append(TabResult(tab.name, "skipped", error=str(error)))

    def ensure_foreign_keys(self):
        by_name = self.mirror.tables_by_tab_name()
        schemas = [schema for _, schema, _ in self.tabs.values()]
        self.mirror.ensure_foreign_keys(schemas, by_name)

    # Records

    def start_records(self, tab_id):
        tab = self.tabs[tab_id][0]
        cursor, pass_id, _ = self.mirror.tab_state(tab_id)
        if self.options.full or cursor is None or tab_id in self.full_tabs:
            pass_id = self.run_id
            self.mirror.start_full_pass(tab_id, pass_id)
            cursor = None
        self.passes[tab_id] = pass_id
        if pass_id is None:
            # An incremental read asks for the count at the same time; any
            # change in between only makes the counts differ, which is safe.
            self.fetcher.submit(self.read_total, tab)
        self.fetcher.submit(self.read_records, tab, since(cursor), pass_id is not None)

    def read_records(self, tab, start, count_after):
        """Page through the records modified since `start`, oldest first.

        Each page is asked for from the last modified_date seen, skipping the
        records already read at exactly that moment, so offsets stay small
        and a record edited while paging moves to the end, not out of sight.
        A full pass then asks for the tab's record count, to find deletes."""
        pages = _Paging(start)
        try:
            while True:
                page = self.fetcher.call(
                    self.client.fetch_record_page,
                    tab,
                    modified_since=pages.since,
                    offset=pages.offset,
                )
                in_order = pages.advance(page.items)
                cursor = pages.cursor if pages.ordered else None
                self.fetcher.emit("page", tab, page, cursor, in_order)
                if len(page.items) < self.client.page_size:
                    break
        except PermissionDenied as error:
            self.fetcher.emit("refused", tab, error)
            return
        late_cursor = None if pages.ordered else pages.cursor
        self.fetcher.emit("tab read", tab, late_cursor)
        if count_after:
            self.read_total(tab)

    def read_total(self, tab):
        """One tiny request: how many records the tab holds upstream."""
        try:
            total = self.fetcher.call(self.client.fetch_record_total, tab)
        except PermissionDenied as error:
            self.fetcher.emit("refused", tab, error)
            return
        self.fetcher.emit("total", tab, total)

    def on_page(self, tab, page, cursor, in_order):
        if tab.tab_id not in self.tabs:
            return  # refused meanwhile (its count, say): the tab is skipped
        _, schema, result = self.tabs[tab.tab_id]
        if not in_order:
            self.warn(
                f"{tab.name}: the server does not order records by modified_date; "
                "this run pages by offset and moves the cursor only at the end."
            )
        if result.fetched == 0:
            self.reporter.tab_started(tab, page.total)
        for reason in page.skipped:
            result.unreadable += 1
            self.warn(f"{tab.name}: left out {reason}")
        self.save_page(tab, schema, page.items, result, cursor)

    def save_page(self, tab, schema, records, result, cursor):
        new_keys = {key for record in records for key in record} - set(schema.columns)
        if new_keys:
            self.add_undeclared_fields(tab, schema, sorted(new_keys))
        required = [c.field.name for c in schema.columns.values() if c.field.required]
        rows = {}
        for record in records:
            row = self.row_for(tab, schema, record, result, required)
            if record["collection_id"] in rows:
                self.warn(
                    f"{tab.name}: record {record['collection_id']} came twice in "
                    "one page; the last one is kept."
                )
            rows[record["collection_id"]] = row
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

    def row_for(self, tab, schema, record, result, required):
        row, misfits = record_row(record, schema.columns)
        record_id = record.get("collection_id")
        for field_name, reason in misfits:
            result.misfits += 1
            self.warn(
                f"{tab.name}: record {record_id}, field {field_name!r}: {reason}; "
                "stored as given."
            )
        for name in required:
            # An omitted key is not a null, so only a value sent empty counts.
            if name in record and record[name] in ("", None):
                self.warn(
                    f"{tab.name}: record {record_id} has no value in the required "
                    f"field {name!r}."
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
        known = self.mirror.known_columns(tab.tab_id)
        schema.columns = plan_columns(fields, known, reserved_columns(schema.table))
        self.mirror.ensure_tab_table(tab, schema, self.options.history)

    def on_tab_read(self, tab, late_cursor):
        if tab.tab_id not in self.tabs:
            return
        if late_cursor:
            self.mirror.save_cursor(tab.tab_id, late_cursor)
        self.tabs_read.add(tab.tab_id)
        self.finish_tab_when_counted(tab)

    def on_total(self, tab, total):
        if tab.tab_id in self.tabs:
            self.totals[tab.tab_id] = total
            self.finish_tab_when_counted(tab)

    def finish_tab_when_counted(self, tab):
        """Once a tab is read and counted: find its deletes, or, when the
        counts differ after an incremental read, start a full pass."""
        if tab.tab_id not in self.tabs_read or tab.tab_id not in self.totals:
            return
        self.tabs_read.discard(tab.tab_id)
        total = self.totals.pop(tab.tab_id)
        _, schema, result = self.tabs[tab.tab_id]
        pass_id = self.passes[tab.tab_id]
        live = self.mirror.live_count(schema.table)
        if pass_id is None and total is not None and total != live:
            # Records were deleted (or missed): a full pass finds which.
            self.passes[tab.tab_id] = self.run_id
            self.mirror.start_full_pass(tab.tab_id, self.run_id)
            self.fetcher.submit(self.read_records, tab, BEGINNING, True)
            return
        if pass_id is not None:
            self.finish_full_pass(tab, schema, pass_id, result, total)
        if self.options.hard_deletes:
            # This run's deletes and any marked by earlier runs.
            self.mirror.remove_marked_deletes(schema.table)
        result.stored = self.mirror.finish_tab(tab.tab_id, "ok")
        self.run_result.tabs.append(result)
        self.reporter.tab_finished(tab, result)

    # Deletes

    def finish_full_pass(self, tab, schema, pass_id, result, total):
        """Rows the pass did not see were deleted upstream, unless the count
        says the pass missed records that were moving while it paged."""
        unseen = self.mirror.unseen_ids(schema.table, pass_id)
        live_after = self.mirror.live_count(schema.table) - len(unseen)
        if total is not None and live_after < total:
            self.warn(
                f"{tab.name}: records moved while the tab was read; deletes are "
                "left to a full pass in the next run."
            )
            self.mirror.start_full_pass(tab.tab_id, None)
            return
        if unseen:
            self.mirror.save_deletes(tab.name, schema.table, unseen)
        self.mirror.finish_full_pass(tab.tab_id, self.run_id)
        result.deleted += len(unseen)
        result.full_pass = True

    # Links

    def links_due(self):
        """Whether AllRelatedItems needs reading in this run."""
        if self.options.full or self.options.tab_names is not None:
            return True
        if self.mirror.get_state("links_pass") is not None:
            return True
        if self.mirror.get_state("links_last_full") is None:
            return True
        changed = any(t.changed or t.deleted for t in self.run_result.tabs)
        last_full = int(self.mirror.get_state("links_last_full"))
        return changed or self.run_id - last_full >= LINKS_FULL_EVERY

    def start_links(self):
        self.links_state = "reading"
        self.mirror.set_state("links_pass", str(self.run_id))
        self.fetcher.submit(self.read_links, 0, 0)

    def read_links(self, offset, last_expected):
        """One page of links. The first page's Total tells which pages to ask
        for at once; past the last one expected, pages follow one by one
        until a short page, since Total is only a hint."""
        try:
            page = self.fetcher.call(self.client.fetch_link_page, offset=offset)
        except PermissionDenied as error:
            self.fetcher.emit("links refused", error)
            return
        self.fetcher.emit("links", page.items, page.skipped)
        size = self.client.page_size
        if len(page.items) < size:
            return
        if offset == 0 and page.total:
            last_expected = (page.total - 1) // size * size
            for next_offset in range(size, last_expected + 1, size):
                self.fetcher.submit(self.read_links, next_offset, last_expected)
        if offset >= last_expected:
            self.fetcher.submit(self.read_links, offset + size, offset + size)

    def on_links(self, links, skipped):
        for reason in skipped:
            self.run_result.links_unreadable += 1
            self.warn(f"Links: left out {reason}")
        selected = self.selected_tab_names()
        links = [link for link in links if _touches(link, selected)]
        self.mirror.save_links(links, self.run_id)

    def on_links_refused(self, error):
        if self.links_state != "refused":
            self.warn(f"Skipped links: {error}")
        self.links_state = "refused"

    def selected_tab_names(self):
        if self.options.tab_names is None:
            return None
        return {tab.name for tab, _, _ in self.tabs.values()}

    def finish_links(self):
        """Links a whole pass did not see were unlinked upstream, or moved
        while the pass paged (an unlink shifts every later page); each one is
        checked against its record's related items before it goes."""
        result = self.run_result
        result.links = self.mirror.count_links()
        if self.links_state is None:
            result.links_status = "unchanged"
            return
        if self.links_state == "refused":
            result.links_status = "skipped"
            return
        result.links_status = "ok"
        if self.selected_tab_names() is not None:
            return  # only a pass over every tab can tell an unlink
        unseen = self.mirror.unseen_links(self.run_id)
        gone = self.confirm_unlinked(unseen)
        if len(gone) < len(unseen):
            self.warn(
                f"{len(unseen) - len(gone)} links moved while the links were read; "
                "they still exist upstream and are kept."
            )
        self.mirror.remove_links(gone)
        self.mirror.set_state("links_pass", None)
        self.mirror.set_state("links_last_full", str(self.run_id))
        result.links = self.mirror.count_links()

    def confirm_unlinked(self, unseen):
        """The links of `unseen` that their record no longer lists. Past
        CONFIRM_LIMIT records to ask about, the pass is trusted as it is."""
        by_record = {}
        for link in unseen:
            by_record.setdefault(link[:2], set()).add(link[2:])
        if len(by_record) > CONFIRM_LIMIT:
            return unseen
        self.related = {}
        for from_tab, from_id in by_record:
            self.fetcher.submit(self.read_related, from_tab, from_id)
        self.handle_events()
        return [
            link
            for link in unseen
            if link[2:] not in self.related.get(link[:2], {link[2:]})
        ]

    def read_related(self, tab_name, record_id):
        """What one record is linked to now; nothing if it is gone."""
        try:
            items = self.fetcher.call(
                self.client.fetch_related_items, tab_name, record_id
            )
        except NotFound:
            items = []
        except PermissionDenied:
            return  # cannot tell: the links stay
        linked = {(i["tab"], i["record_id"], i["link_kind"]) for i in items}
        self.fetcher.emit("related", (tab_name, record_id), linked)

    def on_related(self, record, linked):
        self.related[record] = linked


class _Paging:
    """Where the next page of a tab starts: a moment and an offset from it."""

    def __init__(self, start):
        self.since = start
        self.offset = 0
        self.cursor = None
        self.ordered = True

    def advance(self, records):
        """Take in one page; False when the page was not in modified order."""
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
            f"No tab named {', '.join(repr(name) for name in unknown)} on this "
            f"instance. Available tabs: {available}."
        )
    chosen = {by_key[name.lower()].tab_id: by_key[name.lower()] for name in tab_names}
    return sorted(chosen.values(), key=lambda tab: tab.tab_id)
