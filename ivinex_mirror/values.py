"""How a field's value is stored: the coercion rule of each field type.

A value that does not fit its field's type raises Misfit; the caller then
stores it exactly as it came (as text) and counts it, so nothing is lost.
"""

import json
import math
import re
from datetime import date, datetime

from dateutil import parser as dateutil_parser

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}

# Currency signs, ISO currency codes, percent signs and spaces (also the
# narrow and no-break ones that grouping uses) carry no part of a number.
_NOT_NUMBER = re.compile(r"[\s\u00a0\u202f$€£¥₹%]|\b[A-Z]{3}\b")
_COMMA_GROUPS = re.compile(r"-?\d{1,3}(,\d{3})+")
_DOT_GROUPS = re.compile(r"-?\d{1,3}(\.\d{3}){2,}")
_WORDS = re.compile(r"[A-Za-z]{3,}")

# Two far-apart days: a date that reads alike under both named its whole day.
_DEFAULTS = (datetime(1901, 2, 3), datetime(1999, 10, 11))


class Misfit(ValueError):
    """A value that does not fit its field's type; it is stored as given."""


def converter_for(field_type):
    return _CONVERTERS.get(field_type, to_text)


def record_row(record, columns):
    """The row to store for one record, and the values that did not fit.

    Keys the record omits are left out of the row, so that an omitted field
    keeps the value the mirror already has (an omitted key is not a null)."""
    row, misfits = {}, []
    for key, value in record.items():
        column = columns[key]
        try:
            row[column.name] = None if value is None else column.convert(value)
        except Misfit as reason:
            row[column.name] = to_text(value)
            misfits.append((column.field.name, str(reason)))
    return row, misfits


def to_text(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _to_real(value):
    if isinstance(value, bool):
        raise Misfit("a checkbox value in a number field")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip()
        if text == "":
            return None
        number = _read_number(text)
    if not math.isfinite(number):
        raise Misfit(f"{value!r} is not a finite number")
    return number


def _read_number(text):
    """A number as people write it: '1,250.50', '$1,250', '€ 1.250,50',
    '12,5', '45 %'. Where both ',' and '.' appear, the last is the decimal
    mark; a lone ',' before groups of three digits groups thousands, any
    other lone ',' is the decimal mark."""
    try:
        return float(text)
    except ValueError:
        pass
    cleaned = _NOT_NUMBER.sub("", text)
    if "," in cleaned and "." in cleaned:
        decimal_comma = cleaned.rfind(",") > cleaned.rfind(".")
        if decimal_comma:
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    elif _COMMA_GROUPS.fullmatch(cleaned):
        cleaned = cleaned.replace(",", "")
    elif _DOT_GROUPS.fullmatch(cleaned):
        cleaned = cleaned.replace(".", "")
    else:
        cleaned = cleaned.replace(",", ".")
    try:
        return float(cleaned)
    except ValueError:
        raise Misfit(f"{text!r} is not a number") from None


def _to_integer(value):
    if isinstance(value, bool):
        raise Misfit("a checkbox value where an id belongs")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text == "":
        return None
    if re.fullmatch(r"-?\d+(\.0+)?", text):
        return int(float(text))
    raise Misfit(f"{value!r} is not an id")


def _to_checkbox(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise Misfit(f"{value!r} is not a checkbox value")


def _to_multiselect(value):
    if value == "":
        return None
    if not isinstance(value, list):
        raise Misfit(f"{value!r} is not a list of options")
    try:
        return json.dumps([_to_integer(item) for item in value])
    except Misfit:
        raise Misfit(f"{value!r} is not a list of option ids") from None


def _to_date(value):
    text = str(value).strip()
    if text == "":
        return None
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        pass
    return _read_worded(text, "a date (YYYY-MM-DD)").date().isoformat()


def _to_datetime(value):
    text = str(value).strip()
    if text == "":
        return None
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        # ISO forms that Python's own reader takes only from 3.11 on ("Z").
        return dateutil_parser.isoparse(text).isoformat()
    except ValueError:
        pass
    return _read_worded(text, "a date-time").isoformat()


def _read_worded(text, what):
    """A date that names its month ('Dec 31, 2026', '31 December 2026 5pm').
    Only such dates are read: '01/02/2026' could be either of two days, and
    '2026-02-30' is no day at all, so both are kept as given."""
    if not _WORDS.search(text):
        raise Misfit(f"{text!r} is not {what}")
    try:
        readings = {dateutil_parser.parse(text, default=d) for d in _DEFAULTS}
    except (ValueError, OverflowError):
        raise Misfit(f"{text!r} is not {what}") from None
    if len(readings) != 1:
        raise Misfit(f"{text!r} is not a whole {what.removeprefix('a ')}")
    return readings.pop()


_CONVERTERS = {
    "Number": _to_real,
    "Currency": _to_real,
    "Percent": _to_real,
    "Checkbox": _to_checkbox,
    "Dropdown": _to_integer,
    "LinkedRecord": _to_integer,
    "RecordID": _to_integer,
    "MultiSelect": _to_multiselect,
    "Date": _to_date,
    "DateTime": _to_datetime,
}
