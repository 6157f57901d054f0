"""Holds an Interface against what cffi and the module can take, before anything is bound.

cffi declares some C types itself: ``FILE`` is its own ``struct _IO_FILE``,
and a cdef that describes that struct's contents makes the generated module
abort the interpreter when it loads. cffi also lays out every struct itself;
where its layout differs from the compiler's (the offsets and sizes the debug
info records), a field read or a by-value call would be silently wrong. Such
types become opaque here, at build time: pointers to them are handles, and
only what uses them by value is left out, with the reason. A struct whose
offsets only fit with no padding is declared packed.

Exports named like the module's own attributes (``__name__``, ``__file__``)
are left out too: binding them would break the module.

Importing this module imports cffi's parser; only builds do that.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from .interface import CType, Field, Function, Interface, Skipped, Struct, replace

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a new module's build ~2 ms
    from typing import Any

__all__ = ["MODULE_ATTRIBUTES", "checked", "proxy_members"]

#: Attributes every module nativeimport binds has; an export of that name is left out.
MODULE_ATTRIBUTES = frozenset({
    "__name__", "__file__", "__doc__", "__loader__", "__spec__", "__package__", "__path__", "__builtins__",
    "__cached__", "__dict__", "__all__", "__getattr__", "__dir__", "__class__", "__ffi__", "__lib__",
})


def checked(interface: Interface) -> Interface:
    """``interface`` with every type cffi would get wrong made opaque and what it breaks left out."""
    records = {s.name: s for s in interface.structs}
    for tag, typedef in _cffi_reserved_tags().items():
        if tag in records and (records[tag].fields is not None or not records[tag].opaque):
            records[tag] = _opaque(records[tag], f"cffi declares it itself (as {typedef}); pointers to it are handles")
    _fix_layouts(records)
    functions, skipped = [], list(interface.skipped)
    for function in interface.functions:
        why = _why_left_out(function, records)
        if why:
            skipped.append(Skipped(function.name, why))
        else:
            functions.append(function)
    return replace(interface, functions=tuple(functions), skipped=tuple(skipped),
                               structs=tuple(records[s.name] for s in interface.structs))


def _cffi_reserved_tags() -> dict[str, str]:
    """Struct tags cffi declares itself, and the name it gives each (``_IO_FILE`` -> ``FILE``)."""
    from cffi import commontypes, model

    return {tp.name: name for name, tp in commontypes.COMMON_TYPES.items()
            if isinstance(tp, model.StructOrUnion) and tp.name}


def _opaque(record: Struct, why: str) -> Struct:
    return replace(record, fields=None, opaque=why, packed=False)


def _why_left_out(function: Function, records: dict[str, Struct]) -> str:
    if function.name in MODULE_ATTRIBUTES or function.name.startswith("__native_"):
        return f"its name would replace the module's own attribute {function.name}"
    for what, ctype in [("its result", function.result)] + [(f"parameter {p.name!r}", p.type)
                                                             for p in function.params]:
        for record in _by_value(ctype, records):
            if records[record].fields is None:
                reason = records[record].opaque or "declared only"
                return f"{what} uses {records[record].kind} {record} by value, which is opaque ({reason})"
            if ctype.is_function_pointer and _libffi_refuses(records[record], records):
                return (f"{what} is a callback taking or returning {records[record].kind} {record} by value, "
                        "which libffi cannot pass (a union, bit-field or packed layout)")
            if _packed(records[record], records):
                return (f"{what} is the packed {records[record].kind} {record} by value, which libffi cannot pass "
                        "(pass it by pointer)")
            if _libffi_refuses(records[record], records) and proxy_members(records[record], records) is None:
                return (f"{what} is {records[record].kind} {record} by value, which libffi cannot pass on this "
                        "platform (a union or bit-field)")
    return ""


def _packed(record: Struct, records: dict[str, Struct]) -> bool:
    return record.packed or any(_packed(records[f.type.name], records) for f in record.fields or ()
                                if f.type.is_record and f.type.name in records)


def _libffi_refuses(record: Struct, records: dict[str, Struct]) -> bool:
    """Whether libffi (cffi's ABI mode) refuses ``record`` by value: a union, bit-field or anonymous member in it."""
    if record.kind == "union" or record.packed:
        return True
    for field in record.fields or ():
        if field.bits or not field.name:
            return True
        if field.type.is_record and field.type.name in records and _libffi_refuses(records[field.type.name], records):
            return True
    return False


def proxy_members(record: Struct, records: dict[str, Struct]) -> tuple[str, ...] | None:
    """For a record libffi refuses by value, the members of a struct the x86-64 System V ABI passes the
    same way (same registers, or memory); ``()`` if libffi takes the record itself; None off that ABI.

    The ABI classes each eightbyte of a record of at most 16 bytes by what overlaps it: any integer or
    pointer makes it INTEGER, else floats make it SSE. A struct of one ``uint64_t``/``double`` (or, for
    a last short eightbyte, ``uint32_t``/``float``...) per eightbyte gets the same registers. Larger
    records go in memory, as does any struct of the same size.
    """
    import platform

    if not _libffi_refuses(record, records):
        return ()
    if platform.machine().lower() not in ("x86_64", "amd64") or sys.platform == "win32" or record.size <= 0:
        return None
    if record.size > 16:
        return (f"uint8_t bytes[{record.size}]",)
    floats = [True] * ((record.size + 7) // 8)
    for offset, size, is_float in _leaves(record, records, 0):
        for eightbyte in range(offset // 8, (offset + max(size, 1) - 1) // 8 + 1):
            if eightbyte < len(floats) and not is_float:
                floats[eightbyte] = False
    members = []
    for index, is_float in enumerate(floats):
        width = min(8, record.size - 8 * index)
        if is_float and width in (4, 8):
            members.append(f"{'double' if width == 8 else 'float'} m{index}")
        elif width in (1, 2, 4, 8):
            members.append(f"uint{8 * width}_t m{index}")
        else:
            members.append(f"uint8_t m{index}[{width}]")
    return tuple(members)


def _leaves(record: Struct, records: dict[str, Struct], base: int) -> Iterator[tuple[int, int, bool]]:
    """(byte offset, size, is a float) of every scalar in ``record``, nested records and arrays unrolled."""
    for field in record.fields or ():
        offset = base + max(field.offset, 0)
        ctype = field.type
        if field.bits:
            yield base + field.bit_offset // 8, (field.bit_offset % 8 + field.bits + 7) // 8, False
            continue
        count = max(ctype.length, 0) if ctype.length else 1
        for dim in ctype.dims:
            count *= dim
        inner = records.get(ctype.name) if ctype.is_record else None
        step = inner.size if inner is not None else ctype.size
        for index in range(count):
            if inner is not None:
                yield from _leaves(inner, records, offset + index * step)
            else:
                yield offset + index * step, step, ctype.kind == "float"


def _by_value(ctype: CType, records: dict[str, Struct]) -> Iterator[str]:
    """The records ``ctype`` needs complete: itself by value, or a callback's by-value parameters and result."""
    if ctype.is_record and ctype.name in records:
        yield ctype.name
    elif ctype.is_function_pointer:
        assert ctype.pointee is not None and ctype.pointee.pointee is not None
        for inner in (ctype.pointee.pointee, *ctype.pointee.params):
            yield from _by_value(inner, records)


_CANNOT_BUILD = "cffi cannot build it"


def _fix_layouts(records: dict[str, Struct]) -> None:
    """Make opaque (or packed, where that fits) every record cffi lays out unlike the compiler."""
    unpacked_difference: dict[str, str] = {}  # a record tried packed, and how it differed as it was
    for _ in range(2 * len(records) + 2):
        _propagate(records)
        wrong = _layout_errors(records)
        if not wrong:
            return
        for name, why in wrong.items():
            if why.startswith(_CANNOT_BUILD):
                records[name] = _opaque(records[name], why)
            elif name not in unpacked_difference:
                unpacked_difference[name] = why
                records[name] = replace(records[name], packed=True)
            else:  # packed did not fit either: say how the layout as written differs
                why = unpacked_difference[name]
                records[name] = _opaque(records[name], f"cffi lays it out unlike the compiler ({why})")
    for name in _layout_errors(records):  # never reached for a finite set of records, kept as a guard
        records[name] = _opaque(records[name], "cffi lays it out unlike the compiler")


def _propagate(records: dict[str, Struct]) -> None:
    """A record holding an opaque one by value (or a callback taking one) is opaque too."""
    changed = True
    while changed:
        changed = False
        for name, record in list(records.items()):
            for field in record.fields or ():
                inner = [r for r in _by_value(replace(field.type, length=0, dims=()), records)
                         if records[r].fields is None]
                if inner:
                    label = repr(field.name) if field.name else "an anonymous member"
                    records[name] = _opaque(record, f"its field {label} holds the opaque {records[inner[0]].kind} "
                                                    f"{inner[0]} ({records[inner[0]].opaque or 'declared only'})")
                    changed = True
                    break


def _layout_errors(records: dict[str, Struct]) -> dict[str, str]:
    """Per described record whose cffi layout differs from the debug info's: the first difference.

    Asked of the out-of-line module cffi generates, as the binding will be: it cannot build some
    types the in-line FFI can (an array of structs as a flexible array member).
    """
    described = [r for r in records.values() if r.fields is not None and not r.anonymous]
    if not described:
        return {}
    ffi = _out_of_line_ffi(Interface(structs=tuple(records.values())))
    wrong = {}
    for record in described:
        why = _difference(ffi, record, records)
        if why:
            wrong[record.name] = why
    return wrong


def _out_of_line_ffi(interface: Interface) -> Any:
    """The ``ffi`` of the out-of-line module cffi generates for ``interface``'s records."""
    import os
    import tempfile

    from cffi import FFI
    from cffi.recompiler import make_py_source

    ffi = FFI()
    ffi.cdef(interface.cdef())
    packed = interface.cdef_packed()
    if packed:
        ffi.cdef(packed, packed=True)
    with tempfile.TemporaryDirectory(prefix="nativeimport-layout-") as scratch:
        target = os.path.join(scratch, "_ni_layout.py")
        make_py_source(ffi, "_ni_layout", target)
        with open(target, encoding="utf-8") as stream:
            source = stream.read()
    namespace: dict[str, Any] = {}
    exec(compile(source, "<cffi layout check>", "exec"), namespace)
    return namespace["ffi"]


def _difference(ffi: Any, record: Struct, records: dict[str, Struct]) -> str:
    ctype = f"{record.kind} {record.name}"
    try:
        ffi.typeof(ctype + " *")
        size = ffi.sizeof(ctype)
    except Exception as exc:  # cffi cannot build it (e.g. a flexible array of structs)
        return f"{_CANNOT_BUILD}: {exc}"
    if record.size and size != record.size:
        return f"cffi's size is {size} bytes, the compiler's {record.size}"
    for name, field, offset, bit_offset in _flat(record, records, 0):
        if field.bits:
            why = _bit_field_difference(ffi, ctype, name, field, bit_offset)
            if why:
                return why
        elif offset >= 0 and field.offset >= 0 and ffi.offsetof(ctype, name) != offset:
            return f"field {name!r} at offset {ffi.offsetof(ctype, name)}, the compiler's {offset}"
    return ""


def _flat(record: Struct, records: dict[str, Struct], base: int) -> Iterator[tuple[str, Field, int, int]]:
    """(name, field, byte offset, bit offset) of each field Python sees, from the outermost record's start."""
    for field in record.fields or ():
        offset = base + field.offset if field.offset >= 0 else -1
        if not field.name and field.type.name in records:
            yield from _flat(records[field.type.name], records, max(offset, 0))
        elif field.name:
            yield field.name, field, offset, base * 8 + field.bit_offset


def _bit_field_difference(ffi: Any, ctype: str, name: str, field: Field, bit_offset: int) -> str:
    """Where cffi puts a bit-field's bits, found by setting them all, against where the compiler put them."""
    if sys.byteorder != "little":
        return ""  # the debug info numbers bits from the other end; cffi is trusted there
    instance = ffi.new(ctype + " *")
    representation = field.type.pointee if field.type.kind == "enum" else field.type
    signed = representation is not None and representation.name.startswith("int")
    setattr(instance, name, -1 if signed else (1 << field.bits) - 1 if field.type.kind != "bool" else True)
    held = int.from_bytes(bytes(ffi.buffer(instance)), "little")
    expected = ((1 << field.bits) - 1) << bit_offset
    if held != expected:
        return f"bit-field {name!r} at bit {(held & -held).bit_length() - 1}, the compiler's {bit_offset}"
    return ""
