"""Serve a mirror with Datasette, read-only.

The metadata (see metadata.py) is built from the mirror when the server
starts, and again after every sync run that happens while it is up. Only a
sync writes to the mirror. Records marked deleted upstream are left out of
table pages unless asked for with ?_deleted=1.
"""

import asyncio
import ipaddress
import logging
import sqlite3
import sys
import time
from pathlib import Path

import uvicorn
from datasette import hookimpl
from datasette.app import Datasette
from datasette.database import Database
from datasette.filters import FilterArguments
from datasette.plugins import pm
from markupsafe import Markup, escape

from .metadata import (
    DELETED_COLUMN,
    PROJECT_METADATA_FILE,
    ServeError,
    build_metadata,
    connect_read_only,
    load_project_metadata,
    quote_name,
)

logger = logging.getLogger(__name__)

SETTINGS = {
    "default_page_size": 50,
    "facet_time_limit_ms": 500,
    "sql_time_limit_ms": 3000,
}

# The query argument that shows records deleted upstream on a table page.
SHOW_DELETED_ARG = "_deleted"
LIVE_DESCRIPTION = "the record is not deleted upstream"

# How often, at most, a running server looks for a newer sync run.
REFRESH_SECONDS = 1.0


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
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


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


class MirrorDatasette(Datasette):
    """Datasette for one mirror, with metadata that follows its sync runs.

    A mirror file that nobody may write (no write permission bits at all) is
    opened immutable: no sync can change it, so SQLite skips all locking.
    Any other file is opened read-only, because a sync may write it while
    it is served."""

    def __init__(self, db_path, metadata=None, refresh_seconds=REFRESH_SECONDS):
        check_mirror(db_path)
        _register_plugin()
        self.mirror_path = Path(db_path)
        self.immutable = is_write_protected(db_path)
        self.follows_syncs = metadata is None and not self.immutable
        self.refresh_seconds = refresh_seconds
        self._label_targets = {}
        self._last_check = time.monotonic()
        self._last_run = latest_run(db_path)

        if metadata is None:
            metadata = mirror_metadata(db_path)
        path = [str(db_path)]
        super().__init__(
            files=[] if self.immutable else path,
            immutables=path if self.immutable else [],
            metadata=metadata,
            settings=SETTINGS,
        )
        self._make_read_only()

    def _make_read_only(self):
        path = str(self.mirror_path)
        for db in [db for db in self.databases.values() if db.path == path]:
            self.remove_database(db.name)
            read_only = ReadOnlyDatabase(self, db.path, is_mutable=db.is_mutable)
            self.add_database(read_only, name=db.name)

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
            metadata = mirror_metadata(self.mirror_path)
        except (ServeError, sqlite3.Error) as exc:
            logger.warning("Kept the previous table descriptions: %s", exc)
            return False

        # Datasette 0.65 reads its metadata from this attribute on every
        # request and offers no public way to replace it.
        self._metadata_local = metadata
        self._label_targets = {}
        self._last_run = run
        logger.info("Table descriptions rebuilt after sync run %s", run[0])
        return True

    async def label_target(self, database, table, column):
        """(table, column, label column) that a foreign key column points to,
        when the table pointed to has a label column; else None."""
        key = (database, table)
        if key not in self._label_targets:
            db = self.get_database(database)
            targets = {}
            for fk in await db.foreign_keys_for_table(table):
                other = self.table_metadata(database, fk["other_table"])
                if other.get("label_column"):
                    targets[fk["column"]] = (
                        fk["other_table"],
                        fk["other_column"],
                        other["label_column"],
                    )
            self._label_targets[key] = targets
        return self._label_targets[key].get(column)


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


def check_mirror(db_path):
    """Raise ServeError unless db_path is an ivinex-mirror database."""
    with connect_read_only(db_path):
        pass


def is_write_protected(db_path):
    """Whether the file has no write permission bit for anyone."""
    return not Path(db_path).stat().st_mode & 0o222


def latest_run(db_path):
    """(id, status, finished_at) of the newest sync run, or None when there
    is none or the mirror cannot be read right now (a sync holds a lock)."""
    try:
        with connect_read_only(db_path, timeout=0.2) as conn:
            row = conn.execute(
                "select id, status, finished_at from ivinex_sync_runs"
                " order by id desc limit 1"
            ).fetchone()
    except (ServeError, sqlite3.Error):
        return None
    return tuple(row) if row else None


def mirror_metadata(db_path):
    """Datasette metadata for the mirror as of its last sync, with the
    project's defaults from metadata.yml."""
    return build_metadata(db_path, load_project_metadata(PROJECT_METADATA_FILE))


def _register_plugin():
    # This module is its own Datasette plugin: registered once per process,
    # it only acts on the Datasette of a mirror.
    module = sys.modules[__name__]
    if not pm.is_registered(module):
        pm.register(module, name=__name__)


@hookimpl
def filters_from_request(request, database, table, datasette):
    """Datasette plugin hook: a mirror's tab tables list live records only,
    unless the address asks for deleted ones (?_deleted=1) or filters on
    the deletion date itself. Search results and facet counts follow."""
    if not isinstance(datasette, MirrorDatasette) or _shows_deleted(request):
        return None

    async def live_only():
        columns = await datasette.get_database(database).table_columns(table)
        if DELETED_COLUMN not in columns:
            return None
        return FilterArguments(
            [f"{quote_name(DELETED_COLUMN)} is null"],
            human_descriptions=[LIVE_DESCRIPTION],
        )

    return live_only


def _shows_deleted(request):
    if request.args.get(SHOW_DELETED_ARG, "").lower() in ("1", "true", "yes", "on"):
        return True
    if any(DELETED_COLUMN in where for where in request.args.getlist("_where")):
        return True
    return any(key.startswith(DELETED_COLUMN + "__") for key in request.args)


@hookimpl
def render_cell(value, column, table, database, datasette):
    """Datasette plugin hook: on a record's own page, a linked record or a
    dropdown option shows its name, as table pages already do (Datasette
    0.65 labels them there only; there the value arrives already labelled)."""
    if not isinstance(datasette, MirrorDatasette) or table is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return None

    async def linked_name():
        target = await datasette.label_target(database, table, column)
        if target is None:
            return None
        other_table, other_column, label_column = target
        result = await datasette.get_database(database).execute(
            f"select {quote_name(label_column)} from {quote_name(other_table)}"
            f" where {quote_name(other_column)} = ?",
            [value],
        )
        row = result.first()
        if row is None or row[0] in (None, ""):
            return None
        href = datasette.urls.row(database, other_table, str(value))
        return Markup(
            f'<a href="{escape(href)}">{escape(row[0])}</a>&nbsp;<em>{value}</em>'
        )

    return linked_name
