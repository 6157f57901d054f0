"""Unit tests of the pure parts behind C types: declarations, the cffi checks, the by-value stand-ins."""

from __future__ import annotations

import platform

import pytest

from nativeimport._cffi_check import checked, proxy_members
from nativeimport.interface import CType, Field, Function, Interface, Param, Struct

I32 = CType.integer("int32_t", "int")
U8 = CType.integer("uint8_t")
F32 = CType.floating("float")
F64 = CType.floating("double")


def callback(result: CType, *params: CType) -> CType:
    return CType.pointer(CType.function(result, params))


def test_function_pointers_and_arrays_are_declared_as_c_spells_them() -> None:
    unary = callback(I32, I32)
    assert unary.cdecl("f") == "int32_t (*f)(int32_t)"
    assert unary.spell("f") == "int (*f)(int)"
    assert CType.pointer(CType.function(F64, (I32,), variadic=True)).cdecl("g") == "double (*g)(int32_t, ...)"
    assert CType("pointer", pointee=CType.function(CType.void(), (I32,)), length=2).cdecl("hooks") == \
        "void (*hooks[2])(int32_t)"
    assert CType("int", "int32_t", "int", length=2, dims=(3,)).cdecl("cells") == "int32_t cells[2][3]"
    assert CType("int", "uint8_t", length=-1).cdecl("data") == "uint8_t data[]"
    returns_callback = Function("pick", unary, (Param("which", I32),))
    assert returns_callback.cdef() == "int32_t (*pick(int32_t which))(int32_t);"
    assert Function("printf_like", I32, (Param("fmt", CType.pointer(CType.char(), const=True)),),
                    variadic=True).c_signature() == "int printf_like(const char *fmt, ...)"


def test_new_type_facts_survive_the_json_round_trip() -> None:
    union = Struct("number", (Field("i", I32, 0), Field("f", F32, 0)), 4, kind="union")
    bits = Struct("flags", (Field("ready", CType.integer("uint32_t"), 0, 1, 0),
                            Field("", CType.union("_ni_anon_flags_0"), 4)), 8)
    anon = Struct("_ni_anon_flags_0", (Field("a", I32, 0),), 4, kind="union", anonymous=True)
    interface = Interface(
        functions=(Function("sum", I32, (Param("n", I32), Param("f", callback(I32, I32))), variadic=True),),
        structs=(union, bits, anon, Struct("handle", None, opaque="why"), Struct("wire", (Field("a", U8, 0),), 1,
                                                                                   packed=True)),
    )
    assert Interface.from_json(interface.to_json()) == interface
    assert "union number { int32_t i; float f; };" in interface.cdef()
    assert "struct flags { uint32_t ready : 1; union { int32_t a; }; };" in interface.cdef()
    assert "_ni_anon_flags_0;" not in interface.cdef()  # written in place, never declared on its own
    assert interface.cdef_packed() == "struct wire { uint8_t a; };\n"
    assert bits.python_fields(interface.records()) == ("ready", "a")


def test_cffi_reserved_names_and_module_attributes_are_caught() -> None:
    io_file = Struct("_IO_FILE", (Field("_flags", I32, 0),), 216)
    file_pointer = CType.pointer(CType.struct("_IO_FILE", "FILE"))
    interface = Interface(
        functions=(Function("log_line", I32, (Param("f", file_pointer),)), Function("__name__", I32),
                   Function("__file__", I32), Function("__native_key__", I32), Function("__weird__", I32)),
        structs=(io_file,),
    )
    result = checked(interface)
    (record,) = result.structs
    assert record.fields is None and "cffi declares it itself (as FILE)" in record.opaque
    assert [f.name for f in result.functions] == ["log_line", "__weird__"]
    assert {s.name for s in result.skipped} == {"__name__", "__file__", "__native_key__"}
    assert "would replace the module's own attribute __name__" in dict(
        (s.name, s.reason) for s in result.skipped)["__name__"]


def test_layouts_cffi_gets_wrong_become_opaque_and_packed_ones_are_found() -> None:
    wide = Struct("wide", (Field("x", I32, 0),), 16)  # over-aligned: the compiler's size is 16, cffi's 4
    wire = Struct("wire", (Field("tag", U8, 0), Field("value", I32, 1)), 5)  # fits only packed
    holder = Struct("holder", (Field("w", CType.struct("wide"), 0),), 16)
    interface = Interface(
        functions=(Function("wide_x", I32, (Param("w", CType.struct("wide")),)),
                   Function("wide_at", I32, (Param("w", CType.pointer(CType.struct("wide"))),)),
                   Function("wire_value", I32, (Param("w", CType.struct("wire")),))),
        structs=(wide, wire, holder),
    )
    result = checked(interface)
    records = result.records()
    assert records["wide"].fields is None and "cffi's size is 4 bytes, the compiler's 16" in records["wide"].opaque
    assert records["holder"].fields is None  # it holds the opaque struct by value
    assert records["wire"].packed and records["wire"].fields is not None
    assert [f.name for f in result.functions] == ["wide_at"]  # a pointer to it is a handle
    reasons = {s.name: s.reason for s in result.skipped}
    assert "uses struct wide by value, which is opaque" in reasons["wide_x"]
    assert "packed struct wire by value, which libffi cannot pass" in reasons["wire_value"]


def test_a_bit_field_cffi_places_elsewhere_is_found() -> None:
    honest = Struct("bits", (Field("a", CType.integer("uint32_t"), 0, 3, 0), Field("b", CType.integer("uint32_t"),
                                                                                      0, 5, 3)), 4)
    lying = Struct("bits", (Field("a", CType.integer("uint32_t"), 0, 3, 0), Field("b", CType.integer("uint32_t"),
                                                                                     0, 5, 8)), 4)
    assert checked(Interface(structs=(honest,))).structs[0].fields is not None
    (record,) = checked(Interface(structs=(lying,))).structs
    assert record.fields is None and "bit-field 'b' at bit 3, the compiler's 8" in record.opaque


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the x86-64 System V ABI")
def test_by_value_stand_ins_follow_the_x86_64_classification() -> None:
    def members(record: Struct, *others: Struct) -> tuple[str, ...] | None:
        records = {s.name: s for s in (record, *others)}
        return proxy_members(record, records)

    plain = Struct("plain", (Field("x", F64, 0),), 8)
    assert members(plain) == ()  # libffi passes it itself
    assert members(Struct("u", (Field("i", I32, 0), Field("f", F32, 0)), 4, kind="union")) == ("uint32_t m0",)
    assert members(Struct("u", (Field("d", F64, 0), Field("f", CType("float", "float", length=2), 0)), 8,
                          kind="union")) == ("double m0",)
    mixed = Struct("m", (Field("", CType.union("_ni_anon_m_0"), 0), Field("g", F32, 8)), 12)
    inner = Struct("_ni_anon_m_0", (Field("i", I32, 0), Field("f", F32, 4)), 8, kind="union", anonymous=True)
    assert members(mixed, inner) == ("uint64_t m0", "float m1")
    bits = Struct("b", (Field("a", CType.integer("uint32_t"), 0, 3, 0), Field("d", F64, 8)), 16)
    assert members(bits) == ("uint64_t m0", "double m1")
    big = Struct("big", (Field("i", I32, 0), Field("f", CType("float", "float", length=5), 0)), 20, kind="union")
    assert members(big) == ("uint8_t bytes[20]",)  # larger than 16 bytes: in memory, as any struct of its size
