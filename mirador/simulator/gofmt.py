"""Go formatting rules the simulator must reproduce byte for byte (durations, %v, quoting)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
            "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
FOREVER_NS = 2**63 - 1


class DurationError(ValueError):
    pass


def parse_go_duration(text: str) -> int:
    """time.ParseDuration → nanoseconds; the error text is Go's."""
    s = text
    if s in ("0", "+0", "-0"):
        return 0
    sign = -1 if s.startswith("-") else 1
    body = s.lstrip("+-")
    if not body:
        raise DurationError(f'time: invalid duration "{text}"')
    pos, total = 0, 0.0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if not m:
            if re.match(r"[0-9.]+\Z", body[pos:]):
                raise DurationError(f'time: missing unit in duration "{text}"')
            raise DurationError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return int(sign * total)


def keep_alive_ns(value: Any, default_ns: int) -> int:
    """api.Duration.UnmarshalJSON: a number is seconds, a string needs a unit, < 0 is forever."""
    if value is None:
        return default_ns
    if isinstance(value, bool):
        raise DurationError(f"Unsupported type: '{type(value).__name__}'")
    if isinstance(value, (int, float)):
        return FOREVER_NS if value < 0 else int(value * 1e9)
    if isinstance(value, str):
        ns = parse_go_duration(value)
        return FOREVER_NS if ns < 0 else ns
    raise DurationError(f"Unsupported type: '{type(value).__name__}'")


def go_float(value: float) -> str:
    """%v of a float64 (strconv 'g', shortest): %e when the exponent is < -4 or >= 6.

    >>> [go_float(x) for x in (0.6, 4096, 131072, 1e6, 1.5e-5, -2.0)]
    ['0.6', '4096', '131072', '1e+06', '1.5e-05', '-2']
    """
    if value != value or value in (float("inf"), float("-inf")):
        return {True: "+Inf", False: "-Inf"}[value > 0] if value == value else "NaN"
    if value == 0:
        return "0"
    dec = Decimal(repr(float(value))).normalize()
    sign, digit_tuple, exponent = dec.as_tuple()
    digits = "".join(map(str, digit_tuple))
    exp = len(digits) + int(exponent) - 1  # position of the first digit
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if exp >= len(digits) - 1:
        return prefix + digits + "0" * (exp - len(digits) + 1)
    if exp >= 0:
        return prefix + digits[: exp + 1] + "." + digits[exp + 1:]
    return prefix + "0." + "0" * (-exp - 1) + digits


def go_value(value: Any) -> str:
    """%#v of a JSON-decoded parameter value, as `/api/show` prints `parameters`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return go_float(float(value))
    return go_quote(str(value))


def go_quote(s: str) -> str:
    """strconv.Quote (close enough for printable text: JSON escapes, minus HTML escaping)."""
    return json.dumps(s, ensure_ascii=False)


def modelfile_quote(s: str) -> str:
    """parser.quote: quote only values with a newline or edge spaces; triple if they hold \"."""
    if "\n" in s or s.startswith(" ") or s.endswith(" "):
        return f'"""{s}"""' if '"' in s else f'"{s}"'
    return s


def rfc3339(ts: float | None = None, *, local: bool = True) -> str:
    """A Go time.Time in JSON: RFC 3339 with nanoseconds and the local offset."""
    dt = datetime.fromtimestamp(ts, UTC) if ts is not None else datetime.now(UTC)
    if local:
        dt = dt.astimezone()
        text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000"
        off = dt.strftime("%z")
        return text + (f"{off[:3]}:{off[3:]}" if off not in ("+0000", "") else "Z")
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
