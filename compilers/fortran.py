"""The Fortran driver: ``.f90``/``.f95``/``.f03``/``.f08`` files, whose ``bind(C)`` procedures become Python functions.

Where the interface comes from. gfortran's DWARF names each dummy argument and
its Fortran type, but not how it is passed: ``integer(c_int), value :: n`` and
``integer(c_int), intent(in) :: n`` (a pointer) carry the same type. The C
interface is what gfortran itself prints with ``-fc-prototypes``, the header a
C caller would include (``double total (const double *xs, int n);``), so the
driver reads that, and the DWARF only for what the header does not say: where
each procedure is declared (for its doc comment), which dummies are scalars
rather than arrays (both ``const double *``), and which are passed by
descriptor, which the header misrenders as plain pointers.

How Python passes Fortran arguments (the C driver's rules, applied to the header):

- ``value`` scalars are plain numbers; ``logical(c_bool)`` is a bool.
- Every other scalar is passed by reference. An ``intent(in)`` one (``const T *``
  in gfortran's header) takes a plain number: the library exports, under the
  procedure's name, a small C shim taking the number by value and handing
  Fortran the address of its copy (the Fortran procedure is renamed in its
  object file with objcopy), so ``help()`` shows ``int doubled(int i)``. An
  ``optional`` one stays a pointer: None leaves it absent, else a one-element
  buffer. ``intent(out)``, ``intent(inout)`` and intent-less scalars are
  writable pointers: a one-element writable buffer (``array.array("i", [0])``,
  a numpy array), where the procedure's writes show; a plain number is refused
  with a TypeError.
- Assumed-size (``xs(*)``) and explicit-shape (``xs(n)``, ``m(n, k)``) arrays
  take a buffer with zero copy: numpy arrays, array.array, bytearray, checked
  for item kind and size. The binders take C-contiguous buffers, as for C: a
  1-D array is both orders; a Fortran-ordered 2-D numpy array ``m`` is refused
  ("must be C-contiguous"), and ``m.T`` (or ``m.ravel(order="F")``), a
  C-contiguous view of the same memory, passes it without a copy in exactly
  the order Fortran reads; a C-ordered matrix is passed as is, so Fortran
  reads its transpose; a strided view is refused.
- ``bind(C)`` derived types are structs (by value with ``value``, by
  reference otherwise).
- Assumed-shape (``xs(:)``), allocatable, pointer and ``character(len=*)``
  dummies are passed as Fortran 2018 descriptors (``CFI_cdesc_t``), which have
  no binding here: such a procedure is left out saying which argument.
- A procedure without ``bind(C)`` has no C interface (its symbol is
  ``__mod_MOD_name`` or ``name_``): left out with that reason.

Module files (``.mod``) go to a private scratch directory (``-J``), never
beside the source. gfortran needs ``-cpp`` to write a depfile, and ``-cpp``
would preprocess the source (``linux`` is a macro); so the build itself runs
without it, and a second, syntax-only pass with ``-cpp -undef -M`` lists the
included files and used modules while printing the header.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from nativeimport.driver import (
    BuildRequest,
    BuildResult,
    Driver,
    Toolchain,
    find_program,
    parse_depfile,
    run_tool,
    tool_version,
)
from nativeimport.errors import CompileError, InterfaceError, ToolchainNotFound
from nativeimport.interface import CType, Field, Function, Interface, Param, Skipped, Struct

__all__ = ["FortranDriver", "parse_prototypes"]

INSTALL_HINT = "Install gfortran (Debian/Ubuntu: apt-get install gfortran; Fedora: dnf install gcc-gfortran)."
COMPILE_FLAGS = ("-g", "-O2", "-fPIC", "-fdiagnostics-color=never")
#: The renamed Fortran procedures behind by-value shims (see _by_value_inputs).
SHIM_PREFIX = "__nativeimport_fortran_"

#: C spellings gfortran's header uses -> canonical type (LP64, as the library is built).
_SCALARS: dict[str, CType] = {
    "signed char": CType.integer("int8_t", "signed char"),
    "char": CType.integer("int8_t", "char"),
    "short": CType.integer("int16_t", "short"),
    "int": CType.integer("int32_t", "int"),
    "long": CType.integer("int64_t", "long"),
    "long long": CType.integer("int64_t", "long long"),
    "size_t": CType.integer("uint64_t", "size_t"),
    "ptrdiff_t": CType.integer("int64_t", "ptrdiff_t"),
    "intptr_t": CType.integer("int64_t", "intptr_t"),
    "float": CType.floating("float"),
    "double": CType.floating("double"),
    "_Bool": CType.boolean("_Bool"),
}
for _bits in (8, 16, 32, 64):
    for _prefix in ("int", "int_least", "int_fast"):
        _SCALARS[f"{_prefix}{_bits}_t"] = CType.integer(f"int{_bits}_t", f"{_prefix}{_bits}_t")
_UNBOUND = {
    "long double": "long double (80-bit), which has no exact Python binding",
    "long_double": "long double (80-bit), which has no exact Python binding",
    "__GFORTRAN_FLOAT_COMPLEX": "complex, which has no C ABI binding here",
    "__GFORTRAN_DOUBLE_COMPLEX": "complex, which has no C ABI binding here",
    "__GFORTRAN_LONG_DOUBLE_COMPLEX": "complex, which has no C ABI binding here",
}
_C_KEYWORDS = frozenset({
    "auto", "bool", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "false", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "true", "typedef", "union", "unsigned", "void",
    "volatile", "while", "_Bool", "_Complex", "_Imaginary",
})
_STRUCT = re.compile(r"typedef struct (\w+) \{(.*?)\} \1;", re.S)
_FUNCTION = re.compile(r"^(.+?)\b(\w+) \((.*)\);$")
_DECLARATOR = re.compile(r"^(const )?(.*?)\s*(\*?)\s*(\w+)((?:\[\d+\])*)$")


class Unbound(Exception):
    """A declaration with no faithful binding; the message says why."""


class FortranDriver(Driver):
    """Fortran sources: ``bind(C)`` procedures and ``bind(C)`` derived types."""

    name = "fortran"
    suffixes = (".f90", ".f95", ".f03", ".f08")
    environment = ("FC", "FFLAGS", "LDFLAGS")

    def find_toolchain(self) -> Toolchain:
        command = find_program("FC", ["gfortran"], install_hint=INSTALL_HINT, language="Fortran")
        version = tool_version(command)
        if "GNU Fortran" not in version:
            # The C interface is read from gfortran's -fc-prototypes, which other compilers lack.
            raise ToolchainNotFound(f"{shlex.join(command)} is not gfortran ({version or 'no --version'}); the "
                                    f"Fortran driver reads gfortran's C header. {INSTALL_HINT}")
        return Toolchain("gfortran", command, version)

    def flags(self) -> tuple[str, ...]:
        return (*COMPILE_FLAGS, *_env_flags("FFLAGS"), "|", *_env_flags("LDFLAGS"))

    def tools(self) -> list[Toolchain]:
        return [self.toolchain(), _objcopy()]

    def compile(self, request: BuildRequest) -> BuildResult:
        from elftools.elf.elffile import ELFFile  # heavy: only builds pay for pyelftools

        library = request.output_dir / f"lib{request.library_name}.so"
        work_root = request.scratch_dir / "modules"
        work_root.mkdir(parents=True, exist_ok=True)
        # One directory per build for the .mod files and objects: two builds of modules named
        # alike never share them, and nothing is written beside the source.
        work = Path(tempfile.mkdtemp(dir=work_root))
        what = f"{Path(request.toolchain.path).name} (Fortran compiler)"
        fortran = [*request.toolchain.command]
        cwd, timeout = request.source.parent, request.timeout
        try:
            obj = work / "source.o"
            if request.settings.sources:
                raise CompileError(f"{request.source}: `sources` is not supported for Fortran modules yet; put "
                                   "the procedures in one file, or `include` the others")
            own = request.settings.c_compile_flags()  # -I, -D (with -cpp), flags
            diagnostics = run_tool([*fortran, *COMPILE_FLAGS, *_env_flags("FFLAGS"), *own, "-J", str(work), "-c",
                                    "-o", str(obj), str(request.source)], cwd=cwd, timeout=timeout, what=what)
            header, dependencies = self._header(request, work, what)
            functions, structs, skipped = parse_prototypes(header)
            with open(obj, "rb") as stream:
                procedures = _procedures(ELFFile(stream))
            if functions and not procedures:
                # Without it, a descriptor argument would pass for a plain pointer.
                raise InterfaceError(f"{request.source.name}: built without debug info, which tells scalars, "
                                     "arrays and descriptors apart; remove -g0 from FFLAGS", path=str(request.source))
            functions = [_with_doc(f, procedures, request.source) for f in functions]
            functions, skipped = _drop_descriptor_procedures(functions, procedures, skipped)
            functions, shims = _by_value_inputs(functions, procedures, request.source)
            objects = [obj]
            if shims:
                objects.append(_build_shims(shims, structs, obj, work, fortran, cwd, timeout))
            run_tool([*fortran, "-shared", "-o", str(library), *map(str, objects), *_env_flags("LDFLAGS"),
                      *request.settings.c_link_flags()],
                     cwd=cwd, timeout=timeout, what=f"{what}, linking")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        interface = _checked(functions, structs, skipped, library)
        source = request.source.resolve()
        return BuildResult(
            library=library,
            dependencies=tuple(p for p in dependencies if p.resolve() != source),
            diagnostics=diagnostics,
            interface=interface,
        )

    def _header(self, request: BuildRequest, modules: Path, what: str) -> tuple[str, list[Path]]:
        """gfortran's C header for the source, and the files the source includes or uses."""
        depfile = request.output_dir / "deps.d"
        # -w: the header is read from the output, which must hold nothing else.
        base = [*request.toolchain.command, *_env_flags("FFLAGS"), "-fsyntax-only", "-fc-prototypes", "-w",
                "-J", str(modules), str(request.source)]
        try:
            header = run_tool([*base, "-cpp", "-undef", "-M", "-MF", str(depfile)], cwd=request.source.parent,
                              timeout=request.timeout, what=what)
        except CompileError:
            # The source is not preprocessor-safe: the header without -cpp, and the
            # included files found by reading the source (modules are then not tracked).
            header = run_tool(base, cwd=request.source.parent, timeout=request.timeout, what=what)
            return header, list(_included_files(request.source))
        listed = parse_depfile(depfile.read_text(errors="replace"))
        depfile.unlink()
        found = [Path(p) if Path(p).is_absolute() else request.source.parent / p for p in listed]
        # Our own scratch .mod files are outputs of this build, not inputs.
        return header, [p for p in found if modules not in p.parents]


def _with_doc(function: Function, procedures: dict[str, _Procedure], source: Path) -> Function:
    procedure = procedures.get(function.name)
    if procedure is None:
        return function
    return Function(function.name, function.result, function.params, _doc_above(source, procedure.line))


def _drop_descriptor_procedures(functions: list[Function], procedures: dict[str, _Procedure],
                                skipped: list[Skipped]) -> tuple[list[Function], list[Skipped]]:
    """Leave out procedures taking a descriptor, which gfortran's header renders as a plain pointer.

    The DWARF tells: such a dummy is not among the procedure's arguments under its own name
    (gfortran passes ``_xs``, the descriptor, for ``xs``).
    """
    kept = []
    skipped = list(skipped)
    for function in functions:
        procedure = procedures.get(function.name)
        known = procedure.scalars if procedure is not None else {p.name: True for p in function.params}
        by_descriptor = [p.name for p in function.params if p.name not in known]
        if by_descriptor:
            skipped.append(Skipped(function.name, (
                f"argument {by_descriptor[0]!r} is passed by descriptor (CFI_cdesc_t: assumed-shape, "
                "allocatable, pointer or character(len=*)), which has no binding; declare it assumed-size "
                "(x(*)) or explicit-shape (x(n))")))
        else:
            kept.append(function)
    return kept, skipped


def _by_value_inputs(functions: list[Function], procedures: dict[str, _Procedure],
                     source: Path) -> tuple[list[Function], list[tuple[Function, Function]]]:
    """Give each ``intent(in)`` scalar passed by reference a by-value signature.

    Such a dummy is ``const T *`` in C; the Python caller means a number, so the library exports
    a C shim under the procedure's name taking the number, which passes the Fortran procedure
    (renamed) the address of its copy. An ``optional`` one stays a pointer, so None can omit it.
    Returns the functions as bound and (as bound, as compiled) pairs needing a shim.
    """
    bound, shims = [], []
    for function in functions:
        procedure = procedures.get(function.name)
        if procedure is None:
            bound.append(function)
            continue
        optional = _optional_dummies(source, procedure.line)
        params = []
        for param in function.params:
            pointee = param.type.pointee
            if (param.type.kind == "pointer" and param.type.const and pointee is not None
                    and pointee.kind in ("int", "float", "bool") and procedure.scalars.get(param.name)
                    and param.name.lower() not in optional):
                params.append(Param(param.name, pointee))
            else:
                params.append(param)
        changed = Function(function.name, function.result, tuple(params), function.doc)
        bound.append(changed)
        if changed.params != function.params:
            shims.append((changed, function))
    return bound, shims


def _build_shims(shims: list[tuple[Function, Function]], structs: list[Struct], obj: Path, work: Path,
                 fortran: list[str], cwd: Path, timeout: float) -> Path:
    """Rename the shimmed procedures in ``obj`` and compile their by-value shims; the shims' object."""
    objcopy = _objcopy()
    run_tool([*objcopy.command, *(f"--redefine-sym={bound.name}={SHIM_PREFIX}{bound.name}" for bound, _ in shims),
              str(obj)], cwd=cwd, timeout=timeout, what="objcopy")
    lines = ["#include <stdint.h>", *(s.cdef() for s in structs if s.fields is not None)]
    for bound, compiled in shims:
        # Positional names: a Fortran dummy may be called like a C keyword (double, default).
        original = Function(SHIM_PREFIX + compiled.name, compiled.result,
                            tuple(Param(f"a{i}", p.type) for i, p in enumerate(compiled.params)))
        shim = Function(bound.name, bound.result, tuple(Param(f"a{i}", p.type) for i, p in enumerate(bound.params)))
        arguments = ", ".join(("&" if b.type != c.type else "") + f"a{i}"
                              for i, (b, c) in enumerate(zip(bound.params, compiled.params)))
        call = f"{original.name}({arguments})"
        lines.append(f"extern {original.cdef()}")
        lines.append(f"{shim.cdef()[:-1]} {{ {'' if bound.result.kind == 'void' else 'return '}{call}; }}")
    source = work / "shims.c"
    source.write_text("\n".join(lines) + "\n")
    shims_obj = work / "shims.o"
    run_tool([*fortran, "-O2", "-fPIC", "-c", "-x", "c", str(source), "-o", str(shims_obj)],
             cwd=cwd, timeout=timeout, what="the C compiler, on the by-value shims")
    return shims_obj


def _checked(functions: list[Function], structs: list[Struct], skipped: list[Skipped], library: Path) -> Interface:
    """The Interface, with a reason for every exported symbol that is not bound."""
    from elftools.elf.elffile import ELFFile

    from nativeimport.dwarf import exported_functions

    with open(library, "rb") as stream:
        exported = exported_functions(ELFFile(stream))
    skipped = list(skipped)
    bound = {f.name for f in functions} | {s.name for s in skipped}
    for symbol in sorted(exported):
        if symbol in bound or symbol.startswith(SHIM_PREFIX):
            continue
        reason = _unbound_symbol(symbol)
        if reason is not None:
            skipped.append(Skipped(reason[0], reason[1]))
    functions = [Function(f.name, f.result, tuple(Param(_c_safe(p.name), p.type) for p in f.params), f.doc)
                 for f in functions]
    return Interface(functions=tuple(sorted(functions, key=lambda f: f.name)),
                     structs=tuple(sorted(structs, key=lambda s: s.name)), skipped=tuple(skipped))


def _c_safe(name: str) -> str:
    """A dummy argument's name as a C declaration may use it: Fortran may call one ``double``."""
    return f"{name}_" if name in _C_KEYWORDS else name


def _objcopy() -> Toolchain:
    command = find_program("OBJCOPY", ["objcopy"], language="binutils",
                           install_hint="Install binutils (Debian/Ubuntu: apt-get install binutils).")
    return Toolchain("objcopy", command, tool_version(command))


def parse_prototypes(header: str) -> tuple[list[Function], list[Struct], list[Skipped]]:
    """Functions and structs of a ``gfortran -fc-prototypes`` header; what cannot be bound, and why."""
    structs: dict[str, Struct] = {}
    unbound_structs: dict[str, str] = {}
    for match in _STRUCT.finditer(header):
        name = match.group(1)
        try:
            fields = tuple(_field(d, structs) for d in _declarations(match.group(2)))
        except Unbound as why:
            unbound_structs[name] = f"struct {name}, whose {why}"
            continue
        structs[name] = Struct(name, fields, _natural_size(fields, structs))
    functions: list[Function] = []
    skipped: list[Skipped] = []
    for line in header.splitlines():
        line = line.strip()
        if line.startswith(("#", "typedef", "extern", "}")) or "(" not in line:
            continue
        warning = re.search(r"/\*\s*(.*?)\s*\*/", line)
        line = re.sub(r"\s*/\*.*?\*/\s*", " ", line).replace(" )", ")")
        prototype = _FUNCTION.match(line)
        if prototype is None:
            continue
        result_text, name = prototype.group(1).strip(), prototype.group(2)
        params_text = prototype.group(3).strip()
        try:
            if warning is not None:
                raise Unbound(f"gfortran says: {warning.group(1)}")
            result = _result(result_text, structs, unbound_structs)
            params = []
            for index, declaration in enumerate(_split_params(params_text)):
                params.append(_param(declaration, index, structs, unbound_structs))
        except Unbound as why:
            skipped.append(Skipped(name, str(why)))
            continue
        functions.append(Function(name, result, tuple(params)))
    return functions, list(structs.values()), skipped


def _declarations(body: str) -> Iterator[str]:
    for part in body.split(";"):
        if part.strip():
            yield " ".join(part.split())


def _split_params(text: str) -> list[str]:
    if not text or text == "void":
        return []
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _type(text: str, structs: dict[str, Struct], unbound_structs: dict[str, str]) -> CType:
    text = " ".join(text.split())
    if text in _SCALARS:
        return _SCALARS[text]
    if text in _UNBOUND:
        raise Unbound(_UNBOUND[text])
    if text in structs:
        return CType.struct(text)
    if text == "CFI_cdesc_t":
        raise Unbound("a Fortran 2018 descriptor (CFI_cdesc_t), which has no binding")
    if text in unbound_structs:
        raise Unbound(unbound_structs[text])
    raise Unbound(f"{text}, which has no binding")


def _result(text: str, structs: dict[str, Struct], unbound_structs: dict[str, str]) -> CType:
    if text == "void":
        return CType.void()
    if text.endswith("*"):
        return _pointer(text[:-1].strip(), False, structs, unbound_structs)
    try:
        return _type(text, structs, unbound_structs)
    except Unbound as why:
        raise Unbound(f"its result is {why}") from None


def _param(text: str, index: int, structs: dict[str, Struct], unbound_structs: dict[str, str]) -> Param:
    if "(*" in text:
        pointer = re.search(r"\(\*\s*(\w+)\)", text)
        raise Unbound(f"argument {pointer.group(1) if pointer else index!r} is a procedure pointer (c_funptr)")
    match = _DECLARATOR.match(text)
    if match is None:
        raise Unbound(f"argument {index} ({text}) is not understood")
    const, base, star, name, dims = match.groups()
    try:
        if dims:
            raise Unbound("an array")
        if star:
            return Param(name, _pointer(base, bool(const), structs, unbound_structs))
        return Param(name, _type(base, structs, unbound_structs))
    except Unbound as why:
        raise Unbound(f"argument {name!r} is {why}") from None


def _pointer(base: str, const: bool, structs: dict[str, Struct], unbound_structs: dict[str, str]) -> CType:
    if base == "void":
        return CType.pointer(CType.void(), const=const)
    if base == "char":
        return CType.pointer(CType.char(const), const=const)
    if base in structs:
        return CType.pointer(CType.struct(base), const=const)
    return CType.pointer(_type(base, structs, unbound_structs), const=const)


def _field(text: str, structs: dict[str, Struct]) -> Field:
    match = _DECLARATOR.match(text)
    if match is None:
        raise Unbound(f"member {text!r} is not understood")
    _, base, star, name, dims = match.groups()
    try:
        ctype = _pointer(base, False, structs, {}) if star else _type(base, structs, {})
    except Unbound as why:
        raise Unbound(f"field {name!r} is {why}") from None
    lengths = [int(n) for n in re.findall(r"\[(\d+)\]", dims)]
    if len(lengths) > 1:
        raise Unbound(f"field {name!r} is a multi-dimensional array")
    return Field(_c_safe(name), CType(ctype.kind, ctype.name, ctype.spelling, ctype.pointee, ctype.const,
                             lengths[0] if lengths else 0))


def _natural_size(fields: tuple[Field, ...], structs: dict[str, Struct]) -> int:
    """A bind(C) type's size: C's natural layout, which bind(C) guarantees."""
    offset, alignment = 0, 1
    for field in fields:
        size, align = _size_align(field.type, structs)
        offset = (offset + align - 1) // align * align + size * (field.type.length or 1)
        alignment = max(alignment, align)
    return (offset + alignment - 1) // alignment * alignment


def _size_align(ctype: CType, structs: dict[str, Struct]) -> tuple[int, int]:
    if ctype.kind == "struct":
        inner = structs[ctype.name]
        aligns = [_size_align(f.type, structs)[1] for f in inner.fields or ()]
        return inner.size, max(aligns, default=1)
    return ctype.size, ctype.size or 1


@dataclasses.dataclass(frozen=True)
class _Procedure:
    """What the DWARF says of a procedure: its declaration line, and each dummy: scalar or not."""

    line: int
    scalars: dict[str, bool]


def _procedures(elf: Any) -> dict[str, _Procedure]:
    """The external procedures in the DWARF, by symbol name."""
    procedures: dict[str, _Procedure] = {}
    if not elf.has_dwarf_info():
        return procedures
    for cu in elf.get_dwarf_info().iter_CUs():
        for die in cu.iter_DIEs():
            if die.tag != "DW_TAG_subprogram" or "DW_AT_external" not in die.attributes:
                continue
            # bind(C, name="x") keeps the Fortran name in DW_AT_name and the symbol in the linkage name.
            attr = die.attributes.get("DW_AT_linkage_name") or die.attributes.get("DW_AT_name")
            line = die.attributes.get("DW_AT_decl_line")
            if attr is None or line is None:
                continue
            dummies = {_die_name(c): _is_scalar(c) for c in die.iter_children() if c.tag == "DW_TAG_formal_parameter"}
            procedures[attr.value.decode("utf-8", "replace")] = _Procedure(int(line.value), dummies)
    return procedures


def _is_scalar(die: Any) -> bool:
    """Whether a dummy argument's type is a base type (not an array, not a derived type)."""
    current = die
    for _ in range(16):
        if "DW_AT_type" not in current.attributes:
            return False
        current = current.get_DIE_from_attribute("DW_AT_type")
        if current.tag not in ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type"):
            return bool(current.tag == "DW_TAG_base_type")
    return False


def _optional_dummies(source: Path, line: int) -> set[str]:
    """Names declared ``optional`` in the procedure starting at ``line`` (lower case).

    Read from the source (neither the DWARF nor gfortran's header marks them), statement by
    statement up to the procedure's ``end``.
    """
    try:
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()[line - 1 :]
    except OSError:
        return set()
    names: set[str] = set()
    statement = ""
    for text in lines:
        text = text.split("!", 1)[0].rstrip()
        if text.endswith("&"):
            statement += text[:-1] + " "
            continue
        statement = (statement + text.lstrip().lstrip("&")).strip()
        lowered = statement.lower()
        if re.match(r"end(\s*(function|subroutine)\b|$)", lowered):
            break
        declaration = re.match(r"(.*\boptional\b.*?)::(.*)", lowered)
        if declaration is not None:
            entities = re.sub(r"\([^()]*\)", "", declaration.group(2))
            names.update(e.split("=")[0].strip() for e in entities.split(",") if e.strip())
        statement = ""
    return names


def _die_name(die: Any) -> str:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode("utf-8", "replace") if attr is not None else ""


def _unbound_symbol(symbol: str) -> Optional[tuple[str, str]]:
    """(name, reason) for an exported symbol gfortran's header does not declare, or None to say nothing."""
    module_procedure = re.fullmatch(r"__(\w+?)_MOD_(\w+)", symbol)
    if module_procedure is not None:
        name = module_procedure.group(2)
        if name.startswith("__"):
            return None  # compiler-generated (a derived type's copy or finaliser)
        return name, (f"module procedure {module_procedure.group(1)}::{name} is not bind(C), so it has no C "
                      "interface (Fortran passes its arguments its own way); add bind(C) to export it")
    if re.fullmatch(r"[a-z]\w*_", symbol):
        return symbol[:-1], ("it is an external procedure without bind(C), so it has no C interface; "
                             "add bind(C) to export it")
    if symbol.startswith("_") or symbol in ("_init", "_fini"):
        return None
    return symbol, "gfortran's C header does not declare it"


def _doc_above(source: Path, line: int) -> str:
    """The ``!`` comment lines directly above line ``line`` of a Fortran source."""
    try:
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    index = line - 2
    comment: list[str] = []
    while 0 <= index < len(lines) and lines[index].strip().startswith("!"):
        comment.insert(0, lines[index].strip().lstrip("!>").strip())
        index -= 1
    return "\n".join(comment).strip()


def _included_files(source: Path) -> Iterator[Path]:
    """The files named by ``include '...'`` lines, when gfortran cannot list them."""
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    for match in re.finditer(r"^\s*include\s+['\"]([^'\"]+)['\"]", text, re.M | re.I):
        path = source.parent / match.group(1)
        if path.is_file():
            yield path


def _env_flags(variable: str) -> list[str]:
    return shlex.split(os.environ.get(variable, ""))
