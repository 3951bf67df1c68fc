"""The sandbox's HTTP side: an Instance served with the Ivinex wire contract.

Every call of the wire contract the client speaks is answered (GetTabs,
GetFields, GetRecords, GetRelatedItems, GetAllRelatedItems, Records.php and
the writes), behind HTTP Basic authentication. Tests steer it through `faults`,
`chaos`, `denied_tabs` and `requests`, or over HTTP through the /_sandbox/
endpoints.
"""

import hmac
import json
import logging
import socket
import struct
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from itertools import islice

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from ivinex_mirror.sandbox.chaos import DROP
from ivinex_mirror.sandbox.definitions import STAMP_FORMAT
from ivinex_mirror.sandbox.faults import RESET, STALL, FaultPlan, fault_response
from ivinex_mirror.sandbox.instance import (
    InvalidValue,
    UnknownRecord,
    UnknownTab,
    link_dict,
)

logger = logging.getLogger(__name__)

API_PREFIX = "/API/"
ADMIN_PREFIX = "/_sandbox/"
RECORDS_PHP = "Records.php"
PAGED_CALLS = ("GetRecords", "GetAllRelatedItems", RECORDS_PHP)
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
REALM = 'Basic realm="Ivinex API"'
# How often the serving loop looks for stop(); short, so tests stop quickly.
POLL_SECONDS = 0.05
# Returned instead of a Response when the connection is to be reset.
_DROP = object()


class ApiProblem(Exception):
    """A request the sandbox answers with an error status and JSON message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class _QuietHandler(WSGIRequestHandler):
    """Leaves request logging to the sandbox, which keeps it at debug level."""

    def log_request(self, code="-", size="-"):
        pass

    def connection_dropped(self, error, environ=None):
        # Stop waiting for a next request on a connection the sandbox reset;
        # closing it then sends the RST.
        self.close_connection = True


class SandboxServer:
    """Serves an Instance on a local port until stopped."""

    def __init__(
        self,
        instance,
        host="127.0.0.1",
        port=0,
        username="demo",
        password="demo",
        latency_ms=0,
        chaos=None,
        max_offset=None,
    ):
        self.instance = instance
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.latency_ms = latency_ms
        self.faults = FaultPlan()
        # Seeded random faults (a sandbox.chaos.Chaos), after the planned ones.
        self.chaos = chaos
        # Some APIs refuse to page deeper than an offset; None: no limit.
        self.max_offset = max_offset
        self.denied_tabs = set()
        self.requests = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        """Serve in a background thread; returns the server for chaining."""
        self._bind()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(POLL_SECONDS,),
            name="ivinex-sandbox",
            daemon=True,
        )
        self._thread.start()
        logger.debug("Sandbox serving at %s", self.url)
        return self

    def stop(self):
        """Stop serving, from start() or from serve_forever() in another thread."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is None:
            return
        thread.join()
        server.server_close()
        self._server = self._thread = None

    def serve_forever(self, on_ready=None):
        """Serve in the foreground until Ctrl-C.

        `on_ready(server)` is called once the port is bound, so that a caller
        can show `server.url` even when port 0 picked a free port.
        """
        self._bind()
        if on_ready is not None:
            on_ready(self)
        try:
            self._server.serve_forever(POLL_SECONDS)
        except KeyboardInterrupt:
            logger.debug("Sandbox stopped by the user")
        finally:
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _bind(self):
        self._server = make_server(
            self.host,
            self.port,
            self._wsgi,
            threaded=True,
            request_handler=_QuietHandler,
        )
        self.port = self._server.server_port

    # Request handling

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        response = self._answer(request)
        where = request.full_path.rstrip("?")
        if response is _DROP:
            logger.debug("%s %s -> reset", request.method, where)
            _reset_connection(environ)
        logger.debug("%s %s -> %s", request.method, where, response.status_code)
        return response(environ, start_response)

    def _answer(self, request):
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            return self._admin(request, path[len(ADMIN_PREFIX) :])
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if not self._authorized(request):
            return _unauthorized()

        if not path.startswith(API_PREFIX):
            return _error(404, f"Nothing here: {path} (the API is under /API/)")
        call = path.removeprefix(API_PREFIX).strip("/")
        try:
            params, body = self._read(request, call)
            return self._serve_call(request, call, params, body)
        except ApiProblem as problem:
            return _error(problem.status, problem.message)

    def _serve_call(self, request, call, params, body):
        tabs = self._tabs_named(call, params, body)
        fault = self.faults.take(call, tabs, _fault_offset(call, params))
        if fault is not None and fault.kind == RESET:
            return _DROP
        if fault is not None and fault.kind == STALL:
            time.sleep(float(fault.options.get("seconds", 5)))
        elif fault is not None:
            return fault_response(fault, call)

        def answer():
            return self._serve_plainly(request, call, params, body, tabs)

        if fault is not None or self.chaos is None:
            return answer()
        served = self.chaos.serve(
            self.instance, call, request.method, params, tabs, answer
        )
        return _DROP if served is DROP else served

    def _serve_plainly(self, request, call, params, body, tabs):
        denied = [tab for tab in tabs if tab in self.denied_tabs]
        if denied:
            raise ApiProblem(
                403, f"You do not have permission to access tab {denied[0]}"
            )
        handler = self._handler(call, request.method)
        return handler(params, body)

    def _authorized(self, request):
        auth = request.authorization
        if auth is None or auth.type != "basic":
            return False
        username = (auth.username or "").encode()
        password = (auth.password or "").encode()
        # Both comparisons run, so timing tells nothing about which failed.
        name_ok = hmac.compare_digest(username, self.username.encode())
        password_ok = hmac.compare_digest(password, self._password.encode())
        return name_ok and password_ok

    def _read(self, request, call):
        """The request's parameters (query or form) and its JSON body."""
        params = request.values.to_dict()
        body = None
        if call == RECORDS_PHP and request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if body is None:
                raise ApiProblem(400, 'The body must be JSON {"Records": [...]}')
        with self._lock:
            self.requests.append((call, dict(params, **_body_params(body))))
        return params, body

    def _tabs_named(self, call, params, body):
        """Names of the tabs a request is about, for faults and permissions."""
        if call == RECORDS_PHP and isinstance(body, dict):
            named = [
                item.get("CollectionTypeID")
                for item in body.get("Records") or []
                if isinstance(item, dict)
            ]
        elif call == RECORDS_PHP:
            named = [params.get("CollectionTypeID")]
        else:
            named = [params.get(key) for key in ("Tab", "FromTab", "ToTab")]
        tabs = []
        for value in named:
            try:
                tabs.append(self.instance.resolve_tab(value))
            except UnknownTab:
                continue
        return tabs

    def _handler(self, call, method):
        reads = {
            "GetTabs": self._get_tabs,
            "GetFields": self._get_fields,
            "GetRecords": self._get_records,
            "GetRelatedItems": self._get_related_items,
            "GetAllRelatedItems": self._get_all_related_items,
        }
        writes = {
            "DeleteRecord": self._delete_record,
            "AddRelatedItem": self._add_related_item,
            "RemoveRelatedItem": self._remove_related_item,
        }
        if call in reads:
            return reads[call]
        if call == RECORDS_PHP:
            return self._post_records if method == "POST" else self._get_records_php
        if call in writes:
            if method != "POST":
                raise ApiProblem(405, f"{call} must be sent with POST")
            return writes[call]
        raise ApiProblem(404, f"Unknown call {call!r}")

    # The calls

    def _get_tabs(self, params, body):
        with self.instance.lock:
            return _json({"Tabs": self.instance.tabs})

    def _get_fields(self, params, body):
        tab = self._tab(params, "Tab")
        with self.instance.lock:
            return _json({"Fields": self.instance.fields[tab]})

    def _get_records(self, params, body):
        return self._records_page(self._tab(params, "Tab"), params)

    def _get_records_php(self, params, body):
        return self._records_page(self._tab(params, "CollectionTypeID"), params)

    def _records_page(self, tab, params):
        offset, limit = self._paging(params)
        since = _since(params.get("ModifiedSince"))
        with self.instance.lock:
            records = self.instance.records[tab].values()
            if since is None:
                page = list(islice(records, offset, offset + limit))
                total = len(records)
            else:
                changed = sorted(
                    (r for r in records if r["modified_date"] >= since),
                    key=lambda r: (r["modified_date"], r["collection_id"]),
                )
                page = changed[offset : offset + limit]
                total = len(changed)
            return _json({"Records": page, "Total": total})

    def _paging(self, params):
        offset, limit = _paging(params)
        if self.max_offset is not None and offset > self.max_offset:
            raise ApiProblem(
                400, f"Offset may not exceed {self.max_offset}; narrow the query"
            )
        return offset, limit

    def _get_related_items(self, params, body):
        tab = self._tab(params, "Tab")
        record_id = _int_param(params, "RecordID")
        try:
            items = self.instance.related_items(tab, record_id)
        except UnknownRecord as error:
            raise ApiProblem(404, str(error)) from None
        return _json({"RelatedItems": items})

    def _get_all_related_items(self, params, body):
        offset, limit = self._paging(params)
        with self.instance.lock:
            keys = self.instance.link_keys()
            page = [link_dict(key) for key in keys[offset : offset + limit]]
            return _json({"RelatedItems": page, "Total": len(keys)})

    def _post_records(self, params, body):
        items = body.get("Records") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise ApiProblem(400, 'The body must be JSON {"Records": [...]}')
        return _json([self._write_item(item) for item in items])

    def _write_item(self, item):
        """Create or update one record; errors go in the answer, as Ivinex does."""
        if not isinstance(item, dict):
            return {
                "CollectionTypeID": None,
                "CollectionID": None,
                "Status": "Error",
                "Message": "A record must be a JSON object",
                "RelatedRecords": [],
            }
        type_id = item.get("CollectionTypeID")
        record_id = item.get("CollectionID")
        answer = {
            "CollectionTypeID": type_id,
            "CollectionID": record_id,
            "Status": "Success",
            "Message": "",
            "RelatedRecords": [],
        }
        values = {
            key: value
            for key, value in item.items()
            if key not in ("CollectionTypeID", "CollectionID")
        }
        try:
            tab = self.instance.resolve_tab(type_id)
            if record_id in (None, ""):
                answer["CollectionID"] = self.instance.add_record(
                    tab, values, user=self.username
                )
                answer["Message"] = "Record created"
            else:
                self.instance.update_record(
                    tab, _as_record_id(record_id), values, user=self.username
                )
                answer["Message"] = "Record updated"
        except (LookupError, ValueError) as error:
            answer.update(Status="Error", Message=str(error).strip("'\""))
        return answer

    def _delete_record(self, params, body):
        tab = self._tab(params, "Tab")
        record_id = _int_param(params, "RecordID")
        with _problems():
            self.instance.delete_record(tab, record_id, user=self.username)
        return _json({"Status": "Success"})

    def _add_related_item(self, params, body):
        with _problems():
            added = self.instance.add_link(
                *self._link_params(params), user=self.username
            )
        message = "" if added else "The records were linked already"
        return _json({"Status": "Success", "Message": message})

    def _remove_related_item(self, params, body):
        with _problems():
            removed = self.instance.remove_link(
                *self._link_params(params), user=self.username
            )
        if not removed:
            return _json({"Status": "Error", "Message": "No such link to remove"})
        return _json({"Status": "Success", "Message": ""})

    def _link_params(self, params):
        return (
            self._tab(params, "FromTab"),
            _int_param(params, "FromRecordID"),
            self._tab(params, "ToTab"),
            _int_param(params, "ToRecordID"),
            params.get("LinkType") or "Related",
        )

    def _tab(self, params, key):
        value = params.get(key)
        if value in (None, ""):
            raise ApiProblem(400, f"Missing parameter {key}")
        try:
            return self.instance.resolve_tab(value)
        except UnknownTab as error:
            raise ApiProblem(404, str(error)) from None

    # The admin endpoints, open without authentication

    def _admin(self, request, what):
        if what == "stats" and request.method == "GET":
            return _json(self.stats())
        if what != "faults":
            return _error(404, f"Unknown sandbox endpoint {what!r}")
        if request.method == "GET":
            return _json({"faults": self.faults.pending()})
        if request.method == "DELETE":
            self.faults.clear()
            return _json({"Status": "Success", "pending": 0})
        if request.method != "POST":
            return _error(405, "Use GET, POST or DELETE on /_sandbox/faults")
        return self._admin_add_fault(request)

    def _admin_add_fault(self, request):
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict) or "kind" not in spec:
            return _error(400, 'The body must be JSON {"kind": ..., ...}')
        try:
            self.faults.add(**spec)
        except (TypeError, ValueError) as error:
            return _error(400, str(error))
        return _json({"Status": "Success", "pending": len(self.faults)})

    def stats(self):
        """How many API requests came in, in total and per call, and the
        random faults injected when `chaos` is on."""
        with self._lock:
            by_call = Counter(call for call, _params in self.requests)
            stats = {"requests": len(self.requests), "by_call": dict(by_call)}
        if self.chaos is not None:
            stats["chaos"] = self.chaos.summary()
        return stats


@contextmanager
def _problems():
    """Turns the instance's refusals into HTTP answers."""
    try:
        yield
    except LookupError as error:
        raise ApiProblem(404, str(error).strip("'\"")) from None
    except InvalidValue as error:
        raise ApiProblem(400, str(error)) from None


def _reset_connection(environ):
    """Drop the connection with a TCP reset and no answer at all.

    SO_LINGER with a zero timeout makes the close send RST instead of FIN;
    the socket really closes once werkzeug lets go of its file objects, and
    the ConnectionResetError tells werkzeug to answer nothing.
    """
    sock = environ["werkzeug.socket"]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    raise ConnectionResetError("connection reset by the sandbox's fault plan")


def _json(payload, status=200):
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status, mimetype="application/json")


def _error(status, message):
    return _json({"Status": "Error", "Message": message}, status)


def _unauthorized():
    response = _error(401, "Invalid username or password")
    response.headers["WWW-Authenticate"] = REALM
    return response


def _body_params(body):
    if isinstance(body, dict) and isinstance(body.get("Records"), list):
        return {"Records": body["Records"]}
    return {}


def _int_param(params, key):
    value = params.get(key)
    if value in (None, ""):
        raise ApiProblem(400, f"Missing parameter {key}")
    try:
        return int(value)
    except ValueError:
        raise ApiProblem(400, f"{key} must be a whole number, not {value!r}") from None


def _as_record_id(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UnknownRecord(f"CollectionID {value!r} is not a record id") from None


def _paging(params):
    offset = _int_param(dict({"Offset": 0}, **params), "Offset")
    limit = _int_param(dict({"Limit": DEFAULT_LIMIT}, **params), "Limit")
    if offset < 0 or limit < 1:
        raise ApiProblem(400, "Offset must be >= 0 and Limit >= 1")
    return offset, min(limit, MAX_LIMIT)


def _since(value):
    """ModifiedSince as a comparable stamp, accepting a date or date-time."""
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiProblem(
            400, f"ModifiedSince must look like 2026-01-31 13:45:00, not {value!r}"
        ) from None
    return moment.replace(tzinfo=None).strftime(STAMP_FORMAT)


def _fault_offset(call, params):
    """The Offset a paged request asks for (0 when absent), else None."""
    if call not in PAGED_CALLS:
        return None
    try:
        return int(params.get("Offset") or 0)
    except ValueError:
        return None
