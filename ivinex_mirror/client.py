"""The HTTP client of the Ivinex API.

Every wire detail of the API lives in this module: call names, parameters,
envelope keys, the retry policy, and how each HTTP answer maps to the
exceptions of ``errors.py``. A correction learnt from a real instance should
only ever touch this file.

The client reads; the mirror never writes to a CRM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from urllib3.util.retry import Retry

from .errors import (
    ApiError,
    AuthenticationFailed,
    IvinexError,
    MalformedResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerUnavailable,
)

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
RECORDS_ENDPOINTS = ("GetRecords", "Records.php")
RETRY_STATUSES = (429, 500, 502, 503, 504)
# Exponential backoff grows fast; past half a minute a retry is no kinder.
BACKOFF_MAX = 30.0
# A Retry-After is obeyed, but a scheduled run should not hang for hours on one.
RETRY_AFTER_MAX = 300.0
LINK_KINDS = ("Embedded", "Related", "Converted", "Copied From")
PERMISSION_WORDS = ("permission", "permitted", "access denied")
USER_AGENT = "ivinex-mirror"
# How the API writes a date-time, and how it takes one in ModifiedSince.
WIRE_DATETIME = "%Y-%m-%d %H:%M:%S"


@dataclasses.dataclass(frozen=True)
class Tab:
    tab_id: int
    name: str
    singular_name: str | None = None
    extra: dict = dataclasses.field(default_factory=dict, hash=False)


@dataclasses.dataclass(frozen=True)
class Option:
    option_id: int
    label: str
    extra: dict = dataclasses.field(default_factory=dict, compare=False)


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    label: str
    field_type: str
    required: bool = False
    options: tuple[Option, ...] = ()
    linked_tab: str | None = None
    extra: dict = dataclasses.field(default_factory=dict, hash=False)


@dataclasses.dataclass(frozen=True)
class Link:
    from_tab: str
    from_id: int
    to_tab: str
    to_id: int
    kind: str
    extra: dict = dataclasses.field(default_factory=dict, compare=False)


@dataclasses.dataclass
class Page:
    """One page of a paged call; `total` is the server's hint, never a promise."""

    offset: int
    items: list
    total: int | None = None
    # Why each item that could not be read (say, a record whose id is null)
    # was left out; the caller warns about them.
    skipped: list = dataclasses.field(default_factory=list)


class _Unreadable(ValueError):
    """An item of an answer that cannot be read; becomes a MalformedResponse."""


@dataclasses.dataclass
class _Call:
    """One API call: what is sent, and how to name it in a message."""

    name: str
    params: dict
    tab: str | None = None
    offset: int | None = None
    retried: int = 0

    def where(self) -> str:
        text = self.name
        if self.tab is not None:
            text += f" for tab {self.tab!r}"
        if self.offset is not None:
            text += f" at offset {self.offset}"
        return text


class _CountingRetry(Retry):
    """urllib3's Retry, telling the client about every retry it makes."""

    def __init__(
        self, *args, on_retry: Callable[[int | None], None] | None = None, **kw
    ):
        super().__init__(*args, **kw)
        self.on_retry = on_retry

    def new(self, **kw):
        retry = super().new(**kw)
        retry.on_retry = self.on_retry
        return retry

    def increment(self, method=None, url=None, response=None, *args, **kw):
        retry = super().increment(method, url, response, *args, **kw)
        # Only reached when another attempt follows; exhaustion raises above.
        if self.on_retry is not None:
            self.on_retry(None if response is None else response.status)
        return retry

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, RETRY_AFTER_MAX)


class IvinexClient:
    """Reads tabs, fields, records and links from one Ivinex instance."""

    def __init__(
        self,
        company: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_factor: float = 0.5,
        page_size: int = MAX_PAGE_SIZE,
        records_endpoint: str = "GetRecords",
        verify: bool | str = True,
        session: requests.Session | None = None,
    ):
        self.company = instance_url(company)
        self.api_root = self.company + "/API/"
        self.username = username
        self.timeout = timeout
        self.retries = retries
        self.page_size = _check_page_size(page_size)
        self.records_endpoint = _check_records_endpoint(records_endpoint)
        self.verify = verify
        # Calls may come from several threads at once (see fetcher.py).
        self.request_count = 0
        self.retry_count = 0
        self.rate_limited_count = 0
        self._counts_lock = threading.Lock()
        self._this_thread = threading.local()
        self._password = password or ""
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        self.session.auth = HTTPBasicAuth(
            (username or "").encode("utf-8"), self._password.encode("utf-8")
        )
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": USER_AGENT}
        )
        if self._owns_session:
            self._mount_retrying_adapter(retries, backoff_factor)

    def _mount_retrying_adapter(self, retries: int, backoff_factor: float) -> None:
        retry = _CountingRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_factor,
            backoff_max=BACKOFF_MAX,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
            on_retry=self._count_retry,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def _count_retry(self, status: int | None) -> None:
        with self._counts_lock:
            self.request_count += 1
            self.retry_count += 1
            if status == 429:
                self.rate_limited_count += 1
        self._this_thread.retries += 1

    def __repr__(self) -> str:
        return f"IvinexClient({self.company!r}, username={self.username!r})"

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # The five reports.

    def fetch_tabs(self) -> list[Tab]:
        call = _Call("GetTabs", {})
        items = self._fetch_list(call, "Tabs")
        return self._parse_items(call, items, _parse_tab)

    def fetch_fields(self, tab: Tab | str | int) -> list[Field]:
        name = _tab_name(tab)
        call = _Call("GetFields", {"Tab": name}, tab=name)
        items = self._fetch_list(call, "Fields")
        return self._parse_items(call, items, _parse_field)

    def fetch_record_pages(
        self, tab: Tab, *, modified_since=None, offset: int = 0
    ) -> Iterator[Page]:
        """Yield pages of records; each item is the record dict as sent,
        with its id under "collection_id" as an int."""
        name, params = self._records_call(tab, modified_since)
        return self._pages(name, params, "Records", _parse_record, offset, tab.name)

    def fetch_record_page(
        self, tab: Tab, *, modified_since=None, offset: int = 0
    ) -> Page:
        """One page of records, for a caller that steers the paging itself.
        The page is the last one when it holds fewer than `page_size` items."""
        name, params = self._records_call(tab, modified_since)
        return self._page(name, params, "Records", _parse_record, offset, tab.name)[2]

    def fetch_record_total(self, tab: Tab) -> int | None:
        """How many records the tab holds, by the server's `Total` (a hint:
        None when the server does not send one). Costs one tiny request."""
        name, params = self._records_call(tab, None)
        _, _, page = self._page(
            name, params, "Records", _parse_record, 0, tab.name, limit=1
        )
        return page.total

    def _records_call(self, tab: Tab, modified_since) -> tuple[str, dict]:
        if not isinstance(tab, Tab):
            raise TypeError("fetching records needs a Tab from fetch_tabs()")
        if self.records_endpoint == "Records.php":
            params = {"CollectionTypeID": tab.tab_id}
        else:
            params = {"Tab": tab.name}
        if modified_since:
            params["ModifiedSince"] = wire_datetime(modified_since)
        return self.records_endpoint, params

    def fetch_related_items(self, tab: Tab | str | int, record_id: int) -> list[dict]:
        """The records linked to one record, as dicts with the keys
        "tab", "record_id", "link_kind" and "extra"."""
        name = _tab_name(tab)
        params = {"Tab": name, "RecordID": record_id}
        call = _Call("GetRelatedItems", params, tab=name)
        items = self._fetch_list(call, "RelatedItems")
        return self._parse_items(call, items, _parse_related_item)

    def fetch_link_page(self, *, offset: int = 0) -> Page:
        """One page of links, for a caller that steers the paging itself."""
        return self._page(
            "GetAllRelatedItems", {}, "RelatedItems", _parse_link, offset
        )[2]

    def fetch_link_pages(self, *, offset: int = 0) -> Iterator[Page]:
        """Yield pages of every link between records; items are Links."""
        return self._pages(
            "GetAllRelatedItems", {}, "RelatedItems", _parse_link, offset
        )

    # Paging.

    def _pages(self, name, params, key, parse, offset, tab=None) -> Iterator[Page]:
        previous = None
        while True:
            call, raw, page = self._page(
                name, params, key, parse, offset, tab, previous
            )
            yield page

            # A short page is the last one; Total is only a hint.
            if len(raw) < self.page_size:
                _warn_if_capped(call, page, self.page_size)
                return
            previous = (offset, raw)
            offset += len(raw)

    def _page(
        self, name, params, key, parse, offset, tab=None, previous=None, limit=None
    ):
        paged = {**params, "Offset": offset, "Limit": limit or self.page_size}
        call = _Call(name, paged, tab=tab, offset=offset)
        body = self._get(call)
        raw = _unwrap(call, body, key)
        _check_offset_honoured(call, raw, previous)
        items, skipped = self._read_items(call, raw, parse)
        page = Page(offset, items, _total(body), skipped)
        return call, raw, page

    def _fetch_list(self, call: _Call, key: str) -> list:
        return _unwrap(call, self._get(call), key)

    def _parse_items(self, call: _Call, items: list, parse) -> list:
        parsed, skipped = self._read_items(call, items, parse)
        for reason in skipped:
            logger.warning("%s: left out %s", call.where(), reason)
        return parsed

    def _read_items(self, call: _Call, items: list, parse) -> tuple[list, list]:
        """The items that can be read, and why the others could not. When
        none can, the answer is not in the format this client knows."""
        parsed, skipped = [], []
        for item in items:
            try:
                parsed.append(parse(item))
            except _Unreadable as exc:
                skipped.append(str(exc))
        if skipped and not parsed:
            raise MalformedResponse(
                f"Ivinex answered {call.where()} with {skipped[0]} The answer was "
                "not used; if this keeps happening, the client needs to learn "
                "this instance's format.",
                call=call.name,
                status=200,
            )
        return parsed, skipped

    # One request and its answer.

    def _get(self, call: _Call) -> object:
        url = self.api_root + call.name
        if call.params:
            url += "?" + urlencode(call.params)
        target = url[len(self.company) :]
        self._this_thread.retries = 0
        with self._counts_lock:
            self.request_count += 1
        started = time.monotonic()
        try:
            response = self.session.get(url, timeout=self.timeout, verify=self.verify)
            # Read the body here, so that a connection broken mid-body lands below.
            content = response.content
        except requests.RequestException as exc:
            self._record_outcome(call, target, "no answer", started)
            raise self._unreachable(call, exc) from exc
        self._record_outcome(call, target, response.status_code, started)
        return self._read(call, response, content)

    def _record_outcome(self, call, target, outcome, started) -> None:
        """Note how many retries the call took, for its message, and log it."""
        elapsed_ms = (time.monotonic() - started) * 1000
        call.retried = self._this_thread.retries
        suffix = f" after {_retries(call.retried)}" if call.retried else ""
        logger.debug("GET %s -> %s in %.0f ms%s", target, outcome, elapsed_ms, suffix)

    def _read(self, call: _Call, response: requests.Response, content: bytes):
        status = response.status_code
        if 200 <= status < 300:
            body = self._decode(call, response, content)
            self._check_error_body(call, body, status)
            return body
        raise self._http_error(call, response)

    def _decode(self, call: _Call, response: requests.Response, content: bytes):
        try:
            return json.loads(content)
        except ValueError as exc:
            problem = _json_problem(content, response, exc)
        raise MalformedResponse(
            f"Ivinex answered {call.where()} with HTTP {response.status_code} and "
            f"content type {_content_type(response)}, but {problem}. The answer was "
            "not used. Check the company URL; if it is right, the server sent a "
            "broken answer: try again later.",
            call=call.name,
            status=response.status_code,
        )

    def _check_error_body(self, call: _Call, body: object, status: int) -> None:
        if not isinstance(body, dict):
            return
        if str(_lookup(body, "Status", "")).strip().lower() != "error":
            return
        said = self._server_text(_lookup(body, "Message", ""))
        if _mentions_permission(said):
            raise self._permission_denied(call, status, said)
        raise ApiError(
            f"Ivinex reported an error for {call.where()} (HTTP {status}): "
            f"{said or 'no message given'}. Try again later; if it persists, "
            "ask an Ivinex admin about it.",
            call=call.name,
            status=status,
        )

    # Failures, one message each, saying what to do next.

    def _http_error(self, call: _Call, response: requests.Response) -> IvinexError:
        status = response.status_code
        if status == 401:
            return AuthenticationFailed(
                f"Ivinex refused the username or password for {self.company}. "
                "Check --username and the password (IVINEX_PASSWORD or "
                "`ivinex-mirror auth`).",
                call=call.name,
                status=status,
            )
        said = self._server_text(_message_of(response))
        if status == 403:
            return self._permission_denied(call, status, said)
        if status == 404:
            return self._not_found(call)
        if status == 429:
            return RateLimited(
                f"Ivinex rate limited {call.where()} (HTTP 429) after "
                f"{_retries(call.retried)}; wait a while, then run again.",
                call=call.name,
                status=status,
            )
        described = f"HTTP {status} ({_content_type(response)})"
        if status >= 500:
            return ServerUnavailable(
                f"Ivinex answered {call.where()} with {described} after "
                f"{_retries(call.retried)}: the server is failing or overloaded. "
                "Try again later.",
                call=call.name,
                status=status,
            )
        return ApiError(
            f"Ivinex answered {call.where()} with {described}"
            + (f": {said}" if said else "")
            + ". The request was not accepted; if it persists, the client needs "
            "to learn this instance's rules.",
            call=call.name,
            status=status,
        )

    def _permission_denied(self, call: _Call, status: int, said: str):
        how = f"HTTP {status}" + (f": {said}" if said else "")
        if call.tab is not None:
            message = (
                f"Ivinex denied user {self.username!r} access to tab {call.tab!r} "
                f"({call.name}, {how}). Ask an Ivinex admin for API permission "
                "on this tab, or leave the tab out."
            )
        else:
            message = (
                f"Ivinex denied user {self.username!r} the {call.name} call "
                f"({how}). Ask an Ivinex admin to give this user API permission."
            )
        return PermissionDenied(message, call=call.name, status=status, tab=call.tab)

    def _not_found(self, call: _Call) -> NotFound:
        if call.tab is not None:
            what = f"tab {call.tab!r}"
            if "RecordID" in call.params:
                what = f"record {call.params['RecordID']} in {what}"
            message = (
                f"Ivinex has no {what} ({call.name} answered HTTP 404 at "
                f"{self.company}). Check the name against the tabs the "
                "instance lists."
            )
        else:
            message = (
                f"{self.company} answered HTTP 404 to {call.name}: no such call "
                "there. Check that this is the address of your Ivinex instance."
            )
        return NotFound(message, call=call.name, status=404)

    def _unreachable(self, call: _Call, exc: Exception) -> ServerUnavailable:
        return ServerUnavailable(
            f"Could not get an answer from Ivinex at {self.company} for "
            f"{call.where()} after {_retries(call.retried)}: "
            f"{_connection_problem(exc, self.timeout)}. Check the company URL "
            "and the network, then try again.",
            call=call.name,
        )

    def _server_text(self, text: object) -> str:
        """Server-provided text made fit for a one-line message."""
        said = " ".join(str(text or "").split())[:200]
        # A server that echoes the request must not leak the password.
        if len(self._password) >= 4:
            said = said.replace(self._password, "***")
        return said


# The wire format: company URL, envelopes, items.


def instance_url(company: str) -> str:
    """The instance URL as the client uses it: scheme, host, no trailing slash."""
    text = (company or "").strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        parts, has_credentials = None, False
    if has_credentials:
        raise IvinexError(
            "The company URL must not carry a username or password; give the "
            "address alone (e.g. https://acme.ivinex.com) and the credentials "
            "with --username and IVINEX_PASSWORD."
        )
    if parts is None or not _is_web_address(parts, text):
        raise IvinexError(
            f"{company!r} is not an Ivinex instance URL. Give the address of "
            "your instance, e.g. https://acme.ivinex.com."
        )
    path = parts.path.rstrip("/")
    # People paste the API root too; the client adds /API/ itself.
    if path.lower().endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def _is_web_address(parts, text: str) -> bool:
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return False
    if parts.query or parts.fragment:
        return False
    if any(char.isspace() or char in '<>"{}|\\^`' for char in text):
        return False
    try:
        return parts.port is None or parts.port > 0
    except ValueError:
        return False


def _check_page_size(page_size: int) -> int:
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise IvinexError(
            f"The page size must be a whole number from 1 to {MAX_PAGE_SIZE} "
            f"(Ivinex sends at most {MAX_PAGE_SIZE} records a page), "
            f"not {page_size!r}."
        )
    return page_size


def _check_records_endpoint(endpoint: str) -> str:
    if endpoint not in RECORDS_ENDPOINTS:
        raise IvinexError(
            f"Unknown records endpoint {endpoint!r}; use one of: "
            + ", ".join(RECORDS_ENDPOINTS)
            + "."
        )
    return endpoint


def _tab_name(tab: Tab | str | int) -> str:
    return tab.name if isinstance(tab, Tab) else str(tab)


def _squash(key: object) -> str:
    """A key as compared tolerantly: letter case and underscores ignored."""
    return str(key).replace("_", "").lower()


def _lookup(obj: dict, key: str, default=None):
    if key in obj:
        return obj[key]
    wanted = _squash(key)
    for name, value in obj.items():
        if _squash(name) == wanted:
            return value
    return default


def _split_keys(obj: dict, known: tuple[str, ...]) -> tuple[dict, dict]:
    """The known keys of obj (in any letter case) and everything else."""
    if len(obj) == len(known) and all(name in obj for name in known):
        return obj, {}  # spelled as documented: the common case, kept fast
    wanted = {_squash(name): name for name in known}
    found, extra = {}, {}
    for key, value in obj.items():
        name = wanted.get(_squash(key))
        if name is None or name in found:
            extra[key] = value
        else:
            found[name] = value
    return found, extra


def _unwrap(call: _Call, body: object, key: str) -> list:
    """The list an answer carries: under its key, or the answer itself."""
    if isinstance(body, list):
        return body
    items = _lookup(body, key) if isinstance(body, dict) else None
    if isinstance(items, list):
        return items
    if isinstance(body, dict):
        keys = ", ".join(str(name) for name in list(body)[:10]) or "none"
        found = f"an object without a {key!r} list (its keys: {keys})"
    else:
        found = f"JSON {type(body).__name__} instead of a {key!r} list"
    raise MalformedResponse(
        f"Ivinex answered {call.where()} with HTTP 200 but {found}. The answer "
        "was not used; check the company URL, then try again later.",
        call=call.name,
        status=200,
    )


def _check_offset_honoured(call: _Call, raw: list, previous) -> None:
    # A server that ignores Offset would otherwise be paged forever.
    if previous is not None and raw and raw == previous[1]:
        raise MalformedResponse(
            f"Ivinex answered {call.where()} with the very page it sent for "
            f"offset {previous[0]}: the server seems to ignore Offset, so "
            "paging cannot go on.",
            call=call.name,
            status=200,
        )


def _warn_if_capped(call: _Call, page: Page, page_size: int) -> None:
    # An instance that caps pages below our Limit would end paging early.
    seen = page.offset + len(page.items)
    if page.items and page.total is not None and seen < page.total:
        logger.warning(
            "%s sent %d items where %d were asked and Total says %d; the "
            "instance may cap its pages, try a smaller page size",
            call.where(),
            len(page.items),
            page_size,
            page.total,
        )


def wire_datetime(moment) -> str:
    """A date-time as the API takes it: instance-local 'YYYY-MM-DD HH:MM:SS'."""
    if isinstance(moment, datetime):
        return moment.strftime(WIRE_DATETIME)
    return str(moment)


def _total(body: object) -> int | None:
    if not isinstance(body, dict):
        return None
    try:
        return _as_int(_lookup(body, "Total"), "Total")
    except _Unreadable:
        return None


def _as_int(value: object, what: str) -> int:
    if value is None or value == "":
        raise _Unreadable(f"{what} missing.")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and number.is_integer():
            return int(number)
    raise _Unreadable(f"{what} {_short(value)}, which is not a whole number.")


def _as_bool(value: object, what: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "y", "on"):
        return True
    if text in ("false", "0", "no", "n", "off", ""):
        return False
    raise _Unreadable(f"{what} {_short(value)}, which is not true or false.")


def _as_text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _need_object(item: object, what: str) -> dict:
    if not isinstance(item, dict):
        raise _Unreadable(f"{what} that is not a JSON object: {_short(item)}.")
    return item


def _need_text(found: dict, key: str, what: str) -> str:
    value = _as_text(found.get(key))
    if value is None:
        raise _Unreadable(f"{what} without {key}.")
    return value


def _parse_tab(item: object) -> Tab:
    found, extra = _split_keys(
        _need_object(item, "a tab"), ("TabID", "TabName", "SingularName")
    )
    if found.get("TabID") is None:
        raise _Unreadable("a tab without TabID.")
    return Tab(
        tab_id=_as_int(found["TabID"], "a tab with TabID"),
        name=_need_text(found, "TabName", "a tab"),
        singular_name=_as_text(found.get("SingularName")),
        extra=extra,
    )


def _parse_field(item: object) -> Field:
    known = ("FieldName", "Label", "FieldType", "Required", "Options", "LinkedTab")
    found, extra = _split_keys(_need_object(item, "a field"), known)
    name = _need_text(found, "FieldName", "a field")
    what = f"field {name!r} with"
    return Field(
        name=name,
        label=_as_text(found.get("Label")) or name,
        # Unknown or missing types pass through; the schema module warns.
        field_type=_as_text(found.get("FieldType")) or "",
        required=_as_bool(found.get("Required"), f"{what} Required"),
        options=_parse_options(found.get("Options"), what),
        linked_tab=_as_text(found.get("LinkedTab")),
        extra=extra,
    )


def _parse_options(options: object, what: str) -> tuple[Option, ...]:
    if options is None or options == "":
        return ()
    if not isinstance(options, list):
        raise _Unreadable(f"{what} Options {_short(options)}, which is not a list.")
    return tuple(_parse_option(option, what) for option in options)


def _parse_option(item: object, what: str) -> Option:
    option = _need_object(item, f"{what} an option")
    found, extra = _split_keys(option, ("OptionID", "Label"))
    if found.get("OptionID") is None:
        raise _Unreadable(f"{what} an option without OptionID.")
    return Option(
        option_id=_as_int(found["OptionID"], f"{what} OptionID"),
        label=_as_text(found.get("Label")) or "",
        extra=extra,
    )


def _parse_record(item: object) -> dict:
    """The record as sent (field names are case-sensitive), except its id key."""
    record = _need_object(item, "a record")
    id_key = "collection_id"
    if id_key not in record:
        variants = [key for key in record if _squash(key) == "collectionid"]
        if not variants:
            raise _Unreadable(f"a record without collection_id: {_short(record)}.")
        id_key = variants[0]
    record_id = _as_int(record[id_key], "a record with collection_id")
    if id_key == "collection_id" and record_id is record[id_key]:
        return record
    rest = {key: value for key, value in record.items() if key != id_key}
    return {"collection_id": record_id, **rest}


def _parse_related_item(item: object) -> dict:
    found, extra = _split_keys(
        _need_object(item, "a related item"), ("Tab", "RecordID", "LinkType")
    )
    what = "a related item"
    return {
        "tab": _need_text(found, "Tab", what),
        "record_id": _as_int(found.get("RecordID"), f"{what} with RecordID"),
        "link_kind": _link_kind(_need_text(found, "LinkType", what)),
        "extra": extra,
    }


def _parse_link(item: object) -> Link:
    known = ("FromTab", "FromRecordID", "ToTab", "ToRecordID", "LinkType")
    found, extra = _split_keys(_need_object(item, "a link"), known)
    return Link(
        from_tab=_need_text(found, "FromTab", "a link"),
        from_id=_as_int(found.get("FromRecordID"), "a link with FromRecordID"),
        to_tab=_need_text(found, "ToTab", "a link"),
        to_id=_as_int(found.get("ToRecordID"), "a link with ToRecordID"),
        kind=_link_kind(_need_text(found, "LinkType", "a link")),
        extra=extra,
    )


_KIND_SPELLINGS = {kind.replace(" ", "").lower(): kind for kind in LINK_KINDS}


def _link_kind(text: str) -> str:
    """The documented spelling of a link kind; unknown kinds pass as sent."""
    if text in LINK_KINDS:
        return text
    squashed = "".join(char for char in text if char.isalnum()).lower()
    return _KIND_SPELLINGS.get(squashed, text)


# Describing what went wrong, in words a user can act on.


def _retries(count: int) -> str:
    return f"{count} retry" if count == 1 else f"{count} retries"


def _content_type(response: requests.Response) -> str:
    value = response.headers.get("Content-Type", "").split(";")[0].strip()
    return value or "no content type"


def _message_of(response: requests.Response) -> str:
    try:
        body = json.loads(response.content)
    except ValueError:
        return ""
    return str(_lookup(body, "Message", "") or "") if isinstance(body, dict) else ""


def _mentions_permission(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in PERMISSION_WORDS)


def _json_problem(content: bytes, response: requests.Response, exc) -> str:
    if not content.strip():
        return "the body is empty"
    if "html" in _content_type(response) or content.lstrip()[:1] == b"<":
        return "the body is an HTML page, not JSON"
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"the JSON is broken ({exc.msg} at character {exc.pos} of "
            f"{len(content)}; it may have been cut off)"
        )
    return "the body is not UTF-8 JSON text"


def _connection_problem(exc: Exception, timeout: float) -> str:
    """The root cause of a failed request, without its traceback or URL."""
    causes = []
    current = exc
    while current is not None and len(causes) < 8:
        causes.append(current)
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args else None
        if isinstance(reason, BaseException):
            current = reason
        elif isinstance(nested, BaseException):
            current = nested
        else:
            current = current.__context__
    names = " ".join(type(cause).__name__ for cause in causes)
    text = " ".join(str(cause) for cause in causes).lower()
    if "Timeout" in names or "timed out" in text:
        return f"no answer within {timeout:g} s"
    if "Reset" in names or "reset" in text or "aborted" in text:
        return "the connection was reset"
    if "Refused" in names or "refused" in text:
        return "the connection was refused"
    if "NameResolution" in names or "resolve" in text or "name or service" in text:
        return "the host name was not found"
    if "SSL" in names or "certificate" in text:
        return "the TLS/SSL certificate could not be verified"
    if "ChunkedEncoding" in names or "IncompleteRead" in text:
        return "the connection broke while the answer was being read"
    return "the connection failed"
