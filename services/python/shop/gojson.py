"""What the Go services do with JSON and strings, in Python, so that a
service here answers byte for byte what its Go twin answers.

- decode_body: socket.DecodeBody (encoding/json with DisallowUnknownFields)
  into a struct of string, *string and int fields: the same errors for
  unknown fields, type mismatches and trailing data, field names matched
  case-insensitively as encoding/json does.
- canonical: json.Marshal of a body decoded with UseNumber (sorted keys,
  HTML-safe escapes, numbers as written), for idempotency fingerprints.
- quote, trim_space, lower, is_space, is_print: strconv.Quote,
  strings.TrimSpace, strings.ToLower, unicode.IsSpace, unicode.IsPrint.
- rfc3339nano: a time.Time (Unix nanoseconds, UTC) as encoding/json
  writes it.
"""

from __future__ import annotations

import codecs
import datetime
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Optional

from streamgate_service import Code, SocketError

# Strings.


def is_space(c: str) -> bool:
    """unicode.IsSpace: Python's isspace less the four separators
    U+001C…U+001F, which Go does not count as space."""
    return c.isspace() and c not in "\x1c\x1d\x1e\x1f"


def is_print(c: str) -> bool:
    """unicode.IsPrint: letters, marks, numbers, punctuation, symbols and
    the ASCII space."""
    return c == " " or unicodedata.category(c)[0] in "LMNPS"


def trim_space(s: str) -> str:
    """strings.TrimSpace."""
    start, end = 0, len(s)
    while start < end and is_space(s[start]):
        start += 1
    while end > start and is_space(s[end - 1]):
        end -= 1
    return s[start:end]


def lower(s: str) -> str:
    """strings.ToLower: one rune for one (Python's lower() turns U+0130
    into two)."""
    return "".join(c.lower()[0] if c.lower() else c for c in s)


_SHORT = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
          "\\": "\\\\", '"': '\\"'}


def quote(s: str) -> str:
    """strconv.Quote (what %q prints): printable runes as they are, the
    others escaped."""
    out = ['"']
    for c in s:
        if c in _SHORT:
            out.append(_SHORT[c])
        elif is_print(c) and not ("\ud800" <= c <= "\udfff"):
            out.append(c)
        elif ord(c) < 0x20 or c == "\x7f":
            out.append(f"\\x{ord(c):02x}")
        elif "\ud800" <= c <= "\udfff":
            out.append("\\ufffd")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


# Time.


def rfc3339nano(ns: int) -> str:
    """A UTC time in Unix nanoseconds as Go's time.Time marshals it:
    RFC 3339 with the fraction's trailing zeros dropped."""
    sec, frac = divmod(ns, 1_000_000_000)
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=sec)
    out = t.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


# Decoding.


def _go_replace(err: UnicodeError) -> tuple[str, int]:
    # encoding/json turns each invalid byte into U+FFFD.
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("go_replace", _go_replace)

_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="go_replace")


@dataclass(frozen=True)
class Number:
    """A JSON number kept as written (encoding/json's UseNumber)."""

    literal: str


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _fix_strings(v: Any) -> Any:
    # A lone surrogate escape (\ud800) decodes to U+FFFD in Go.
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v)
    if isinstance(v, list):
        return [_fix_strings(x) for x in v]
    if isinstance(v, dict):
        return {_fix_strings(k): _fix_strings(x) for k, x in v.items()}
    return v


_decoder = json.JSONDecoder(parse_float=Number, parse_int=Number, parse_constant=_no_constant, strict=True)
_WS = " \t\n\r"


def _skip(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _byte_offset(s: str, i: int) -> int:
    return len(s[:i].encode("utf-8", errors="surrogatepass"))


def _syntax_error(s: str, pos: int) -> SocketError:
    if _skip(s, pos) >= len(s):
        return SocketError(Code.INVALID_ARGUMENT, f"invalid JSON body: unexpected end at offset {_byte_offset(s, len(s))}")
    off = _byte_offset(s, pos) + 1
    return SocketError(Code.INVALID_ARGUMENT, f"invalid JSON body at offset {off}: invalid character {quote(s[pos])[1:-1]!r}",
                       {"offset": off})


def _value(s: str, i: int) -> tuple[Any, int]:
    try:
        v, end = _decoder.raw_decode(s, i)
    except json.JSONDecodeError as err:
        raise _syntax_error(s, err.pos) from None
    except (ValueError, RecursionError):
        raise _syntax_error(s, i) from None
    return _fix_strings(v), end


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    return "number"


def _type_error(field: str, gotype: str, got: str, offset: int) -> SocketError:
    return SocketError(Code.INVALID_ARGUMENT, f"invalid body: field {quote(field)} must be {gotype}, got {got}",
                       {"field": field, "offset": offset})


#: The kinds of a struct's fields: "string" (a Go string), "*string" (a
#: pointer: None when absent or null) and "int" (a Go int, 64 bits).
FieldKind = str


@dataclass(frozen=True)
class Struct:
    """A Go struct a body decodes into: its type's name as Go prints it
    (users.CreateInput) and its JSON fields in order."""

    gotype: str
    fields: tuple[tuple[str, FieldKind], ...]

    def zero(self) -> dict[str, Any]:
        return {name: ("" if kind == "string" else 0 if kind == "int" else None) for name, kind in self.fields}


_INT64 = re.compile(r"-?(0|[1-9][0-9]*)")


def decode_body(raw: bytes, st: Struct) -> dict[str, Any]:
    """socket.DecodeBody into st: a dict of st's fields (absent ones at
    their zero value). An empty body is the zero value; errors are
    INVALID_ARGUMENT as Go words them (the first one in the body wins)."""
    out = st.zero()
    s = _text(raw)
    start = _skip(s, 0)
    if start == len(s):
        return out
    v, end = _value(s, start)  # validates the whole value first, as Go's decoder does
    first: Optional[SocketError] = None
    if isinstance(v, dict):
        first = _fields(s, start, st, out)
    elif v is not None:
        kind = _kind(v)
        offset = _byte_offset(s, start + 1 if kind in ("object", "array") else end)
        first = _type_error("", st.gotype, kind, offset)
    if first is not None:
        raise first
    rest = _skip(s, end)
    if rest < len(s):
        raise SocketError(Code.INVALID_ARGUMENT,
                          f"invalid JSON body: unexpected data after the value at offset {_byte_offset(s, rest + 1)}")
    return out


def _fields(s: str, start: int, st: Struct, out: dict[str, Any]) -> Optional[SocketError]:
    """Walks the object at s[start] (known valid) member by member, into
    out; returns the first error."""
    first: Optional[SocketError] = None
    exact = dict(st.fields)
    folded = {name.casefold(): name for name, _ in st.fields}
    i = _skip(s, start + 1)
    while s[i] != "}":
        key, i = _value(s, i)
        i = _skip(s, i) + 1  # the colon
        vstart = _skip(s, i)
        v, i = _value(s, vstart)
        name = key if key in exact else folded.get(key.casefold())
        if name is None:
            first = first or SocketError(Code.INVALID_ARGUMENT, f"invalid body: unknown field {quote(key)}",
                                         {"field": key, "reason": "unknown_field"})
        elif v is not None:
            err = _store(out, name, exact[name], v, s, vstart, i)
            first = first or err
        elif exact[name] == "*string":
            out[name] = None
        i = _skip(s, i)
        if s[i] == ",":
            i = _skip(s, i + 1)
    return first


def _store(out: dict[str, Any], name: str, kind: FieldKind, v: Any, s: str, vstart: int, vend: int) -> Optional[SocketError]:
    got = _kind(v)
    offset = _byte_offset(s, vstart + 1 if got in ("object", "array") else vend)
    gotype = "int" if kind == "int" else "string"
    if kind == "int":
        if isinstance(v, Number):
            if _INT64.fullmatch(v.literal) and -(2**63) <= int(v.literal) < 2**63:
                out[name] = int(v.literal)
                return None
            return _type_error(name, gotype, "number " + v.literal, offset)
        return _type_error(name, gotype, got, offset)
    if isinstance(v, str):
        out[name] = v
        return None
    return _type_error(name, gotype, got, offset)


# Encoding, for fingerprints.

_HTML_SAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
              '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _go_string(s: str) -> str:
    out = ['"']
    for c in s:
        if c in _HTML_SAFE:
            out.append(_HTML_SAFE[c])
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _marshal(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Number):
        return v.literal
    if isinstance(v, str):
        return _go_string(v)
    if isinstance(v, list):
        return "[" + ",".join(_marshal(x) for x in v) + "]"
    return "{" + ",".join(_go_string(k) + ":" + _marshal(v[k]) for k in sorted(v)) + "}"


def canonical(raw: bytes) -> bytes:
    """The body as once.Fingerprint counts it: trimmed of spaces; when it
    starts with a JSON value, that value as Go's json.Marshal writes it
    after decoding with UseNumber (keys sorted, <, > and & escaped),
    otherwise the bytes themselves."""
    body = trim_space(raw.decode("utf-8", errors="surrogateescape")).encode("utf-8", errors="surrogateescape")
    if not body:
        return body
    try:
        v, _ = _decoder.raw_decode(_text(body), 0)
    except (ValueError, RecursionError):
        return body
    return _marshal(_fix_strings(v)).encode("utf-8")
