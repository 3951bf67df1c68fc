"""The words of generated records: templates and the slots that fill them.

Templates name their blanks as {slots}; a slot is drawn only when a template
asks for it, from the records made so far or the pools.
"""

import html
from datetime import timedelta

from ivinex_mirror.sandbox.definitions import BASE_DATE

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


def escape(text):
    """Text made safe for HTML the way rich-text editors do it."""
    return html.escape(text, quote=False)


def fill(generator, template, known):
    """The template with its {slots} filled, from `known` where given."""
    return template.format_map(_Slots(generator, known))


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
