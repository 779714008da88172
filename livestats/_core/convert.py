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


def wire(name: str) -> dict[str, str]:
    """Field metadata naming the field on the wire: ``attrs.field(metadata=wire("RoomId"))``."""
    return {_WIRE: name}


def _strict_int(value: Any, _: type) -> int:
    """An int, or a string or float that is exactly one (some vendors quote their numbers)."""
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.lstrip("-+").isdigit():
            return int(text)
        raise ValueError("expected an integer, got a non-numeric string")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


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
            a.name: override(rename=a.metadata[_WIRE])
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
        problems = "; ".join(cattrs.transform_error(exc, path="$"))
        raise ResponseDecodingError(
            f"the answer does not fit {cls.__name__}: {problems}",
            provider=provider,
            operation=operation,
            request_id=request_id,
        ) from exc
