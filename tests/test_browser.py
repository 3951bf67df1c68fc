"""A CRM user's first look at a mirror, in a real browser.

A sandbox is mirrored, `ivinex-mirror serve` serves it on a free loopback
port, and headless Chromium (Debian's chromium package, driven by
playwright) browses it: labels on a tab's table, a facet, a search across
all tabs, a linked record. Each step leaves a screenshot in
test-artifacts/browser/.

Without /usr/bin/chromium the tests skip, except under CI (the CI variable
set), where a missing browser is a failure.
"""

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ivinex_mirror.client import IvinexClient
from ivinex_mirror.sandbox import SandboxServer, generate_instance
from tests.conftest import PASSWORD
from tests.test_search import mirror_sandbox, surname_in_notes

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"

# Milliseconds for the browser, seconds for the server.
STEP_TIMEOUT_MS = 15_000
SERVER_START_SECONDS = 30
SERVER_STOP_SECONDS = 10

SEED, SCALE = 1, 0.2

pytestmark = pytest.mark.timeout(180)


def require(condition, reason):
    """Skip without the browser or playwright; under CI, fail instead."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def sync_api():
    """Playwright's API, once Chromium and playwright are known to be there."""
    require(
        CHROMIUM.exists(),
        f"{CHROMIUM} is missing: apt-get install chromium (Debian's package)",
    )
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
    require(sync_api is not None, "playwright is missing: pip install -e '.[test]'")
    return sync_api


@pytest.fixture(scope="module")
def sandbox_mirror(tmp_path_factory):
    """A mirror of the sandbox and the sandbox's own data."""
    instance = generate_instance(seed=SEED, scale=SCALE)
    path = tmp_path_factory.mktemp("browser") / "mirror.db"
    with SandboxServer(instance, password=PASSWORD) as sandbox:
        client = IvinexClient(sandbox.url, "demo", PASSWORD, retries=2)
        try:
            mirror_sandbox(client, path)
        finally:
            client.close()
    return path, instance


@pytest.fixture(scope="module")
def served(sync_api, sandbox_mirror):
    """The base URL of `ivinex-mirror serve` running on the mirror."""
    path, _ = sandbox_mirror
    port = free_port()
    command = [sys.executable, "-c", "from ivinex_mirror.cli import cli; cli()"]
    command += ["serve", str(path), "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, url)
        yield url
    finally:
        stop(server)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(server, url):
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"ivinex-mirror serve exited: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/-/versions.json", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"ivinex-mirror serve did not answer at {url} in time")


def stop(server):
    server.terminate()
    try:
        server.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=SERVER_STOP_SECONDS)
    server.stderr.close()


@pytest.fixture(scope="module")
def browser(sync_api, served):
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            timeout=STEP_TIMEOUT_MS,
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def query(path, sql, params=()):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_tab_table_shows_field_labels_and_option_labels(page, served, sandbox_mirror):
    path, _ = sandbox_mirror
    page.goto(served + "/mirror/contacts?_size=10")

    assert page.locator("h1").inner_text() == "Contacts"
    labels = page.locator("dl.column-descriptions dd").all_inner_texts()
    assert {"Full Name", "E-mail", "Contact Type", "Company"} <= set(labels)

    options = {row[0] for row in query(path, OPTIONS_SQL)}
    shown = page.locator("td.col-contact_type a").all_inner_texts()
    assert shown and set(shown) <= options

    row = page.locator("tbody tr", has=page.locator("td.col-company a")).first
    record_id = int(row.locator("td.col-collection_id").inner_text())
    [(company,)] = query(path, COMPANY_OF_CONTACT_SQL, [record_id])
    assert row.locator("td.col-company a").inner_text() == company
    page.locator("td.col-contact_type").first.scroll_into_view_if_needed()
    assert screenshot(page, "01-contacts-labels.png").stat().st_size > 0


OPTIONS_SQL = "select label from contacts_contact_type_options"
COMPANY_OF_CONTACT_SQL = (
    "select companies.name from contacts join companies"
    " on companies.collection_id = contacts.company"
    " where contacts.collection_id = ?"
)


def test_clicking_a_facet_keeps_the_records_with_that_option(
    page, served, sandbox_mirror
):
    path, _ = sandbox_mirror
    page.goto(served + "/mirror/contacts?_size=10")
    facet = page.locator("#facet-contact_type li").first
    label = facet.locator("a").inner_text()
    count = int(facet.inner_text().rsplit(" ", 1)[1].replace(",", ""))

    facet.locator("a").click()
    page.wait_for_url("**contact_type=*")

    [(expected,)] = query(path, COUNT_BY_OPTION_SQL, [label])
    assert count == expected
    heading = page.locator("h3").first.inner_text()
    assert heading.startswith(f"{count:,} row")
    shown = set(page.locator("td.col-contact_type a").all_inner_texts())
    assert shown == {label}
    page.locator("td.col-contact_type").first.scroll_into_view_if_needed()
    assert screenshot(page, "02-facet-contact-type.png").stat().st_size > 0


COUNT_BY_OPTION_SQL = (
    "select count(*) from contacts join contacts_contact_type_options as o"
    " on o.option_id = contacts.contact_type"
    " where o.label = ? and contacts._deleted_at is null"
)


def test_search_across_tabs_finds_the_contact_and_the_notes(
    page, served, sandbox_mirror
):
    path, instance = sandbox_mirror
    surname, contact_ids, note_ids = surname_in_notes(instance)
    page.goto(served + "/")

    page.locator("#search-all-q").fill(surname)
    page.locator("#search-all-q").press("Enter")
    page.wait_for_url("**/-/search?q=*")
    page.wait_for_function(
        "document.querySelectorAll('.search-all-loading:not([style])').length"
        " === 0 && document.querySelectorAll('#search-all-results h2').length > 0"
    )

    headings = page.locator("#search-all-results h2").all_inner_texts()
    found = {
        heading.rsplit(": ", 1)[1]: int(heading.split(" ")[0].replace(",", ""))
        for heading in headings
    }
    assert found["contacts"] >= len(contact_ids)
    assert found["notes"] >= len(note_ids)
    results = page.locator("#search-all-results").inner_text()
    names = [name for (name,) in query(path, contact_names_sql(contact_ids))]
    assert any(name and name in results for name in names), names
    assert screenshot(page, "03-search-all-tabs.png").stat().st_size > 0


def contact_names_sql(contact_ids):
    ids = ", ".join(str(int(i)) for i in sorted(contact_ids))
    return f"select full_name from contacts where collection_id in ({ids})"


def test_a_linked_record_is_shown_and_followed_by_name(page, served, sandbox_mirror):
    path, instance = sandbox_mirror
    surname, _, note_ids = surname_in_notes(instance)
    ids = ", ".join(str(int(i)) for i in sorted(note_ids))
    note_id, contact_id, name = query(path, NAMED_CONTACT_OF_NOTE_SQL.format(ids))[0]
    page.goto(served + f"/mirror/notes/{note_id}")

    link = page.locator("td.col-contact a")
    assert link.inner_text() == name
    link.scroll_into_view_if_needed()
    screenshot(page, "04-note-links-contact-by-name.png")
    link.click()
    page.wait_for_url(f"**/mirror/contacts/{contact_id}")

    assert page.locator("td.col-full_name").inner_text() == name
    assert surname in page.locator("td.col-last_name").inner_text()
    assert screenshot(page, "05-linked-contact.png").stat().st_size > 0


# The first of the notes whose contact has a name to show.
NAMED_CONTACT_OF_NOTE_SQL = (
    "select notes.collection_id, contacts.collection_id, contacts.full_name"
    " from notes join contacts on contacts.collection_id = notes.contact"
    " where notes.collection_id in ({}) and contacts.full_name <> ''"
    " order by notes.collection_id"
)


def test_a_missing_browser_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)

    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        require(False, "/usr/bin/chromium is missing")


def test_a_missing_browser_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")

    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require(False, "/usr/bin/chromium is missing")
