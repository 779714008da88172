"""Building the cattrs converter of a wire format, and turning its failures into errors.

Result classes declare the wire name of each field in its metadata
(``attrs.field(metadata=wire("TotalViewers"))``); the converter renames from
that declaration, ignores fields it does not know, and is strict about scalar
types: cattrs' defaults would turn ``None`` into ``"None"`` or ``true`` into ``1``,
which hides a vendor answer that is not what its documentation says.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from livestats.errors import ResponseDecodingError

__all__ = ["make_converter", "structure", "wire"]

T = TypeVar("T")
_WIRE = "livestats.wire"
_COUNT = "livestats.count"

#: Every integer on the wire fits a signed 64-bit integer: the vendors' own types
#: (Java ``long``, Go ``int64``). Anything larger is a broken answer, not a number.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Longer digit strings are refused before int() is asked to parse them.
_MAX_DIGITS = 20


def wire(name: str, *, count: bool = False) -> dict[str, Any]:
    """Field metadata naming the field on the wire: ``attrs.field(metadata=wire("RoomId"))``.

    ``count=True`` marks a quantity that cannot be negative (viewers, coins, bit
    rates, durations): a negative one is a decoding error naming the field.
    """
    return {_WIRE: name, _COUNT: count}


def _strict_int(value: Any, _: type) -> int:
    """An int, or a string or float that is exactly one (some vendors quote their numbers).

    Only values a signed 64-bit integer holds are numbers here.
    """
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] in ("-", "+") else text
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError("expected an integer, got a non-numeric string")
        if len(digits) > _MAX_DIGITS:
            raise ValueError(f"integer out of the 64-bit range ({len(digits)} digits)")
        number = int(text)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError("integer out of the 64-bit range")
    return number


def _count(value: Any, _: type) -> int:
    number = _strict_int(value, int)
    if number < 0:
        raise ValueError(f"a count cannot be negative, got {number}")
    return number


def _strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _int_tuple(value: Any, _: type) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(_strict_int(item, int) for item in value)


def make_converter() -> cattrs.Converter:
    """A converter for one wire format; providers add their own hooks (dates, enums)."""
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook_func(lambda t: t == tuple[int, ...], _int_tuple)

    def attrs_hook(cls: type[Any]) -> Callable[[Mapping[str, Any], Any], Any]:
        renames: dict[str, Any] = {
            a.name: override(
                rename=a.metadata[_WIRE],
                struct_hook=_count if a.metadata.get(_COUNT) else None,
            )
            for a in attrs.fields(cls)
            if _WIRE in a.metadata
        }
        return make_dict_structure_fn(cls, conv, **renames)

    conv.register_structure_hook_factory(attrs.has, attrs_hook)
    return conv


def structure(
    conv: cattrs.Converter,
    data: Any,
    cls: type[T],
    *,
    provider: str,
    operation: str,
    request_id: str | None,
) -> T:
    """Structure ``data`` into ``cls``, or raise a :class:`ResponseDecodingError` saying why."""
    if not isinstance(data, Mapping):
        raise ResponseDecodingError(
            f"expected a JSON object for {cls.__name__}, got {type(data).__name__}",
            provider=provider,
            operation=operation,
            request_id=request_id,
        )
    try:
        return conv.structure(data, cls)
    except Exception as exc:
        names = _wire_names(cls)
        problems = "; ".join(
            _wire_path(problem, names)
            for problem in cattrs.transform_error(exc, path="$", format_exception=_describe)
        )
        raise ResponseDecodingError(
            f"the answer does not fit {cls.__name__}: {problems}",
            provider=provider,
            operation=operation,
            request_id=request_id,
        ) from exc


def _describe(exc: BaseException, type_: type | None) -> str:
    """One problem in words: the hooks' own reason where they gave one."""
    if isinstance(exc, KeyError):
        return "required field missing"
    reason = str(exc) if isinstance(exc, (ValueError, TypeError)) and str(exc) else None
    if reason is not None:
        return reason
    return f"invalid value ({type(exc).__name__})"


def _wire_names(cls: type[Any]) -> dict[str, str]:
    """Attribute name -> wire name, for ``cls`` and every attrs class nested in it."""
    names: dict[str, str] = {}
    pending: list[Any] = [cls]
    seen: set[Any] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        if attrs.has(current):
            for field in attrs.fields(current):
                if _WIRE in field.metadata:
                    names[field.name] = field.metadata[_WIRE]
                pending.append(field.type)
        pending.extend(getattr(current, "__args__", ()))
    return names


def _wire_path(problem: str, names: Mapping[str, str]) -> str:
    """``... @ $.total_viewers`` -> ``... @ $.TotalViewers``: the field as the vendor names it."""
    message, sep, path = problem.rpartition(" @ ")
    if not sep:
        return problem
    parts = path.split(".")
    renamed = [parts[0]] + [_rename(part, names) for part in parts[1:]]
    return f"{message} @ {'.'.join(renamed)}"


def _rename(part: str, names: Mapping[str, str]) -> str:
    name, bracket, rest = part.partition("[")
    return f"{names.get(name, name)}{bracket}{rest}"
