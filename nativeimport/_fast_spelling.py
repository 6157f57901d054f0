"""How the fast wrapper's generated C spells scalar types, integer bounds, string literals and results.

One place for what its functions (:mod:`nativeimport._bind_fast`), its callback
trampolines (:mod:`nativeimport._fast_callbacks`) and its record types
(:mod:`nativeimport._fast_records`) all write, so the three agree.
"""

from __future__ import annotations

import json

from .interface import INTEGER_TYPES, CType

__all__ = ["c_string", "int_limits", "scalar_c_type", "to_python"]


def c_string(text: str) -> str:
    """``text`` as a C string literal (a JSON string is a valid one for what we put in it)."""
    return json.dumps(text)


def scalar_c_type(ctype: CType) -> str:
    """A number's, bool's or enum's C type: an enum as its integer representation (``int32_t``)."""
    if ctype.kind == "enum":
        assert ctype.pointee is not None
        return ctype.pointee.name
    return "_Bool" if ctype.kind == "bool" else ctype.name


def int_limits(name: str) -> tuple[str, str]:
    """The C constants bounding integer type ``name`` (``int32_t``: ``INT32_MIN``, ``INT32_MAX``)."""
    size, signed = INTEGER_TYPES[name]
    return (f"INT{8 * size}_MIN", f"INT{8 * size}_MAX") if signed else ("0", f"UINT{8 * size}_MAX")


def to_python(ctype: CType, var: str) -> str:
    """C value ``var`` of a number, bool, enum or ``const char *`` as the fast binder returns it."""
    if ctype.is_string:
        return f"ni_string_result({var})"
    if ctype.kind == "float":
        return f"PyFloat_FromDouble((double){var})"
    if ctype.kind == "bool":
        return f"PyBool_FromLong({var})"
    if scalar_c_type(ctype).startswith("u"):
        return f"PyLong_FromUnsignedLongLong((unsigned long long){var})"
    return f"PyLong_FromLongLong((long long){var})"
