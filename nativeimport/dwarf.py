"""Read an :class:`~nativeimport.interface.Interface` from a shared library's DWARF.

The library's dynamic symbol table says what is exported; its DWARF says what
each export's signature is, exactly as compiled (macros and ``#ifdef``s
resolved). A ``DW_TAG_subprogram`` is matched to a defined, default-visibility
GLOBAL/WEAK FUNC symbol by name *and* address, so a symbol that aliases another
function (identical code merged by the linker) is never given that function's
signature: it is skipped with a reason instead.

The common case (a C library as GCC builds it) is read by
:mod:`nativeimport._dwarf_lite`, in a fraction of the time pyelftools takes to
import; anything else by pyelftools, which only builds import.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from . import _dwarf_lite
from .errors import InterfaceError
from .interface import VA_LIST_NAMES, CType, Enum, Field, Function, Interface, Param, Skipped, Struct, replace

TYPE_CHECKING = False
if TYPE_CHECKING:  # the reader takes pyelftools' objects or _dwarf_lite's, which have their shape
    from typing import Any, Optional

    from elftools.dwarf.compileunit import CompileUnit
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo
    from elftools.elf.elffile import ELFFile

__all__ = ["Unsupported", "exported_functions", "read_interface"]

DocReader = Callable[[Path, int], str]

_QUALIFIERS = {"DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type", "DW_TAG_atomic_type"}
_ATE_BOOLEAN, _ATE_FLOAT, _ATE_SIGNED, _ATE_SIGNED_CHAR, _ATE_UNSIGNED, _ATE_UNSIGNED_CHAR = 2, 4, 5, 6, 7, 8


class Unsupported(Exception):
    """A type the binding cannot express faithfully; the message says which and why."""


class _VaList(Unsupported):
    """A ``va_list``: never degraded to an opaque pointer, since no caller could build one."""

    def __init__(self) -> None:
        super().__init__("a va_list, which Python cannot build (call the variadic (...) version instead)")


_RECORD_TAGS = ("DW_TAG_structure_type", "DW_TAG_union_type")


def exported_functions(elf: ELFFile) -> dict[str, int]:
    """Defined, default-visibility GLOBAL/WEAK functions of ``.dynsym``: name -> address."""
    from elftools.elf.sections import SymbolTableSection

    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return {}
    exports: dict[str, int] = {}
    for symbol in dynsym.iter_symbols():
        if (
            symbol.name
            and symbol["st_shndx"] != "SHN_UNDEF"
            and symbol["st_info"]["type"] == "STT_FUNC"
            and symbol["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK")
            and symbol["st_other"]["visibility"] == "STV_DEFAULT"
        ):
            exports[symbol.name] = symbol["st_value"]
    return exports


def read_interface(
    library: Path,
    *,
    exported_from: Optional[Path] = None,
    doc_reader: Optional[DocReader] = None,
) -> Interface:
    """Describe the exported functions of ``library`` and the types they use.

    Args:
        library: the shared library, built with full debug info.
        exported_from: the source the library was built from (used in messages).
        doc_reader: reads the doc comment above a declaration; defaults to
            :func:`nativeimport.driver.doc_comment_above`.
    """
    from ._doc_comments import doc_comment_above

    where = str(exported_from or library)
    try:  # the common case without pyelftools; anything it does not read, with pyelftools
        lite = _dwarf_lite.Library(library)
        units = lite.dwarf()
        if units.is_c_only():
            lite_reader = _Reader(units, lite.exported_functions(),  # type: ignore[arg-type]
                                  doc_reader or doc_comment_above)
            return lite_reader.read(where)
    except (_dwarf_lite.Unreadable, struct.error, LookupError, ValueError):
        # Unreadable: outside its case. The others: a file it misreads (cut short, an offset out of range),
        # which pyelftools then reads or reports; never a reason to fail the import.
        pass
    from elftools.elf.elffile import ELFFile

    with open(library, "rb") as stream:
        elf = ELFFile(stream)
        exports = exported_functions(elf)
        if not elf.has_dwarf_info():
            raise InterfaceError(
                f"{library.name} has no debug info, so its signatures are unknown; build with -g",
                path=str(exported_from or library),
            )
        # A linked library's debug sections carry no relocations (only an object file's do): not looking
        # for them saves pyelftools a scan of every section header per debug section (most of a small read).
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=elf["e_type"] == "ET_REL")
        reader = _Reader(dwarf, exports, doc_reader or doc_comment_above)
        return reader.read(where)


class _Reader:
    """Reads one library's interface."""

    def __init__(self, dwarf: DWARFInfo, exports: dict[str, int], doc_reader: DocReader) -> None:
        self.dwarf = dwarf
        self.exports = exports
        self.doc_reader = doc_reader
        self.structs: dict[str, Struct] = {}
        self.enums: dict[str, Enum] = {}
        self.in_progress: set[str] = set()
        self.unnamed_field_type = ""  # the tag an untagged struct type of the field being read is given
        self.aliases: dict[str, set[str]] = {}  # record -> its typedef names

    def read(self, where: str) -> Interface:
        addresses = set(self.exports.values())
        found: dict[str, Function] = {}
        skipped: dict[str, str] = {}
        for cu in self._units_holding(addresses):
            files = _file_table(self.dwarf, cu)
            checked_types = False
            for die in _subprograms(cu.get_top_DIE()):
                name, origin = _origin(die)
                if name is None or name not in self.exports:
                    continue
                if self.exports[name] not in self._entry_points(die):
                    continue  # a declaration, or another function's copy; the export's own DIE decides
                if not checked_types and not _has_types(cu):
                    raise InterfaceError(
                        f"{where}: built with limited debug info (-g1), which records no types; "
                        "remove -g0/-g1 from the compiler flags (full -g is needed)",
                        path=where,
                    )
                checked_types = True
                try:
                    found[name] = self._function(name, die, origin, files)
                except Unsupported as why:
                    skipped[name] = str(why)
        for name in self.exports:
            if name not in found and name not in skipped:
                skipped[name] = "it has no debug info of its own (identical code merged with another function?)"
        ordered = sorted(found.values(), key=lambda f: f.name)
        return Interface(
            functions=tuple(ordered),
            structs=tuple(replace(s, aliases=tuple(sorted(self.aliases.get(s.name, ()))))
                          for s in sorted(self.structs.values(), key=lambda s: s.name)),
            enums=tuple(sorted(self.enums.values(), key=lambda e: e.name)),
            skipped=tuple(Skipped(n, r) for n, r in sorted(skipped.items()) if not _is_runtime_symbol(n)),
        )

    def _entry_points(self, die: DIE) -> set[int]:
        """Where a function's code may start: its low_pc, or each range's start when
        gcc -O2 split it into hot and cold parts (``DW_AT_ranges``, no ``DW_AT_low_pc``)."""
        if "DW_AT_low_pc" in die.attributes:
            return {die.attributes["DW_AT_low_pc"].value}
        if "DW_AT_ranges" not in die.attributes:
            return set()
        if isinstance(self.dwarf, _dwarf_lite.Dwarf):
            return self.dwarf.range_starts(die)
        from elftools.dwarf.ranges import BaseAddressEntry

        lists = self.dwarf.range_lists()
        if lists is None:
            return set()
        top = die.cu.get_top_DIE()
        base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
        starts = set()
        unit: Any = die.cu  # a CompileUnit: subprograms are never in type units
        for entry in lists.get_range_list_at_offset(die.attributes["DW_AT_ranges"].value, cu=unit):
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
            else:
                starts.add(entry.begin_offset if entry.is_absolute else base + entry.begin_offset)
        return starts

    def _units_holding(self, addresses: set[int]) -> Iterator[CompileUnit]:
        """The compilation units that may define an exported function.

        Rust links its standard library's debug info into every library: skipping
        the units that hold no exported address (via .debug_aranges, when it
        covers every export) turns seconds into milliseconds.
        """
        aranges = self.dwarf.get_aranges()
        offsets = set()
        if aranges is not None:
            for address in addresses:
                try:
                    offsets.add(aranges.cu_offset_at_addr(address))
                except (KeyError, ValueError, TypeError, IndexError):
                    offsets.add(None)
        if offsets and None not in offsets:
            for offset in sorted(o for o in offsets if o is not None):
                yield self.dwarf.get_CU_at(offset)
            return
        for cu in self.dwarf.iter_CUs():
            if self._may_hold(cu.get_top_DIE(), addresses):
                yield cu

    def _may_hold(self, top: DIE, addresses: set[int]) -> bool:
        low = top.attributes.get("DW_AT_low_pc")
        high = top.attributes.get("DW_AT_high_pc")
        if low is None or high is None or "DW_AT_ranges" in top.attributes:
            return True
        start = low.value
        end = high.value if high.form == "DW_FORM_addr" else start + high.value
        return any(start <= address < end for address in addresses)

    def _function(self, name: str, die: DIE, origin: DIE, files: list[Optional[Path]]) -> Function:
        if not origin.attributes.get("DW_AT_prototyped", _Attr(True)).value and _lang_is_c(die.cu):
            raise Unsupported("it is declared without a prototype, so its parameters are unknown")
        result = self._type_of(origin, name, "")
        params = []
        source_params = [c for c in origin.iter_children() if c.tag == "DW_TAG_formal_parameter"]
        if not source_params:
            source_params = [c for c in die.iter_children() if c.tag == "DW_TAG_formal_parameter"]
        variadic = any(c.tag == "DW_TAG_unspecified_parameters" for c in origin.iter_children())
        for index, param in enumerate(source_params):
            param_name, param_origin = _origin(param)
            label = param_name or f"arg{index}"
            ctype = self._type_of(param_origin, name, label)
            if ctype.kind == "void":
                raise Unsupported(f"parameter {label!r} has no type")
            params.append(Param(label, ctype))
        return Function(name, result, tuple(params), self._doc(origin, files), variadic=variadic)

    def _type_of(self, die: DIE, function: str, param: str) -> CType:
        what = f"parameter {param!r}" if param else "its result"
        try:
            has_type = "DW_AT_type" in die.attributes
            ctype = self._resolve(die.get_DIE_from_attribute("DW_AT_type")) if has_type else CType.void()
        except Unsupported as why:
            raise Unsupported(f"{what} is {why}") from None
        if ctype.is_record:
            self._check_complete(ctype, what)
        return ctype

    def _check_complete(self, ctype: CType, what: str) -> None:
        """A record used by value must be described; behind a pointer it may be a handle."""
        record = self.structs[ctype.name]
        if record.fields is None:
            why = f" ({record.opaque})" if record.opaque else " (declared only)"
            raise Unsupported(f"{what} is the opaque {record.kind} {ctype.name} by value{why}")

    def _doc(self, die: DIE, files: list[Optional[Path]]) -> str:
        file_attr = die.attributes.get("DW_AT_decl_file")
        line_attr = die.attributes.get("DW_AT_decl_line")
        if file_attr is None or line_attr is None or not 0 <= file_attr.value < len(files):
            return ""
        path = files[file_attr.value]
        return self.doc_reader(path, line_attr.value) if path is not None and path.is_file() else ""

    # -- types ------------------------------------------------------------
    def _resolve(self, die: DIE, spelling: str = "") -> CType:
        if _is_va_list(die):
            raise _VaList()
        peeled, _, typedef = _peel(die)
        spelling = spelling or typedef
        if peeled is None:
            return CType.void()
        die = peeled
        tag = die.tag
        if tag == "DW_TAG_base_type":
            return _base_type(die, spelling)
        if tag == "DW_TAG_pointer_type":
            return self._pointer(die, spelling)
        if tag in _RECORD_TAGS:
            record = self._record(die, spelling)
            if spelling.isidentifier() and spelling != record.name:  # typedef struct point_s Point;
                self.aliases.setdefault(record.name, set()).add(spelling)
            return record
        if tag == "DW_TAG_enumeration_type":
            return self._enum(die, spelling)
        if tag == "DW_TAG_unspecified_type":  # C23 nullptr_t, C++'s decltype(nullptr)
            raise Unsupported(f"the unspecified type {_name(die)}")
        kinds = {
            "DW_TAG_subroutine_type": "a function type",
            "DW_TAG_array_type": "an array",
            "DW_TAG_class_type": "a class",
            "DW_TAG_reference_type": "a reference",
        }
        raise Unsupported(kinds.get(str(tag), f"an unsupported type ({tag})"))

    def _pointer(self, die: DIE, spelling: str) -> CType:
        """A pointer never fails for what it points to: what cannot be described is an opaque pointer."""
        name = _name(die)
        if "DW_AT_type" not in die.attributes:
            return CType.pointer(CType.void(), const=name.startswith("*const "), spelling=spelling)
        pointed = die.get_DIE_from_attribute("DW_AT_type")
        if _is_va_list(pointed):
            raise _VaList()
        target, const, typedef = _peel(pointed)
        # Rust records pointer constness only in the pointer type's name.
        const = const or name.startswith("*const ")
        if target is None:
            return CType.pointer(CType.void(), const=const, spelling=spelling)
        if target.tag == "DW_TAG_base_type" and _name(target) == "char":
            return CType.pointer(CType.char(), const=const, spelling=spelling)
        if target.tag == "DW_TAG_enumeration_type" and _name(target) == "c_void":
            return CType.pointer(CType.void(), const=const, spelling=spelling)  # Rust's core::ffi::c_void
        try:
            if target.tag == "DW_TAG_subroutine_type":
                return CType.pointer(self._function_type(target), spelling=spelling or typedef)
            if target.tag == "DW_TAG_class_type":
                return self._class_handle(target, typedef, const, spelling)
            if target.tag in _RECORD_TAGS and _name(target) and _name(target) in self.in_progress:
                make = CType.union if target.tag == "DW_TAG_union_type" else CType.struct
                return CType.pointer(make(self._struct_name(target, typedef)), const=const, spelling=spelling)
            if target.tag == "DW_TAG_structure_type" and _lang_is_cxx(target.cu):
                try:
                    return CType.pointer(self._resolve(target, typedef), const=const, spelling=spelling)
                except Unsupported:  # a C++ struct C cannot describe (a std::vector member, say): a handle
                    return self._class_handle(target, typedef, const, spelling)
            return CType.pointer(self._resolve(target, typedef), const=const, spelling=spelling)
        except _VaList:
            raise
        except Unsupported:
            # An address the binding cannot look behind: passed and returned as an opaque pointer.
            shown = typedef or _name(target) or "void"
            return CType.pointer(CType("void", "void", shown), const=const, spelling=spelling)

    def _function_type(self, die: DIE) -> CType:
        """The pointee of a function pointer."""
        if not die.attributes.get("DW_AT_prototyped", _Attr(True)).value and _lang_is_c(die.cu):
            raise Unsupported("a function pointer without a prototype")
        result = self._resolve(die.get_DIE_from_attribute("DW_AT_type")) if "DW_AT_type" in die.attributes \
            else CType.void()
        params = []
        for child in die.iter_children():
            if child.tag == "DW_TAG_formal_parameter":
                params.append(self._resolve(child.get_DIE_from_attribute("DW_AT_type")))
        for ctype in (result, *params):
            if ctype.is_record:
                self._check_complete(ctype, "a callback's parameter or result")
        variadic = any(c.tag == "DW_TAG_unspecified_parameters" for c in die.iter_children())
        return CType.function(result, tuple(params), variadic)

    def _class_handle(self, die: DIE, typedef: str, const: bool, spelling: str) -> CType:
        """A pointer to a C++ class: an opaque handle, whatever the class holds.

        A class's layout (vtable, private members, bases) is C++'s business; C only
        passes the pointer around, so the class is declared as an opaque struct.
        """
        name = self._struct_name(die, typedef)
        self.structs.setdefault(name, Struct(name, None))
        return CType.pointer(CType.struct(name, _qualified_name(die)), const=const, spelling=spelling)

    def _struct_name(self, die: DIE, typedef: str) -> str:
        name = _name(die) or typedef or self.unnamed_field_type
        if not name:
            raise Unsupported(f"an anonymous {_record_kind(die)} with no typedef")
        name = name.rpartition("::")[2]
        if not name.isidentifier() or not name.isascii():
            raise Unsupported(f"the type {name}, whose name is not a C identifier")
        return name

    def _record(self, die: DIE, spelling: str, name: str = "", anonymous: bool = False) -> CType:
        """A struct or union; one whose contents cannot be described is kept opaque, with the reason."""
        kind = _record_kind(die)
        name = name or self._struct_name(die, spelling)
        make = CType.union if kind == "union" else CType.struct
        untagged = name.startswith("_ni_anon_")  # shown as the source writes it, not by the tag made up for it
        ctype = make(name, spelling or (f"{kind} {{...}}" if untagged else f"{kind} {name}" if _lang_is_c(die.cu)
                                        else name))
        known = self.structs.get(name)
        if known is not None and (known.fields is not None or known.opaque):
            return ctype
        if die.attributes.get("DW_AT_declaration", _Attr(False)).value:
            self.structs.setdefault(name, Struct(name, None, kind=kind))
            return ctype
        size = die.attributes["DW_AT_byte_size"].value if "DW_AT_byte_size" in die.attributes else 0
        self.in_progress.add(name)
        try:
            record = Struct(name, tuple(self._members(die, name)), size, kind=kind, anonymous=anonymous)
        except _VaList:
            record = Struct(name, None, size, kind=kind, opaque="it holds a va_list")
        except Unsupported as why:
            record = Struct(name, None, size, kind=kind, opaque=str(why))
        finally:
            self.in_progress.discard(name)
        self.structs[name] = record
        return ctype

    def _members(self, die: DIE, name: str) -> Iterator[Field]:
        unnamed = 0
        for member in die.iter_children():
            if member.tag != "DW_TAG_member":
                continue
            field_name = _name(member)
            member_type = member.get_DIE_from_attribute("DW_AT_type")
            location = member.attributes.get("DW_AT_data_member_location")
            offset = location.value if location is not None and isinstance(location.value, int) else 0
            if not field_name:  # C11 anonymous struct/union: its members belong to this record
                inner = _peel(member_type)[0]
                if inner is None or inner.tag not in _RECORD_TAGS or _name(inner):
                    raise Unsupported(f"its unnamed member at offset {offset} is not an anonymous struct or union")
                ctype = self._record(inner, "", f"_ni_anon_{name}_{unnamed}", anonymous=True)
                unnamed += 1
                self._check_complete(ctype, f"its anonymous {ctype.kind} member")
                yield Field("", ctype, offset)
                continue
            outer, self.unnamed_field_type = self.unnamed_field_type, f"_ni_anon_{name}_{field_name}"
            try:  # a field of an untagged struct type (struct { ... } inner;) gets a made-up tag
                ctype = self._field_type(member_type)
                if ctype.is_record:
                    self._check_complete(ctype, "a record")
            except _VaList:
                raise
            except Unsupported as why:
                raise Unsupported(f"its field {field_name!r} is {why}") from None
            finally:
                self.unnamed_field_type = outer
            bits = member.attributes.get("DW_AT_bit_size")
            if bits is None:
                yield Field(field_name, ctype, offset)
                continue
            if ctype.kind not in ("int", "enum", "bool") or ctype.length:
                raise Unsupported(f"its bit-field {field_name!r} is not an integer")
            yield Field(field_name, ctype, offset, bits.value, _bit_offset(member, ctype.size))

    def _field_type(self, die: DIE) -> CType:
        peeled = _peel(die)[0]
        if peeled is None:
            raise Unsupported("void")
        if peeled.tag != "DW_TAG_array_type":
            return self._resolve(die)
        element, lengths = self._array(peeled)
        if any(n <= 0 for n in lengths[1:]):
            raise Unsupported("an array with an inner dimension of unknown length")
        if element.is_record:
            self._check_complete(element, "an array element")
        if element.kind == "char":
            element = CType.integer("int8_t", "char")
        return replace(element, length=lengths[0] if lengths[0] > 0 else -1, dims=tuple(lengths[1:]))

    def _array(self, die: DIE) -> tuple[CType, list[int]]:
        """An array type's element and its dimensions (-1: of unknown length, a flexible array member)."""
        lengths = []
        for dim in (c for c in die.iter_children() if c.tag == "DW_TAG_subrange_type"):
            attrs = dim.attributes
            if "DW_AT_count" in attrs and isinstance(attrs["DW_AT_count"].value, int):
                lengths.append(attrs["DW_AT_count"].value)
            elif "DW_AT_upper_bound" in attrs and isinstance(attrs["DW_AT_upper_bound"].value, int):
                upper = attrs["DW_AT_upper_bound"].value
                lengths.append(-1 if upper >= 1 << 62 else upper + 1)  # [0] reads as an upper bound of -1
            else:
                lengths.append(-1)
        element_die = die.get_DIE_from_attribute("DW_AT_type")
        peeled = _peel(element_die)[0]
        if peeled is not None and peeled.tag == "DW_TAG_array_type":  # an array of a typedef'd array
            element, inner = self._array(peeled)
            return element, lengths + inner
        return self._resolve(element_die), lengths or [-1]

    def _enum(self, die: DIE, spelling: str) -> CType:
        name = (_name(die) or spelling).rpartition("::")[2]
        members = tuple(
            (_name(child).rpartition("::")[2], int(child.attributes["DW_AT_const_value"].value))
            for child in die.iter_children()
            if child.tag == "DW_TAG_enumerator"
        )
        if "DW_AT_type" in die.attributes:
            underlying = _peel(die.get_DIE_from_attribute("DW_AT_type"))[0]
            if underlying is None or underlying.tag != "DW_TAG_base_type":
                raise Unsupported(f"enum {name} with a non-integer representation")
            representation = _base_type(underlying, "")
        else:
            size = die.attributes["DW_AT_byte_size"].value
            signed = any(value < 0 for _, value in members)
            representation = CType.integer(f"{'' if signed else 'u'}int{size * 8}_t")
        if representation.kind != "int":
            raise Unsupported(f"enum {name} with a non-integer representation")
        # Enumerators may have been read as unsigned from a signed representation's bits.
        bits = representation.size * 8
        if representation.name.startswith("int"):
            members = tuple((m, v - (1 << bits) if v >= 1 << (bits - 1) else v) for m, v in members)
        key = name or "+".join(m for m, _ in members)
        self.enums.setdefault(key, Enum(name, representation, members))
        if not name:
            return representation
        return CType.enum(name, representation, spelling or (f"enum {name}" if _lang_is_c(die.cu) else name))


class _Attr:
    """A stand-in for an attribute the DIE lacks: its default value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _name(die: DIE) -> str:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode("utf-8", "replace") if attr is not None else ""


def _peel(die: DIE) -> tuple[Optional[DIE], bool, str]:
    """Strip qualifiers and typedefs: (the type underneath or None for void, const?, first typedef name)."""
    const = False
    typedef = ""
    current: Optional[DIE] = die
    while current is not None and (current.tag in _QUALIFIERS or current.tag == "DW_TAG_typedef"):
        if current.tag == "DW_TAG_const_type":
            const = True
        if current.tag == "DW_TAG_typedef" and not typedef:
            typedef = _name(current)
        current = current.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in current.attributes else None
    return current, const, typedef


def _base_type(die: DIE, spelling: str) -> CType:
    name = _name(die)
    encoding = die.attributes["DW_AT_encoding"].value
    size = die.attributes["DW_AT_byte_size"].value
    spelling = spelling or name
    if encoding == _ATE_BOOLEAN and size == 1:
        return CType.boolean(spelling)
    if encoding == _ATE_FLOAT and size in (4, 8):
        return CType.floating("float" if size == 4 else "double", spelling)
    if encoding in (_ATE_SIGNED, _ATE_SIGNED_CHAR) and size in (1, 2, 4, 8):
        return CType.integer(f"int{size * 8}_t", spelling)
    if encoding in (_ATE_UNSIGNED, _ATE_UNSIGNED_CHAR) and size in (1, 2, 4, 8):
        return CType.integer(f"uint{size * 8}_t", spelling)
    raise Unsupported(f"{name} ({size * 8}-bit), which has no exact Python binding")


def _record_kind(die: DIE) -> str:
    return "union" if die.tag == "DW_TAG_union_type" else "struct"


def _is_va_list(die: DIE) -> bool:
    """Whether a type is C's ``va_list`` (a typedef of that name, or the compiler's record behind it)."""
    current: Optional[DIE] = die
    for _ in range(16):
        if current is None:
            return False
        if _name(current) in VA_LIST_NAMES:
            return True
        if current.tag not in _QUALIFIERS and current.tag not in ("DW_TAG_typedef", "DW_TAG_array_type"):
            return False
        current = current.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in current.attributes else None
    return False


def _bit_offset(member: DIE, size: int) -> int:
    """A bit-field's position in bits from the start of its record (little-endian numbering)."""
    attrs = member.attributes
    if "DW_AT_data_bit_offset" in attrs:  # DWARF 4 and later
        return int(attrs["DW_AT_data_bit_offset"].value)
    location = attrs.get("DW_AT_data_member_location")
    base = location.value * 8 if location is not None and isinstance(location.value, int) else 0
    if "DW_AT_bit_offset" in attrs:  # DWARF 2/3: counted from the storage unit's most significant bit
        unit = attrs["DW_AT_byte_size"].value if "DW_AT_byte_size" in attrs else size
        return base + unit * 8 - int(attrs["DW_AT_bit_offset"].value) - int(attrs["DW_AT_bit_size"].value)
    return base


def _origin(die: DIE) -> tuple[Optional[str], DIE]:
    """A DIE's name and the DIE that declares it (following abstract_origin/specification)."""
    origin = die
    for _ in range(8):
        name = _name(origin)
        if name:
            return name, origin
        for attr in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if attr in origin.attributes:
                origin = origin.get_DIE_from_attribute(attr)
                break
        else:
            return None, origin
    return None, origin


def _qualified_name(die: DIE) -> str:
    """``outer::Inner``: a C++ type's name with its enclosing namespaces and classes."""
    parts = [_name(die) or "(anonymous)"]
    parent = die.get_parent()
    while parent is not None and parent.tag in ("DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type"):
        parts.insert(0, _name(parent) or "(anonymous namespace)")
        parent = parent.get_parent()
    return "::".join(parts)


def _subprograms(die: DIE) -> Iterator[DIE]:
    # Top-level functions, and those inside namespaces (Rust puts exports in the crate's).
    for child in die.iter_children():
        if child.tag == "DW_TAG_subprogram":
            yield child
        elif child.tag in ("DW_TAG_namespace", "DW_TAG_module"):
            yield from _subprograms(child)


def _has_types(cu: CompileUnit) -> bool:
    return any(die.tag == "DW_TAG_base_type" for die in cu.iter_DIEs())


def _lang_is_c(cu: Any) -> bool:
    lang = cu.get_top_DIE().attributes.get("DW_AT_language")
    # DW_LANG_C89=0x1, C=0x2, C99=0xc, C11=0x1d, C17=0x2c
    return lang is None or lang.value in (0x1, 0x2, 0xC, 0x1D, 0x2C)


def _lang_is_cxx(cu: Any) -> bool:
    lang = cu.get_top_DIE().attributes.get("DW_AT_language")
    # DW_LANG_C_plus_plus=0x4, C_plus_plus_03=0x19, _11=0x1a, _14=0x21, (DWARF 6) _17=0x2a, _20=0x2b
    return lang is not None and lang.value in (0x4, 0x19, 0x1A, 0x21, 0x2A, 0x2B)


def _is_runtime_symbol(name: str) -> bool:
    return name in {"_init", "_fini"} or name.startswith("__")


def _file_table(dwarf: DWARFInfo, cu: CompileUnit) -> list[Optional[Path]]:
    """File index -> path, in the numbering DW_AT_decl_file uses for this CU."""
    program = dwarf.line_program_for_CU(cu)
    if program is None:
        return []
    top = cu.get_top_DIE()
    comp_dir = top.attributes["DW_AT_comp_dir"].value.decode() if "DW_AT_comp_dir" in top.attributes else ""
    version = program.header["version"]
    directories = [d.decode("utf-8", "replace") for d in program["include_directory"]]
    paths: list[Optional[Path]] = [] if version >= 5 else [None]
    for entry in program["file_entry"]:
        name = entry.name.decode("utf-8", "replace")
        if version >= 5:
            directory = directories[entry.dir_index] if entry.dir_index < len(directories) else ""
        else:
            directory = comp_dir if entry.dir_index == 0 else directories[entry.dir_index - 1]
        path = Path(comp_dir, directory, name)
        paths.append(path)
    return paths
