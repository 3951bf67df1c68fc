"""How Ivinex tabs and fields become SQLite tables and columns.

The naming rule, the type mapping and the value coercion live here, as data
where they can be, so that the shape of the mirror can be read in one place.
"""

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property

from .client import Field
from .values import converter_for

logger = logging.getLogger(__name__)

# Ivinex field type -> SQLite column type. Anything not listed is stored as
# TEXT, with a warning, so that a new field type never stops a sync.
COLUMN_TYPES = {
    "Text": "TEXT",
    "TextArea": "TEXT",
    "Email": "TEXT",
    "Phone": "TEXT",
    "URL": "TEXT",
    "File": "TEXT",
    "User": "TEXT",
    "Number": "REAL",
    "Currency": "REAL",
    "Percent": "REAL",
    "Date": "TEXT",
    "DateTime": "TEXT",
    "Checkbox": "INTEGER",
    "Dropdown": "INTEGER",
    "MultiSelect": "TEXT",
    "LinkedRecord": "INTEGER",
}

# Types whose options get a lookup table of their own.
OPTION_TYPES = ("Dropdown", "MultiSelect")

# Every record carries these, whether or not the Fields report lists them.
DEFAULT_FIELDS = (
    Field("collection_id", "Record ID", "RecordID", True, (), None, {}),
    Field("created_by", "Created By", "User", False, (), None, {}),
    Field("created_date", "Created Date", "DateTime", False, (), None, {}),
    Field("modified_by", "Modified By", "User", False, (), None, {}),
    Field("modified_date", "Modified Date", "DateTime", False, (), None, {}),
)
RECORD_ID = "collection_id"

# Tables the mirror keeps about itself; no tab may take these names.
MIRROR_TABLES = ("ivinex_tabs", "ivinex_fields", "ivinex_sync_runs", "links")

# Columns that a tab's label is most likely to live in, best first.
LABEL_CANDIDATES = ("full_name", "name", "title", "subject", "company_name")

MAX_NAME_LENGTH = 60

# Column names SQLite gives a meaning of its own: the rowid aliases, and what
# a full-text index reserves ("rank"; a column named like the index itself is
# added per table). A field that folds to one of these gets `_2`.
RESERVED_COLUMNS = frozenset({"rowid", "oid", "rank"})

# A tab's table may not end like the tables the mirror derives from a table
# (options, history, search index), nor start like SQLite's or the mirror's.
DERIVED_NAME = re.compile(r"^(sqlite|ivinex)_|_(history|options|fts(_[a-z]+)?)$")


@dataclass
class Column:
    """One field of a tab, as it is stored in the mirror."""

    field: Field
    name: str

    @property
    def sql_type(self):
        if self.field.field_type == "RecordID":
            return "INTEGER"
        return COLUMN_TYPES.get(self.field.field_type, "TEXT")

    @cached_property
    def convert(self):
        return converter_for(self.field.field_type)

    @property
    def known_type(self):
        return self.field.field_type in COLUMN_TYPES or self.field.field_type in (
            "RecordID",
            "Undeclared",
        )


@dataclass
class TabSchema:
    """A tab's table: its name, its columns by field name and its label."""

    table: str
    columns: dict = field(default_factory=dict)
    label_column: str | None = None

    def options_table(self, column):
        return f"{self.table}_{column.name}_options"


def normalise_name(name, fallback="field"):
    """The documented naming rule: ASCII, lower case, runs of anything else
    become one underscore, no leading or trailing underscore."""
    ascii_name = unicodedata.normalize("NFKD", str(name))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    snake = re.sub(r"[^0-9A-Za-z]+", "_", ascii_name).strip("_").lower()
    return snake[:MAX_NAME_LENGTH].rstrip("_") or fallback


def unique_name(base, taken):
    """`base`, or `base_2`, `base_3`... whichever is free (case-insensitively,
    as SQLite compares names)."""
    taken_folded = {name.lower() for name in taken}
    candidate, number = base, 2
    while candidate.lower() in taken_folded:
        candidate = f"{base}_{number}"
        number += 1
    return candidate


def table_name_for(tab_name, taken):
    """The table for a tab: the naming rule, then `_tab` where the name would
    look like a table the mirror derives, then a number if taken."""
    base = normalise_name(tab_name, fallback="tab")
    if DERIVED_NAME.search(base):
        base += "_tab"
    return unique_name(base, taken)


def plan_columns(fields, known, reserved=RESERVED_COLUMNS):
    """Map fields to columns, keeping every name already given in `known`
    ({field name: column name}) so that a column never changes name.

    New fields claim names in a fixed order (a field whose name is already
    its column name first, then by field name), so two fields that normalise
    alike are told apart the same way on every run."""
    fields = _with_default_fields(fields)
    columns = {f.name: Column(f, known[f.name]) for f in fields if f.name in known}
    taken = set(known.values()) | set(reserved)
    new = [f for f in fields if f.name not in known]
    new.sort(key=lambda f: (normalise_name(f.name) != f.name, f.name))
    for new_field in new:
        name = unique_name(normalise_name(new_field.name), taken)
        taken.add(name)
        columns[new_field.name] = Column(new_field, name)
    return {f.name: columns[f.name] for f in fields}


def _with_default_fields(fields):
    # The record id is always ours: it must stay an INTEGER primary key even
    # where the Fields report lists it with another type.
    listed = {f.name for f in fields}
    defaults = [
        f for f in DEFAULT_FIELDS if f.name not in listed or f.name == RECORD_ID
    ]
    return defaults + [f for f in fields if f.name != RECORD_ID]


def undeclared_field(name):
    """A key that records carry but the Fields report does not list."""
    return Field(name, name, "Undeclared", False, (), None, {})


def pick_label_column(columns):
    """The column that names a record when another record links to it."""
    by_name = {c.name: c for c in columns.values()}
    for candidate in LABEL_CANDIDATES:
        if candidate in by_name:
            return candidate
    for column in columns.values():
        if column.field.field_type == "Text":
            return column.name
    return None
