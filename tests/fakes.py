"""A stand-in for the HTTP client, fed with hand-written answers, so that the
schema and store can be tested on exact inputs without a server."""

from ivinex_mirror.client import Field, Link, Option, Page, Tab, wire_datetime

UNCHANGED_SINCE = "2026-01-01 00:00:00"


def make_field(name, field_type="Text", label=None, **extra):
    options = tuple(Option(i, text) for i, text in extra.pop("options", ()))
    return Field(
        name,
        label or name,
        field_type,
        extra.pop("required", False),
        options,
        extra.pop("linked_tab", None),
        {},
    )


class FakeClient:
    """tabs: {name: (fields, records)}; links: a list of 5-tuples."""

    def __init__(self, tabs, links=(), page_size=2):
        self.tabs = {
            name: (Tab(1000 + i, name, name.rstrip("s"), {}), fields, records)
            for i, (name, (fields, records)) in enumerate(tabs.items())
        }
        self.links = [Link(*link) for link in links]
        self.page_size = page_size
        self.rate_limited_count = 0

    def fetch_tabs(self):
        return [tab for tab, _, _ in self.tabs.values()]

    def fetch_fields(self, tab):
        return list(self.tabs[tab.name][1])

    def fetch_record_pages(self, tab, modified_since=None, offset=0):
        yield from _pages(self.records(tab), self.page_size)

    def fetch_record_page(self, tab, modified_since=None, offset=0):
        """Like the API: records modified since a moment, oldest first."""
        since = wire_datetime(modified_since) if modified_since else ""
        records = [r for r in self.records(tab) if r["modified_date"] >= since]
        records.sort(key=lambda r: (r["modified_date"], r["collection_id"]))
        chunk = records[offset : offset + self.page_size]
        return Page(offset, chunk, len(records))

    def fetch_record_total(self, tab):
        return len(self.records(tab))

    def records(self, tab):
        """The tab's records, each stamped as every real record is."""
        return [
            {"modified_date": UNCHANGED_SINCE, **record}
            for record in self.tabs[tab.name][2]
        ]

    def fetch_link_page(self, offset=0):
        chunk = self.links[offset : offset + self.page_size]
        return Page(offset, chunk, len(self.links))

    def fetch_related_items(self, tab_name, record_id):
        return [
            {"tab": link.to_tab, "record_id": link.to_id, "link_kind": link.kind}
            for link in self.links
            if (link.from_tab, link.from_id) == (tab_name, record_id)
        ]

    def fetch_link_pages(self, offset=0):
        yield from _pages(self.links, self.page_size)


def _pages(items, size):
    offset = 0
    while True:
        chunk = items[offset : offset + size]
        yield Page(offset, list(chunk), len(items))
        if len(chunk) < size:
            return
        offset += size
