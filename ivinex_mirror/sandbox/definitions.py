"""What a sandbox instance is made of: types, default fields and tabs.

The field types, link kinds and five default fields every Ivinex record
carries, the stamp format of its date-times, and the tabs the generated
instance starts with, each with its fields in the GetFields shape.
"""

from datetime import datetime

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


def format_stamp(moment):
    return moment.strftime(STAMP_FORMAT)


def make_field(name, ftype, *options, required=False, linked=None, label=None):
    return {
        "FieldName": name,
        "Label": label or name.replace("_", " ").title(),
        "FieldType": ftype,
        "Required": required,
        "Options": list(options),
        "LinkedTab": linked,
    }


STAGES = (
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
            make_field("first_name", "Text", required=True),
            make_field("last_name", "Text", required=True),
            make_field("full_name", "Text"),
            make_field("email", "Email", label="E-mail"),
            make_field("phone", "Phone"),
            make_field("mobile", "Phone"),
            make_field("job_title", "Text"),
            make_field("company", "LinkedRecord", linked="Companies"),
            make_field(
                "contact_type",
                "Dropdown",
                "Lead",
                "Prospect",
                "Customer",
                "Partner",
                "Supplier",
                "Former customer",
            ),
            make_field(
                "interests",
                "MultiSelect",
                "Cloud",
                "Hardware",
                "Training",
                "Support plans",
                "Consulting",
                "Security",
            ),
            make_field("newsletter", "Checkbox"),
            make_field("birthday", "Date"),
            make_field("last_contacted", "DateTime"),
            make_field("owner", "User"),
            make_field("linkedin", "URL", label="LinkedIn"),
            make_field("lead_score", "Number"),
            make_field("city", "Text"),
            make_field("country", "Text"),
            make_field("photo", "File"),
        ],
    ),
    (
        "Companies",
        "Company",
        300,
        [
            make_field("name", "Text", required=True),
            make_field("website", "URL"),
            make_field("phone", "Phone"),
            make_field("email", "Email", label="E-mail"),
            make_field(
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
            make_field("employees", "Number"),
            make_field("annual_revenue", "Currency"),
            make_field("address", "TextArea"),
            make_field("city", "Text"),
            make_field("country", "Text"),
            make_field("parent_company", "LinkedRecord", linked="Companies"),
            make_field("account_manager", "User"),
            make_field(
                "tags",
                "MultiSelect",
                "Key account",
                "Reseller",
                "Partner",
                "Newsletter",
                "Do not call",
            ),
            make_field("customer_since", "Date"),
            make_field("vat_id", "Text", label="VAT ID"),
            make_field("description", "TextArea"),
            make_field("logo", "File"),
        ],
    ),
    (
        "Opportunities",
        "Opportunity",
        400,
        [
            make_field("name", "Text", required=True),
            make_field("company", "LinkedRecord", linked="Companies"),
            make_field("primary_contact", "LinkedRecord", linked="Contacts"),
            make_field("stage", "Dropdown", *STAGES),
            make_field("amount", "Currency"),
            make_field("probability", "Percent"),
            make_field("expected_close", "Date"),
            make_field("closed_at", "DateTime"),
            make_field("owner", "User"),
            make_field("lead_source", "Dropdown", *_SOURCES),
            make_field("next_step", "Text"),
            make_field("description", "TextArea"),
            make_field("proposal", "File"),
        ],
    ),
    (
        "Notes",
        "Note",
        1300,
        [
            make_field("subject", "Text"),
            make_field("body", "TextArea"),
            make_field("contact", "LinkedRecord", linked="Contacts"),
            make_field("company", "LinkedRecord", linked="Companies"),
            make_field(
                "note_type", "Dropdown", "Meeting", "Phone call", "E-mail", "Internal"
            ),
            make_field("pinned", "Checkbox"),
            make_field("attachment", "File"),
        ],
    ),
    (
        "Tasks",
        "Task",
        600,
        [
            make_field("subject", "Text", required=True),
            make_field("description", "TextArea"),
            make_field(
                "status", "Dropdown", "Not started", "In progress", "Waiting", "Done"
            ),
            make_field("priority", "Dropdown", *_PRIORITIES),
            make_field("due_date", "Date"),
            make_field("reminder_at", "DateTime"),
            make_field("assigned_to", "User"),
            make_field("contact", "LinkedRecord", linked="Contacts"),
            make_field("opportunity", "LinkedRecord", linked="Opportunities"),
            make_field("completed", "Checkbox"),
            make_field("percent_complete", "Percent"),
        ],
    ),
    (
        "Tickets",
        "Ticket",
        350,
        [
            make_field("subject", "Text", required=True),
            make_field("description", "TextArea"),
            make_field(
                "status", "Dropdown", "Open", "Pending", "On hold", "Solved", "Closed"
            ),
            make_field("priority", "Dropdown", *_PRIORITIES),
            make_field("channel", "Dropdown", "E-mail", "Phone", "Web form", "Chat"),
            make_field(
                "categories",
                "MultiSelect",
                "Billing",
                "Delivery",
                "Login",
                "Bug",
                "Feature request",
                "Warranty",
            ),
            make_field("contact", "LinkedRecord", linked="Contacts"),
            make_field("company", "LinkedRecord", linked="Companies"),
            make_field("opened_at", "DateTime"),
            make_field("resolved_at", "DateTime"),
            make_field("assigned_to", "User"),
            make_field("satisfaction", "Number"),
            make_field("sla_breached", "Checkbox", label="SLA Breached"),
            make_field("customer_signature", "Signature"),
        ],
    ),
    (
        "Calls",
        "Call",
        450,
        [
            make_field("subject", "Text"),
            make_field("direction", "Dropdown", "Inbound", "Outbound"),
            make_field(
                "outcome",
                "Dropdown",
                "Connected",
                "Voicemail",
                "No answer",
                "Busy",
                "Wrong number",
            ),
            make_field("call_start", "DateTime"),
            make_field("duration_minutes", "Number"),
            make_field("phone_number", "Phone"),
            make_field("contact", "LinkedRecord", linked="Contacts"),
            make_field("opportunity", "LinkedRecord", linked="Opportunities"),
            make_field("agent", "User"),
            make_field("recording", "URL"),
            make_field("call_notes", "TextArea"),
        ],
    ),
    (
        "Leads",
        "Lead",
        500,
        [
            make_field("full_name", "Text", required=True),
            make_field("email", "Email", label="E-mail"),
            make_field("phone", "Phone"),
            make_field("company_name", "Text"),
            make_field("job_title", "Text"),
            make_field("source", "Dropdown", *_SOURCES),
            make_field(
                "status",
                "Dropdown",
                "New",
                "Contacted",
                "Qualified",
                "Unqualified",
                "Converted",
            ),
            make_field("estimated_value", "Currency"),
            make_field("received_at", "DateTime"),
            make_field("owner", "User"),
            make_field("message", "TextArea"),
            make_field("gdpr_consent", "Checkbox", label="GDPR Consent"),
            make_field("website", "URL"),
        ],
    ),
    (
        "Products",
        "Product",
        40,
        [
            make_field("name", "Text", required=True),
            make_field("sku", "Text", label="SKU"),
            make_field(
                "category", "Dropdown", "Software", "Hardware", "Service", "Training"
            ),
            make_field("unit_price", "Currency"),
            make_field("tax_rate", "Percent"),
            make_field("active", "Checkbox"),
            make_field("launch_date", "Date"),
            make_field("product_page", "URL"),
            make_field("description", "TextArea"),
            make_field("datasheet", "File"),
        ],
    ),
    (
        "Project Tracker",
        "Project",
        60,
        [
            make_field("Project Name", "Text", required=True, label="Project Name"),
            make_field("Client", "LinkedRecord", linked="Companies", label="Client"),
            make_field(
                "2nd Contact", "LinkedRecord", linked="Contacts", label="2nd Contact"
            ),
            make_field("Order", "Number", label="Order"),
            make_field("Budget (€)", "Currency", label="Budget (€)"),
            make_field(
                "Status",
                "Dropdown",
                "Planned",
                "Active",
                "Paused",
                "Done",
                label="Status",
            ),
            make_field("status", "Text", label="status"),
            make_field("Start Date", "Date", label="Start Date"),
            make_field("Go-Live", "DateTime", label="Go-Live"),
            make_field("% Done", "Percent", label="% Done"),
            make_field("Region-Code", "Text", label="Region-Code"),
            make_field("Score [0-10]", "Number", label="Score [0-10]"),
            make_field("Lead Source", "Dropdown", *_SOURCES, label="Lead Source"),
            make_field("lead_source", "Text", label="lead_source"),
            make_field("_score", "Number", label="_score"),
            make_field("Reorder Qty (Temp_)", "Number", label="Reorder Qty (Temp_)"),
            make_field("Risks & Issues", "TextArea", label="Risks & Issues"),
            make_field(
                "Team",
                "MultiSelect",
                "Sales",
                "Support",
                "Engineering",
                "Finance",
                "Marketing",
                label="Team",
            ),
            make_field("Sponsor", "User", label="Sponsor"),
            make_field("Spec Document", "File", label="Spec Document"),
            make_field("Kick-off Done?", "Checkbox", label="Kick-off Done?"),
            make_field("Project E-mail", "Email", label="Project E-mail"),
            make_field("Phone (Site)", "Phone", label="Phone (Site)"),
            make_field("Portal URL", "URL", label="Portal URL"),
        ],
    ),
)
