"""How fast ivinex-mirror syncs, and how much memory it takes, against peers.

Starts the sandbox (as a process of its own, so that its memory is not
counted) at each scale and latency asked for, and runs, one after another and
each as its own process:

- floor: every page a full sync needs, fetched with the same page size and
  connection count, decoded, and thrown away;
- sync full, sync no change, sync 1% changed: `ivinex-mirror sync` on a new
  database, again with nothing changed, and again after 1% of the records of
  every tab were edited through the API;
- naive: requests and sqlite-utils' insert_all per page, default settings;
- dlt: dlt's REST API source into its SQLAlchemy destination on SQLite.

Each gets its wall time, the requests the sandbox saw, its peak RSS (from
os.wait4 on the process) and its time as a multiple of the floor's. The
table is printed and written as JSON, with the targets checked against it.

    python bench/bench.py                      # 100,000 and 10,000 records
    python bench/bench.py --scale 1 --latency-ms 0 --skip-dlt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests

# Scale 19.24 is the smallest that gives at least 100,000 records (19.23
# gives 99,996); 1.923 gives exactly 10,000, for the memory comparison.
DEFAULT_SCALES = (19.24, 1.923)
DEFAULT_LATENCIES = (0, 50)
DEFAULT_OUT = Path(__file__).with_name("results.json")
USER = PASSWORD = "demo"
PAGE_SIZE = 500
CHANGED_SHARE = 0.01
WRITE_BATCH = 200
SANDBOX_START_SECONDS = 180
POLL_SECONDS = 0.005
# Every time is taken from 1970 on, as a full sync reads.
BEGINNING = datetime(1970, 1, 1)
MIRROR_RUNS = ("sync full", "sync no change", "sync 1% changed")


@dataclass
class Result:
    scale: float
    latency_ms: int
    contender: str
    status: str = "ok"
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    requests: int | None = None
    by_call: dict = field(default_factory=dict)
    records: int | None = None
    links: int | None = None
    ratio_to_floor: float | None = None


# Running one contender


def measure(result, command, sandbox, timeout, workdir, env=None):
    """Run `command` as its own process and fill in `result`."""
    before = sandbox.stats()
    log = workdir / f"{result.contender.replace(' ', '_')}.log"
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=output,
            cwd=workdir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        # The child's answer is small; read it in a thread so that the wait
        # below, which also gives the child's own rusage, is not blocked.
        answer = []
        reader = threading.Thread(
            target=lambda: answer.append(process.stdout.read()), daemon=True
        )
        reader.start()
        code, usage = wait_for(process, started + timeout)
        reader.join(timeout=10)
        process.stdout.close()
    result.wall_s = round(time.monotonic() - started, 3)
    result.cpu_s = round(usage.ru_utime + usage.ru_stime, 2)
    # Linux reports ru_maxrss in kilobytes.
    result.peak_rss_mb = round(usage.ru_maxrss / 1024, 1)
    after = sandbox.stats()
    result.requests = after["requests"] - before["requests"]
    result.by_call = {
        call: count - before["by_call"].get(call, 0)
        for call, count in after["by_call"].items()
        if count != before["by_call"].get(call, 0)
    }
    result.status = status_of(code, timeout, log)
    return parse_answer(answer[0] if answer else b"")


def wait_for(process, deadline):
    """Wait for the process (killing its group past the deadline); returns
    its exit code, None when it timed out, and its resource usage."""
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage
        time.sleep(POLL_SECONDS)
    os.killpg(process.pid, signal.SIGKILL)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return None, usage


def status_of(code, timeout, log):
    if code is None:
        return f"timed out after {timeout:g} s"
    if code == 0:
        return "ok"
    lines = log.read_text(errors="replace").strip().splitlines()
    return f"exit {code}: {lines[-1][:120] if lines else 'no output'}"


def parse_answer(raw):
    lines = raw.decode(errors="replace").strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}


# The sandbox


class Sandbox:
    def __init__(self, url):
        self.url = url
        self.session = requests.Session()

    def stats(self):
        answer = self.session.get(f"{self.url}/_sandbox/stats", timeout=30)
        return answer.json()

    def warm(self):
        """Ask once for links, so that whoever comes next does not pay for the
        sandbox building its sorted link list (a real server has no such
        cache to fill); this request is counted against no one."""
        self.session.get(
            f"{self.url}/API/GetAllRelatedItems",
            params={"Limit": 1},
            auth=(USER, PASSWORD),
            timeout=120,
        ).raise_for_status()

    def post_records(self, items):
        answer = self.session.post(
            f"{self.url}/API/Records.php",
            json={"Records": items},
            auth=(USER, PASSWORD),
            timeout=120,
        )
        answer.raise_for_status()
        failed = [item for item in answer.json() if item.get("Status") != "Success"]
        if failed:
            raise RuntimeError(f"The sandbox refused a change: {failed[0]}")


@contextmanager
def running_sandbox(scale, latency_ms, seed, workdir):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "ivinex_mirror",
        "sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--scale",
        str(scale),
        "--latency-ms",
        str(latency_ms),
        "--seed",
        str(seed),
    ]
    with open(workdir / "sandbox.log", "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=log, start_new_session=True
        )
    try:
        sandbox = Sandbox(f"http://127.0.0.1:{port}")
        wait_until_ready(sandbox, process)
        yield sandbox
    finally:
        stop(process)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(sandbox, process):
    deadline = time.monotonic() + SANDBOX_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("The sandbox stopped before it answered")
        try:
            sandbox.stats()
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"The sandbox did not answer in {SANDBOX_START_SECONDS} s")


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# The 1% change


def change_records(sandbox, db_path, share, seed):
    """Edit `share` of every tab's records through the API: a text field of
    each gets a new value, which stamps a new modified_date."""
    rng = random.Random(seed)
    items = []
    with closing_db(db_path) as db:
        tabs = db.execute("select tab_id, table_name from ivinex_tabs").fetchall()
        for tab_id, table in tabs:
            text_field = first_text_field(db, tab_id)
            ids = [
                row[0]
                for row in db.execute(
                    f'select collection_id from "{table}" order by collection_id'
                )
            ]
            for record_id in rng.sample(ids, max(1, round(len(ids) * share))):
                value = f"Changed by the benchmark ({record_id})"
                items.append(
                    {
                        "CollectionTypeID": tab_id,
                        "CollectionID": record_id,
                        text_field: value,
                    }
                )
    for start in range(0, len(items), WRITE_BATCH):
        sandbox.post_records(items[start : start + WRITE_BATCH])
    return len(items)


def first_text_field(db, tab_id):
    row = db.execute(
        "select field_name from ivinex_fields where tab_id = ? and "
        "field_type = 'Text' and not retired order by field_name limit 1",
        (tab_id,),
    ).fetchone()
    if row is None:
        raise RuntimeError(f"Tab {tab_id} has no text field to change")
    return row[0]


@contextmanager
def closing_db(path):
    db = sqlite3.connect(path)
    try:
        yield db
    finally:
        db.close()


def mirror_counts(db_path):
    """Live records and links in an ivinex-mirror database."""
    with closing_db(db_path) as db:
        tables = [row[0] for row in db.execute("select table_name from ivinex_tabs")]
        records = sum(
            db.execute(
                f'select count(*) from "{table}" where _deleted_at is null'
            ).fetchone()[0]
            for table in tables
        )
        links = db.execute("select count(*) from links").fetchone()[0]
    return records, links


# One scale and latency


@dataclass
class Settings:
    seed: int
    timeout: float
    concurrency: int
    concurrency_option: bool
    skip_dlt: bool


def bench_instance(scale, latency_ms, settings, workdir):
    results = []
    note(f"scale {scale:g}, {latency_ms} ms: starting the sandbox")
    with running_sandbox(scale, latency_ms, settings.seed, workdir) as sandbox:
        for step in contender_steps(settings):
            sandbox.warm()
            result = Result(scale, latency_ms, step.name)
            note(f"scale {scale:g}, {latency_ms} ms: {step.name}")
            step.run(result, sandbox, settings, workdir)
            results.append(result)
            note(f"  {result.wall_s} s, {result.requests} requests, {result.status}")
    floor = results[0].wall_s if results[0].status == "ok" else None
    for result in results:
        if floor and result.wall_s is not None:
            result.ratio_to_floor = round(result.wall_s / floor, 2)
    return results


@dataclass
class Step:
    name: str
    run: object


def contender_steps(settings):
    steps = [
        Step("floor", run_floor),
        Step("sync full", run_sync_full),
        Step("sync no change", run_sync),
        Step("sync 1% changed", run_sync_after_change),
        Step("naive", run_naive),
    ]
    if not settings.skip_dlt:
        steps.append(Step("dlt", run_dlt))
    return steps


def here(*args):
    return [sys.executable, str(Path(__file__).resolve()), *args]


def run_floor(result, sandbox, settings, workdir):
    command = here("floor", sandbox.url, "--connections", str(settings.concurrency))
    answer = measure(result, command, sandbox, settings.timeout, workdir)
    result.records = answer.get("records")
    result.links = answer.get("links")


def run_sync_full(result, sandbox, settings, workdir):
    for path in workdir.glob("mirror.db*"):
        path.unlink()
    run_sync(result, sandbox, settings, workdir)


def run_sync(result, sandbox, settings, workdir):
    db_path = workdir / "mirror.db"
    command = [
        sys.executable,
        "-m",
        "ivinex_mirror",
        "sync",
        str(db_path),
        "--company",
        sandbox.url,
        "--username",
        USER,
        "--page-size",
        str(PAGE_SIZE),
        "--silent",
    ]
    if settings.concurrency_option:
        command += ["--concurrency", str(settings.concurrency)]
    env = {
        "IVINEX_PASSWORD": PASSWORD,
        # A saved account of the user running the benchmark is never read.
        "IVINEX_MIRROR_ACCOUNT_FILE": str(workdir / "no-account.json"),
    }
    measure(result, command, sandbox, settings.timeout, workdir, env)
    if result.status == "ok":
        result.records, result.links = mirror_counts(db_path)


def run_sync_after_change(result, sandbox, settings, workdir):
    try:
        changed = change_records(
            sandbox, workdir / "mirror.db", CHANGED_SHARE, settings.seed
        )
    except (sqlite3.Error, RuntimeError, requests.RequestException) as error:
        # The earlier syncs failed, or the sandbox refused the edits.
        result.status = f"not run: {error}"
        return
    note(f"  changed {changed} records through the API")
    sandbox.warm()
    run_sync(result, sandbox, settings, workdir)


def run_naive(result, sandbox, settings, workdir):
    db_path = workdir / "naive.db"
    db_path.unlink(missing_ok=True)
    command = here("naive", sandbox.url, str(db_path))
    answer = measure(result, command, sandbox, settings.timeout, workdir)
    result.records = answer.get("records")
    result.links = answer.get("links")


def run_dlt(result, sandbox, settings, workdir):
    dlt_dir = workdir / "dlt"
    command = here("dlt", sandbox.url, str(dlt_dir))
    # dlt reports usage to its makers by default; the benchmark talks to
    # nothing but the sandbox on loopback.
    env = {"RUNTIME__DLTHUB_TELEMETRY": "false"}
    answer = measure(result, command, sandbox, settings.timeout, workdir, env)
    result.records = answer.get("records")
    result.links = answer.get("links")


# The contenders that live in this file, each run as `bench.py MODE ...`


def fetch_floor(url, concurrency):
    """Fetch every page a full sync reads, on `concurrency` connections, and
    keep nothing; prints the counts as JSON."""
    from ivinex_mirror.client import IvinexClient

    local = threading.local()

    def client():
        # One session per thread: requests does not promise that a session
        # may be shared between threads.
        if not hasattr(local, "client"):
            local.client = IvinexClient(url, USER, PASSWORD, page_size=PAGE_SIZE)
        return local.client

    with ThreadPoolExecutor(concurrency) as pool:
        tabs = client().fetch_tabs()
        list(pool.map(lambda tab: client().fetch_fields(tab), tabs))
        first = [pool.submit(first_record_page, client, tab) for tab in tabs]
        first_links = pool.submit(first_link_page, client)
        rest = [
            pool.submit(record_page, client, tab, offset)
            for tab, total in (future.result() for future in first)
            for offset in later_offsets(total)
        ]
        rest += [
            pool.submit(link_page, client, offset)
            for offset in later_offsets(first_links.result())
        ]
        for future in rest:
            future.result()
    records = sum(total for _tab, total in (f.result() for f in first))
    print(json.dumps({"records": records, "links": first_links.result()}))


def later_offsets(total):
    """The offsets after the first page, up to the short (maybe empty) page
    that tells a reader it has reached the end."""
    return range(PAGE_SIZE, total + 1, PAGE_SIZE)


def first_record_page(client, tab):
    page = client().fetch_record_page(tab, modified_since=BEGINNING)
    if page.total is None:
        raise RuntimeError("The floor needs the server's Total to plan its pages")
    return tab, page.total


def record_page(client, tab, offset):
    page = client().fetch_record_page(tab, modified_since=BEGINNING, offset=offset)
    return len(page.items)


def first_link_page(client):
    return next(iter(client().fetch_link_pages())).total


def link_page(client, offset):
    return len(next(iter(client().fetch_link_pages(offset=offset))).items)


def load_naive(url, db_path):
    """What one would write in an afternoon: page through every tab and the
    links by offset on one connection, insert_all each page as it comes."""
    import sqlite_utils

    db = sqlite_utils.Database(db_path)
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    tabs = session.get(f"{url}/API/GetTabs", timeout=60).json()["Tabs"]
    records = 0
    for tab in tabs:
        columns = {}
        for page in naive_pages(session, url, "GetRecords", "Records", tab["TabName"]):
            rows = [naive_row(columns, record) for record in page]
            db[tab["TabName"]].insert_all(rows)
            records += len(rows)
    links = 0
    for page in naive_pages(session, url, "GetAllRelatedItems", "RelatedItems"):
        db["links"].insert_all(page)
        links += len(page)
    print(json.dumps({"records": records, "links": links}))


def naive_pages(session, url, call, key, tab=None):
    params = {"Limit": PAGE_SIZE} if tab is None else {"Limit": PAGE_SIZE, "Tab": tab}
    for offset in range(0, sys.maxsize, PAGE_SIZE):
        answer = session.get(
            f"{url}/API/{call}", params={**params, "Offset": offset}, timeout=60
        )
        answer.raise_for_status()
        items = answer.json()[key]
        yield items
        if len(items) < PAGE_SIZE:
            return


def naive_row(columns, record):
    """SQLite column names ignore case and Project Tracker has both Status and
    status: the one change to the records that insert_all needs."""
    for key in record:
        if key not in columns:
            columns[key] = unique_name(key, {name.lower() for name in columns.values()})
    return {columns[key]: value for key, value in record.items()}


def unique_name(key, taken):
    for number in range(1, len(taken) + 2):
        name = key if number == 1 else f"{key}_{number}"
        if name.lower() not in taken:
            return name
    raise AssertionError("unreachable: one of len(taken) + 1 names is free")


def load_dlt(url, pipelines_dir):
    """dlt's REST API source, one resource per tab and one for the links,
    into its SQLAlchemy destination on SQLite; dlt's defaults otherwise."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    session = requests.Session()
    tabs = session.get(f"{url}/API/GetTabs", auth=(USER, PASSWORD), timeout=60).json()[
        "Tabs"
    ]
    source = rest_api_source(dlt_config(url, [tab["TabName"] for tab in tabs]))
    Path(pipelines_dir).mkdir(parents=True, exist_ok=True)
    db_path = Path(pipelines_dir) / "dlt.db"
    pipeline = dlt.pipeline(
        pipeline_name="ivinex_bench",
        destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{db_path}"),
        dataset_name="ivinex",
        pipelines_dir=str(pipelines_dir),
    )
    pipeline.run(source)
    counts = pipeline.last_trace.last_normalize_info.row_counts
    links = counts.get("links", 0)
    records = sum(
        count
        for table, count in counts.items()
        if table != "links" and "__" not in table and not table.startswith("_dlt")
    )
    print(json.dumps({"records": records, "links": links}))


def dlt_config(url, tab_names):
    resources = [
        {
            "name": name,
            "endpoint": {
                "path": "GetRecords",
                "params": {"Tab": name},
                "data_selector": "Records",
            },
        }
        for name in tab_names
    ]
    resources.append(
        {
            "name": "links",
            "endpoint": {
                "path": "GetAllRelatedItems",
                "data_selector": "RelatedItems",
            },
        }
    )
    return {
        "client": {
            "base_url": f"{url}/API/",
            "auth": {"type": "http_basic", "username": USER, "password": PASSWORD},
            "paginator": {
                "type": "offset",
                "limit": PAGE_SIZE,
                "offset_param": "Offset",
                "limit_param": "Limit",
                # dlt's offset paginator has no short-page stop; the Total
                # the API sends ends the paging at the same page.
                "total_path": "Total",
            },
        },
        "resources": resources,
    }


# Targets


def check_targets(results):
    """Each target of the benchmark, met or not, per scale and latency."""
    checks = []
    by_key = {(r.scale, r.latency_ms, r.contender): r for r in results}
    scales = sorted({r.scale for r in results}, reverse=True)
    latencies = sorted({r.latency_ms for r in results})
    for scale in scales:
        for latency in latencies:
            checks += instance_targets(by_key, scale, latency)
    if len(scales) > 1:
        for latency in latencies:
            checks += memory_growth_target(by_key, scales[0], scales[-1], latency)
    return checks


def instance_targets(by_key, scale, latency):
    def get(name):
        found = by_key.get((scale, latency, name))
        ok = found is not None and found.status == "ok"
        return found if ok else None

    full, floor = get("sync full"), get("floor")
    where = f"scale {scale:g}, {latency} ms"
    checks = []
    limit = 1.3 if latency >= 50 else 2.0
    if full and floor:
        ratio = full.wall_s / floor.wall_s
        checks.append(target(where, f"full sync <= {limit}x floor", ratio, limit))
    if full and get("dlt"):
        ratio = get("dlt").wall_s / full.wall_s
        checks.append(target(where, "dlt / full sync >= 2", ratio, 2, at_least=True))
    if full and get("naive"):
        ratio = full.wall_s / get("naive").wall_s
        checks.append(target(where, "full sync / naive <= 1", ratio, 1))
    if full and get("sync no change"):
        share = get("sync no change").wall_s / full.wall_s
        checks.append(target(where, "no-change sync <= 5% of full", share, 0.05))
    if full and full.records and full.records >= 100_000:
        peak = max(get(name).peak_rss_mb for name in MIRROR_RUNS if get(name))
        checks.append(target(where, "peak RSS of the syncs < 200 MB", peak, 200))
    return checks


def memory_growth_target(by_key, large, small, latency):
    peaks = []
    for scale in (large, small):
        found = [by_key.get((scale, latency, name)) for name in MIRROR_RUNS]
        found = [r for r in found if r is not None and r.status == "ok"]
        if not found:
            return []
        peaks.append(max(r.peak_rss_mb for r in found))
    where = f"scale {large:g} vs {small:g}, {latency} ms"
    name = "peak RSS of the syncs within 20% of the smaller scale's"
    return [target(where, name, peaks[0] / peaks[1], 1.2)]


def target(where, name, value, limit, at_least=False):
    met = value >= limit if at_least else value <= limit
    return {"where": where, "target": name, "value": round(value, 3), "met": met}


# Output


COLUMNS = (
    ("scale", "scale"),
    ("records", "records"),
    ("latency_ms", "latency ms"),
    ("contender", "contender"),
    ("wall_s", "wall s"),
    ("ratio_to_floor", "x floor"),
    ("requests", "requests"),
    ("peak_rss_mb", "peak RSS MB"),
    ("cpu_s", "CPU s"),
    ("links", "links"),
    ("status", "status"),
)


def format_table(results):
    from tabulate import tabulate

    rows = [[getattr(r, key) for key, _ in COLUMNS] for r in results]
    return tabulate(rows, headers=[title for _, title in COLUMNS])


def format_targets(checks):
    lines = ["Targets:"]
    for check in checks:
        mark = "met " if check["met"] else "MISSED"
        lines.append(
            f"  {mark:6} {check['where']}: {check['target']} "
            f"(measured {check['value']})"
        )
    return "\n".join(lines)


def note(message):
    print(message, file=sys.stderr, flush=True)


# Command line


def sync_concurrency():
    """(has the option, its default): whether `ivinex-mirror sync` takes
    --concurrency, read from the command's own definition."""
    from ivinex_mirror.cli import cli

    command = cli.commands["sync"]
    for param in command.params:
        if param.name == "concurrency":
            return True, param.default
    return False, 1


def run_benchmark(args):
    has_option, default = sync_concurrency()
    concurrency = args.concurrency if has_option and args.concurrency else default
    if args.concurrency and not has_option:
        note("ivinex-mirror sync has no --concurrency option; using 1 connection")
    settings = Settings(args.seed, args.timeout, concurrency, has_option, args.skip_dlt)
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="ivinex-bench-") as tmp:
        for scale in args.scale or DEFAULT_SCALES:
            for latency in args.latency_ms or DEFAULT_LATENCIES:
                workdir = Path(tmp) / f"s{scale:g}-l{latency}"
                workdir.mkdir()
                results += bench_instance(scale, latency, settings, workdir)
    report(args, settings, results, time.monotonic() - started)


def report(args, settings, results, seconds):
    checks = check_targets(results)
    print(format_table(results))
    print()
    print(format_targets(checks))
    print(
        f"\n{len(results)} runs in {seconds:.0f} s; "
        f"{settings.concurrency} connection(s) for the syncs and the floor"
        f"{'' if settings.concurrency_option else ' (sync has no --concurrency)'}."
    )
    payload = {
        "command": " ".join(["python", "bench/bench.py", *sys.argv[1:]]),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "page_size": PAGE_SIZE,
        "concurrency": settings.concurrency,
        "sync_has_concurrency_option": settings.concurrency_option,
        "results": [asdict(r) for r in results],
        "targets": checks,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    note(f"Wrote {out}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Benchmark ivinex-mirror against the fetch floor and peers."
    )
    parser.add_argument(
        "--scale",
        type=float,
        nargs="+",
        action="extend",
        help="Sandbox scales (repeatable; default 19.24 = 100,048 records and "
        "1.923 = 10,000 records).",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        nargs="+",
        action="extend",
        help="Delay the sandbox adds to every request (repeatable; default 0 50).",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="Connections for the sync (its --concurrency, when it has one) and "
        "the floor; default: the sync's own default.",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON results file.")
    parser.add_argument("--skip-dlt", action="store_true", help="Leave dlt out.")
    parser.add_argument("--seed", type=int, default=1, help="Sandbox seed.")
    parser.add_argument(
        "--timeout", type=float, default=600, help="Seconds allowed per contender."
    )
    modes = parser.add_subparsers(dest="mode")
    floor = modes.add_parser("floor", help="(internal) fetch every page, keep none")
    floor.add_argument("url")
    floor.add_argument("--connections", type=int, default=1)
    naive = modes.add_parser("naive", help="(internal) requests + insert_all")
    naive.add_argument("url")
    naive.add_argument("db")
    dlt = modes.add_parser("dlt", help="(internal) dlt rest_api into SQLite")
    dlt.add_argument("url")
    dlt.add_argument("pipelines_dir")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.mode == "floor":
        fetch_floor(args.url, args.connections)
    elif args.mode == "naive":
        load_naive(args.url, args.db)
    elif args.mode == "dlt":
        load_dlt(args.url, args.pipelines_dir)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
