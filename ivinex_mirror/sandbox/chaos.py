"""Seeded random faults: a sandbox that fails like a busy, flaky instance.

Where the FaultPlan serves the faults a test plans one by one, Chaos decides
for every API request, at random from a seed, whether it goes wrong and how:

    5xx        an HTML error page with 500, 502, 503 or 504
    reset      the connection is reset without an answer
    stall      the answer comes `stall_seconds` late (past a client's timeout)
    429        Too Many Requests with Retry-After
    malformed  HTTP 200 with the real answer cut short, an empty body, an HTML
               page, or the JSON list under a key the client does not know
    error-200  HTTP 200 with {"Status": "Error"}: an internal error, or now and
               then a permission refusal
    shift      while records or links are paged: before the page is answered,
               a record of the tab is added or modified, or a link is made or
               removed, so that records move between pages; or the page comes
               out of modified order

Each decision is drawn from the seed, the request (call, method and
parameters) and how many times that same request came before: so the same
seed and the same requests give the same faults, in whatever order requests
from several connections arrive, and a failing run replays. A retry is the
same request once more, and gets a decision of its own. Above `rate_limit`
requests a second every request gets a 429 too, whatever the seed says; that
one depends on timing.
"""

import json
import math
import random
import threading
import time
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from ivinex_mirror.sandbox.faults import fault_response, make_fault
from ivinex_mirror.sandbox.instance import InvalidValue

KINDS = ("5xx", "reset", "stall", "429", "malformed", "error-200", "shift")
FAILING = KINDS[:-1]
SHIFT = "shift"
RECORD_CALLS = ("GetRecords", "Records.php")
LINK_CALLS = ("GetAllRelatedItems",)

# serve() returns this when the connection is to be reset.
DROP = object()

# Each kind's variants, with their weights.
VARIANTS = {
    "5xx": (("500", 1), ("502", 1), ("503", 1), ("504", 1)),
    "reset": (("reset", 1),),
    "stall": (("stall", 1),),
    "429": (("random", 1),),
    "malformed": (("truncated", 5), ("empty", 1), ("html", 2), ("envelope", 2)),
    "error-200": (("api-error", 3), ("permission", 1)),
}
RECORD_SHIFTS = (("add", 7), ("modify", 9), ("reorder", 4))
LINK_SHIFTS = (("link-add", 1), ("link-remove", 1))

RATE_WINDOW_SECONDS = 1.0
# Requests whose repeats are counted; the oldest are forgotten past this.
REMEMBERED = 50_000

# Values written by a shift: plain, accented, emoji, right-to-left.
WORDS = ("Shift", "Zoë", "Łódź", "café ☕", "שלום", "naïve", "Straße", "🚀 go")
VALUE_DATES = datetime(2026, 1, 1)


@dataclass(frozen=True)
class Decision:
    """What Chaos does with one request; `draw` in [0, 1) places the fault
    (where a body is cut, which record moves) and `value_seed` picks values."""

    kind: str | None
    variant: str | None = None
    draw: float = 0.0
    value_seed: int = 0


def parse_kinds(kinds):
    """Kinds from an iterable or a comma-separated text; unknown ones refused."""
    if isinstance(kinds, str):
        kinds = [kind.strip() for kind in kinds.split(",") if kind.strip()]
    chosen = tuple(kinds)
    unknown = sorted(set(chosen) - set(KINDS))
    if unknown:
        raise ValueError(
            f"Unknown fault kind {', '.join(unknown)}; known: {', '.join(KINDS)}"
        )
    return tuple(kind for kind in KINDS if kind in chosen)


class Chaos:
    """Decides per request, from `seed`, whether and how it fails.

    rate: the share of requests that fail, the kind drawn evenly among the
    failing kinds asked for; shift_rate: the share of pages preceded by a
    shift (default: rate); rate_limit: requests a second above which every
    request gets 429 (None: no limit). Counters by kind and by variant tell
    what was injected. Safe to use from the server's threads."""

    def __init__(
        self,
        seed=0,
        rate=0.1,
        kinds=KINDS,
        rate_limit=None,
        *,
        shift_rate=None,
        stall_seconds=2.0,
        retry_after=1,
    ):
        if not 0 <= rate <= 1:
            raise ValueError(f"The fault rate must be from 0 to 1, not {rate!r}")
        self.seed = seed
        self.rate = rate
        self.kinds = parse_kinds(kinds)
        self.rate_limit = rate_limit
        self.shift_rate = rate if shift_rate is None else shift_rate
        self.stall_seconds = stall_seconds
        self.retry_after = retry_after
        self.enabled = True
        self.requests = 0
        self.counts = Counter()
        self.variants = Counter()
        self._seen = {}
        self._lock = threading.Lock()
        self._recent = deque()

    def __repr__(self):
        kinds = ",".join(self.kinds)
        return f"Chaos(seed={self.seed}, rate={self.rate}, kinds={kinds!r})"

    def reseed(self, seed):
        """Draw from `seed` from now on, as if no request had come before; the
        counters go on. A test that runs in rounds reseeds each round, so a
        round's faults do not depend on how many requests earlier rounds made."""
        with self._lock:
            self.seed = seed
            self._seen.clear()

    @contextmanager
    def paused(self):
        """No faults, no rate limit and no draws within the block."""
        was = self.enabled
        self.enabled = False
        try:
            yield self
        finally:
            self.enabled = was

    def summary(self):
        with self._lock:
            return {
                "requests": self.requests,
                "by_kind": dict(self.counts),
                "by_variant": dict(self.variants),
            }

    # Deciding

    def decide(self, call, method="GET", params=None):
        """The Decision for a request of `call` with `params` (a dict)."""
        request = _request_key(call, method, params)
        with self._lock:
            self.requests += 1
            repeats = self._seen.pop(request, 0)
            self._seen[request] = repeats + 1
            if len(self._seen) > REMEMBERED:
                del self._seen[next(iter(self._seen))]
        rng = random.Random(f"{self.seed}|{request}|{repeats}")
        fault, pick, variant, draw, shift = (rng.random() for _ in range(5))
        value_seed = rng.getrandbits(32)

        failing = [kind for kind in FAILING if kind in self.kinds]
        if failing and fault < self.rate:
            kind = failing[min(int(pick * len(failing)), len(failing) - 1)]
            return Decision(kind, _weighted(VARIANTS[kind], variant), draw, value_seed)

        shifts = _shifts_for(call, method)
        if SHIFT in self.kinds and shifts and shift < self.shift_rate:
            return Decision(SHIFT, _weighted(shifts, variant), draw, value_seed)
        return Decision(None)

    def over_rate_limit(self):
        """Seconds to wait when this request is past the rate limit, else None.
        Only requests let through count towards the limit."""
        if not self.rate_limit:
            return None
        now = time.monotonic()
        with self._lock:
            while self._recent and now - self._recent[0] >= RATE_WINDOW_SECONDS:
                self._recent.popleft()
            if len(self._recent) >= self.rate_limit:
                wait = RATE_WINDOW_SECONDS - (now - self._recent[0])
                return max(1, math.ceil(wait))
            self._recent.append(now)
        return None

    # Serving

    def serve(self, instance, call, method, params, tabs, answer):
        """The answer to one API request about `tabs` (names); `answer()`
        gives the sandbox's normal one. DROP means: reset the connection."""
        if not self.enabled:
            return answer()
        wait = self.over_rate_limit()
        if wait is not None:
            self._count("429", "rate-limit")
            return _planned("rate_limited", call, retry_after=wait)

        decision = self.decide(call, method, params)
        if decision.kind is None:
            return answer()
        if decision.kind == SHIFT:
            return self._shift(decision, instance, call, tabs, answer)
        self._count(decision.kind, decision.variant)
        return self._fail(decision, call, tabs, answer)

    def _count(self, kind, variant):
        with self._lock:
            self.counts[kind] += 1
            self.variants[f"{kind}:{variant}"] += 1

    def _fail(self, decision, call, tabs, answer):
        kind, variant = decision.kind, decision.variant
        if kind == "reset":
            return DROP
        if kind == "stall":
            time.sleep(self.stall_seconds)
            return answer()
        if kind == "5xx":
            return _planned("server_error", call, status=int(variant))
        if kind == "429":
            return _planned("rate_limited", call, retry_after=self.retry_after)
        if kind == "error-200":
            planned = "permission" if variant == "permission" else "api_error"
            return _planned(planned, call, tab=tabs[0] if tabs else None)
        return _malformed(variant, answer(), decision.draw)

    def _shift(self, decision, instance, call, tabs, answer):
        rng = random.Random(decision.value_seed)
        variant = decision.variant
        if variant == "reorder":
            response = answer()
            if _reorder(response, rng):
                self._count(SHIFT, variant)
            return response

        done = None
        if variant in ("link-add", "link-remove"):
            done = change_link(instance, rng, variant == "link-add")
        elif tabs:
            done = change_record(instance, tabs[0], rng, variant == "add")
        if done:
            self._count(SHIFT, done)
        return answer()


# Changing data the way users do, for shifts and for soak tests.


def change_record(instance, tab, rng, add):
    """Add a record to `tab`, or modify one field of one of its records (add
    when it has none). Returns "add" or "modify", or None when the instance
    refused the values."""
    with instance.lock:
        records = instance.records[tab]
        try:
            if add or not records:
                instance.add_record(tab, record_values(instance, tab, rng))
                return "add"
            record_id = rng.choice(sorted(records))
            fields = instance.fields[tab]
            if not fields:
                return None
            field = rng.choice(fields)
            value = field_value(instance, field, rng)
            instance.update_record(tab, record_id, {field["FieldName"]: value})
            return "modify"
        except (InvalidValue, LookupError):
            return None


def change_link(instance, rng, add):
    """Link two random records (Related), or remove a random link of any
    kind. Returns "link-add" or "link-remove", or None when nothing changed."""
    with instance.lock:
        if not add:
            keys = instance.link_keys()
            if not keys:
                return None
            instance.remove_link(*rng.choice(keys))
            return "link-remove"
        filled = [tab for tab in sorted(instance.records) if instance.records[tab]]
        if not filled:
            return None
        from_tab, to_tab = rng.choice(filled), rng.choice(filled)
        from_id = rng.choice(sorted(instance.records[from_tab]))
        to_id = rng.choice(sorted(instance.records[to_tab]))
        if (from_tab, from_id) == (to_tab, to_id):
            return None
        added = instance.add_link(from_tab, from_id, to_tab, to_id, "Related")
        return "link-add" if added else None


def record_values(instance, tab, rng, share=0.5):
    """Values for a new record: every required field and about `share` of
    the others, each valid for its field's type."""
    values = {}
    for field in instance.fields[tab]:
        if field["Required"] or rng.random() < share:
            values[field["FieldName"]] = field_value(instance, field, rng)
    return values


def field_value(instance, field, rng):
    """A random value that the instance accepts for `field`."""
    ftype = field["FieldType"]
    number = rng.randrange(100000)
    if ftype in ("Number", "Currency", "Percent"):
        return round(rng.uniform(0, 100000), 2)
    if ftype == "Checkbox":
        return rng.random() < 0.5
    if ftype in ("Date", "DateTime"):
        moment = VALUE_DATES + timedelta(minutes=rng.randrange(525600))
        return moment.strftime("%Y-%m-%d" if ftype == "Date" else "%Y-%m-%d %H:%M:%S")
    if ftype in ("Dropdown", "MultiSelect"):
        ids = [option["OptionID"] for option in field["Options"]]
        if ftype == "Dropdown":
            return rng.choice(ids) if ids else None
        return sorted(rng.sample(ids, rng.randint(0, min(3, len(ids)))))
    if ftype == "LinkedRecord":
        targets = sorted(instance.records.get(field["LinkedTab"]) or ())
        return rng.choice(targets) if targets else None
    if ftype == "Email":
        return f"shift.{number}@example.org"
    if ftype == "URL":
        return f"https://example.org/shift/{number}"
    return f"{rng.choice(WORDS)} {number}"


# Answers


def _request_key(call, method, params):
    return f"{method} {call}?{urlencode(sorted((params or {}).items()))}"


def _weighted(choices, draw):
    total = sum(weight for _name, weight in choices)
    point = draw * total
    for name, weight in choices:
        if point < weight:
            return name
        point -= weight
    return choices[-1][0]


def _shifts_for(call, method):
    if method != "GET":
        return None
    if call in RECORD_CALLS:
        return RECORD_SHIFTS
    if call in LINK_CALLS:
        return LINK_SHIFTS
    return None


def _planned(kind, call, tab=None, **options):
    """The answer the FaultPlan gives for `kind`, so both speak alike."""
    return fault_response(make_fault(kind, call, tab, None, 1, options), call)


def _malformed(variant, response, draw):
    """A 200 that is not the JSON the call answers with; other answers pass."""
    if response.status_code != 200:
        return response
    body = response.get_data()
    if variant == "html":
        return _planned("html", None)
    if variant == "envelope":
        return _json_response(_rename_lists(json.loads(body)))
    if variant == "truncated" and len(body) > 1:
        # A proper prefix of a JSON object or list is never valid JSON.
        return _json_bytes(body[: 1 + int(draw * (len(body) - 1))])
    return _json_bytes(b"")


def _rename_lists(payload):
    """The answer's list under a key no client looks for."""
    if isinstance(payload, list):
        return {"Data": payload}
    if isinstance(payload, dict):
        return {
            ("Data" if isinstance(value, list) else key): value
            for key, value in payload.items()
        }
    return {"Data": payload}


def _reorder(response, rng):
    """Shuffle the page's records; False when there is nothing to reorder."""
    if response.status_code != 200:
        return False
    payload = json.loads(response.get_data())
    records = payload.get("Records") if isinstance(payload, dict) else None
    if not isinstance(records, list) or len(records) < 2:
        return False
    rng.shuffle(records)
    response.set_data(json.dumps(payload, ensure_ascii=False))
    return True


def _json_response(payload):
    return _json_bytes(json.dumps(payload, ensure_ascii=False).encode())


def _json_bytes(body):
    return Response(body, 200, mimetype="application/json")
