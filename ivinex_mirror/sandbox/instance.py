"""An Ivinex instance in memory, and the changes a client can make to it."""

import threading
from datetime import datetime

from ivinex_mirror.sandbox.definitions import (
    DEFAULT_FIELDS,
    FIRST_OPTION_ID,
    FIRST_TAB_ID,
    LINK_KINDS,
    SELECT_TYPES,
    format_stamp,
    make_field,
)


class UnknownTab(LookupError):
    """No tab of that name or id."""


class UnknownRecord(LookupError):
    """No record with that collection_id in the tab."""


class InvalidValue(ValueError):
    """A write the instance refuses: unknown field, bad option or link."""


def as_id(value):
    """A record or option id from an int or a numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class Instance:
    """An Ivinex instance in memory: tabs, fields, records and links.

    Embedded links are not stored: they are read from LinkedRecord field
    values, so writing such a field makes or removes its link by itself.
    Every method that changes data holds `lock`; readers that walk records
    while a server thread may write should hold it too.
    """

    def __init__(self, api_user="demo"):
        self.tabs = []
        self.fields = {}
        self.records = {}
        self.api_user = api_user
        self.lock = threading.RLock()
        self._links = set()
        self._next_id = 1
        self._next_option_id = FIRST_OPTION_ID
        self._newest_stamp = ""
        # What a write reads as "now"; a test may set its own clock here.
        self.clock = datetime.now
        self._link_cache = None
        self._link_index = None

    # Reading

    def resolve_tab(self, tab):
        """The name of the tab given by name or by numeric TabID."""
        for entry in self.tabs:
            if entry["TabName"] == tab:
                return tab
        tab_id = as_id(tab)
        for entry in self.tabs:
            if tab_id is not None and entry["TabID"] == tab_id:
                return entry["TabName"]
        raise UnknownTab(f"Unknown tab {tab!r}")

    def tab_id(self, tab_name):
        for entry in self.tabs:
            if entry["TabName"] == tab_name:
                return entry["TabID"]
        raise UnknownTab(f"Unknown tab {tab_name!r}")

    def field(self, tab_name, field_name):
        for entry in self.fields[self.resolve_tab(tab_name)]:
            if entry["FieldName"] == field_name:
                return entry
        raise InvalidValue(f"Tab {tab_name} has no field {field_name!r}")

    def record(self, tab_name, record_id):
        try:
            return self.records[self.resolve_tab(tab_name)][record_id]
        except KeyError:
            raise UnknownRecord(f"Record {record_id} not found in {tab_name}") from None

    def links(self):
        """Every link as GetAllRelatedItems shows it, in sorted order."""
        with self.lock:
            return [link_dict(key) for key in self.link_keys()]

    def link_keys(self):
        """Sorted (from_tab, from_id, to_tab, to_id, kind) tuples; shared."""
        with self.lock:
            if self._link_cache is None:
                self._link_cache = sorted(self._embedded_links() | self._links)
            return self._link_cache

    def related_items(self, tab_name, record_id):
        """The records linked to one record, in either direction."""
        with self.lock:
            tab_name = self.resolve_tab(tab_name)
            self.record(tab_name, record_id)
            if self._link_index is None:
                self._link_index = _index_links(self.link_keys())
            return list(self._link_index.get((tab_name, record_id), ()))

    # Writing

    def add_record(self, tab_name, values, *, user=None):
        """Create a record; returns its new collection_id."""
        with self.lock:
            tab_name = self.resolve_tab(tab_name)
            clean = self._check_values(tab_name, values, creating=True)
            user = user or self.api_user
            stamp = self._stamp()
            record_id = self._new_id()
            record = {
                "collection_id": record_id,
                "created_by": user,
                "created_date": stamp,
                "modified_by": user,
                "modified_date": stamp,
            }
            record.update(clean)
            self.records[tab_name][record_id] = record
            self._touch_link_ends(tab_name, {}, clean, stamp, user)
            self._changed()
            return record_id

    def update_record(self, tab_name, record_id, values, *, user=None):
        with self.lock:
            tab_name = self.resolve_tab(tab_name)
            record = self.record(tab_name, record_id)
            clean = self._check_values(tab_name, values, creating=False)
            user = user or self.api_user
            stamp = self._stamp()
            before = dict(record)
            record.update(clean)
            _touch(record, stamp, user)
            self._touch_link_ends(tab_name, before, clean, stamp, user)
            self._changed()

    def delete_record(self, tab_name, record_id, *, user=None):
        """Delete a record; its links go too, and both ends learn of it."""
        with self.lock:
            tab_name = self.resolve_tab(tab_name)
            self.record(tab_name, record_id)
            user = user or self.api_user
            stamp = self._stamp()
            for key in list(self.link_keys()):
                if (key[0], key[1]) == (tab_name, record_id):
                    self._touch_record(key[2], key[3], stamp, user)
                elif (key[2], key[3]) == (tab_name, record_id):
                    self._unlink_other_end(key, stamp, user)
            del self.records[tab_name][record_id]
            self._links = {
                key
                for key in self._links
                if (tab_name, record_id) not in ((key[0], key[1]), (key[2], key[3]))
            }
            self._changed()

    def add_link(self, from_tab, from_id, to_tab, to_id, kind="Related", *, user=None):
        """Link two records; returns False when the link was already there."""
        with self.lock:
            key = self._link_key(from_tab, from_id, to_tab, to_id, kind)
            if key in set(self.link_keys()):
                return False
            if kind == "Embedded":
                name = self._linked_field(key[0], key[2])
                self.update_record(key[0], from_id, {name: to_id}, user=user)
                return True
            self._links.add(key)
            self._touch_both(key, user)
            return True

    def remove_link(
        self, from_tab, from_id, to_tab, to_id, kind="Related", *, user=None
    ):
        """Unlink two records; returns False when there was no such link."""
        with self.lock:
            key = self._link_key(from_tab, from_id, to_tab, to_id, kind)
            if key not in set(self.link_keys()):
                return False
            if kind == "Embedded":
                record = self.record(key[0], from_id)
                names = [
                    field["FieldName"]
                    for field in self.fields[key[0]]
                    if field["LinkedTab"] == key[2]
                    and as_id(record.get(field["FieldName"])) == to_id
                ]
                self.update_record(key[0], from_id, dict.fromkeys(names), user=user)
                return True
            self._links.discard(key)
            self._touch_both(key, user)
            return True

    def add_field(self, tab_name, field_dict):
        """Add a field in the GetFields shape; options may be bare labels."""
        with self.lock:
            tab_name = self.resolve_tab(tab_name)
            name = field_dict["FieldName"]
            if any(f["FieldName"] == name for f in self.fields[tab_name]):
                raise InvalidValue(f"Tab {tab_name} already has field {name!r}")
            linked = field_dict.get("LinkedTab")
            if linked is not None:
                self.resolve_tab(linked)
            entry = make_field(
                name,
                field_dict["FieldType"],
                *field_dict.get("Options") or (),
                required=bool(field_dict.get("Required", False)),
                linked=linked,
                label=field_dict.get("Label"),
            )
            entry["Options"] = self._number_options(entry["Options"])
            self.fields[tab_name].append(entry)
            self._changed()
            return entry

    def remove_field(self, tab_name, field_name):
        """Drop a field and its values, as an admin deleting it would."""
        with self.lock:
            tab_name = self.resolve_tab(tab_name)
            entry = self.field(tab_name, field_name)
            self.fields[tab_name].remove(entry)
            for record in self.records[tab_name].values():
                record.pop(field_name, None)
            self._changed()

    def add_tab(self, name, singular):
        """Add an empty tab; returns its TabID."""
        with self.lock:
            if any(entry["TabName"] == name for entry in self.tabs):
                raise InvalidValue(f"Tab {name!r} exists already")
            tab_id = max((t["TabID"] for t in self.tabs), default=FIRST_TAB_ID - 1)
            tab_id += 1
            self.tabs.append(
                {"TabID": tab_id, "TabName": name, "SingularName": singular}
            )
            self.fields[name] = []
            self.records[name] = {}
            return tab_id

    # Helpers

    def _new_id(self):
        record_id = self._next_id
        self._next_id += 1
        return record_id

    def _number_options(self, options):
        numbered = []
        for option in options:
            if isinstance(option, dict) and "OptionID" in option:
                numbered.append(dict(option))
                self._next_option_id = max(
                    self._next_option_id, int(option["OptionID"]) + 1
                )
                continue
            label = option["Label"] if isinstance(option, dict) else option
            numbered.append({"OptionID": self._next_option_id, "Label": label})
            self._next_option_id += 1
        return numbered

    def _stamp(self):
        """Now, but never before the newest stamp, so cursors see the write."""
        stamp = max(format_stamp(self.clock()), self._newest_stamp)
        self._newest_stamp = stamp
        return stamp

    def _changed(self):
        self._link_cache = None
        self._link_index = None

    def _embedded_links(self):
        keys = set()
        for tab_name, fields in self.fields.items():
            linked = [
                (f["FieldName"], f["LinkedTab"])
                for f in fields
                if f["FieldType"] == "LinkedRecord" and f["LinkedTab"]
            ]
            if not linked:
                continue
            for record_id, record in self.records[tab_name].items():
                for name, target in linked:
                    to_id = as_id(record.get(name))
                    if to_id is not None:
                        keys.add((tab_name, record_id, target, to_id, "Embedded"))
        return keys

    def _link_key(self, from_tab, from_id, to_tab, to_id, kind):
        if kind not in LINK_KINDS:
            raise InvalidValue(f"Unknown link kind {kind!r}")
        from_tab = self.resolve_tab(from_tab)
        to_tab = self.resolve_tab(to_tab)
        from_id, to_id = as_id(from_id), as_id(to_id)
        self.record(from_tab, from_id)
        self.record(to_tab, to_id)
        return (from_tab, from_id, to_tab, to_id, kind)

    def _linked_field(self, from_tab, to_tab):
        for field in self.fields[from_tab]:
            if field["FieldType"] == "LinkedRecord" and field["LinkedTab"] == to_tab:
                return field["FieldName"]
        raise InvalidValue(f"No LinkedRecord field on {from_tab} points at {to_tab}")

    def _touch_record(self, tab_name, record_id, stamp, user):
        record = self.records.get(tab_name, {}).get(record_id)
        if record is not None:
            _touch(record, stamp, user)

    def _touch_both(self, key, user):
        stamp = self._stamp()
        user = user or self.api_user
        self._touch_record(key[0], key[1], stamp, user)
        self._touch_record(key[2], key[3], stamp, user)
        self._changed()

    def _touch_link_ends(self, tab_name, before, after, stamp, user):
        """Stamp the records a LinkedRecord write linked or unlinked."""
        for field in self.fields[tab_name]:
            name = field["FieldName"]
            if field["FieldType"] != "LinkedRecord" or name not in after:
                continue
            old, new = as_id(before.get(name)), as_id(after[name])
            if old == new:
                continue
            for target in (old, new):
                self._touch_record(field["LinkedTab"], target, stamp, user)

    def _unlink_other_end(self, key, stamp, user):
        """The record at the from end of a link to a deleted record."""
        record = self.records[key[0]].get(key[1])
        if record is None:
            return
        if key[4] == "Embedded":
            for field in self.fields[key[0]]:
                if (
                    field["LinkedTab"] == key[2]
                    and as_id(record.get(field["FieldName"])) == key[3]
                ):
                    record[field["FieldName"]] = None
        _touch(record, stamp, user)

    def _check_values(self, tab_name, values, creating):
        by_name = {f["FieldName"]: f for f in self.fields[tab_name]}
        clean = {}
        for name, value in values.items():
            if name in DEFAULT_FIELDS:
                raise InvalidValue(f"Field {name!r} is set by Ivinex, not writable")
            if name not in by_name:
                raise InvalidValue(f"Tab {tab_name} has no field {name!r}")
            clean[name] = self._check_value(by_name[name], value)

        for field in by_name.values():
            name = field["FieldName"]
            # An update may leave a required field out, but not blank it.
            checked = creating or name in clean
            if field["Required"] and checked and clean.get(name) in (None, ""):
                raise InvalidValue(f"Field {name!r} of {tab_name} is required")
        return clean

    def _check_value(self, field, value):
        ftype = field["FieldType"]
        if value in (None, "") or ftype not in ("LinkedRecord", *SELECT_TYPES):
            return value
        if ftype == "LinkedRecord":
            record_id = as_id(value)
            if record_id not in self.records[field["LinkedTab"]]:
                raise InvalidValue(
                    f"{field['FieldName']}: no record {value!r} in {field['LinkedTab']}"
                )
            return record_id
        option_ids = {option["OptionID"] for option in field["Options"]}
        chosen = value if ftype == "MultiSelect" else [value]
        if not isinstance(chosen, list):
            raise InvalidValue(f"{field['FieldName']}: a list of option ids expected")
        ids = [as_id(item) for item in chosen]
        if any(option_id not in option_ids for option_id in ids):
            raise InvalidValue(f"{field['FieldName']}: unknown option in {value!r}")
        return ids if ftype == "MultiSelect" else ids[0]


def _touch(record, stamp, user):
    record["modified_date"] = stamp
    record["modified_by"] = user


def link_dict(key):
    return {
        "FromTab": key[0],
        "FromRecordID": key[1],
        "ToTab": key[2],
        "ToRecordID": key[3],
        "LinkType": key[4],
    }


def _index_links(keys):
    index = {}
    for from_tab, from_id, to_tab, to_id, kind in keys:
        index.setdefault((from_tab, from_id), []).append(
            {"Tab": to_tab, "RecordID": to_id, "LinkType": kind}
        )
        index.setdefault((to_tab, to_id), []).append(
            {"Tab": from_tab, "RecordID": from_id, "LinkType": kind}
        )
    return index
