"""Full-text search over what CRM users type: names, e-mails, phones, notes.

Which fields are searched is data, below. `ensure_search` applies it once at
the end of every sync run: each tab table gets an FTS5 index, `<table>_fts`,
over its text-like columns, kept current by triggers as records are upserted
and deleted. Datasette finds these indexes by itself, for the search box of
each table and for the search across all tabs.

Records marked deleted (`_deleted_at` set) stay in the index; the served
table pages leave them out (serve.py), and so do the canned queries
(metadata.py).
"""

import logging
import sqlite3

from .schema import RESERVED_COLUMNS

logger = logging.getLogger(__name__)

# Field types whose values are words a person would search for. URL and File
# are left out: every value carries "https", "www" or a folder path, which
# would match nearly every record; User is left out so that searching for a
# colleague's name does not return every record they own.
SEARCH_FIELD_TYPES = ("Text", "TextArea", "Email", "Phone")

# Porter stemming ("meetings" finds "meeting"); diacritics are folded, so
# "Muller" finds "Müller" and "Zoe" finds "Zoë".
TOKENIZE = "porter unicode61 remove_diacritics 2"

FTS_SUFFIX = "_fts"


def reserved_columns(table):
    """Column names a tab table may not use, so that its index can be built:
    SQLite's own, and the index's name (FTS5 adds a column named like it)."""
    return RESERVED_COLUMNS | {table + FTS_SUFFIX}


def search_columns(db, tab_id, table):
    """The table's columns that hold a text-like field, in table order.

    Retired fields stay in: their column and values are still there."""
    rows = db.execute(
        "select column_name, field_type from ivinex_fields where tab_id = ?",
        [tab_id],
    ).fetchall()
    wanted = {column for column, field_type in rows if field_type in SEARCH_FIELD_TYPES}
    return [column for column in db[table].columns_dict if column in wanted]


def ensure_search(db):
    """Create or update the search index of every tab table; safe to repeat.

    An index is rebuilt only when its column set (or tokenizer) changed, or
    its triggers are gone (a table rebuilt by a type change loses them);
    otherwise this reads a little schema and writes nothing. Returns
    {table: columns} of the indexes built this time."""
    built = {}
    for tab_id, table in _tab_tables(db):
        columns = search_columns(db, tab_id, table)
        if not columns or not _can_use_index_name(db, table):
            continue
        if _index_is_current(db, table, columns):
            continue
        try:
            db[table].enable_fts(
                columns, create_triggers=True, tokenize=TOKENIZE, replace=True
            )
        except sqlite3.Error as error:
            # Search is a convenience: the records are safe; say so and go on.
            logger.warning("No search index for %s: %s", table, error)
            continue
        logger.info("Search index of %s built over %s", table, ", ".join(columns))
        built[table] = columns
    return built


def _tab_tables(db):
    if not db["ivinex_tabs"].exists() or not db["ivinex_fields"].exists():
        return []
    rows = db.execute(
        "select tab_id, table_name from ivinex_tabs order by tab_id"
    ).fetchall()
    return [(tab_id, table) for tab_id, table in rows if table and db[table].exists()]


def _can_use_index_name(db, table):
    # A tab may itself be called "<something> FTS"; its table is never
    # replaced by an index.
    index = db[table + FTS_SUFFIX]
    if not index.exists() or index.schema.upper().startswith("CREATE VIRTUAL TABLE"):
        return True
    logger.warning(
        "No search index for %s: the table %s belongs to a tab.",
        table,
        index.name,
    )
    return False


def _index_is_current(db, table, columns):
    index = db[table + FTS_SUFFIX]
    if not index.exists():
        return False
    triggers = {trigger.name for trigger in db[table].triggers}
    wanted_triggers = {table + suffix for suffix in ("_ai", "_ad", "_au")}
    return (
        set(index.columns_dict) == set(columns)
        and f"tokenize='{TOKENIZE}'" in index.schema
        and wanted_triggers <= triggers
    )
