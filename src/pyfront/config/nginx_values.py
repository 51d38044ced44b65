"""nginx value syntax: sizes, offsets, times, flags, addresses — nginx's own rules.

Sizes (`ngx_parse_size`): digits with an optional k/K, m/M, g/G suffix, no blanks.
Times (`ngx_parse_time`): groups of digits + unit from most to least significant,
units y M w d h m s ms, optionally separated by blanks; a bare number means seconds.
Every parser returns None when the value is invalid, so the caller can word the error
as nginx does for that directive.
"""
from __future__ import annotations

import re

from pyfront.config.model import Address

_SIZE = re.compile(r"^([0-9]+)([kKmMgG]?)$")
_SCALE = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
# nginx stores sizes in ssize_t/off_t; anything past this is "invalid value".
MAX_SIZE = 2 ** 63 - 1

# unit → (milliseconds, rank); ranks must strictly decrease across a value ("1h30m").
_TIME_UNITS = {
    "y": (365 * 86400 * 1000, 8), "M": (30 * 86400 * 1000, 7), "w": (7 * 86400 * 1000, 6),
    "d": (86400 * 1000, 5), "h": (3600 * 1000, 4), "m": (60 * 1000, 3), "s": (1000, 2),
    "ms": (1, 1),
}
_TIME_GROUP = re.compile(r"\s*([0-9]+)(ms|[yMwdhms]?)\s*")
MAX_MSEC = 2 ** 31 - 1   # ngx_msec_t is checked against NGX_MAX_INT32_VALUE-ish bounds


def parse_size(text: str) -> int | None:
    m = _SIZE.match(text)
    if not m:
        return None
    v = int(m.group(1)) * _SCALE[m.group(2).lower()]
    return v if v <= MAX_SIZE else None


def parse_time_ms(text: str, seconds_only: bool = False) -> int | None:
    """Milliseconds for an nginx time value; `seconds_only` rejects "ms" (sec-slot directives)."""
    if not text or text.strip() != text:
        return None
    pos, total, last_rank = 0, 0, 99
    while pos < len(text):
        m = _TIME_GROUP.match(text, pos)
        if not m or m.end() == pos:
            return None
        unit = m.group(2) or None
        if unit is None:
            if m.end() != len(text):
                return None           # a bare number must be the last group
            unit = "s"
        if unit == "ms" and seconds_only:
            return None
        scale, rank = _TIME_UNITS[unit]
        if rank >= last_rank:
            return None
        last_rank = rank
        total += int(m.group(1)) * scale
        pos = m.end()
    if seconds_only and total % 1000:
        return None
    return total


def parse_int(text: str) -> int | None:
    if not text.isdigit() or not text.isascii():
        return None
    v = int(text)
    return v if v <= 2 ** 63 - 1 else None


def parse_flag(text: str) -> bool | None:
    t = text.lower()
    return True if t == "on" else False if t == "off" else None


def format_size(n: int) -> str:
    for suffix, scale in (("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024)):
        if n and n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


def format_time(ms: int) -> str:
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    for suffix, scale in (("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % scale == 0:
            return f"{s // scale}{suffix}"
    return f"{s}s"


class AddrError(ValueError):
    """Message in nginx's words, e.g. 'invalid port'."""


def parse_address(text: str, default_port: int | None = None, allow_unix: bool = True,
                  allow_wildcard: bool = False, need_port: bool = False) -> Address:
    """Parse `host[:port]`, `[v6][:port]`, `port`, `*:port`, `unix:/path` as ngx_parse_url does.

    Host names are kept as names (kind "name" when a name, "inet" for literals).
    """
    if text.startswith("unix:"):
        if not allow_unix:
            raise AddrError("unix sockets are not allowed")
        path = text[5:]
        if not path:
            raise AddrError("no path in the unix domain socket")
        return Address("unix", unix_path=path, text=text)
    host: str | None
    port_s: str | None
    if "/" in text:
        raise AddrError("invalid host")   # ngx_parse_inet_url: a URI part where none is allowed
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddrError("invalid host")
        host = text[1:end]
        rest = text[end + 1:]
        if rest and not rest.startswith(":"):
            raise AddrError("invalid host")
        port_s = rest[1:] if rest else None
        v6 = True
    else:
        v6 = False
        if ":" in text:
            host, _, port_s = text.rpartition(":")
        elif allow_wildcard and text.isdigit():
            host, port_s = None, text
        else:
            host, port_s = text, None
    if port_s is not None:
        if not port_s.isdigit() or not (1 <= int(port_s) <= 65535):
            raise AddrError("invalid port")
        port = int(port_s)
    else:
        if need_port:
            raise AddrError("no port")
        port = default_port
    if host in (None, "*"):
        if not allow_wildcard:
            raise AddrError("no host")
        host = "0.0.0.0"
    if v6:
        import ipaddress
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise AddrError("invalid IPv6 address") from None
        return Address("inet", host=host, port=port, text=f"[{host}]:{port}" if port else f"[{host}]")
    if not host:
        raise AddrError("no host")
    import ipaddress
    try:
        ipaddress.IPv4Address(host)
        kind = "inet"
    except ValueError:
        kind = "name"
    return Address(kind, host=host.lower() if kind == "name" else host, port=port,
                   text=f"{host}:{port}" if port else host)
