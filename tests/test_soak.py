"""A short soak: sync runs against a sandbox failing at random, data changing
between runs. Nothing may be lost or stored twice, a failed run must fail
loudly, and a clean sync after the faults must verify. bench/soak.py runs
the long version."""

import importlib.util
from pathlib import Path

import pytest

from ivinex_mirror.sandbox.chaos import KINDS

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


@pytest.fixture(scope="module")
def soak():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(soak):
    settings = soak.Settings(
        runs=15, seed=3, fault_rate=0.08, rate_limit=150, check_every=5
    )
    return soak.soak(settings)


def test_nothing_is_lost_or_doubled(report):
    assert report.runs == 15
    assert report.records_lost == 0
    assert report.duplicate_links == 0


def test_every_check_holds_after_every_run(report):
    assert report.problems == []
    assert report.clean_syncs == 3
    assert report.disagreements == 0


def test_every_fault_kind_was_injected(report):
    assert {kind for kind in KINDS if report.faults[kind]} == set(KINDS)
    assert report.retries > 0


def test_runs_both_failed_loudly_and_got_through(report):
    assert report.failed > 0
    assert sum(report.errors.values()) == report.failed
    assert report.outcomes["ok"] + report.outcomes["partial"] > 0
    assert sum(report.changes.values()) > 0


def test_the_script_fails_when_records_are_lost(soak):
    lost = soak.Report(records_lost=1)
    doubled = soak.Report(duplicate_links=2)
    broken = soak.Report(problems=[(4, "phantom rows", "Notes: [7]")])

    assert soak.Report().ok
    assert not lost.ok and not doubled.ok and not broken.ok


def test_the_checks_catch_a_damaged_mirror(soak, tmp_path):
    run = soak.Soak(soak.Settings(runs=1, fault_rate=0.0, rate_limit=0), tmp_path)
    with run.server:
        run.sync_run(1)
    assert run.report.problems == []
    contact, other = sorted(run.instance.records["Contacts"])[:2]

    with soak.closing(soak.Mirror(run.db_path)) as mirror:
        mirror.db.execute("insert into contacts (collection_id) values (999999)")
        mirror.db.execute(
            "update contacts set modified_date = '2001-01-01T00:00:00'"
            " where collection_id = ?",
            [contact],
        )
        mirror.db.execute(
            "update contacts set created_date = null where collection_id = ?",
            [other],
        )
        mirror.db.conn.commit()
        run.check_database(2, mirror)

    checks = {check for _number, check, _detail in run.report.problems}
    assert checks == {"phantom rows", "records behind the cursor", "broken rows"}
