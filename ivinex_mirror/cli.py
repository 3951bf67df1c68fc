"""The ivinex-mirror command line: parses options, prints, holds no logic."""

import csv
import functools
import io
import json
import logging
import os
import sqlite3
import sys
import time
from contextlib import closing, contextmanager
from dataclasses import asdict

import click
import urllib3
from tabulate import tabulate
from tqdm import tqdm

from . import accounts
from .client import IvinexClient, instance_url
from .errors import IvinexError
from .store import LockedByAnotherRun, Mirror, NotAMirror, run_lock
from .sync import DEFAULT_CONCURRENCY, Reporter, sync

PASSWORD_ENV = "IVINEX_PASSWORD"
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
WARNINGS_SHOWN = 20
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ivinex-mirror")
def cli():
    """Mirror an Ivinex CRM instance into SQLite and browse it with Datasette.

    Start with `ivinex-mirror demo` to try it on a local sandbox, or with
    `ivinex-mirror auth` and `ivinex-mirror sync` for a real instance."""


def output_options(command):
    """--verbose and --silent, shared by every command that talks to an API."""

    @click.option("-v", "--verbose", is_flag=True, help="Log every request (debug).")
    @click.option("-s", "--silent", is_flag=True, help="No progress bars or summary.")
    @functools.wraps(command)
    def wrapper(*args, verbose, silent, **kwargs):
        level = logging.DEBUG if verbose else logging.WARNING
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        return command(*args, verbose=verbose, silent=silent, **kwargs)

    return wrapper


def account_options(command):
    """Where the instance is and who logs in; the password never comes from an
    option, so that it never shows in `ps` or a shell history."""

    @click.option(
        "--company",
        envvar="IVINEX_COMPANY",
        help="Instance URL, e.g. https://acme.ivinex.com (or IVINEX_COMPANY). "
        "Defaults to the saved account.",
    )
    @click.option(
        "--username",
        envvar="IVINEX_USERNAME",
        help="API user (or IVINEX_USERNAME). Defaults to the saved account.",
    )
    @click.option(
        "--records-endpoint",
        type=click.Choice(["GetRecords", "Records.php"]),
        default="GetRecords",
        show_default=True,
        help="Which API door to read records through.",
    )
    @click.option(
        "--timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for each answer.",
    )
    @click.option(
        "--retries",
        type=click.IntRange(0, 20),
        default=5,
        show_default=True,
        help="Retries of a request on 429, 5xx, resets and timeouts.",
    )
    @click.option(
        "--page-size",
        type=click.IntRange(1, 500),
        default=500,
        show_default=True,
        help="Records or links asked for per request.",
    )
    @click.option(
        "--insecure",
        is_flag=True,
        help="Skip HTTPS certificate checks (a self-hosted instance with a "
        "self-signed certificate). Anyone on the network path could then read "
        "the password.",
    )
    @functools.wraps(command)
    def wrapper(*args, company, username, records_endpoint, page_size, **kw):
        company, username, password = resolve_account(company, username)
        insecure = kw.pop("insecure")
        if insecure:
            warn_insecure()
        client = run_api_command(
            lambda: IvinexClient(
                company,
                username,
                password,
                timeout=kw.pop("timeout"),
                retries=kw.pop("retries"),
                page_size=page_size,
                records_endpoint=records_endpoint,
                verify=not insecure,
            )
        )
        with client:
            return command(*args, client=client, **kw)

    return wrapper


def resolve_account(company, username):
    """Company, username and password from the options, IVINEX_PASSWORD, the
    saved account, or a hidden prompt, in that order."""
    saved = _load_saved_account()
    company = company or (saved and saved.company)
    username = username or (saved and saved.username)
    if not company or not username:
        raise click.UsageError(
            "Say which instance and user: --company URL --username USER, "
            "or save them once with `ivinex-mirror auth`."
        )
    password = os.environ.get(PASSWORD_ENV)
    if (
        not password
        and saved
        and (saved.company, saved.username)
        == (
            company,
            username,
        )
    ):
        password = saved.password
    if not password:
        password = _prompt_password(username)
    return company, username, password


def _load_saved_account():
    try:
        return accounts.load_account()
    except accounts.AccountFileError as error:
        raise click.ClickException(str(error)) from None


def warn_insecure():
    click.secho(
        "warning: --insecure turns off HTTPS certificate checks; anyone between "
        "you and the instance could read the password and the data.",
        fg="yellow",
        err=True,
    )
    # Said once here; urllib3 would otherwise repeat it for every request.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def stdin_is_terminal():
    return sys.stdin.isatty()


def _prompt_password(username):
    if not stdin_is_terminal():
        raise click.UsageError(
            f"No password for {username}: set {PASSWORD_ENV}, save it with "
            "`ivinex-mirror auth`, or run from a terminal to be asked."
        )
    return click.prompt(f"Password for {username}", hide_input=True)


def run_api_command(action):
    """Turn the client's exceptions into one-line errors with a clean exit."""
    try:
        return action()
    except IvinexError as error:
        raise click.ClickException(str(error)) from None


# sync


class ProgressReporter(Reporter):
    """A progress bar per tab on stderr (tabs are read side by side, so each
    has a line of its own), and warnings kept for the summary."""

    def __init__(self, silent):
        self.silent = silent
        self.bars = {}
        self.drawn = False
        self.warnings = []

    def tab_started(self, tab, total):
        self.bars[tab.tab_id] = tqdm(
            total=total,
            desc=f"{tab.name[:24]:<24}",
            unit=" records",
            position=len(self.bars),
            file=sys.stderr,
            # None: no bars when stderr is not a terminal (cron, pipes, CI).
            disable=True if self.silent else None,
            dynamic_ncols=True,
            # Bars finish in any order; the summary lists every tab after.
            leave=False,
        )
        self.drawn = self.drawn or not self.bars[tab.tab_id].disable

    def page_saved(self, tab, count):
        if tab.tab_id in self.bars:
            self.bars[tab.tab_id].update(count)

    def tab_finished(self, tab, result):
        bar = self.bars.get(tab.tab_id)
        if bar is not None:
            bar.close()

    def close_bars(self):
        for bar in self.bars.values():
            bar.close()
        if self.drawn:
            # Closing bars leaves the cursor at the end of a cleared line.
            sys.stderr.write("\r")

    def warning(self, message):
        # Shown after the bars, in the summary, so that they stay readable.
        self.warnings.append(message)


class Duration(click.ParamType):
    """A length of time such as 90s, 15m, 2h or 1d."""

    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        unit = text[-1:] if text[-1:] in DURATION_UNITS else "s"
        number = text[:-1] if text[-1:] in DURATION_UNITS else text
        try:
            seconds = float(number) * DURATION_UNITS[unit]
        except ValueError:
            self.fail(f"{value!r} is not a duration like 90s, 15m, 2h or 1d", param)
        if seconds <= 0:
            self.fail("the interval must be longer than zero", param)
        return seconds


@cli.command(name="sync")
@click.argument("db", type=click.Path(dir_okay=False))
@account_options
@click.option(
    "--tab",
    "tab_names",
    multiple=True,
    help="Mirror only this tab (name or id); repeat for more.",
)
@click.option("--full", is_flag=True, help="Re-read every record, not only changes.")
@click.option(
    "--hard-deletes",
    is_flag=True,
    help="Remove rows deleted upstream instead of marking them in _deleted_at.",
)
@click.option(
    "--history",
    is_flag=True,
    help="Also keep every version seen of every record, in <tab>_history tables.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 16),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Requests in flight at once; halved automatically when rate limited.",
)
@click.option(
    "--every",
    type=Duration(),
    help="Keep syncing at this interval (e.g. 15m) until stopped.",
)
@output_options
def sync_command(db, client, every, verbose, silent, **options):
    """Mirror the instance into the SQLite database DB.

    The first run reads every record; later runs read what changed since the
    last one, find records deleted upstream, and follow new and changed
    fields. Exit code: 0 when everything asked for was mirrored, 3 when some
    tabs, records or links were left out (no permission, unreadable), 1 on
    an error, 130 when interrupted.
    With --every, a failing run is reported and the schedule goes on."""
    options["tab_names"] = list(options["tab_names"]) or None
    try:
        if every is None:
            sys.exit(sync_once(db, client, options, verbose, silent))
        while True:
            code = sync_once(db, client, options, verbose, silent, keep_going=True)
            click.echo(
                f"Run ended with exit code {code}; next in {every:g} s.", err=True
            )
            time.sleep(every)
    except KeyboardInterrupt:
        click.echo("Interrupted; every whole page is kept.", err=True)
        sys.stderr.flush()
        # Not sys.exit: that would wait for requests still in flight, which
        # can take the whole --timeout; nothing is left half written.
        os._exit(EXIT_INTERRUPTED)


@contextmanager
def opened_mirror(db, create=True):
    """The mirror at DB, held under its run lock; clear errors for a busy,
    foreign or unreachable file."""
    folder = os.path.dirname(os.path.realpath(db))
    if not os.path.isdir(folder):
        raise click.ClickException(f"There is no folder {folder} for {db}.")
    if not os.access(folder, os.W_OK):
        raise click.ClickException(f"Cannot write in {folder}, where {db} goes.")
    try:
        with run_lock(db), closing(Mirror(db, create=create)) as mirror:
            yield mirror
    except (LockedByAnotherRun, NotAMirror) as error:
        raise click.ClickException(str(error)) from None
    except sqlite3.DatabaseError as error:
        raise click.ClickException(
            f"{db} is not a mirror this tool can write ({error}). Name a new "
            "file, or the database an earlier sync made."
        ) from None
    except OSError as error:
        where = error.filename or db
        raise click.ClickException(f"Cannot use {where}: {error.strerror}.") from None


def sync_once(db, client, options, verbose, silent, keep_going=False):
    """One run under the database's lock; returns its exit code. With
    keep_going (a schedule), any failure is reported and returned instead."""
    reporter = ProgressReporter(silent)
    started = time.monotonic()
    try:
        with opened_mirror(db) as mirror:
            result = run_api_command(
                lambda: sync(client, mirror, reporter=reporter, **options)
            )
    except click.ClickException as error:
        if not keep_going:
            raise
        error.show()
        return error.exit_code
    except Exception as error:  # a schedule outlives a bad run
        if not keep_going:
            raise
        logging.getLogger(__name__).debug("The run failed", exc_info=True)
        click.echo(f"Error: the run failed: {error!r}", err=True)
        return 1
    finally:
        reporter.close_bars()
    if not silent:
        print_summary(result, reporter.warnings, time.monotonic() - started, verbose)
    return 0 if result.status == "ok" else EXIT_PARTIAL


def print_summary(result, warnings, seconds, verbose):
    shown = warnings if verbose else warnings[:WARNINGS_SHOWN]
    for message in shown:
        click.secho(f"warning: {message}", fg="yellow", err=True)
    if len(shown) < len(warnings):
        click.echo(
            f"... and {len(warnings) - len(shown)} more warnings (--verbose)",
            err=True,
        )
    rows = [
        (t.name, t.status, t.fetched, t.changed, t.deleted, t.stored, t.misfits)
        for t in result.tabs
    ]
    headers = ("tab", "status", "read", "changed", "deleted", "in mirror", "misfits")
    click.echo(tabulate(rows, headers=headers), err=True)
    counts = result.counts
    click.echo(
        f"Run {result.run_id}: {result.status}; {counts['records']} records read, "
        f"{counts['changed']} changed, {counts['deleted']} deleted, "
        f"{result.links} links ({result.links_status}), "
        f"{counts['warnings']} warnings, {seconds:.1f} s.",
        err=True,
    )


# verify


@cli.command()
@click.argument("db", type=click.Path(exists=True, dir_okay=False))
@account_options
@click.option("--tab", "tab_names", multiple=True, help="Check only this tab.")
@output_options
def verify(db, client, tab_names, verbose, silent):
    """Compare the mirror DB with the API and print what differs.

    Per tab: record count, ids and a checksum of the values; then the links.
    Reads every record (a full sync's requests) and writes nothing. Exit code
    0 only when the mirror and the API agree."""
    from .verify import verify as compare

    with opened_mirror(db, create=False) as mirror:
        verdict = run_api_command(
            lambda: compare(client, mirror, list(tab_names) or None)
        )
    click.echo(format_verdict(verdict))
    if not verdict.agrees:
        sys.exit(1)


def format_verdict(verdict):
    rows = [
        (
            c.name,
            c.upstream,
            c.mirrored,
            _ids(c.missing),
            _ids(c.extra),
            _ids(c.differing),
            "same" if c.upstream_checksum == c.mirror_checksum else "differs",
            ", ".join(c.unmapped_fields),
        )
        for c in verdict.tabs
    ]
    headers = (
        "tab",
        "upstream",
        "mirror",
        "missing",
        "extra",
        "differing",
        "checksum",
        "fields without a column",
    )
    links = verdict.links
    link_line = (
        f"links: {links.upstream} upstream, {links.mirrored} in the mirror, "
        f"{len(links.missing)} missing, {len(links.extra)} extra"
    )
    if verdict.agrees:
        outcome = "The mirror agrees with the API."
    else:
        outcome = (
            "The mirror differs from the API; `ivinex-mirror sync DB --full` "
            "re-reads everything."
        )
    return "\n".join([tabulate(rows, headers=headers), link_line, outcome])


def _ids(ids):
    shown = ", ".join(str(i) for i in ids[:5])
    return f"{len(ids)} ({shown}{', ...' if len(ids) > 5 else ''})" if ids else 0


# auth


@cli.command()
@click.option("--company", help="Instance URL, e.g. https://acme.ivinex.com.")
@click.option("--username", help="API user.")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Log in once (GetTabs) before saving, so a typo shows now.",
)
@click.option("--delete", is_flag=True, help="Forget the saved account.")
def auth(company, username, check, delete):
    """Save an account (instance, user, password) for later runs.

    Asks for what the options do not give; the password comes from
    IVINEX_PASSWORD or a hidden prompt. The file lives outside any database,
    in your user config folder (or IVINEX_MIRROR_ACCOUNT_FILE), readable by
    you alone (mode 0600)."""
    if delete:
        removed = accounts.delete_account()
        click.echo("Saved account removed." if removed else "No saved account.")
        return
    company = company or click.prompt("Instance URL (e.g. https://acme.ivinex.com)")
    company = run_api_command(lambda: instance_url(company))
    username = username or click.prompt("API username")
    password = os.environ.get(PASSWORD_ENV) or click.prompt(
        f"Password for {username}", hide_input=True
    )
    if check:
        tabs = run_api_command(lambda: check_account(company, username, password))
        click.echo(f"Logged in: {username} sees {len(tabs)} tabs.")
    path = accounts.save_account(company, username, password)
    click.echo(f"Saved the account for {username} at {company} in {path}")


def check_account(company, username, password):
    with IvinexClient(company, username, password, retries=1) as client:
        return client.fetch_tabs()


# sandbox, serve, demo


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="1.0 is about 5,000 records and 8,000 links.",
)
@click.option("--username", default="demo", show_default=True)
@click.option(
    "--password",
    default="demo",
    show_default=True,
    help="The sandbox's own password (not a real account's).",
)
@click.option(
    "--latency-ms",
    type=int,
    default=0,
    show_default=True,
    help="Delay added to every answer.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of API requests that fail on purpose, at random (0: none).",
)
@click.option(
    "--fault-kinds",
    default="5xx,reset,stall,429,malformed,error-200,shift",
    show_default=True,
    help="Comma-separated kinds of fault that --fault-rate draws from.",
)
@click.option(
    "--fault-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the random faults; the same seed replays the same faults.",
)
@click.option(
    "--fault-stall-seconds",
    type=float,
    default=2.0,
    show_default=True,
    help="How late a stalled answer comes (past the client's --timeout).",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    help="Answer 429 with Retry-After above this many requests a second.",
)
def sandbox(host, port, seed, scale, username, password, latency_ms, **faults):
    """Serve a local fake Ivinex instance with generated data until stopped.

    With --fault-rate or --rate-limit it also misbehaves as real APIs do:
    5xx, resets, stalls, 429s, broken JSON, errors inside a 200, and records
    moving between pages while a tab is read."""
    from .sandbox import SandboxServer, generate_instance

    instance = generate_instance(seed=seed, scale=scale)
    server = SandboxServer(
        instance,
        host=host,
        port=port,
        username=username,
        password=password,
        latency_ms=latency_ms,
        chaos=make_chaos(**faults),
    )
    click.echo(f"Ivinex sandbox at {server.url} (user {username}); Ctrl-C stops.")
    server.serve_forever()


def make_chaos(fault_rate, fault_kinds, fault_seed, fault_stall_seconds, rate_limit):
    """The sandbox's random faults, or None when none are asked for."""
    from .sandbox.chaos import Chaos

    if not fault_rate and not rate_limit:
        return None
    try:
        return Chaos(
            seed=fault_seed,
            rate=fault_rate,
            kinds=fault_kinds,
            rate_limit=rate_limit,
            stall_seconds=fault_stall_seconds,
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--fault-kinds") from None


@cli.command()
@click.argument("db", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but loopback exposes the data.",
)
@click.option("--port", type=int, default=8001, show_default=True)
def serve(db, host, port):
    """Browse the mirror DB in Datasette (read-only)."""
    from .serve import ServeError
    from .serve import serve as serve_datasette

    click.echo(f"Serving {db} at http://{host}:{port}/ ; Ctrl-C stops.", err=True)
    try:
        serve_datasette(db, host=host, port=port)
    except ServeError as error:
        raise click.ClickException(str(error)) from None


@cli.command()
@click.option("--db", default="demo.db", show_default=True, type=click.Path())
@click.option("--no-serve", is_flag=True, help="Stop after the sync.")
@click.option(
    "--port", type=int, default=8001, show_default=True, help="Port for Datasette."
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True)
def demo(db, no_serve, port, seed, scale):
    """Start the sandbox, mirror it into DB, then browse it in Datasette."""
    from .sandbox import SandboxServer, generate_instance

    click.echo("Generating the sandbox's data...", err=True)
    instance = generate_instance(seed=seed, scale=scale)
    with SandboxServer(instance, port=0) as server:
        click.echo(f"Sandbox at {server.url}; mirroring it into {db}", err=True)
        with IvinexClient(server.url, "demo", "demo") as client:
            code = sync_once(db, client, {}, verbose=False, silent=False)
    if code != 0:
        sys.exit(code)
    if not no_serve:
        serve.callback(db, "127.0.0.1", port)


# report

REPORTS = ("tabs", "fields", "records", "related-items", "all-related-items")


@cli.command()
@click.argument("name", type=click.Choice(REPORTS))
@account_options
@click.option(
    "--tab", help="The tab (name or id), for fields, records and related-items."
)
@click.option("--record-id", type=int, help="The record, for related-items.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@output_options
def report(name, client, tab, record_id, output_format, verbose, silent):
    """Print one of the connector's five reports straight from the API."""
    rows = run_api_command(lambda: fetch_report(client, name, tab, record_id))
    click.echo(format_rows(rows, output_format))


def fetch_report(client, name, tab, record_id):
    if name in ("fields", "records", "related-items") and not tab:
        raise click.UsageError(f"The {name} report needs --tab.")
    if name == "related-items" and record_id is None:
        raise click.UsageError("The related-items report needs --record-id.")
    if name == "tabs":
        return [_flat(asdict(t)) for t in client.fetch_tabs()]
    if name == "fields":
        return [_flat(asdict(f)) for f in client.fetch_fields(tab)]
    if name == "related-items":
        return client.fetch_related_items(tab, record_id)
    if name == "records":
        tab_object = _find_tab(client, tab)
        return [r for page in client.fetch_record_pages(tab_object) for r in page.items]
    return [
        _flat(asdict(link)) for page in client.fetch_link_pages() for link in page.items
    ]


def _find_tab(client, tab):
    from .sync import select_tabs

    return select_tabs(client.fetch_tabs(), [tab])[0]


def _flat(row):
    """Nested values as JSON text, so that every format can show them."""
    return {
        key: json.dumps(value, ensure_ascii=False)
        if isinstance(value, (dict, list, tuple))
        else value
        for key, value in row.items()
    }


def format_rows(rows, output_format):
    if output_format == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    flat = [_flat(row) for row in rows]
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
        return buffer.getvalue().rstrip("\n")
    return tabulate([[row.get(c) for c in columns] for row in flat], headers=columns)
