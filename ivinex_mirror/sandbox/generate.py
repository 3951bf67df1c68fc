"""The generator of the sandbox's data: a seeded, realistic CRM instance.

The generated instance looks like the CRM of a small IT services business:
contacts and companies from several countries, the deals, notes, tasks,
tickets and calls around them, leads, products and one custom tab whose field
names are as awkward as admins make them. Everything is drawn from one seeded
random generator, so a seed always gives the same instance.
"""

import logging
from datetime import datetime, timedelta

from ivinex_mirror.sandbox.definitions import (
    BASE_DATE,
    DEFAULT_FIELDS,
    FIRST_TAB_ID,
    STAGES,
    STAMP_FORMAT,
    TABS,
    TEXT_TYPES,
    format_stamp,
)
from ivinex_mirror.sandbox.instance import Instance, as_id
from ivinex_mirror.sandbox.pools import COUNTRIES, TLDS, Pools, slug
from ivinex_mirror.sandbox.texts import (
    ATTACHMENTS,
    CALL_SUBJECTS,
    CALL_TEXTS,
    COPY_SUFFIXES,
    DEAL_NAMES,
    DEAL_TEXTS,
    LEAD_MESSAGES,
    LEAD_SOURCE_NOTES,
    NEXT_STEPS,
    NOTE_CLOSERS,
    NOTE_OPENERS,
    NOTE_POINTS,
    NOTE_SUBJECTS,
    PRODUCT_TEXTS,
    PROJECT_NAMES,
    RECORDINGS,
    REGION_CODES,
    RISKS,
    SIGNATURE,
    STAGE_PROBABILITY,
    STATUS_NOTES,
    SURNAME_LINES,
    TASK_SUBJECTS,
    TASK_TEXTS,
    TICKET_SUBJECTS,
    TICKET_TEXTS,
    escape,
    fill,
    product_name,
)

logger = logging.getLogger(__name__)


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
        return fill(self, template, known)

    def note_body(self, contact, long_note):
        """HTML as the notes editor saves it; names the contact now and then."""
        rng = self.rng
        parts = [self._paragraph(rng.choice(NOTE_OPENERS), contact)]
        if contact and rng.random() < 0.55:
            parts.append(self._paragraph(rng.choice(SURNAME_LINES), contact))
        points = rng.sample(NOTE_POINTS, rng.randint(0, 3))
        if points:
            items = "".join(
                f"<li>{escape(self.fill(p, contact=contact))}</li>" for p in points
            )
            parts.append(f"<ul>{items}</ul>")
        if rng.random() < 0.3:
            parts.append(self._paragraph(rng.choice(NOTE_CLOSERS), contact))
        if long_note:
            parts.append(self._mail_thread(contact))
        return "".join(parts)

    def _paragraph(self, template, contact):
        return f"<p>{escape(self.fill(template, contact=contact))}</p>"

    def _mail_thread(self, contact):
        """A pasted e-mail thread of about 20 kB, as some notes carry."""
        blocks = ["<p>--- Forwarded thread ---</p>"]
        size = 0
        while size < 20000:
            sentences = " ".join(
                self.fill(p, contact=contact) for p in self.rng.sample(NOTE_POINTS, 5)
            )
            block = (
                f"<blockquote><p><b>From:</b> {escape(self.fill('{name}'))}"
                f"<br><b>Sent:</b> {self.moment(-400, -1)}</p>"
                f"<p>{escape(sentences)}</p></blockquote>"
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
        lead = None
        if number < len(self.converted_leads):
            lead = self.converted_leads[number]
        person = lead[1] if lead else self.pools.person()
        company = self.pick("Companies", 0.9)
        values = self._contact_values(person, company)
        contact_id = self.insert("Contacts", values)
        self.company_contacts.setdefault(company, []).append(contact_id)
        if lead:
            self.link("Contacts", contact_id, "Leads", lead[0], "Converted")
        if company and self.rng.random() < 0.06:
            colleague = self.rng.choice(self.company_contacts[company])
            self.link("Contacts", contact_id, "Contacts", colleague, "Related")

    def _contact_values(self, person, company):
        rng = self.rng
        email = self.pools.work_email(person, self.company_domain.get(company))
        return {
            "first_name": person.first,
            "last_name": person.last,
            "full_name": person.full_name,
            "email": email,
            "phone": self.pools.phone(person.locale),
            "mobile": self.pools.phone(person.locale) if rng.random() < 0.5 else None,
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
            "linkedin": self.pools.linkedin(person) if rng.random() < 0.35 else None,
            "lead_score": rng.randint(0, 100),
            "city": self.pools.city(person.locale),
            "country": COUNTRIES[person.locale],
            "photo": self.file("photos", "portrait.jpg")
            if rng.random() < 0.2
            else None,
        }

    def _opportunities(self, number):
        rng = self.rng
        earlier = self.ids["Opportunities"]
        if earlier and rng.random() < 0.08:
            self._copy_opportunity(rng.choice(earlier))
            return
        company = self.pick("Companies", 0.95)
        contacts = self.company_contacts.get(company) or self.ids["Contacts"]
        stage = rng.choices(STAGES, [15, 15, 20, 12, 23, 15])[0]
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
        self._link_opportunity(opp_id, as_id(values.get("company")))

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
        project_id = self.insert("Project Tracker", self._project_values(number))
        for _ in range(self.rng.randint(0, 2)):
            opportunity = self.pick("Opportunities")
            self.link(
                "Project Tracker", project_id, "Opportunities", opportunity, "Related"
            )
        if number > 3 and self.rng.random() < 0.07:
            original = self.ids["Project Tracker"][self.rng.randrange(number)]
            self.link(
                "Project Tracker",
                project_id,
                "Project Tracker",
                original,
                "Copied From",
            )

    def _project_values(self, number):
        """A project with every awkward field an admin gave the custom tab."""
        rng = self.rng
        client = self.pick("Companies")
        status = rng.choice(["Planned", "Active", "Active", "Paused", "Done"])
        return {
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
        return as_id(self.instance.records["Contacts"][contact].get("company"))


def _later(stamp, minutes):
    moment = datetime.strptime(stamp, STAMP_FORMAT) + timedelta(minutes=minutes)
    return format_stamp(min(moment, BASE_DATE - timedelta(minutes=1)))
