"""Soak test: many sync runs against a sandbox that fails at random.

Between runs the sandbox's data changes (records added, edited and deleted,
links made and removed, now and then a new field). Each run syncs with every
fault kind of ivinex_mirror.sandbox.chaos on: 5xx, resets, stalls past the
client's timeout, 429 (at random and above a request rate), malformed JSON,
errors inside HTTP 200, and records moving between pages while a tab is read.

After every run the database must be whole, whether the run succeeded or
failed: SQLite's integrity check passes, no link is stored twice, every live
row is a record that exists upstream (or was deleted there after the mirror
stored it) with its own created_date and no modified_date from the future,
and no record older than a tab's cursor (less the sync's overlap) is missing
or stale. A failed run must have failed loudly: an IvinexError with a message
and a failed row in ivinex_sync_runs. Every few runs, and at the end, the
faults are switched off and one clean sync runs; `verify` must then agree.

    python bench/soak.py                      # 200 runs, seed 1
    python bench/soak.py --runs 50 --seed 7   # the same seed replays a case

The exit code is 1 when records were lost, links were stored twice, or any
other check failed; each failure is printed with its run number.
"""

import argparse
import logging
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tabulate import tabulate

from ivinex_mirror.client import IvinexClient
from ivinex_mirror.errors import IvinexError
from ivinex_mirror.sandbox import SandboxServer, generate_instance
from ivinex_mirror.sandbox.chaos import (
    KINDS,
    Chaos,
    change_link,
    change_record,
    field_value,
)
from ivinex_mirror.sandbox.definitions import STAMP_FORMAT
from ivinex_mirror.store import LINK_KEY, Mirror
from ivinex_mirror.sync import OVERLAP, Reporter, sync
from ivinex_mirror.verify import verify

USERNAME = "soak"
PASSWORD = "soak-password"
# The sandbox's clock starts after every generated stamp.
CLOCK_START = datetime(2026, 12, 1, 8, 0, 0)
# How far the clock moves between runs: some runs fall inside the sync's
# overlap window of the previous one, others well past it.
CLOCK_STEPS = (0, 20, 180, 360, 3600)
# Data changes between runs, by weight.
CHANGES = (
    ("add", 3),
    ("modify", 4),
    ("delete", 2),
    ("link-add", 2),
    ("link-remove", 2),
    ("field-add", 0.1),
)
NEW_FIELD_TYPES = ("Text", "Number", "Date", "Checkbox", "Currency")
# Each run's problems are shown up to this many per check.
SHOWN = 3


@dataclass
class Settings:
    runs: int = 200
    seed: int = 1
    scale: float = 0.05
    fault_rate: float = 0.05
    rate_limit: int = 60
    timeout: float = 0.5
    stall_seconds: float = 1.0
    retries: int = 3
    page_size: int = 25
    changes: int = 8
    check_every: int = 10
    concurrency: int | None = None
    verbose: bool = False


@dataclass
class Report:
    runs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    warnings: int = 0
    changes: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    variants: Counter = field(default_factory=Counter)
    checks: Counter = field(default_factory=Counter)
    clean_syncs: int = 0
    disagreements: int = 0
    records_lost: int = 0
    duplicate_links: int = 0
    problems: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self):
        return self.outcomes["failed"]

    @property
    def ok(self):
        lost = self.records_lost or self.duplicate_links
        return not self.problems and not lost


class SandboxClock:
    """The sandbox's clock, moved on by the soak rather than by the wall
    clock, so that a seed replays and runs can lie further apart than the
    sync's overlap. Every second stamp is a second later: edits share
    seconds, as they do on a busy instance."""

    def __init__(self, instance, start):
        self.instance = instance
        self.base = start
        self.ticks = 0

    def install(self):
        self.instance.clock = self.now

    def advance(self, seconds):
        self.base += timedelta(seconds=seconds)

    def now(self):
        self.ticks += 1
        return self.base + timedelta(seconds=self.ticks // 2)


class CountingReporter(Reporter):
    """Counts the sync's warnings instead of logging each."""

    def __init__(self):
        self.count = 0

    def warning(self, message):
        self.count += 1


class Soak:
    def __init__(self, settings, folder):
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.instance = generate_instance(seed=settings.seed, scale=settings.scale)
        self.clock = SandboxClock(self.instance, CLOCK_START)
        self.clock.install()
        self.chaos = Chaos(
            seed=settings.seed,
            rate=settings.fault_rate,
            kinds=KINDS,
            rate_limit=settings.rate_limit,
            stall_seconds=settings.stall_seconds,
        )
        self.server = SandboxServer(
            self.instance, username=USERNAME, password=PASSWORD, chaos=self.chaos
        )
        self.db_path = str(Path(folder) / "soak.db")
        self.deleted = set()
        self.report = Report()

    def run(self):
        started = time.monotonic()
        with self.server:
            for number in range(1, self.settings.runs + 1):
                self.change_data()
                self.chaos.reseed(self.settings.seed * 100_000 + number)
                self.sync_run(number)
                last = number == self.settings.runs
                if last or number % self.settings.check_every == 0:
                    self.checkpoint(number)
        self.report.faults = Counter(self.chaos.counts)
        self.report.variants = Counter(self.chaos.variants)
        self.report.seconds = time.monotonic() - started
        return self.report

    def client(self):
        return IvinexClient(
            self.server.url,
            USERNAME,
            PASSWORD,
            timeout=self.settings.timeout,
            retries=self.settings.retries,
            backoff_factor=0,
            page_size=self.settings.page_size,
        )

    def sync(self, client, mirror, reporter):
        options = {}
        if self.settings.concurrency is not None:
            options["concurrency"] = self.settings.concurrency
        return sync(client, mirror, reporter=reporter, **options)

    def problem(self, number, check, detail):
        self.report.checks[check] += 1
        self.report.problems.append((number, check, detail))

    # Between runs

    def change_data(self):
        self.clock.advance(self.rng.choice(CLOCK_STEPS))
        names, weights = zip(*CHANGES)
        for _ in range(self.rng.randint(0, self.settings.changes)):
            change = self.rng.choices(names, weights)[0]
            done = self.change(change)
            if done:
                self.report.changes[done] += 1

    def change(self, change):
        instance, rng = self.instance, self.rng
        tab = rng.choice([entry["TabName"] for entry in instance.tabs])
        if change in ("add", "modify"):
            return change_record(instance, tab, rng, change == "add")
        if change in ("link-add", "link-remove"):
            return change_link(instance, rng, change == "link-add")
        if change == "field-add":
            return self.add_field(tab)
        records = sorted(instance.records[tab])
        if len(records) < 3:
            return None
        record_id = rng.choice(records)
        instance.delete_record(tab, record_id)
        self.deleted.add((tab, record_id))
        return "delete"

    def add_field(self, tab):
        """A new field, and a value for it in a few records."""
        instance, rng = self.instance, self.rng
        name = f"soak_field_{self.report.changes['field-add'] + 1}"
        new = instance.add_field(
            tab, {"FieldName": name, "FieldType": rng.choice(NEW_FIELD_TYPES)}
        )
        for record_id in sorted(instance.records[tab])[:3]:
            value = field_value(instance, new, rng)
            instance.update_record(tab, record_id, {name: value})
        return "field-add"

    # A run with faults

    def sync_run(self, number):
        client = self.client()
        reporter = CountingReporter()
        outcome = "failed"
        with closing(Mirror(self.db_path)) as mirror:
            try:
                outcome = self.sync(client, mirror, reporter).status
            except IvinexError as error:
                self.check_loud(number, mirror, error)
            except Exception:  # noqa: BLE001 - a crash is what the soak looks for
                outcome = "crashed"
                self.problem(number, "crash", traceback.format_exc())
            finally:
                client.close()
            self.tally(client, reporter, outcome)
            self.check_database(number, mirror)
        if self.settings.verbose:
            print(f"run {number}: {outcome}", file=sys.stderr)

    def tally(self, client, reporter, outcome):
        self.report.runs += 1
        self.report.outcomes[outcome] += 1
        self.report.requests += client.request_count
        self.report.retries += client.retry_count
        self.report.warnings += reporter.count

    def check_loud(self, number, mirror, error):
        """A failed run names its error, in the exception and in the runs table."""
        self.report.errors[type(error).__name__] += 1
        row = mirror.db.execute(
            "select status, error from ivinex_sync_runs order by id desc limit 1"
        ).fetchone()
        if not str(error).strip() or row is None or row[0] != "failed" or not row[1]:
            self.problem(number, "quiet failure", f"{error!r}; last run row {row}")

    # After every run

    def check_database(self, number, mirror):
        db = mirror.db
        integrity = db.execute("pragma integrity_check").fetchone()[0]
        if integrity != "ok":
            self.problem(number, "integrity", integrity)

        key = ", ".join(LINK_KEY)
        duplicates = db.execute(
            f"select {key}, count(*) from links group by {key} having count(*) > 1"
        ).fetchall()
        if duplicates:
            self.report.duplicate_links += len(duplicates)
            self.problem(number, "duplicate links", duplicates[:SHOWN])

        tabs = db.execute("select name, table_name, cursor from ivinex_tabs")
        with self.instance.lock:
            for name, table, cursor in tabs.fetchall():
                self.check_rows(number, db, name, table)
                self.check_cursor(number, db, name, table, cursor)

    def check_rows(self, number, db, tab, table):
        """Every live row is a whole record that exists (or existed) upstream."""
        upstream = self.instance.records.get(tab, {})
        rows = db.execute(
            f'select collection_id, created_date, modified_date from "{table}"'
            " where _deleted_at is null"
        ).fetchall()
        phantoms, broken = [], []
        for record_id, created, modified in rows:
            record = upstream.get(record_id)
            if record is None:
                if (tab, record_id) not in self.deleted:
                    phantoms.append(record_id)
                continue
            whole = modified is not None and created == stored(record, "created_date")
            if not whole or modified > stored(record, "modified_date"):
                broken.append((record_id, created, modified))
        if phantoms:
            self.problem(number, "phantom rows", f"{tab}: {phantoms[:SHOWN]}")
        if broken:
            self.problem(number, "broken rows", f"{tab}: {broken[:SHOWN]}")

    def check_cursor(self, number, db, tab, table, cursor):
        """No record older than the cursor, less the overlap, is left behind."""
        if not cursor:
            return
        threshold = datetime.fromisoformat(cursor) - OVERLAP
        before = threshold.strftime(STAMP_FORMAT)
        rows = dict(
            db.execute(
                f'select collection_id, modified_date from "{table}"'
                " where _deleted_at is null"
            ).fetchall()
        )
        behind = [
            (record_id, record["modified_date"], rows.get(record_id))
            for record_id, record in self.instance.records.get(tab, {}).items()
            if record["modified_date"] < before
            and rows.get(record_id) != stored(record, "modified_date")
        ]
        if behind:
            self.problem(
                number,
                "records behind the cursor",
                f"{tab} (cursor {cursor}): {sorted(behind)[:SHOWN]}",
            )

    # Every few runs: the truth

    def checkpoint(self, number):
        """Faults off, one clean sync, then verify must agree."""
        with self.chaos.paused(), closing(Mirror(self.db_path)) as mirror:
            client = self.client()
            try:
                self.clean_sync(number, client, mirror)
            finally:
                client.close()
            self.check_database(number, mirror)

    def clean_sync(self, number, client, mirror):
        self.report.clean_syncs += 1
        try:
            result = self.sync(client, mirror, CountingReporter())
        except Exception:  # noqa: BLE001 - reported, with its traceback
            self.problem(number, "clean sync failed", traceback.format_exc())
            return
        if result.status != "ok":
            self.problem(number, "clean sync not ok", result.status)
        verdict = verify(client, mirror)
        self.report.records_lost += sum(len(check.missing) for check in verdict.tabs)
        if not verdict.agrees:
            self.report.disagreements += 1
            self.problem(number, "verify disagrees", describe(verdict))


def stored(record, name):
    """A date-time of a record as the mirror stores it (ISO, with a T)."""
    value = record.get(name)
    return value.replace(" ", "T", 1) if isinstance(value, str) else value


def describe(verdict):
    parts = []
    for check in verdict.tabs:
        if check.agrees:
            continue
        parts.append(
            f"{check.name}: missing {check.missing[:SHOWN]}, extra "
            f"{check.extra[:SHOWN]}, differing {check.differing[:SHOWN]}, "
            f"unmapped {check.unmapped_fields[:SHOWN]}"
        )
    links = verdict.links
    if not links.agrees:
        parts.append(
            f"links: missing {links.missing[:SHOWN]}, extra {links.extra[:SHOWN]}"
        )
    return "; ".join(parts)


def soak(settings):
    """Run the soak in a temporary folder; returns its Report."""
    with tempfile.TemporaryDirectory(prefix="ivinex-soak-") as folder:
        return Soak(settings, folder).run()


def table(report):
    """The report as (what, count) rows."""
    rows = [
        ("runs", report.runs),
        ("runs ok", report.outcomes["ok"]),
        ("runs partial (a tab or the links refused)", report.outcomes["partial"]),
        ("runs failed (loudly)", report.failed),
    ]
    rows += [(f"  failed with {name}", n) for name, n in sorted(report.errors.items())]
    rows += [("runs crashed (not an IvinexError)", report.outcomes["crashed"])]
    rows += [("faults injected", sum(report.faults.values()))]
    for kind in KINDS:
        rows.append((f"  {kind}", report.faults[kind]))
        variants = sorted(
            (name.split(":", 1)[1], n)
            for name, n in report.variants.items()
            if name.split(":", 1)[0] == kind
        )
        if len(variants) > 1:
            rows += [(f"  {kind}: {variant}", n) for variant, n in variants]
    rows += [
        ("requests sent (with retries)", report.requests),
        ("retries", report.retries),
        ("sync warnings", report.warnings),
        ("data changes between runs", sum(report.changes.values())),
    ]
    rows += [(f"  change: {name}", n) for name, n in sorted(report.changes.items())]
    rows += [
        ("clean syncs + verify", report.clean_syncs),
        ("verify disagreed", report.disagreements),
        ("records lost", report.records_lost),
        ("duplicate links", report.duplicate_links),
    ]
    rows += [(f"check failed: {name}", n) for name, n in sorted(report.checks.items())]
    rows += [("seconds", f"{report.seconds:.1f}")]
    return rows


def missing_kinds(report):
    return [kind for kind in KINDS if not report.faults[kind]]


def main(argv=None):
    settings = parse_args(argv)
    # The sync's warnings are counted; the client's and the sandbox's are
    # expected under faults, so only errors are shown.
    logging.basicConfig(level=logging.WARNING if settings.verbose else logging.ERROR)
    report = soak(settings)
    print(
        f"Soak: {settings.runs} runs, seed {settings.seed}, scale {settings.scale}, "
        f"fault rate {settings.fault_rate}, rate limit {settings.rate_limit}/s, "
        f"client timeout {settings.timeout} s, stall {settings.stall_seconds} s"
    )
    rows = table(report)
    print(tabulate(rows, headers=("", "count"), disable_numparse=True))
    shown = Counter()
    for number, check, detail in report.problems:
        shown[check] += 1
        if shown[check] <= SHOWN:
            print(f"\nrun {number}: {check}\n{detail}")
    missing = missing_kinds(report)
    if missing:
        print(f"\nNever injected: {', '.join(missing)}; run longer or raise the rate.")
    if report.problems or missing:
        print(f"\nReplay: python bench/soak.py --seed {settings.seed} ...")
    return 0 if report.ok and not missing else 1


def parse_args(argv):
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--scale", type=float, default=defaults.scale, help="sandbox size"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=defaults.fault_rate,
        help="share of requests that fail, and of pages preceded by a shift",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=defaults.rate_limit,
        help="requests a second above which the sandbox answers 429",
    )
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout, help="client timeout"
    )
    parser.add_argument("--stall-seconds", type=float, default=defaults.stall_seconds)
    parser.add_argument("--retries", type=int, default=defaults.retries)
    parser.add_argument("--page-size", type=int, default=defaults.page_size)
    parser.add_argument(
        "--changes",
        type=int,
        default=defaults.changes,
        help="at most this many data changes between runs",
    )
    parser.add_argument(
        "--check-every",
        type=int,
        default=defaults.check_every,
        help="a clean sync and verify every this many runs",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests the sync sends at once (default: the sync's own); "
        "with 1, a seed replays the same faults and data exactly",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.check_every < 1:
        parser.error("--runs and --check-every must be at least 1")
    return Settings(**vars(args))


if __name__ == "__main__":
    sys.exit(main())
