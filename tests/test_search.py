"""Full-text search: which columns are indexed, triggers that keep the index
current, the rebuild when fields change, and a surname search on a sandbox
mirror through Datasette."""

import asyncio
import html
import re

import sqlite_utils

from ivinex_mirror.search import TOKENIZE, ensure_search, search_columns
from ivinex_mirror.serve import make_datasette
from ivinex_mirror.store import Mirror
from ivinex_mirror.sync import sync

CONTACT_FIELDS = [
    ("full_name", "Text"),
    ("email", "Email"),
    ("phone", "Phone"),
    ("website", "URL"),
    ("owner", "User"),
    ("contact_type", "Dropdown"),
    ("background", "TextArea"),
]


def build_mirror(path):
    """A mirror with one tab, Contacts, holding a field of each kind above."""
    db = sqlite_utils.Database(path)
    db["ivinex_tabs"].insert(
        {"tab_id": 1001, "name": "Contacts", "table_name": "contacts"}, pk="tab_id"
    )
    db["ivinex_fields"].insert_all(
        [
            {
                "tab_id": 1001,
                "field_name": name,
                "label": name.title(),
                "field_type": field_type,
                "column_name": name,
                "retired": 0,
            }
            for name, field_type in CONTACT_FIELDS
        ],
        pk=("tab_id", "field_name"),
    )
    columns = {name: str for name, _ in CONTACT_FIELDS}
    db["contacts"].create(
        dict(collection_id=int, modified_date=str, **columns), pk="collection_id"
    )
    save(db, 1, full_name="Zoë Müller", email="zoe@mueller.example", phone="0201 7788")
    save(db, 2, full_name="Ben Okafor", website="https://okafor.example", owner="Zoë")
    return db


def save(db, collection_id, **values):
    """Upsert a row the way the store does: an omitted column keeps its value."""
    row = dict(collection_id=collection_id, **values)
    names = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" for _ in row)
    updates = ", ".join(f'"{name}" = excluded."{name}"' for name in values)
    with db.conn:
        db.execute(
            f"insert into contacts ({names}) values ({marks})"
            f" on conflict (collection_id) do update set {updates}",
            list(row.values()),
        )


def found(db, text, table="contacts"):
    rows = db.execute(
        f"select rowid from {table}_fts where {table}_fts match ? order by rowid",
        [text],
    )
    return [row[0] for row in rows]


def test_index_covers_the_text_like_fields_only(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")

    built = ensure_search(db)

    assert built == {"contacts": ["full_name", "email", "phone", "background"]}
    assert list(db["contacts_fts"].columns_dict) == built["contacts"]
    assert TOKENIZE in db["contacts_fts"].schema


def test_search_finds_names_e_mails_and_phones_with_accents_folded(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    ensure_search(db)

    assert found(db, "müller") == [1]
    assert found(db, "Muller") == [1]
    assert found(db, "zoe") == [1]
    assert found(db, '"zoe@mueller.example"') == [1]
    assert found(db, "7788") == [1]
    assert found(db, "okafor") == [2]


def test_urls_and_users_are_not_searched(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    ensure_search(db)

    # Record 2's website and owner hold these words; only its name counts.
    assert found(db, "https") == []
    assert found(db, "zoe") == [1]


def test_upserts_and_deletes_keep_the_index_current(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    ensure_search(db)

    save(db, 1, full_name="Zoë Lindqvist")
    save(db, 3, full_name="Cai Wen", background="Met at the Lindqvist fair")
    with db.conn:
        db.execute("delete from contacts where collection_id = 2")

    assert found(db, "muller") == []
    assert found(db, '"zoe@mueller.example"') == [1]
    assert found(db, "lindqvist") == [1, 3]
    assert found(db, "okafor") == []


def test_a_second_run_writes_nothing(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    ensure_search(db)
    schema = db.schema
    changes = db.conn.total_changes

    assert ensure_search(db) == {}

    assert db.schema == schema
    assert db.conn.total_changes == changes


def test_a_new_field_rebuilds_the_index_with_its_column(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    ensure_search(db)
    db["contacts"].add_column("city", str)
    db["ivinex_fields"].insert(
        {
            "tab_id": 1001,
            "field_name": "city",
            "label": "City",
            "field_type": "Text",
            "column_name": "city",
        }
    )
    save(db, 2, city="Lagos")

    built = ensure_search(db)

    assert built == {"contacts": ["full_name", "email", "phone", "background", "city"]}
    assert found(db, "lagos") == [2]
    assert found(db, "muller") == [1]
    assert ensure_search(db) == {}


def test_an_index_that_lost_its_triggers_is_rebuilt(tmp_path):
    # Rebuilding a table (as a change of column type does) drops its triggers.
    db = build_mirror(tmp_path / "mirror.db")
    ensure_search(db)
    for trigger in db["contacts"].triggers:
        db.execute(f'drop trigger "{trigger.name}"')
    save(db, 2, full_name="Ben Adeyemi")

    assert ensure_search(db) == {
        "contacts": ["full_name", "email", "phone", "background"]
    }

    assert found(db, "adeyemi") == [2]
    assert found(db, "okafor") == []
    save(db, 1, full_name="Zoë Berg")
    assert found(db, "berg") == [1]


def test_a_tab_table_named_like_an_index_is_left_alone(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    db["contacts_fts"].insert({"collection_id": 1, "topic": "a tab of its own"})

    assert ensure_search(db) == {}

    assert db["contacts_fts"].count == 1
    assert db["contacts"].triggers == []


def test_retired_fields_stay_searchable(tmp_path):
    db = build_mirror(tmp_path / "mirror.db")
    db.execute("update ivinex_fields set retired = 1 where field_name = 'phone'")

    assert "phone" in search_columns(db, 1001, "contacts")


def test_sandbox_surname_finds_the_contact_and_the_notes_that_mention_it(
    sandbox, make_client, tmp_path
):
    path = tmp_path / "mirror.db"
    mirror_sandbox(make_client(sandbox), path)
    surname, contact_ids, note_ids = surname_in_notes(sandbox.instance)
    ds = make_datasette(path)

    contacts = table_ids(ds, f"/mirror/contacts.json?_search={surname}")
    notes = table_ids(ds, f"/mirror/notes.json?_search={surname}")

    assert contact_ids <= contacts
    assert note_ids <= notes
    assert notes, surname


def mirror_sandbox(client, path):
    """Mirror a sandbox into path, then index it for search."""
    mirror = Mirror(path)
    try:
        sync(client, mirror)
        ensure_search(mirror.db)
    finally:
        mirror.close()
    return path


def surname_in_notes(instance):
    """A surname from the sandbox's own data, the contacts that carry it and
    the notes whose subject or body name it.

    Of the plain surnames that only notes about such a contact mention (so
    not a word like "Short"), the one the most notes mention; ties go to the
    first in alphabetical order."""
    contacts = instance.records["Contacts"]
    notes = instance.records["Notes"]
    carriers = {}
    for contact_id, contact in contacts.items():
        surname = contact.get("last_name") or ""
        if re.fullmatch(r"[A-Za-z]{4,}", surname):
            carriers.setdefault(surname, set()).add(contact_id)

    candidates = {}
    for surname in sorted(carriers):
        word = re.compile(rf"\b{surname}\b", re.IGNORECASE)
        mentions = {
            note_id
            for note_id, note in notes.items()
            if word.search(html.unescape(f"{note.get('subject')} {note.get('body')}"))
        }
        about = {i for i in mentions if notes[i].get("contact") in carriers[surname]}
        if mentions and mentions == about:
            candidates[surname] = mentions
    surname = max(candidates, key=lambda s: len(candidates[s]))
    return surname, carriers[surname], candidates[surname]


def table_ids(ds, path):
    async def fetch():
        await ds.invoke_startup()
        response = await ds.client.get(path + "&_shape=objects&_size=max")
        assert response.status_code == 200, response.text
        return response.json()

    data = asyncio.run(fetch())
    assert data["next_url"] is None
    return {row["collection_id"] for row in data["rows"]}
