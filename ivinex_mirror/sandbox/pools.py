"""Names, places and companies of the generated contacts, drawn from Faker.

Faker is asked once per locale for pools of values; records then pick from
the pools with the shared random generator.
"""

import logging
import random
import re
import unicodedata
from typing import NamedTuple

# Faker logs on "faker.factory" at DEBUG when imported and, many times over,
# for every instance made; with --verbose those lines buried the sandbox's own.
# Set before the import so its first line is held back too.
logging.getLogger("faker").setLevel(logging.WARNING)

from faker import Faker

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
# Where the business's own staff, the CRM's users, come from; a repeat is
# another seat, so German names are the most common.
STAFF_LOCALES = (
    "en_US",
    "de_DE",
    "de_DE",
    "en_GB",
    "fr_FR",
    "de_DE",
    "pl_PL",
    "en_US",
)
# ar_SA's address providers fall back to American places; these read true.
ARABIC_CITIES = ["Riyadh", "Jeddah", "Dammam", "الرياض", "جدة", "الدمام"]
ARABIC_STREETS = [
    "King Fahd Road 221",
    "Olaya Street 14",
    "طريق الملك فهد 88",
    "شارع التحلية 12",
    "Prince Sultan Street 9",
]


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
        self.users = self._staff_names()

    def _staff_names(self):
        """The CRM's users: one name drawn per seat of STAFF_LOCALES."""
        names = set()
        for locale in STAFF_LOCALES:
            first = self.rng.choice(self.firsts[locale])
            names.add(f"{first} {self.rng.choice(self.lasts[locale])}")
        return sorted(names)

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
