"""The fault plan: answers of the sandbox that go wrong on purpose.

A test adds faults to the plan; each request that matches a fault (by call,
tab and offset) takes one of its remaining uses and gets the fault's answer
instead of, or before, the normal one.
"""

import json
import threading
from dataclasses import dataclass, field

from werkzeug.wrappers import Response

KINDS = (
    "unauthorized",
    "forbidden",
    "permission",
    "not_found",
    "rate_limited",
    "server_error",
    "reset",
    "stall",
    "malformed",
    "html",
    "api_error",
)

# Options a kind understands; "message" replaces the text of a JSON error.
OPTIONS = {
    "unauthorized": {"message"},
    "forbidden": {"message"},
    "permission": {"message"},
    "not_found": {"message"},
    "rate_limited": {"retry_after", "message"},
    "server_error": {"status"},
    "reset": set(),
    "stall": {"seconds"},
    "malformed": set(),
    "html": set(),
    "api_error": {"message"},
}

# The two kinds the server carries out itself rather than answering with.
RESET = "reset"
STALL = "stall"

SERVER_ERROR_PAGE = """<!DOCTYPE html>
<html><head><title>{status} {reason}</title></head>
<body><h1>{reason}</h1>
<p>The server encountered a temporary error and could not complete your
request. Please try again in 30 seconds.</p>
<hr><address>nginx</address></body></html>
"""

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Ivinex - Sign in</title></head>
<body><form method="post" action="/login.php">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form></body></html>
"""

TRUNCATED_JSON = '{"Records": [{"collection_id": 1, "first_name": "Ann'

REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Fault:
    """One planned fault and how many more requests it applies to."""

    kind: str
    call: str | None = None
    tab: str | None = None
    offset: int | None = None
    times: int | None = 1
    options: dict = field(default_factory=dict)
    after: int = 0

    def matches(self, call, tabs, offset):
        """Whether a request for `call` touching `tabs` at `offset` is meant."""
        if self.call is not None and self.call != call:
            return False
        if self.tab is not None and self.tab not in tabs:
            return False
        return self.offset is None or self.offset == offset

    def as_dict(self):
        return {
            "kind": self.kind,
            "call": self.call,
            "tab": self.tab,
            "offset": self.offset,
            "times": self.times,
            "after": self.after,
            **self.options,
        }


class FaultPlan:
    """The faults still to be served, safe to use from several threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []

    def add(self, kind, call=None, tab=None, offset=None, times=1, after=0, **options):
        """Plan `kind` for the next `times` matching requests (None: all),
        once `after` matching requests have gone through untouched."""
        fault = make_fault(kind, call, tab, offset, times, options)
        fault.after = int(after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, call, tabs=(), offset=None):
        """The first fault matching this request, using up one of its times."""
        with self._lock:
            for fault in self._faults:
                if not fault.matches(call, tabs, offset):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                self._use(fault)
                return fault
        return None

    def clear(self):
        with self._lock:
            self._faults.clear()

    def pending(self):
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def __len__(self):
        with self._lock:
            return len(self._faults)

    def _use(self, fault):
        if fault.times is None:
            return
        fault.times -= 1
        if fault.times <= 0:
            self._faults.remove(fault)


def make_fault(kind, call, tab, offset, times, options):
    """A checked Fault; a typo in a test should fail loudly, not pass quietly."""
    if kind not in KINDS:
        raise ValueError(f"Unknown fault kind {kind!r}; known: {', '.join(KINDS)}")

    unknown = set(options) - OPTIONS[kind]
    if unknown:
        raise ValueError(f"Fault {kind!r} takes no option {sorted(unknown)}")

    if times is not None and int(times) < 1:
        raise ValueError("A fault needs times >= 1, or None for every request")

    return Fault(
        kind=kind,
        call=call,
        tab=tab,
        offset=None if offset is None else int(offset),
        times=None if times is None else int(times),
        options=dict(options),
    )


def fault_response(fault, call):
    """The answer of an answering fault (every kind but reset and stall)."""
    kind = fault.kind
    options = fault.options
    if kind == "server_error":
        return _server_error(int(options.get("status", 500)))
    if kind == "malformed":
        return Response(TRUNCATED_JSON, 200, mimetype="application/json")
    if kind == "html":
        return Response(LOGIN_PAGE, 200, mimetype="text/html")

    status, message = _json_error(kind, call, fault.tab)
    response = _json(status, options.get("message", message))
    if kind == "unauthorized":
        response.headers["WWW-Authenticate"] = 'Basic realm="Ivinex API"'
    if kind == "rate_limited":
        response.headers["Retry-After"] = str(options.get("retry_after", 1))
    return response


def _json_error(kind, call, tab):
    where = f"tab {tab}" if tab else f"the call {call}"
    answers = {
        "unauthorized": (401, "Invalid username or password"),
        "forbidden": (403, f"You do not have permission to access {where}"),
        "permission": (200, f"You do not have permission to access {where}"),
        "not_found": (404, f"Not found: {call}"),
        "rate_limited": (429, "Too many requests, slow down"),
        "api_error": (200, "Internal error while processing the request"),
    }
    return answers[kind]


def _json(status, message):
    body = json.dumps({"Status": "Error", "Message": message})
    return Response(body, status, mimetype="application/json")


def _server_error(status):
    reason = REASONS.get(status, "Server Error")
    page = SERVER_ERROR_PAGE.format(status=status, reason=reason)
    return Response(page, status, mimetype="text/html")
