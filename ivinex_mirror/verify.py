"""Compare the mirror with the API: per tab, the record ids, a checksum of the
values, and the links. The API is read whole, so this costs a full sync's
requests and writes nothing."""

import hashlib
import json
from dataclasses import dataclass, field

from .schema import (
    DEFAULT_FIELDS,
    RECORD_ID,
    plan_columns,
    undeclared_field,
)
from .sync import select_tabs
from .values import record_row

SHOWN_IDS = 5


@dataclass
class TabCheck:
    name: str
    upstream: int = 0
    mirrored: int = 0
    missing: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    differing: list = field(default_factory=list)
    unmapped_fields: list = field(default_factory=list)
    upstream_checksum: str = ""
    mirror_checksum: str = ""

    @property
    def agrees(self):
        problems = self.missing or self.extra or self.differing or self.unmapped_fields
        return not problems and self.upstream_checksum == self.mirror_checksum


@dataclass
class LinkCheck:
    upstream: int = 0
    mirrored: int = 0
    missing: list = field(default_factory=list)
    extra: list = field(default_factory=list)

    @property
    def agrees(self):
        return not self.missing and not self.extra


@dataclass
class Verdict:
    tabs: list
    links: LinkCheck

    @property
    def agrees(self):
        return self.links.agrees and all(check.agrees for check in self.tabs)


def verify(client, mirror, tab_names=None):
    """Read every tab asked for, and the links, and compare with the mirror."""
    tables = mirror.tables_by_tab_name()
    tabs = select_tabs(client.fetch_tabs(), tab_names)
    checks = [check_tab(client, mirror, tab, tables.get(tab.name)) for tab in tabs]
    selected = None if tab_names is None else {tab.name for tab in tabs}
    return Verdict(checks, check_links(client, mirror, selected))


def check_tab(client, mirror, tab, table):
    check = TabCheck(tab.name)
    records = {}
    for page in client.fetch_record_pages(tab):
        records.update((record[RECORD_ID], record) for record in page.items)
    check.upstream = len(records)
    known = mirror.known_columns(tab.tab_id) if table else {}
    fields = client.fetch_fields(tab)
    check.unmapped_fields = sorted(f.name for f in fields if f.name not in known)
    unknown_keys = {key for record in records.values() for key in record} - set(known)
    check.unmapped_fields += sorted(unknown_keys - set(check.unmapped_fields))
    stored = _live_rows(mirror, table) if table else {}
    check.mirrored = len(stored)
    listed = {f.name for f in fields} | {f.name for f in DEFAULT_FIELDS}
    fields += [undeclared_field(name) for name in known if name not in listed]
    _compare(check, records, stored, plan_columns(fields, known))
    return check


def _live_rows(mirror, table):
    rows = mirror.db.table(table).rows_where("_deleted_at is null")
    return {row[RECORD_ID]: row for row in rows}


def _compare(check, records, stored, columns):
    check.missing = sorted(set(records) - set(stored))
    check.extra = sorted(set(stored) - set(records))
    upstream_hash, mirror_hash = hashlib.sha256(), hashlib.sha256()
    for record_id in sorted(set(records) | set(stored)):
        record = records.get(record_id)
        expected = _expected_row(record, columns) if record else {}
        have = stored.get(record_id) or {}
        found = {name: _canonical(have.get(name)) for name in expected}
        if record and have and found != expected:
            check.differing.append(record_id)
        upstream_hash.update(_line(record_id, expected if record else None))
        mirror_hash.update(_line(record_id, found if have else None))
    check.upstream_checksum = upstream_hash.hexdigest()[:16]
    check.mirror_checksum = mirror_hash.hexdigest()[:16]


def _expected_row(record, columns):
    """What the mirror should hold for the keys the API sent."""
    known = {key: value for key, value in record.items() if key in columns}
    row, _ = record_row(known, columns)
    return {name: _canonical(value) for name, value in row.items()}


def _canonical(value):
    """One form for a value whichever column type holds it: a column widened
    to TEXT keeps 12.0 as '12.0', and both must compare equal."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def _line(record_id, values):
    return json.dumps([record_id, values], sort_keys=True).encode() + b"\n"


def check_links(client, mirror, selected):
    upstream = set()
    for page in client.fetch_link_pages():
        for link in page.items:
            if selected is None or {link.from_tab, link.to_tab} & selected:
                upstream.add(
                    (link.from_tab, link.from_id, link.to_tab, link.to_id, link.kind)
                )
    rows = mirror.db.execute(
        "select from_tab, from_id, to_tab, to_id, link_kind from links"
    ).fetchall()
    mirrored = {tuple(row) for row in rows}
    if selected is not None:
        mirrored = {row for row in mirrored if {row[0], row[2]} & selected}
    return LinkCheck(
        len(upstream),
        len(mirrored),
        sorted(upstream - mirrored),
        sorted(mirrored - upstream),
    )
