"""A linked C library's exports and DWARF read directly, for :mod:`nativeimport.dwarf`, without pyelftools.

pyelftools costs ~25 ms to import and reads a small library in ~10 ms, most
of a new small module's import beside the compiler. The common case is much
narrower than what it handles: a little-endian ELF64 shared library, 32-bit
DWARF 2 to 5 as GCC writes it for C, uncompressed, no relocations, no type or
split units. This module reads that case into objects shaped as pyelftools'
(``tag``, ``attributes[...].value``/``.form``, ``iter_children()``,
``get_DIE_from_attribute()``, ...) so the one reader in ``dwarf`` serves both.
Anything else raises :class:`Unreadable`, and ``dwarf`` reads the library with
pyelftools as before: this is a fast path, never the only one.

Values follow pyelftools' conventions: strings are bytes, blocks and
expressions lists of ints, ``DW_FORM_dataN`` unsigned, ``DW_FORM_sdata``
signed, flags bools, unit-relative references unit-relative.
"""

from __future__ import annotations

import struct
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, Optional

__all__ = ["Library", "Unreadable"]


class Unreadable(Exception):
    """Outside the case this module reads: the caller falls back to pyelftools."""


_C_LANGUAGES = frozenset({0x1, 0x2, 0xC, 0x1D, 0x2C})  # DW_LANG_C89, C, C99, C11, C17
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
_SHF_COMPRESSED = 0x800
_SHT_RELA, _SHT_REL = 4, 9
_STT_FUNC, _STB_GLOBAL, _STB_WEAK, _STV_DEFAULT = 2, 1, 2, 0

# The names ``dwarf`` looks up; other codes get a made-up name no lookup matches.
_TAGS = {
    0x01: "DW_TAG_array_type", 0x02: "DW_TAG_class_type", 0x04: "DW_TAG_enumeration_type",
    0x05: "DW_TAG_formal_parameter", 0x0D: "DW_TAG_member", 0x0F: "DW_TAG_pointer_type",
    0x10: "DW_TAG_reference_type", 0x11: "DW_TAG_compile_unit", 0x13: "DW_TAG_structure_type",
    0x15: "DW_TAG_subroutine_type", 0x16: "DW_TAG_typedef", 0x17: "DW_TAG_union_type",
    0x18: "DW_TAG_unspecified_parameters", 0x1E: "DW_TAG_module", 0x21: "DW_TAG_subrange_type",
    0x24: "DW_TAG_base_type", 0x26: "DW_TAG_const_type", 0x28: "DW_TAG_enumerator", 0x2E: "DW_TAG_subprogram",
    0x34: "DW_TAG_variable", 0x35: "DW_TAG_volatile_type", 0x37: "DW_TAG_restrict_type",
    0x39: "DW_TAG_namespace", 0x3B: "DW_TAG_unspecified_type", 0x42: "DW_TAG_rvalue_reference_type",
    0x47: "DW_TAG_atomic_type",
}
_ATTRIBUTES = {
    0x03: "DW_AT_name", 0x0B: "DW_AT_byte_size", 0x0D: "DW_AT_bit_size", 0x0C: "DW_AT_bit_offset",
    0x10: "DW_AT_stmt_list", 0x11: "DW_AT_low_pc", 0x12: "DW_AT_high_pc", 0x13: "DW_AT_language",
    0x1B: "DW_AT_comp_dir", 0x1C: "DW_AT_const_value", 0x27: "DW_AT_prototyped", 0x2F: "DW_AT_upper_bound",
    0x31: "DW_AT_abstract_origin", 0x37: "DW_AT_count", 0x38: "DW_AT_data_member_location",
    0x3A: "DW_AT_decl_file", 0x3B: "DW_AT_decl_line", 0x3C: "DW_AT_declaration", 0x3E: "DW_AT_encoding",
    0x3F: "DW_AT_external", 0x47: "DW_AT_specification", 0x49: "DW_AT_type", 0x55: "DW_AT_ranges",
    0x6B: "DW_AT_data_bit_offset", 0x6E: "DW_AT_linkage_name", 0x72: "DW_AT_str_offsets_base",
    0x73: "DW_AT_addr_base", 0x74: "DW_AT_rnglists_base",
}
_FORMS = {
    0x01: "DW_FORM_addr", 0x03: "DW_FORM_block2", 0x04: "DW_FORM_block4", 0x05: "DW_FORM_data2",
    0x06: "DW_FORM_data4", 0x07: "DW_FORM_data8", 0x08: "DW_FORM_string", 0x09: "DW_FORM_block",
    0x0A: "DW_FORM_block1", 0x0B: "DW_FORM_data1", 0x0C: "DW_FORM_flag", 0x0D: "DW_FORM_sdata",
    0x0E: "DW_FORM_strp", 0x0F: "DW_FORM_udata", 0x10: "DW_FORM_ref_addr", 0x11: "DW_FORM_ref1",
    0x12: "DW_FORM_ref2", 0x13: "DW_FORM_ref4", 0x14: "DW_FORM_ref8", 0x15: "DW_FORM_ref_udata",
    0x17: "DW_FORM_sec_offset", 0x18: "DW_FORM_exprloc", 0x19: "DW_FORM_flag_present",
    0x1A: "DW_FORM_strx", 0x1B: "DW_FORM_addrx", 0x1E: "DW_FORM_data16", 0x1F: "DW_FORM_line_strp",
    0x21: "DW_FORM_implicit_const", 0x25: "DW_FORM_strx1", 0x26: "DW_FORM_strx2", 0x27: "DW_FORM_strx3",
    0x28: "DW_FORM_strx4", 0x29: "DW_FORM_addrx1", 0x2A: "DW_FORM_addrx2", 0x2B: "DW_FORM_addrx3",
    0x2C: "DW_FORM_addrx4",
}
_UNIT_RELATIVE = frozenset({0x11, 0x12, 0x13, 0x14, 0x15})  # ref1..ref8, ref_udata
_STRX = {0x1A: 0, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4}  # form -> index width (0: uleb)
_ADDRX = {0x1B: 0, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4}


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _sleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (result - (1 << shift) if byte & 0x40 else result), pos


def _cstring(data: Any, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\0", pos)  # bytes or an mmap (which has no index())
    if end < 0:
        raise Unreadable("an unterminated string")
    return bytes(data[pos:end]), end + 1


class Attribute:
    """One attribute's value and form name, as pyelftools gives them."""

    __slots__ = ("form", "value")

    def __init__(self, form: str, value: Any) -> None:
        self.form = form
        self.value = value


class DIE:
    """A debugging information entry, shaped as pyelftools' ``DIE`` for what ``dwarf`` asks of it."""

    __slots__ = ("_children", "_parent", "attributes", "cu", "offset", "tag")

    def __init__(self, cu: Unit, offset: int, tag: str, attributes: dict[str, Attribute],
                 parent: Optional[DIE]) -> None:
        self.cu = cu
        self.offset = offset
        self.tag = tag
        self.attributes = attributes
        self._parent = parent
        self._children: list[DIE] = []

    def iter_children(self) -> Iterator[DIE]:
        return iter(self._children)

    def get_parent(self) -> Optional[DIE]:
        return self._parent

    def get_DIE_from_attribute(self, name: str) -> DIE:
        attribute = self.attributes[name]
        offset = attribute.value
        if attribute.form in ("DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata"):
            offset += self.cu.cu_offset
        elif attribute.form != "DW_FORM_ref_addr":
            raise Unreadable(f"{name} is no reference ({attribute.form})")
        return self.cu.dwarf.die_at(offset)


class Unit:
    """A compilation unit: its DIEs, parsed when it is read."""

    def __init__(self, dwarf: Dwarf, offset: int, version: int, abbrev_offset: int, dies_start: int,
                 end: int) -> None:
        self.dwarf = dwarf
        self.cu_offset = offset
        self.version = version
        self.abbrev_offset = abbrev_offset
        self.dies_start = dies_start
        self.end = end
        self.dies: list[DIE] = []
        self.addr_base = 8  # DW_AT_addr_base of its top DIE (DWARF 5), once parsed

    def get_top_DIE(self) -> DIE:
        return self.dies[0]

    def iter_DIEs(self) -> Iterator[DIE]:
        return iter(self.dies)


class LineProgram:
    """The header of a unit's line program: its version, directories and files (pyelftools' shape)."""

    def __init__(self, version: int, directories: list[bytes], files: list[FileEntry]) -> None:
        self.header = {"version": version}
        self._fields: dict[str, Any] = {"include_directory": directories, "file_entry": files}

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]


class FileEntry:
    __slots__ = ("dir_index", "name")

    def __init__(self, name: bytes, dir_index: int) -> None:
        self.name = name
        self.dir_index = dir_index


class Dwarf:
    """The debug sections of one library: every unit parsed up front (so a form this module does not
    read is found before ``dwarf`` starts, not halfway)."""

    def __init__(self, sections: dict[str, bytes]) -> None:
        self.sections = sections
        self.info = sections[".debug_info"]
        self.units: list[Unit] = []
        self._by_offset: dict[int, DIE] = {}
        self._abbreviations: dict[int, dict[int, tuple[str, bool, list[tuple[int, int, int]]]]] = {}
        pos = 0
        while pos < len(self.info):
            unit = self._unit_header(pos)
            self._parse(unit)
            self.units.append(unit)
            pos = unit.end

    # -- pyelftools' DWARFInfo, as ``dwarf`` uses it --------------------------------------------
    def iter_CUs(self) -> Iterator[Unit]:
        return iter(self.units)

    def get_aranges(self) -> None:
        return None  # every unit is read: C libraries have few

    def get_CU_at(self, offset: int) -> Unit:
        for unit in self.units:
            if unit.cu_offset == offset:
                return unit
        raise Unreadable(f"no unit at {offset}")

    def die_at(self, offset: int) -> DIE:
        try:
            return self._by_offset[offset]
        except KeyError:
            raise Unreadable(f"no DIE at {offset}") from None

    def is_c_only(self) -> bool:
        """Whether every unit is C (other languages' debug info is left to pyelftools)."""
        for unit in self.units:
            language = unit.get_top_DIE().attributes.get("DW_AT_language")
            if language is None or language.value not in _C_LANGUAGES:
                return False
        return bool(self.units)

    def range_starts(self, die: DIE) -> set[int]:
        """Where each range of ``die``'s ``DW_AT_ranges`` starts (absolute addresses)."""
        attribute = die.attributes["DW_AT_ranges"]
        if attribute.form != "DW_FORM_sec_offset" and not attribute.form.startswith("DW_FORM_data"):
            raise Unreadable(f"ranges given as {attribute.form}")
        top = die.cu.get_top_DIE().attributes
        base = top["DW_AT_low_pc"].value if "DW_AT_low_pc" in top else 0
        if die.cu.version >= 5:
            return self._rnglist_starts(attribute.value, base, die.cu)
        data = self.sections.get(".debug_ranges")
        if data is None:
            raise Unreadable("no .debug_ranges")
        starts: set[int] = set()
        pos = attribute.value
        while True:
            begin, end = _U64.unpack_from(data, pos)[0], _U64.unpack_from(data, pos + 8)[0]
            pos += 16
            if begin == 0 and end == 0:
                return starts
            if begin == 0xFFFFFFFFFFFFFFFF:
                base = end
            else:
                starts.add(base + begin)

    def _rnglist_starts(self, pos: int, base: int, unit: Unit) -> set[int]:
        data = self.sections.get(".debug_rnglists")
        if data is None:
            raise Unreadable("no .debug_rnglists")
        starts: set[int] = set()
        while True:
            kind = data[pos]
            pos += 1
            if kind == 0:  # DW_RLE_end_of_list
                return starts
            if kind == 1:  # base_addressx
                index, pos = _uleb(data, pos)
                base = self._address(unit, index)
            elif kind in (2, 3):  # startx_endx, startx_length
                index, pos = _uleb(data, pos)
                _, pos = _uleb(data, pos)
                starts.add(self._address(unit, index))
            elif kind == 4:  # offset_pair
                begin, pos = _uleb(data, pos)
                _, pos = _uleb(data, pos)
                starts.add(base + begin)
            elif kind == 5:  # base_address
                base = _U64.unpack_from(data, pos)[0]
                pos += 8
            elif kind == 6:  # start_end
                starts.add(_U64.unpack_from(data, pos)[0])
                pos += 16
            elif kind == 7:  # start_length
                starts.add(_U64.unpack_from(data, pos)[0])
                _, pos = _uleb(data, pos + 8)
            else:
                raise Unreadable(f"range list entry kind {kind}")

    def line_program_for_CU(self, unit: Unit) -> Optional[LineProgram]:
        top = unit.get_top_DIE().attributes
        data = self.sections.get(".debug_line")
        if "DW_AT_stmt_list" not in top or data is None:
            return None
        return self._line_program(data, top["DW_AT_stmt_list"].value)

    # -- parsing ------------------------------------------------------------------------------------
    def _unit_header(self, pos: int) -> Unit:
        data = self.info
        length = _U32.unpack_from(data, pos)[0]
        if length >= 0xFFFFFFF0:
            raise Unreadable("64-bit DWARF")
        end = pos + 4 + length
        version = _U16.unpack_from(data, pos + 4)[0]
        if version == 5:
            unit_type, address_size = data[pos + 6], data[pos + 7]
            abbrev_offset = _U32.unpack_from(data, pos + 8)[0]
            start = pos + 12
            if unit_type != 1:  # DW_UT_compile: not a type, partial, skeleton or split unit
                raise Unreadable(f"unit type {unit_type}")
        elif 2 <= version <= 4:
            abbrev_offset = _U32.unpack_from(data, pos + 6)[0]
            address_size = data[pos + 10]
            start = pos + 11
        else:
            raise Unreadable(f"DWARF version {version}")
        if address_size != 8:
            raise Unreadable(f"address size {address_size}")
        return Unit(self, pos, version, abbrev_offset, start, end)

    def _abbreviations_at(self, offset: int) -> dict[int, tuple[str, bool, list[tuple[int, int, int]]]]:
        table = self._abbreviations.get(offset)
        if table is not None:
            return table
        data = self.sections.get(".debug_abbrev")
        if data is None:
            raise Unreadable("no .debug_abbrev")
        table = {}
        pos = offset
        while True:
            code, pos = _uleb(data, pos)
            if code == 0:
                break
            tag, pos = _uleb(data, pos)
            has_children = bool(data[pos])
            pos += 1
            specs = []
            while True:
                name, pos = _uleb(data, pos)
                form, pos = _uleb(data, pos)
                if name == 0 and form == 0:
                    break
                implicit = 0
                if form == 0x21:  # DW_FORM_implicit_const: the value is in the abbreviation
                    implicit, pos = _sleb(data, pos)
                specs.append((name, form, implicit))
            table[code] = (_TAGS.get(tag, f"DW_TAG_0x{tag:x}"), has_children, specs)
        self._abbreviations[offset] = table
        return table

    def _parse(self, unit: Unit) -> None:
        abbreviations = self._abbreviations_at(unit.abbrev_offset)
        data = self.info
        pos = unit.dies_start
        parents: list[DIE] = []
        bases: dict[str, int] = {}
        deferred: list[tuple[Attribute, int, int]] = []  # strx/addrx values, resolved once the bases are known
        while pos < unit.end:
            offset = pos
            code, pos = _uleb(data, pos)
            if code == 0:
                if parents:
                    parents.pop()
                continue
            try:
                tag, has_children, specs = abbreviations[code]
            except KeyError:
                raise Unreadable(f"abbreviation {code}") from None
            attributes: dict[str, Attribute] = {}
            for name, form, implicit in specs:
                if form == 0x16:  # DW_FORM_indirect: the form comes first
                    form, pos = _uleb(data, pos)
                value, pos = self._value(data, pos, form, unit, implicit)
                attribute = Attribute(_FORMS[form], value)
                if form in _STRX or form in _ADDRX:
                    deferred.append((attribute, form, value))
                attributes[_ATTRIBUTES.get(name, f"DW_AT_0x{name:x}")] = attribute
            parent = parents[-1] if parents else None
            die = DIE(unit, offset, tag, attributes, parent)
            if parent is not None:
                parent._children.append(die)
            if not unit.dies:
                language = attributes.get("DW_AT_language")
                if language is None or language.value not in _C_LANGUAGES:
                    raise Unreadable("not C")  # before reading the rest: Rust's units are megabytes
                for key in ("DW_AT_str_offsets_base", "DW_AT_addr_base"):
                    if key in attributes:
                        bases[key] = attributes[key].value
            unit.dies.append(die)
            self._by_offset[offset] = die
            if has_children:
                parents.append(die)
        for attribute, form, index in deferred:
            if form in _STRX:
                attribute.value = self._indexed_string(index, bases.get("DW_AT_str_offsets_base", 8))
            else:
                attribute.value = self._indexed_address(index, bases.get("DW_AT_addr_base", 8))
        if not unit.dies:
            raise Unreadable("an empty unit")
        unit.addr_base = bases.get("DW_AT_addr_base", 8)

    def _value(self, data: bytes, pos: int, form: int, unit: Unit, implicit: int) -> tuple[Any, int]:
        if form in (0x01, 0x10) and not (form == 0x10 and unit.version > 2):  # addr, DWARF 2's ref_addr
            return _U64.unpack_from(data, pos)[0], pos + 8
        if form in (0x0B, 0x11, 0x0C):  # data1, ref1, flag
            value = data[pos]
            return (value != 0 if form == 0x0C else value), pos + 1
        if form in (0x05, 0x12):  # data2, ref2
            return _U16.unpack_from(data, pos)[0], pos + 2
        if form in (0x06, 0x13, 0x17, 0x10, 0x0E, 0x1F):  # data4, ref4, sec_offset, ref_addr, strp, line_strp
            value = _U32.unpack_from(data, pos)[0]
            if form == 0x0E:
                return self._string(".debug_str", value), pos + 4
            if form == 0x1F:
                return self._string(".debug_line_str", value), pos + 4
            return value, pos + 4
        if form in (0x07, 0x14):  # data8, ref8
            return _U64.unpack_from(data, pos)[0], pos + 8
        if form in (0x0F, 0x15):  # udata, ref_udata
            return _uleb(data, pos)
        if form == 0x0D:
            return _sleb(data, pos)
        if form == 0x08:
            return _cstring(data, pos)
        if form == 0x19:
            return True, pos
        if form == 0x21:
            return implicit, pos
        if form in (0x18, 0x09):  # exprloc, block: a uleb length
            length, pos = _uleb(data, pos)
            return list(data[pos:pos + length]), pos + length
        if form in (0x0A, 0x03, 0x04):  # block1, block2, block4
            width = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
            length = int.from_bytes(data[pos:pos + width], "little")
            pos += width
            return list(data[pos:pos + length]), pos + length
        if form in _STRX or form in _ADDRX:
            width = _STRX.get(form, _ADDRX.get(form, 0))
            if width == 0:
                return _uleb(data, pos)
            return int.from_bytes(data[pos:pos + width], "little"), pos + width
        raise Unreadable(f"form 0x{form:x}")

    def _string(self, section: str, offset: int) -> bytes:
        data = self.sections.get(section)
        if data is None:
            raise Unreadable(f"no {section}")
        return _cstring(data, offset)[0]

    def _indexed_string(self, index: int, base: int) -> bytes:
        offsets = self.sections.get(".debug_str_offsets")
        if offsets is None:
            raise Unreadable("no .debug_str_offsets")
        return self._string(".debug_str", _U32.unpack_from(offsets, base + 4 * index)[0])

    def _indexed_address(self, index: int, base: int) -> int:
        addresses = self.sections.get(".debug_addr")
        if addresses is None:
            raise Unreadable("no .debug_addr")
        return int(_U64.unpack_from(addresses, base + 8 * index)[0])

    def _address(self, unit: Unit, index: int) -> int:
        return self._indexed_address(index, unit.addr_base)

    def _line_program(self, data: bytes, pos: int) -> LineProgram:
        if _U32.unpack_from(data, pos)[0] >= 0xFFFFFFF0:
            raise Unreadable("64-bit DWARF line program")
        version = _U16.unpack_from(data, pos + 4)[0]
        pos += 6
        if version >= 5:
            pos += 2  # address_size, segment_selector_size
        pos += 4  # header_length
        pos += 1 + (1 if version >= 4 else 0) + 3  # min_inst_length, [max_ops], default_is_stmt, line_base, range
        opcode_base = data[pos]
        pos += opcode_base  # opcode_base and the standard opcodes' lengths
        if version >= 5:
            directories, pos = self._entries(data, pos)
            files, pos = self._entries(data, pos)
            return LineProgram(version, [d.name for d in directories], files)
        if not 2 <= version <= 4:
            raise Unreadable(f"line program version {version}")
        names: list[bytes] = []
        while data[pos]:
            name, pos = _cstring(data, pos)
            names.append(name)
        pos += 1
        entries = []
        while data[pos]:
            name, pos = _cstring(data, pos)
            directory, pos = _uleb(data, pos)
            _, pos = _uleb(data, pos)  # modification time
            _, pos = _uleb(data, pos)  # length
            entries.append(FileEntry(name, directory))
        return LineProgram(version, names, entries)

    def _entries(self, data: bytes, pos: int) -> tuple[list[FileEntry], int]:
        """A DWARF 5 directory or file table: its format, then its entries (path and directory index)."""
        count = data[pos]
        pos += 1
        formats = []
        for _ in range(count):
            content, pos = _uleb(data, pos)
            form, pos = _uleb(data, pos)
            formats.append((content, form))
        entries, pos = _uleb(data, pos)
        found = []
        for _ in range(entries):
            name, directory = b"", 0
            for content, form in formats:
                if form == 0x08:
                    value: Any
                    value, pos = _cstring(data, pos)
                elif form in (0x1F, 0x0E):
                    value = self._string(".debug_line_str" if form == 0x1F else ".debug_str",
                                         _U32.unpack_from(data, pos)[0])
                    pos += 4
                elif form in (0x0B, 0x05, 0x06, 0x07):
                    width = {0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8}[form]
                    value = int.from_bytes(data[pos:pos + width], "little")
                    pos += width
                elif form == 0x0F:
                    value, pos = _uleb(data, pos)
                elif form == 0x1E:  # data16: an MD5
                    value, pos = data[pos:pos + 16], pos + 16
                elif form == 0x09:
                    length, pos = _uleb(data, pos)
                    value, pos = data[pos:pos + length], pos + length
                else:
                    raise Unreadable(f"line table form 0x{form:x}")
                if content == 1:  # DW_LNCT_path
                    name = value
                elif content == 2:  # DW_LNCT_directory_index
                    directory = value
            found.append(FileEntry(name, directory))
        return found, pos


class Library:
    """A little-endian ELF64 library with uncompressed, unrelocated debug sections; else :class:`Unreadable`."""

    def __init__(self, path: Path) -> None:
        import mmap

        with open(path, "rb") as stream:  # mapped, not read: only the sections used are copied
            try:
                data: Any = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError:  # an empty file
                raise Unreadable("an empty file") from None
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise Unreadable("not a little-endian ELF64 file")
        if _U16.unpack_from(data, 16)[0] not in (2, 3):  # ET_EXEC, ET_DYN: linked, so nothing to relocate
            raise Unreadable("not a linked file")
        table = _U64.unpack_from(data, 0x28)[0]
        size, count, names_index = (_U16.unpack_from(data, at)[0] for at in (0x3A, 0x3C, 0x3E))
        if count == 0 or names_index >= count or size != _SECTION.size:
            raise Unreadable("an unusual section table")
        headers = [_SECTION.unpack_from(data, table + i * size) for i in range(count)]
        names = headers[names_index]
        self.sections: dict[str, tuple[int, int, int, int, int]] = {}  # name -> type, flags, offset, size, link
        links: list[int] = []
        for name, kind, flags, _, offset, length, link, info, _, _ in headers:
            text = _cstring(data, names[4] + name)[0].decode("latin-1")
            self.sections[text] = (kind, flags, offset, length, link)
            if kind in (_SHT_RELA, _SHT_REL):
                links.append(info)
        self.data = data
        self.headers = headers
        debug = [n for n in self.sections if n.startswith((".debug_", ".zdebug_"))]
        relocated = {_cstring(data, names[4] + headers[i][0])[0].decode("latin-1") for i in links if i < count}
        for name in debug:
            if name.startswith(".zdebug_") or self.sections[name][1] & _SHF_COMPRESSED or name in relocated:
                raise Unreadable(f"{name} is compressed or relocated")

    def _bytes(self, name: str) -> Optional[bytes]:
        section = self.sections.get(name)
        if section is None or section[0] == 8:  # SHT_NOBITS
            return None
        return bytes(self.data[section[2]:section[2] + section[3]])

    def exported_functions(self) -> dict[str, int]:
        """Defined, default-visibility GLOBAL/WEAK functions of ``.dynsym``: name -> address."""
        symbols = self.sections.get(".dynsym")
        if symbols is None:
            return {}
        strings = self.headers[symbols[4]]
        exports: dict[str, int] = {}
        for at in range(symbols[2] + _SYMBOL.size, symbols[2] + symbols[3], _SYMBOL.size):  # entry 0 is null
            name, info, other, index, value, _ = _SYMBOL.unpack_from(self.data, at)
            if (name and index != 0 and info & 0xF == _STT_FUNC and info >> 4 in (_STB_GLOBAL, _STB_WEAK)
                    and other & 0x3 == _STV_DEFAULT):
                exports[_cstring(self.data, strings[4] + name)[0].decode("utf-8", "replace")] = value
        return exports

    def dwarf(self) -> Dwarf:
        """The debug info; :class:`Unreadable` if there is none (pyelftools then says so as before)."""
        sections = {}
        for name in (".debug_info", ".debug_abbrev", ".debug_str", ".debug_line_str", ".debug_line",
                     ".debug_ranges", ".debug_rnglists", ".debug_str_offsets", ".debug_addr"):
            found = self._bytes(name)
            if found is not None:
                sections[name] = found
        if ".debug_info" not in sections:
            raise Unreadable("no .debug_info")
        return Dwarf(sections)
