"""Primitive type names Rust and Zig share (Zig borrowed Rust's), as canonical C types with C spellings."""

from __future__ import annotations

from typing import Optional

from nativeimport.interface import CType

__all__ = ["FLOATS", "INTEGERS", "primitive"]

#: name -> (canonical integer type, how C spells it, for help())
INTEGERS: dict[str, tuple[str, str]] = {
    "i8": ("int8_t", "int8_t"), "u8": ("uint8_t", "uint8_t"), "i16": ("int16_t", "int16_t"),
    "u16": ("uint16_t", "uint16_t"), "i32": ("int32_t", "int32_t"), "u32": ("uint32_t", "uint32_t"),
    "i64": ("int64_t", "int64_t"), "u64": ("uint64_t", "uint64_t"), "isize": ("int64_t", "ptrdiff_t"),
    "usize": ("uint64_t", "size_t"), "c_char": ("int8_t", "char"), "c_schar": ("int8_t", "signed char"),
    "c_uchar": ("uint8_t", "unsigned char"), "c_short": ("int16_t", "short"),
    "c_ushort": ("uint16_t", "unsigned short"), "c_int": ("int32_t", "int"), "c_uint": ("uint32_t", "unsigned int"),
    "c_long": ("int64_t", "long"), "c_ulong": ("uint64_t", "unsigned long"), "c_longlong": ("int64_t", "long long"),
    "c_ulonglong": ("uint64_t", "unsigned long long"),
}
#: name -> canonical floating type
FLOATS: dict[str, str] = {"f32": "float", "f64": "double", "c_float": "float", "c_double": "double"}


def primitive(name: str) -> Optional[CType]:
    """The C type of a primitive named the Rust/Zig way (``usize``, ``f64``, ``c_int``, ``bool``), or None."""
    if name in INTEGERS:
        canonical, spelling = INTEGERS[name]
        return CType.integer(canonical, spelling)
    if name in FLOATS:
        return CType.floating(FLOATS[name])
    if name == "bool":
        return CType.boolean()
    return None
