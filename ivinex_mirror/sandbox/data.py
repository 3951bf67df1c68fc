"""The sandbox's data: an in-memory Ivinex instance and its generator.

The generated instance looks like the CRM of a small IT services business:
contacts and companies from several countries, the deals, notes, tasks,
tickets and calls around them, leads, products and one custom tab whose field
names are as awkward as admins make them. Everything is drawn from one seeded
random generator, so a seed always gives the same instance.
"""

import html
import logging
import random
import re
import threading
import unicodedata
from datetime import datetime, timedelta
from typing import NamedTuple

from faker import Faker

logger = logging.getLogger(__name__)

# Generated dates lie before this moment, so the data never depends on today.
BASE_DATE = datetime(2026, 11, 30, 12, 0, 0)
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

DEFAULT_FIELDS = (
    "collection_id",
    "created_by",
    "created_date",
    "modified_by",
    "modified_date",
)
FIELD_TYPES = (
    "Text",
    "TextArea",
    "Number",
    "Currency",
    "Percent",
    "Date",
    "DateTime",
    "Checkbox",
    "Dropdown",
    "MultiSelect",
    "Email",
    "Phone",
    "URL",
    "LinkedRecord",
    "User",
    "File",
)
LINK_KINDS = ("Embedded", "Related", "Converted", "Copied From")
SELECT_TYPES = ("Dropdown", "MultiSelect")
TEXT_TYPES = ("Text", "TextArea", "Email", "Phone", "URL", "User", "File")
FIRST_OPTION_ID = 14000
FIRST_TAB_ID = 1001


class UnknownTab(LookupError):
    """No tab of that name or id."""


class UnknownRecord(LookupError):
    """No record with that collection_id in the tab."""


class InvalidValue(ValueError):
    """A write the instance refuses: unknown field, bad option or link."""


def _field(name, ftype, *options, required=False, linked=None, label=None):
    return {
        "FieldName": name,
        "Label": label or name.replace("_", " ").title(),
        "FieldType": ftype,
        "Required": required,
        "Options": list(options),
        "LinkedTab": linked,
    }


_STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
)
_SOURCES = ("Website", "Referral", "Trade show", "Cold call", "Partner", "LinkedIn")
_PRIORITIES = ("Low", "Normal", "High", "Urgent")

# (tab name, singular name, records at scale 1.0, fields)
TABS = (
    (
        "Contacts",
        "Contact",
        1200,
        [
            _field("first_name", "Text", required=True),
            _field("last_name", "Text", required=True),
            _field("full_name", "Text"),
            _field("email", "Email", label="E-mail"),
            _field("phone", "Phone"),
            _field("mobile", "Phone"),
            _field("job_title", "Text"),
            _field("company", "LinkedRecord", linked="Companies"),
            _field(
                "contact_type",
                "Dropdown",
                "Lead",
                "Prospect",
                "Customer",
                "Partner",
                "Supplier",
                "Former customer",
            ),
            _field(
                "interests",
                "MultiSelect",
                "Cloud",
                "Hardware",
                "Training",
                "Support plans",
                "Consulting",
                "Security",
            ),
            _field("newsletter", "Checkbox"),
            _field("birthday", "Date"),
            _field("last_contacted", "DateTime"),
            _field("owner", "User"),
            _field("linkedin", "URL", label="LinkedIn"),
            _field("lead_score", "Number"),
            _field("city", "Text"),
            _field("country", "Text"),
            _field("photo", "File"),
        ],
    ),
    (
        "Companies",
        "Company",
        300,
        [
            _field("name", "Text", required=True),
            _field("website", "URL"),
            _field("phone", "Phone"),
            _field("email", "Email", label="E-mail"),
            _field(
                "industry",
                "Dropdown",
                "Software",
                "Manufacturing",
                "Retail",
                "Healthcare",
                "Construction",
                "Hospitality",
                "Logistics",
                "Consulting",
                "Public sector",
            ),
            _field("employees", "Number"),
            _field("annual_revenue", "Currency"),
            _field("address", "TextArea"),
            _field("city", "Text"),
            _field("country", "Text"),
            _field("parent_company", "LinkedRecord", linked="Companies"),
            _field("account_manager", "User"),
            _field(
                "tags",
                "MultiSelect",
                "Key account",
                "Reseller",
                "Partner",
                "Newsletter",
                "Do not call",
            ),
            _field("customer_since", "Date"),
            _field("vat_id", "Text", label="VAT ID"),
            _field("description", "TextArea"),
            _field("logo", "File"),
        ],
    ),
    (
        "Opportunities",
        "Opportunity",
        400,
        [
            _field("name", "Text", required=True),
            _field("company", "LinkedRecord", linked="Companies"),
            _field("primary_contact", "LinkedRecord", linked="Contacts"),
            _field("stage", "Dropdown", *_STAGES),
            _field("amount", "Currency"),
            _field("probability", "Percent"),
            _field("expected_close", "Date"),
            _field("closed_at", "DateTime"),
            _field("owner", "User"),
            _field("lead_source", "Dropdown", *_SOURCES),
            _field("next_step", "Text"),
            _field("description", "TextArea"),
            _field("proposal", "File"),
        ],
    ),
    (
        "Notes",
        "Note",
        1300,
        [
            _field("subject", "Text"),
            _field("body", "TextArea"),
            _field("contact", "LinkedRecord", linked="Contacts"),
            _field("company", "LinkedRecord", linked="Companies"),
            _field(
                "note_type", "Dropdown", "Meeting", "Phone call", "E-mail", "Internal"
            ),
            _field("pinned", "Checkbox"),
            _field("attachment", "File"),
        ],
    ),
    (
        "Tasks",
        "Task",
        600,
        [
            _field("subject", "Text", required=True),
            _field("description", "TextArea"),
            _field(
                "status", "Dropdown", "Not started", "In progress", "Waiting", "Done"
            ),
            _field("priority", "Dropdown", *_PRIORITIES),
            _field("due_date", "Date"),
            _field("reminder_at", "DateTime"),
            _field("assigned_to", "User"),
            _field("contact", "LinkedRecord", linked="Contacts"),
            _field("opportunity", "LinkedRecord", linked="Opportunities"),
            _field("completed", "Checkbox"),
            _field("percent_complete", "Percent"),
        ],
    ),
    (
        "Tickets",
        "Ticket",
        350,
        [
            _field("subject", "Text", required=True),
            _field("description", "TextArea"),
            _field(
                "status", "Dropdown", "Open", "Pending", "On hold", "Solved", "Closed"
            ),
            _field("priority", "Dropdown", *_PRIORITIES),
            _field("channel", "Dropdown", "E-mail", "Phone", "Web form", "Chat"),
            _field(
                "categories",
                "MultiSelect",
                "Billing",
                "Delivery",
                "Login",
                "Bug",
                "Feature request",
                "Warranty",
            ),
            _field("contact", "LinkedRecord", linked="Contacts"),
            _field("company", "LinkedRecord", linked="Companies"),
            _field("opened_at", "DateTime"),
            _field("resolved_at", "DateTime"),
            _field("assigned_to", "User"),
            _field("satisfaction", "Number"),
            _field("sla_breached", "Checkbox", label="SLA Breached"),
            _field("customer_signature", "Signature"),
        ],
    ),
    (
        "Calls",
        "Call",
        450,
        [
            _field("subject", "Text"),
            _field("direction", "Dropdown", "Inbound", "Outbound"),
            _field(
                "outcome",
                "Dropdown",
                "Connected",
                "Voicemail",
                "No answer",
                "Busy",
                "Wrong number",
            ),
            _field("call_start", "DateTime"),
            _field("duration_minutes", "Number"),
            _field("phone_number", "Phone"),
            _field("contact", "LinkedRecord", linked="Contacts"),
            _field("opportunity", "LinkedRecord", linked="Opportunities"),
            _field("agent", "User"),
            _field("recording", "URL"),
            _field("call_notes", "TextArea"),
        ],
    ),
    (
        "Leads",
        "Lead",
        500,
        [
            _field("full_name", "Text", required=True),
            _field("email", "Email", label="E-mail"),
            _field("phone", "Phone"),
            _field("company_name", "Text"),
            _field("job_title", "Text"),
            _field("source", "Dropdown", *_SOURCES),
            _field(
                "status",
                "Dropdown",
                "New",
                "Contacted",
                "Qualified",
                "Unqualified",
                "Converted",
            ),
            _field("estimated_value", "Currency"),
            _field("received_at", "DateTime"),
            _field("owner", "User"),
            _field("message", "TextArea"),
            _field("gdpr_consent", "Checkbox", label="GDPR Consent"),
            _field("website", "URL"),
        ],
    ),
    (
        "Products",
        "Product",
        40,
        [
            _field("name", "Text", required=True),
            _field("sku", "Text", label="SKU"),
            _field(
                "category", "Dropdown", "Software", "Hardware", "Service", "Training"
            ),
            _field("unit_price", "Currency"),
            _field("tax_rate", "Percent"),
            _field("active", "Checkbox"),
            _field("launch_date", "Date"),
            _field("product_page", "URL"),
            _field("description", "TextArea"),
            _field("datasheet", "File"),
        ],
    ),
    (
        "Project Tracker",
        "Project",
        60,
        [
            _field("Project Name", "Text", required=True, label="Project Name"),
            _field("Client", "LinkedRecord", linked="Companies", label="Client"),
            _field(
                "2nd Contact", "LinkedRecord", linked="Contacts", label="2nd Contact"
            ),
            _field("Order", "Number", label="Order"),
            _field("Budget (€)", "Currency", label="Budget (€)"),
            _field(
                "Status",
                "Dropdown",
                "Planned",
                "Active",
                "Paused",
                "Done",
                label="Status",
            ),
            _field("status", "Text", label="status"),
            _field("Start Date", "Date", label="Start Date"),
            _field("Go-Live", "DateTime", label="Go-Live"),
            _field("% Done", "Percent", label="% Done"),
            _field("Region-Code", "Text", label="Region-Code"),
            _field("Score [0-10]", "Number", label="Score [0-10]"),
            _field("Lead Source", "Dropdown", *_SOURCES, label="Lead Source"),
            _field("lead_source", "Text", label="lead_source"),
            _field("_score", "Number", label="_score"),
            _field("Reorder Qty (Temp_)", "Number", label="Reorder Qty (Temp_)"),
            _field("Risks & Issues", "TextArea", label="Risks & Issues"),
            _field(
                "Team",
                "MultiSelect",
                "Sales",
                "Support",
                "Engineering",
                "Finance",
                "Marketing",
                label="Team",
            ),
            _field("Sponsor", "User", label="Sponsor"),
            _field("Spec Document", "File", label="Spec Document"),
            _field("Kick-off Done?", "Checkbox", label="Kick-off Done?"),
            _field("Project E-mail", "Email", label="Project E-mail"),
            _field("Phone (Site)", "Phone", label="Phone (Site)"),
            _field("Portal URL", "URL", label="Portal URL"),
        ],
    ),
)


def format_stamp(moment):
    return moment.strftime(STAMP_FORMAT)


def _as_id(value):
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
        self._link_cache = None
        self._link_index = None

    # Reading

    def resolve_tab(self, tab):
        """The name of the tab given by name or by numeric TabID."""
        for entry in self.tabs:
            if entry["TabName"] == tab:
                return tab
        tab_id = _as_id(tab)
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
            return [_link_dict(key) for key in self.link_keys()]

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
                    and _as_id(record.get(field["FieldName"])) == to_id
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
            entry = _field(
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
        stamp = max(format_stamp(datetime.now()), self._newest_stamp)
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
                    to_id = _as_id(record.get(name))
                    if to_id is not None:
                        keys.add((tab_name, record_id, target, to_id, "Embedded"))
        return keys

    def _link_key(self, from_tab, from_id, to_tab, to_id, kind):
        if kind not in LINK_KINDS:
            raise InvalidValue(f"Unknown link kind {kind!r}")
        from_tab = self.resolve_tab(from_tab)
        to_tab = self.resolve_tab(to_tab)
        from_id, to_id = _as_id(from_id), _as_id(to_id)
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
            old, new = _as_id(before.get(name)), _as_id(after[name])
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
                    and _as_id(record.get(field["FieldName"])) == key[3]
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
            record_id = _as_id(value)
            if record_id not in self.records[field["LinkedTab"]]:
                raise InvalidValue(
                    f"{field['FieldName']}: no record {value!r} in {field['LinkedTab']}"
                )
            return record_id
        option_ids = {option["OptionID"] for option in field["Options"]}
        chosen = value if ftype == "MultiSelect" else [value]
        if not isinstance(chosen, list):
            raise InvalidValue(f"{field['FieldName']}: a list of option ids expected")
        ids = [_as_id(item) for item in chosen]
        if any(option_id not in option_ids for option_id in ids):
            raise InvalidValue(f"{field['FieldName']}: unknown option in {value!r}")
        return ids if ftype == "MultiSelect" else ids[0]


def _touch(record, stamp, user):
    record["modified_date"] = stamp
    record["modified_by"] = user


def _link_dict(key):
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


def generate_instance(seed=1, scale=1.0):
    """A new Instance of generated data; the same seed gives the same data."""
    started = datetime.now()
    instance = _build_empty()
    _Generator(instance, seed, scale).run()
    elapsed = (datetime.now() - started).total_seconds()
    logger.debug("Generated instance seed=%s scale=%s in %.2fs", seed, scale, elapsed)
    return instance


def _build_empty():
    instance = Instance()
    for number, (name, singular, _count, fields) in enumerate(TABS):
        instance.tabs.append(
            {"TabID": FIRST_TAB_ID + number, "TabName": name, "SingularName": singular}
        )
        instance.fields[name] = [dict(field) for field in fields]
        instance.records[name] = {}
    for fields in instance.fields.values():
        for field in fields:
            field["Options"] = instance._number_options(field["Options"])
    return instance


class _Generator:
    """Fills an empty Instance, tab by tab, from one random generator."""

    # Order matters: a tab can only link to records made before it.
    ORDER = (
        "Products",
        "Leads",
        "Companies",
        "Contacts",
        "Opportunities",
        "Project Tracker",
        "Tickets",
        "Tasks",
        "Calls",
        "Notes",
    )

    def __init__(self, instance, seed, scale):
        self.instance = instance
        self.pools = Pools(seed)
        self.rng = self.pools.rng
        self.counts = {
            name: max(1, round(count * scale)) for name, _s, count, _f in TABS
        }
        self.ids = {name: [] for name in self.counts}
        self.options = {}
        self.company_contacts = {}
        self.company_domain = {}
        self.company_opportunities = {}
        self.converted_leads = []
        self.roughen_plan = {}
        for name, fields in instance.fields.items():
            for field in fields:
                self.options[(name, field["FieldName"])] = {
                    o["Label"]: o["OptionID"] for o in field["Options"]
                }
            self.roughen_plan[name] = [
                (f["FieldName"], f["FieldType"])
                for f in fields
                if not f["Required"] and f["FieldType"] != "LinkedRecord"
            ]

    def run(self):
        for tab_name in self.ORDER:
            make = getattr(self, "_" + tab_name.lower().replace(" ", "_"))
            for number in range(self.counts[tab_name]):
                make(number)
        self.instance._newest_stamp = max(
            (
                record["modified_date"]
                for records in self.instance.records.values()
                for record in records.values()
            ),
            default="",
        )

    # Shared helpers

    def insert(self, tab_name, values):
        """Store a generated record with its five default fields."""
        rng = self.rng
        days_ago = rng.randint(1, 1000)
        created = self.office_hours(BASE_DATE - timedelta(days=days_ago))
        modified = created
        if rng.random() < 0.55:
            edited = BASE_DATE - timedelta(days=rng.randint(1, days_ago))
            modified = max(created, self.office_hours(edited))
        author = rng.choice(self.pools.users)
        record = {
            "collection_id": self.instance._new_id(),
            "created_by": author,
            "created_date": format_stamp(created),
            "modified_by": author
            if modified == created
            else rng.choice(self.pools.users),
            "modified_date": format_stamp(modified),
        }
        record.update(self._roughen(tab_name, values))
        self.instance.records[tab_name][record["collection_id"]] = record
        self.ids[tab_name].append(record["collection_id"])
        return record["collection_id"]

    def _roughen(self, tab_name, values):
        """Blanks, nulls, missing keys and numbers as strings, now and then."""
        rng = self.rng
        for name, ftype in self.roughen_plan[tab_name]:
            roll = rng.random()
            if roll < 0.025:
                values.pop(name, None)
            elif roll < 0.05:
                values[name] = None
            elif roll < 0.07 and ftype in TEXT_TYPES:
                values[name] = ""
            elif roll < 0.09 and ftype in ("Number", "Currency"):
                value = values.get(name)
                if isinstance(value, (int, float)):
                    values[name] = f"{value:.2f}"
        return values

    def option(self, tab_name, field_name, weights=None):
        labels = self.options[(tab_name, field_name)]
        label = self.rng.choices(list(labels), weights=weights)[0]
        return labels[label]

    def option_id(self, tab_name, field_name, label):
        return self.options[(tab_name, field_name)][label]

    def multi(self, tab_name, field_name, most=3):
        ids = list(self.options[(tab_name, field_name)].values())
        return sorted(self.rng.sample(ids, self.rng.randint(0, min(most, len(ids)))))

    def pick(self, tab_name, chance=1.0):
        ids = self.ids[tab_name]
        if not ids or self.rng.random() >= chance:
            return None
        return self.rng.choice(ids)

    def link(self, from_tab, from_id, to_tab, to_id, kind):
        if to_id is not None and (from_tab, from_id) != (to_tab, to_id):
            self.instance._links.add((from_tab, from_id, to_tab, to_id, kind))

    def day(self, low_days, high_days):
        """A date between low_days and high_days after the base date."""
        offset = self.rng.randint(low_days, high_days)
        return (BASE_DATE + timedelta(days=offset)).strftime("%Y-%m-%d")

    def moment(self, low_days, high_days):
        """A date-time in office hours, low_days to high_days from the base."""
        day = BASE_DATE + timedelta(days=self.rng.randint(low_days, high_days))
        return format_stamp(self.office_hours(day).replace(second=0))

    def office_hours(self, day):
        """The day at a random time between 7:00 and 19:00."""
        rng = self.rng
        return day.replace(
            hour=rng.randint(7, 18),
            minute=rng.randint(0, 59),
            second=rng.randint(0, 59),
        )

    def fill(self, template, **known):
        """The template with its {slots} filled, from `known` where given."""
        return template.format_map(_Slots(self, known))

    def note_body(self, contact, long_note):
        """HTML as the notes editor saves it; names the contact now and then."""
        rng = self.rng
        parts = [self._paragraph(rng.choice(NOTE_OPENERS), contact)]
        if contact and rng.random() < 0.55:
            parts.append(self._paragraph(rng.choice(SURNAME_LINES), contact))
        points = rng.sample(NOTE_POINTS, rng.randint(0, 3))
        if points:
            items = "".join(
                f"<li>{_escape(self.fill(p, contact=contact))}</li>" for p in points
            )
            parts.append(f"<ul>{items}</ul>")
        if rng.random() < 0.3:
            parts.append(self._paragraph(rng.choice(NOTE_CLOSERS), contact))
        if long_note:
            parts.append(self._mail_thread(contact))
        return "".join(parts)

    def _paragraph(self, template, contact):
        return f"<p>{_escape(self.fill(template, contact=contact))}</p>"

    def _mail_thread(self, contact):
        """A pasted e-mail thread of about 20 kB, as some notes carry."""
        blocks = ["<p>--- Forwarded thread ---</p>"]
        size = 0
        while size < 20000:
            sentences = " ".join(
                self.fill(p, contact=contact) for p in self.rng.sample(NOTE_POINTS, 5)
            )
            block = (
                f"<blockquote><p><b>From:</b> {_escape(self.fill('{name}'))}"
                f"<br><b>Sent:</b> {self.moment(-400, -1)}</p>"
                f"<p>{_escape(sentences)}</p></blockquote>"
            )
            blocks.append(block)
            size += len(block)
        return "".join(blocks)

    def file(self, folder, name):
        return f"/files/{folder}/{self.rng.randint(10000, 99999)}/{name}"

    # One maker per tab

    def _products(self, number):
        rng = self.rng
        name = product_name(number)
        self.insert(
            "Products",
            {
                "name": name,
                "sku": f"NL-{1000 + number * 7}",
                "category": self.option("Products", "category", [5, 3, 4, 2]),
                "unit_price": round(
                    rng.choice([49, 99, 149, 490, 1290, 2900]) * rng.uniform(0.8, 1.6),
                    2,
                ),
                "tax_rate": rng.choice([19, 19, 20, 7.7, 0]),
                "active": rng.random() < 0.85,
                "launch_date": self.day(-2000, 60),
                "product_page": f"https://nordlicht-it.example/products/{number + 1}",
                "description": self.fill(rng.choice(PRODUCT_TEXTS)),
                "datasheet": self.file("datasheets", f"{slug(name)}.pdf")
                if rng.random() < 0.5
                else None,
            },
        )

    def _leads(self, number):
        rng = self.rng
        person = self.pools.person()
        status = rng.choices(
            ["New", "Contacted", "Qualified", "Unqualified", "Converted"],
            [22, 20, 15, 13, 30],
        )[0]
        company = self.pools.company(person.locale)
        site = slug(company)
        lead_id = self.insert(
            "Leads",
            {
                "full_name": person.full_name,
                "email": self.pools.free_email(person),
                "phone": self.pools.phone(person.locale),
                "company_name": company if rng.random() > 0.08 else company.lower(),
                "job_title": rng.choice(self.pools.jobs),
                "source": self.option("Leads", "source"),
                "status": self.option_id("Leads", "status", status),
                "estimated_value": round(rng.uniform(500, 60000), -1),
                "received_at": self.moment(-900, -1),
                "owner": rng.choice(self.pools.users),
                "message": self.fill(rng.choice(LEAD_MESSAGES), person=person),
                "gdpr_consent": rng.random() < 0.7,
                "website": f"https://www.{site}.{person.tld}" if site else None,
            },
        )
        if status == "Converted":
            self.converted_leads.append((lead_id, person, company))

    def _companies(self, number):
        rng = self.rng
        lead = None
        if number < len(self.converted_leads) // 3:
            lead = self.converted_leads[number]
        locale = lead[1].locale if lead else self.pools.locale()
        name = lead[2] if lead else self.pools.company(locale)
        domain = f"{slug(name) or 'company-' + str(number)}.{TLDS[locale]}"
        city = self.pools.city(locale)
        employees = rng.choice([3, 6, 9, 14, 25, 40, 75, 120, 300, 900])
        company_id = self.insert(
            "Companies",
            {
                "name": name,
                "website": f"https://www.{domain}",
                "phone": self.pools.phone(locale),
                "email": f"info@{domain}",
                "industry": self.option("Companies", "industry"),
                "employees": employees + rng.randint(0, employees // 3),
                "annual_revenue": round(employees * rng.uniform(60e3, 190e3), -3),
                "address": f"{self.pools.street(locale)}\n{city}",
                "city": city,
                "country": COUNTRIES[locale],
                "parent_company": self.pick("Companies", 0.08),
                "account_manager": rng.choice(self.pools.users),
                "tags": self.multi("Companies", "tags", 2),
                "customer_since": self.day(-3000, -10),
                "vat_id": self.pools.vat_id(locale) if rng.random() < 0.6 else None,
                "description": rng.choice(self.pools.phrases),
                "logo": self.file("logos", "logo.png") if rng.random() < 0.4 else None,
            },
        )
        self.company_domain[company_id] = domain
        if lead:
            self.link("Companies", company_id, "Leads", lead[0], "Converted")
        if rng.random() < 0.1:
            self.link(
                "Companies", company_id, "Companies", self.pick("Companies"), "Related"
            )

    def _contacts(self, number):
        rng = self.rng
        lead = None
        if number < len(self.converted_leads):
            lead = self.converted_leads[number]
        person = lead[1] if lead else self.pools.person()
        company = self.pick("Companies", 0.9)
        email = self.pools.work_email(person, self.company_domain.get(company))
        contact_id = self.insert(
            "Contacts",
            {
                "first_name": person.first,
                "last_name": person.last,
                "full_name": person.full_name,
                "email": email,
                "phone": self.pools.phone(person.locale),
                "mobile": self.pools.phone(person.locale)
                if rng.random() < 0.5
                else None,
                "job_title": rng.choice(self.pools.jobs),
                "company": company,
                "contact_type": self.option(
                    "Contacts", "contact_type", [10, 15, 40, 8, 6, 4]
                ),
                "interests": self.multi("Contacts", "interests"),
                "newsletter": rng.random() < 0.45,
                "birthday": self.day(-25000, -7000) if rng.random() < 0.3 else None,
                "last_contacted": self.moment(-400, -1),
                "owner": rng.choice(self.pools.users),
                "linkedin": self.pools.linkedin(person)
                if rng.random() < 0.35
                else None,
                "lead_score": rng.randint(0, 100),
                "city": self.pools.city(person.locale),
                "country": COUNTRIES[person.locale],
                "photo": self.file("photos", "portrait.jpg")
                if rng.random() < 0.2
                else None,
            },
        )
        self.company_contacts.setdefault(company, []).append(contact_id)
        if lead:
            self.link("Contacts", contact_id, "Leads", lead[0], "Converted")
        if company and rng.random() < 0.06:
            colleague = rng.choice(self.company_contacts[company])
            self.link("Contacts", contact_id, "Contacts", colleague, "Related")

    def _opportunities(self, number):
        rng = self.rng
        earlier = self.ids["Opportunities"]
        if earlier and rng.random() < 0.08:
            self._copy_opportunity(rng.choice(earlier))
            return
        company = self.pick("Companies", 0.95)
        contacts = self.company_contacts.get(company) or self.ids["Contacts"]
        stage = rng.choices(_STAGES, [15, 15, 20, 12, 23, 15])[0]
        closed = stage.startswith("Closed")
        opp_id = self.insert(
            "Opportunities",
            {
                "name": self.fill(rng.choice(DEAL_NAMES), company_id=company),
                "company": company,
                "primary_contact": rng.choice(contacts)
                if rng.random() < 0.85
                else None,
                "stage": self.option_id("Opportunities", "stage", stage),
                "amount": round(rng.lognormvariate(8.8, 1.0), 2),
                "probability": STAGE_PROBABILITY[stage],
                "expected_close": self.day(-500, 200),
                "closed_at": self.moment(-500, -1) if closed else None,
                "owner": rng.choice(self.pools.users),
                "lead_source": self.option("Opportunities", "lead_source"),
                "next_step": None if closed else rng.choice(NEXT_STEPS),
                "description": self.fill(rng.choice(DEAL_TEXTS)),
                "proposal": self.file("proposals", "proposal_v2.pdf")
                if rng.random() < 0.3
                else None,
            },
        )
        self._link_opportunity(opp_id, company)

    def _copy_opportunity(self, original_id):
        original = self.instance.records["Opportunities"][original_id]
        values = {
            key: value for key, value in original.items() if key not in DEFAULT_FIELDS
        }
        values["name"] = f"{original['name']} ({self.rng.choice(COPY_SUFFIXES)})"
        values["stage"] = self.option_id("Opportunities", "stage", "Prospecting")
        values["closed_at"] = None
        opp_id = self.insert("Opportunities", values)
        self.link("Opportunities", opp_id, "Opportunities", original_id, "Copied From")
        self._link_opportunity(opp_id, _as_id(values.get("company")))

    def _link_opportunity(self, opp_id, company):
        rng = self.rng
        self.company_opportunities.setdefault(company, []).append(opp_id)
        for product in rng.sample(
            self.ids["Products"], min(rng.randint(0, 4), len(self.ids["Products"]))
        ):
            self.link("Opportunities", opp_id, "Products", product, "Related")
        people = self.company_contacts.get(company) or []
        for contact in rng.sample(people, min(rng.randint(0, 3), len(people))):
            self.link("Contacts", contact, "Opportunities", opp_id, "Related")
        converted = self.converted_leads
        number = len(self.ids["Opportunities"])
        if number <= len(converted) // 3:
            self.link(
                "Opportunities", opp_id, "Leads", converted[-number][0], "Converted"
            )

    def _project_tracker(self, number):
        rng = self.rng
        client = self.pick("Companies")
        status = rng.choice(["Planned", "Active", "Active", "Paused", "Done"])
        values = {
            "Project Name": self.fill(rng.choice(PROJECT_NAMES), company_id=client),
            "Client": client,
            "2nd Contact": self.pick("Contacts", 0.6),
            "Order": number + 1,
            "Budget (€)": round(rng.uniform(4000, 250000), -2),
            "Status": self.option_id("Project Tracker", "Status", status),
            "status": rng.choice(STATUS_NOTES),
            "Start Date": self.day(-700, 30),
            "Go-Live": self.moment(-300, 200),
            "% Done": 100 if status == "Done" else rng.randint(0, 95),
            "Region-Code": rng.choice(REGION_CODES),
            "Score [0-10]": rng.randint(0, 10),
            "Lead Source": self.option("Project Tracker", "Lead Source"),
            "lead_source": rng.choice(LEAD_SOURCE_NOTES),
            "_score": round(rng.uniform(0, 1), 3),
            "Reorder Qty (Temp_)": rng.choice([0, 5, 10, 25, 50]),
            "Risks & Issues": self.fill(rng.choice(RISKS)),
            "Team": self.multi("Project Tracker", "Team"),
            "Sponsor": rng.choice(self.pools.users),
            "Spec Document": self.file("projects", "Pflichtenheft_v3.docx")
            if rng.random() < 0.5
            else None,
            "Kick-off Done?": status != "Planned",
            "Project E-mail": f"project-{number + 1}@nordlicht-it.example",
            "Phone (Site)": self.pools.phone(self.pools.locale()),
            "Portal URL": f"https://portal.nordlicht-it.example/p/{number + 1}",
        }
        project_id = self.insert("Project Tracker", values)
        for _ in range(rng.randint(0, 2)):
            self.link(
                "Project Tracker",
                project_id,
                "Opportunities",
                self.pick("Opportunities"),
                "Related",
            )
        if number > 3 and rng.random() < 0.07:
            self.link(
                "Project Tracker",
                project_id,
                "Project Tracker",
                self.ids["Project Tracker"][rng.randrange(number)],
                "Copied From",
            )

    def _tickets(self, number):
        rng = self.rng
        contact = self.pick("Contacts", 0.9)
        status = rng.choices(
            ["Open", "Pending", "On hold", "Solved", "Closed"], [15, 10, 5, 30, 40]
        )[0]
        done = status in ("Solved", "Closed")
        opened = self.moment(-700, -2)
        self.insert(
            "Tickets",
            {
                "subject": self.fill(rng.choice(TICKET_SUBJECTS)),
                "description": self.fill(rng.choice(TICKET_TEXTS)),
                "status": self.option_id("Tickets", "status", status),
                "priority": self.option("Tickets", "priority", [20, 50, 22, 8]),
                "channel": self.option("Tickets", "channel"),
                "categories": self.multi("Tickets", "categories", 2),
                "contact": contact,
                "company": self._company_of(contact, 0.8),
                "opened_at": opened,
                "resolved_at": _later(opened, rng.randint(1, 48 * 60))
                if done
                else None,
                "assigned_to": rng.choice(self.pools.users),
                "satisfaction": rng.randint(1, 5) if done else None,
                "sla_breached": rng.random() < 0.12,
                "customer_signature": SIGNATURE if rng.random() < 0.1 else None,
            },
        )

    def _tasks(self, number):
        rng = self.rng
        earlier = self.ids["Tasks"]
        status = rng.choice(["Not started", "In progress", "Waiting", "Done"])
        values = {
            "subject": self.fill(rng.choice(TASK_SUBJECTS)),
            "description": self.fill(rng.choice(TASK_TEXTS)),
            "status": self.option_id("Tasks", "status", status),
            "priority": self.option("Tasks", "priority", [20, 55, 20, 5]),
            "due_date": self.day(-300, 60),
            "reminder_at": self.moment(-300, 60) if rng.random() < 0.4 else None,
            "assigned_to": rng.choice(self.pools.users),
            "contact": self.pick("Contacts", 0.7),
            "opportunity": self.pick("Opportunities", 0.35),
            "completed": status == "Done",
            "percent_complete": 100
            if status == "Done"
            else rng.choice([0, 10, 25, 50, 75, 90]),
        }
        original = rng.choice(earlier) if earlier and rng.random() < 0.06 else None
        if original:
            values["subject"] = self.instance.records["Tasks"][original]["subject"]
        task_id = self.insert("Tasks", values)
        self.link("Tasks", task_id, "Tasks", original, "Copied From")
        if rng.random() < 0.15:
            self.link("Tasks", task_id, "Tickets", self.pick("Tickets"), "Related")

    def _calls(self, number):
        rng = self.rng
        contact = self.pick("Contacts", 0.92)
        outcome = rng.choices(
            ["Connected", "Voicemail", "No answer", "Busy", "Wrong number"],
            [60, 18, 14, 6, 2],
        )[0]
        phone = None
        if contact:
            phone = self.instance.records["Contacts"][contact].get("phone")
        call_id = self.insert(
            "Calls",
            {
                "subject": self.fill(rng.choice(CALL_SUBJECTS)),
                "direction": self.option("Calls", "direction"),
                "outcome": self.option_id("Calls", "outcome", outcome),
                "call_start": self.moment(-500, -1),
                "duration_minutes": rng.randint(1, 45) if outcome == "Connected" else 0,
                "phone_number": phone or self.pools.phone(self.pools.locale()),
                "contact": contact,
                "opportunity": self.pick("Opportunities", 0.25),
                "agent": rng.choice(self.pools.users),
                "recording": f"{RECORDINGS}/{rng.getrandbits(40):010x}.mp3"
                if outcome == "Connected" and rng.random() < 0.3
                else None,
                "call_notes": self.fill(rng.choice(CALL_TEXTS)),
            },
        )
        if rng.random() < 0.1:
            self.link("Calls", call_id, "Tickets", self.pick("Tickets"), "Related")

    def _notes(self, number):
        rng = self.rng
        contact = self.pick("Contacts", 0.86)
        person = None
        if contact:
            person = self.instance.records["Contacts"][contact]
        company = self._company_of(contact, 0.4) or self.pick("Companies", 0.05)
        long_note = rng.random() < 0.004
        note_id = self.insert(
            "Notes",
            {
                "subject": self.fill(rng.choice(NOTE_SUBJECTS), contact=person),
                "body": self.note_body(person, long_note),
                "contact": contact,
                "company": company,
                "note_type": self.option("Notes", "note_type"),
                "pinned": rng.random() < 0.05,
                "attachment": self.file("notes", rng.choice(ATTACHMENTS))
                if rng.random() < 0.1
                else None,
            },
        )
        deals = self.company_opportunities.get(company) or self.ids["Opportunities"]
        if deals and rng.random() < 0.4:
            self.link("Notes", note_id, "Opportunities", rng.choice(deals), "Related")
        if rng.random() < 0.2:
            self.link("Notes", note_id, "Tickets", self.pick("Tickets"), "Related")

    def _company_of(self, contact, chance):
        if contact is None or self.rng.random() >= chance:
            return None
        return _as_id(self.instance.records["Contacts"][contact].get("company"))


def _escape(text):
    """Text made safe for HTML the way rich-text editors do it."""
    return html.escape(text, quote=False)


def _later(stamp, minutes):
    moment = datetime.strptime(stamp, STAMP_FORMAT) + timedelta(minutes=minutes)
    return format_stamp(min(moment, BASE_DATE - timedelta(minutes=1)))


class _Slots(dict):
    """Template slots, each drawn only when a template asks for it."""

    def __init__(self, generator, known):
        super().__init__()
        self.generator = generator
        self.known = known

    def __missing__(self, key):
        value = self._draw(key)
        self[key] = value
        return value

    def _draw(self, key):
        gen, rng, pools = self.generator, self.generator.rng, self.generator.pools
        contact = self.known.get("contact")
        person = self.known.get("person")
        if key in ("surname", "name"):
            if contact:
                first, last = contact["first_name"], contact["last_name"]
            else:
                chosen = person or pools.person()
                first, last = chosen.first, chosen.last
            return last if key == "surname" else f"{first} {last}"
        if key == "company":
            company = gen.instance.records["Companies"].get(
                self.known.get("company_id")
            )
            return company["name"] if company else pools.company(pools.locale())
        if key == "product":
            product = gen.pick("Products")
            return gen.instance.records["Products"][product]["name"]
        draws = {
            "city": lambda: pools.city(pools.locale()),
            "ref": lambda: f"{rng.randint(2024, 2026)}-{rng.randint(1000, 9999)}",
            "date": lambda: (
                BASE_DATE + timedelta(days=rng.randint(-200, 40))
            ).strftime("%d %b"),
            "year": lambda: str(rng.choice([2025, 2026, 2027])),
            "staff": lambda: rng.choice(pools.users),
            "amount": lambda: f"€{rng.randint(1, 90) * 500:,}",
            "count": lambda: str(rng.randint(2, 40)),
        }
        return draws[key]()


# Weights of the countries the business's contacts come from.
LOCALES = {
    "en_US": 30,
    "en_GB": 12,
    "de_DE": 22,
    "fr_FR": 9,
    "es_ES": 7,
    "pl_PL": 5,
    "sv_SE": 4,
    "ar_SA": 6,
    "he_IL": 5,
}
COUNTRIES = {
    "en_US": "United States",
    "en_GB": "United Kingdom",
    "de_DE": "Germany",
    "fr_FR": "France",
    "es_ES": "Spain",
    "pl_PL": "Poland",
    "sv_SE": "Sweden",
    "ar_SA": "Saudi Arabia",
    "he_IL": "Israel",
}
TLDS = {
    "en_US": "com",
    "en_GB": "co.uk",
    "de_DE": "de",
    "fr_FR": "fr",
    "es_ES": "es",
    "pl_PL": "pl",
    "sv_SE": "se",
    "ar_SA": "sa",
    "he_IL": "co.il",
}
FREE_MAIL = {
    "en_US": ["gmail.com", "outlook.com", "yahoo.com", "icloud.com"],
    "en_GB": ["gmail.com", "btinternet.com", "hotmail.co.uk"],
    "de_DE": ["gmx.de", "web.de", "t-online.de", "gmail.com"],
    "fr_FR": ["orange.fr", "free.fr", "gmail.com"],
    "es_ES": ["gmail.com", "yahoo.es", "hotmail.es"],
    "pl_PL": ["wp.pl", "onet.pl", "gmail.com"],
    "sv_SE": ["telia.com", "gmail.com"],
    "ar_SA": ["gmail.com", "outlook.sa"],
    "he_IL": ["gmail.com", "walla.co.il"],
}
# Words of company names that say nothing in a web address.
LEGAL_WORDS = {
    "llc",
    "inc",
    "ltd",
    "plc",
    "gmbh",
    "ag",
    "kg",
    "ohg",
    "e",
    "v",
    "g",
    "sa",
    "s",
    "l",
    "sl",
    "sarl",
    "sas",
    "sp",
    "z",
    "o",
    "ab",
    "hb",
    "group",
    "and",
    "co",
    "cie",
    "et",
    "y",
    "mbh",
    "kgaa",
    "sons",
}
VAT_PREFIXES = {
    "de_DE": "DE",
    "fr_FR": "FR",
    "es_ES": "ES",
    "pl_PL": "PL",
    "sv_SE": "SE",
    "en_GB": "GB",
}
# ar_SA's address providers fall back to American places; these read true.
ARABIC_CITIES = ["Riyadh", "Jeddah", "Dammam", "الرياض", "جدة", "الدمام"]
ARABIC_STREETS = [
    "King Fahd Road 221",
    "Olaya Street 14",
    "طريق الملك فهد 88",
    "شارع التحلية 12",
    "Prince Sultan Street 9",
]
RECORDINGS = "https://voip.nordlicht-it.example/rec"
SIGNATURE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAGQAAAAyCAYAAACqNX6+"

PRODUCT_LINES = [
    "Cloud Backup",
    "Mail Security",
    "Managed Firewall",
    "M365 Migration",
    'Laptop Lease Pro 14"',
    "Dock & Display Set",
    "Helpdesk Flat Rate",
    "Network Audit",
    "Security Awareness Training",
    "VoIP Phone System",
    "NAS Storage 8 TB",
    "Endpoint Protection",
]
EDITIONS = ["Basic", "Business", "Premium", "Enterprise"]
STAGE_PROBABILITY = {
    "Prospecting": 10,
    "Qualification": 25,
    "Proposal": 50,
    "Negotiation": 75,
    "Closed Won": 100,
    "Closed Lost": 0,
}
PRODUCT_TEXTS = [
    "Per user and month, billed yearly.",
    "Includes setup, 12 months of updates and e-mail support.",
    "Hardware with 3-year on-site warranty; delivery in 5-7 working days.",
    "Workshop of one day at the customer's site, up to {count} people.",
    "Replaces the old edition; migration of settings included.",
]
LEAD_MESSAGES = [
    "Hi, we are {count} people and need a new backup solution. Send a quote?",
    "Guten Tag, wir benötigen ein Angebot für {count} Laptops inkl. Einrichtung.",
    "Bonjour, pouvez-vous nous rappeler au sujet de la sécurité e-mail ?",
    "Met you at the trade show in {city}. Interested in the helpdesk flat rate.",
    "Our current provider is too slow. Please call me back. {name}",
    "Need help moving to Microsoft 365 before {date}.",
    "",
]
DEAL_NAMES = [
    "{company} – {product}",
    "{company} renewal {year}",
    "{product} rollout {company}",
    "Expansion {city} office",
    "{company}: hardware refresh",
    "{company} security package",
]
DEAL_TEXTS = [
    "Decision maker is the managing director; IT is run by an external person.",
    "Competing offer from a local reseller, about 10 % cheaper.",
    "Budget of {amount} confirmed for {year}.",
    "Wants everything installed before the office move on {date}.",
    "Angebot nachgefasst, Kunde prüft intern.",
    "",
]
NEXT_STEPS = [
    "Send revised quote",
    "Demo with IT lead",
    "Call back after holidays",
    "Wait for PO",
    "Site visit",
    "Clarify licence count",
]
COPY_SUFFIXES = ["copy", "renewal", "2nd site", "Kopie"]
PROJECT_NAMES = [
    "Website relaunch {company}",
    "ERP migration {company}",
    "Warehouse {city}",
    "CRM rollout phase {count}",
    "Network upgrade {company}",
    "Backup concept {company}",
    "New office {city}",
]
STATUS_NOTES = [
    "on track",
    "waiting for client feedback",
    "ON HOLD – budget",
    "delayed, supplier late",
    "",
    "ok 👍",
    "see Risks",
]
REGION_CODES = [
    "DE-BY",
    "DE-NW",
    "DE-HH",
    "FR-IDF",
    "US-CA",
    "US-NY",
    "GB-LND",
    "ES-MD",
    "PL-MZ",
    "SA-01",
    "IL-TA",
]
LEAD_SOURCE_NOTES = [
    "trade fair Hannover",
    "ref. by existing client",
    "Google Ads",
    "",
    "cold call (Tom)",
    "LinkedIn post",
]
RISKS = [
    "Key user leaves in {date}; knowledge transfer needed.",
    "Data migration from the old system is unclear.",
    "Budget of {amount} might not cover the hardware.",
    "No risks known.",
    "",
]
TICKET_SUBJECTS = [
    "Cannot log in",
    "Invoice {ref} shows wrong VAT",
    "Delivery missing items",
    "Export to Excel fails",
    "Feature request: dark mode",
    "Password reset e-mail not received",
    "Wrong address on order {ref}",
    "Laptop does not boot",
    "Refund request",
    "Question about warranty",
    "VPN disconnects every hour",
    "Drucker druckt nicht",
    "🔥 Server down at {company}",
]
TICKET_TEXTS = [
    "Since this morning nobody in our office can log in.\nPlease help ASAP.",
    "The invoice {ref} has 19 % VAT but we are exempt. Please correct.",
    "Only {count} of the ordered items arrived.",
    "Thanks so much for the quick help 🙏",
    'Error message: "Unexpected token < in JSON at position 0"',
    "Le client signale une panne depuis hier soir.",
    "",
]
TASK_SUBJECTS = [
    "Send quote to {surname}",
    "Follow up on proposal",
    "Prepare demo for {company}",
    "Call back {name}",
    "Update contract terms",
    "Check payment of invoice {ref}",
    "Book travel to {city}",
    "Renewal reminder",
    "Angebot nachfassen",
    "Order {count} licences",
    "Urgent: reply to {surname} 🔥",
]
TASK_TEXTS = [
    "See notes from last meeting.",
    "Customer expects an answer by {date}.",
    "",
    "Check with {staff} first.",
    "Include installation and training.",
]
CALL_SUBJECTS = [
    "Intro call",
    "Follow-up call",
    "Support call",
    "Quote discussion",
    "Voicemail left",
    "Renewal call",
    "Inbound enquiry",
    "Rückruf",
]
CALL_TEXTS = [
    "Discussed the quote, will decide by {date}.",
    "No answer, left voicemail.",
    "",
    "Asked for references in {city}.",
    "Wants {count} more licences.",
    "Complained about the delivery time.",
]
NOTE_SUBJECTS = [
    "Call with {name}",
    "Meeting notes – {company}",
    "Follow-up: quote {ref}",
    "Renewal discussion",
    "Complaint about delivery",
    "Onboarding kick-off",
    "Pricing question",
    "Demo feedback",
    "Contract signed 🎉",
    "Site visit {city}",
    "Budget for {year}",
    "Re: Invoice {ref}",
    "Besprechung mit {surname}",
    "",
    "Compte rendu – réunion",
]
NOTE_OPENERS = [
    "Spoke with {name} about the current setup.",
    "Meeting at their office in {city}.",
    "Short call, {staff} joined as well.",
    "Customer called about invoice {ref}.",
    "Great call, very positive 👍",
    "Telefonat mit Frau {surname}, sehr freundlich.",
    "Réunion avec M. {surname} à {city}.",
]
SURNAME_LINES = [
    "{surname} asked for an updated quote including installation.",
    "{surname} is the decision maker; budget of {amount} approved.",
    "Spoke to {surname}'s assistant, call back next week.",
    "{surname} prefers e-mail over phone.",
    "Sent {surname} the brochure & price list afterwards.",
]
NOTE_POINTS = [
    "They are comparing us with two other vendors.",
    "Decision expected by {date}.",
    "Needs single sign-on and an export to their ERP.",
    "Delivery arrived two days late – offered 5 % off the next order.",
    "Wants a demo for {count} colleagues.",
    "Current contract ends in {year}.",
    "Asked about {product}.",
    "Pricing ok, legal has to review the terms.",
    "IT contact changes next month.",
]
NOTE_CLOSERS = [
    "Next step: send quote by {date}.",
    "Follow-up set for {date}.",
    "Merci beaucoup 😊",
    "Nothing else to do for now.",
]
ATTACHMENTS = [
    "Angebot_v2.pdf",
    "minutes.docx",
    "screenshot.png",
    "price list 2026.xlsx",
    "contract (signed).pdf",
]


def product_name(number):
    line = PRODUCT_LINES[number % len(PRODUCT_LINES)]
    edition = EDITIONS[number // len(PRODUCT_LINES) % len(EDITIONS)]
    generation = number // (len(PRODUCT_LINES) * len(EDITIONS))
    suffix = f" (Gen {generation + 1})" if generation else ""
    return f"{line} {edition}{suffix}"


def slug(name):
    """Lower-case ASCII words of a name, for e-mail and web addresses."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", folded.lower())
    return "-".join([word for word in words if word not in LEGAL_WORDS][:2])


class Person(NamedTuple):
    first: str
    last: str
    full_name: str
    locale: str

    @property
    def tld(self):
        return TLDS[self.locale]


class Pools:
    """Names, places and phrases drawn once from seeded Faker instances.

    Records pick from these pools with the shared random generator, which is
    much faster than asking Faker for every value.
    """

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self._locales = list(LOCALES)
        self._weights = list(LOCALES.values())
        self.firsts, self.lasts, self.cities = {}, {}, {}
        self.streets, self.phones, self.companies = {}, {}, {}
        for number, locale in enumerate(self._locales):
            fake = Faker(locale)
            fake.seed_instance(seed * 100 + number)
            self._fill_locale(locale, fake)
        english = Faker("en_US")
        english.seed_instance(seed * 100 + 99)
        self.jobs = [english.job() for _ in range(80)]
        self.phrases = [english.catch_phrase() for _ in range(60)]
        self.users = sorted(
            {
                f"{self.rng.choice(self.firsts[loc])} {self.rng.choice(self.lasts[loc])}"
                for loc in (
                    "en_US",
                    "de_DE",
                    "de_DE",
                    "en_GB",
                    "fr_FR",
                    "de_DE",
                    "pl_PL",
                    "en_US",
                )
            }
        )

    def _fill_locale(self, locale, fake):
        self.firsts[locale] = [fake.first_name() for _ in range(80)]
        self.lasts[locale] = [fake.last_name() for _ in range(80)]
        self.companies[locale] = [fake.company() for _ in range(40)]
        if locale == "ar_SA":
            self.cities[locale] = ARABIC_CITIES
            self.streets[locale] = ARABIC_STREETS
            self.phones[locale] = [
                f"+966 5{self.rng.randint(0, 9)} {self.rng.randint(100, 999)} "
                f"{self.rng.randint(1000, 9999)}"
                for _ in range(40)
            ]
            return
        self.cities[locale] = [fake.city() for _ in range(30)]
        self.streets[locale] = [fake.street_address() for _ in range(30)]
        self.phones[locale] = [fake.phone_number() for _ in range(40)]

    def locale(self):
        return self.rng.choices(self._locales, self._weights)[0]

    def person(self):
        rng = self.rng
        locale = self.locale()
        first = rng.choice(self.firsts[locale])
        last = rng.choice(self.lasts[locale])
        full_name = f"{first} {last}"
        roll = rng.random()
        if roll < 0.03:
            full_name = f"Dr. {full_name}"
        elif roll < 0.05:
            full_name = f"{first} {last.upper()}"
        elif roll < 0.06:
            full_name = f"{first}  {last} "
        return Person(first, last, full_name, locale)

    def company(self, locale):
        return self.rng.choice(self.companies[locale])

    def city(self, locale):
        return self.rng.choice(self.cities[locale])

    def street(self, locale):
        return self.rng.choice(self.streets[locale])

    def phone(self, locale):
        return self.rng.choice(self.phones[locale])

    def free_email(self, person):
        local = self._mail_name(person) or f"contact{self.rng.randint(10, 9999)}"
        return f"{local}@{self.rng.choice(FREE_MAIL[person.locale])}"

    def work_email(self, person, domain):
        local = self._mail_name(person)
        if not domain or not local or self.rng.random() < 0.15:
            return self.free_email(person)
        if self.rng.random() < 0.05:
            local = local.title()
        return f"{local}@{domain}"

    def _mail_name(self, person):
        first, last = slug(person.first), slug(person.last)
        if not first or not last:
            return ""
        return f"{first}.{last}".replace("-", "")

    def linkedin(self, person):
        handle = self._mail_name(person).replace(".", "-") or "profile"
        return f"https://www.linkedin.com/in/{handle}-{self.rng.getrandbits(24):06x}"

    def vat_id(self, locale):
        prefix = VAT_PREFIXES.get(locale)
        if prefix is None:
            number = self.rng.randint(10**6, 10**7 - 1)
            return f"EIN {self.rng.randint(10, 99)}-{number}"
        return f"{prefix}{self.rng.randint(100000000, 999999999)}"
