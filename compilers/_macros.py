"""A C source's ``#define`` constants, with their values computed by the C compiler itself.

Two compiler runs, both started while the library itself compiles:

1. ``cc -E -dD`` lists every macro definition in place, between line markers
   that say which file each came from and whether it is a system header (flag
   3). The candidates are the object-like macros with a body defined in the
   source and its non-system headers, still defined at the end.
2. A probe file made of the source (``-include``) followed by one static
   record per candidate, compiled to an object with the same flags (but not
   optimized: see :func:`unoptimized`). ``_Generic``
   classifies each value (integer, unsigned, floating, string) and the
   record's initializer makes the compiler evaluate it as a constant. A
   candidate that is no constant (a type, a call, a function name, a
   statement) is an error at its own line: it is dropped and the probe
   compiled again. The values are read from the object's data with pyelftools.

Nothing here parses C: the preprocessor's output format and the compiler's
``file:line:`` diagnostics are all that is read. Any failure means no
constants, never a failed build.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path

from nativeimport.driver import log  # the package's logger: imports logging only when a message can go somewhere
from nativeimport.errors import NativeImportError

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a new module's build ~2 ms
    import subprocess
    import threading
    from typing import Any, Optional, Union

    Value = Union[int, float, str]  # a constant's value

__all__ = [
    "ConstantProbe", "macro_candidates", "may_define_constants", "probe_source", "read_probe_object", "unoptimized",
]


# A line marker (`# 12 "file.h" 1 3`), a definition or an undefinition, as `cc -E -dD` prints them.
_DIRECTIVE = re.compile(
    rb'^# (?:\d+) "((?:[^"\\]|\\.)*)"((?: \d)*)[ \t]*$'
    rb"|^#define ([A-Za-z_]\w*)(\(?)[ \t]*(.*?)[ \t]*$"
    rb"|^#undef ([A-Za-z_]\w*)",
    re.M,
)
# What can bring a macro of the source's own: a definition, a quoted or computed include.
_LOCAL_MACRO_SIGN = re.compile(rb'^[ \t]*#[ \t]*(?:define\b|include[ \t]*(?:"|[A-Za-z_]))', re.M)
# Flags and variables that put headers of the user's on the <...> search path.
_SEARCH_FLAGS = ("-I", "-iquote", "-include", "-imacros", "-idirafter", "--include")
_SEARCH_VARIABLES = ("CPATH", "C_INCLUDE_PATH")
# A reserved identifier (`_POSIX_C_SOURCE`, `__GNUC__`): the implementation's, not the library's constants.
_RESERVED = re.compile(r"_[A-Z_]")
# Rounds of compile, drop what failed, compile again; a source this confuses gets no constants.
_ROUNDS = 4

# The probe's own definitions. Names avoid any a library might define; fields are set by position.
_PROBE_HEAD = r"""
#define NIPROBE_KIND(x) _Generic((x), _Bool: 1, char: 1, signed char: 1, short: 1, int: 1, long: 1, long long: 1, \
    unsigned char: 2, unsigned short: 2, unsigned int: 2, unsigned long: 2, unsigned long long: 2, \
    float: 3, double: 3, long double: 3, char *: 4, const char *: 4, default: 0)
#define NIPROBE_BITS(x) (unsigned long long)_Generic((x), _Bool: (x), char: (x), signed char: (x), short: (x), \
    int: (x), long: (x), long long: (x), unsigned char: (x), unsigned short: (x), unsigned int: (x), \
    unsigned long: (x), unsigned long long: (x), default: 0)
#define NIPROBE_REAL(x) (double)_Generic((x), float: (x), double: (x), long double: (x), default: 0)
#define NIPROBE_TEXT(x) _Generic((x), char *: (x), const char *: (x), default: (const char *)0)
#define NIPROBE_SIZE(x) (__builtin_types_compatible_p(__typeof__(x), char[sizeof(x)]) ? sizeof(x) : 0)
struct niprobe_record { long long niprobe_kind; unsigned long long niprobe_bits; double niprobe_real;
                        const char *niprobe_text; unsigned long long niprobe_size; };
#define NIPROBE(n, x) __attribute__((used)) static const struct niprobe_record niprobe_##n = \
    {NIPROBE_KIND(x), NIPROBE_BITS(x), NIPROBE_REAL(x), NIPROBE_TEXT(x), NIPROBE_SIZE(x)};
"""
_SHF_WRITE = 0x1
_RECORD = struct.Struct("<qQdQQ")  # the record as x86-64 and aarch64 lay it out (checked against its symbol size)


def macro_candidates(preprocessed: bytes) -> list[str]:
    """The object-like macros with a body, defined outside system headers and still defined at the end."""
    defined: dict[str, bool] = {}  # name -> a candidate (False: defined where it does not count)
    counts = True
    for match in _DIRECTIVE.finditer(preprocessed):
        path, flags, name, paren, body, undefined = match.groups()
        if path is not None:
            # `<built-in>`, `<command-line>`: the compiler's and the user's, not the source's.
            counts = not path.startswith(b"<") and b"3" not in flags.split()
        elif name is not None:
            text = name.decode()
            defined[text] = counts and not paren and bool(body) and not _RESERVED.match(text)
        elif undefined is not None:
            defined.pop(undefined.decode(), None)
    return [name for name, candidate in defined.items() if candidate]


def may_define_constants(source: bytes, flags: Sequence[str], env: Optional[dict[str, str]]) -> bool:
    """False when the source cannot define a constant of its own: no ``#define``, no quoted include, and
    every ``<...>`` header a system one. Then neither compiler run is needed (most small modules)."""
    if _LOCAL_MACRO_SIGN.search(source):
        return True
    if any(flag.startswith(_SEARCH_FLAGS) for flag in flags):
        return True
    environment = os.environ if env is None else env
    return any(environment.get(variable) for variable in _SEARCH_VARIABLES)


def unoptimized(flags: Sequence[str]) -> list[str]:
    """Flags that make the probe compile without optimizing, yet predefine what ``flags``' -O level does.

    Only the probe's data is wanted: optimizing the source's functions would be most of its cost (five
    times the rest for a large source). The preprocessor still sees ``__OPTIMIZE__`` as the library did.
    """
    level = "0"
    for flag in flags:
        if flag.startswith("-O"):
            level = flag[2:] or "1"
    if level == "0":
        return []
    extra = ["-O0", "-D__OPTIMIZE__=1", "-U__NO_INLINE__"]
    if level in ("s", "z"):
        extra.append("-D__OPTIMIZE_SIZE__=1")
    return extra


def probe_source(candidates: Sequence[str]) -> str:
    """The probe's text after the source: one record per candidate, each on a line of its own."""
    lines = [_PROBE_HEAD]
    lines += [f"NIPROBE({index}, {name})" for index, name in enumerate(candidates)]
    return "\n".join(lines) + "\n"


def failed_candidates(diagnostics: str, probe: Path, count: int) -> set[int]:
    """The candidates whose line the compiler's diagnostics name (errors and the notes that locate them)."""
    first = probe_source(()).count("\n") + 1  # the line of record 0
    # The probe is named by its full path (as given to the compiler): a source of the same name is not it.
    lines = {int(m.group(1)) for m in re.finditer(re.escape(str(probe)) + r":(\d+):", diagnostics)}
    return {line - first for line in lines if 0 <= line - first < count}


def read_probe_object(path: Path, candidates: Sequence[str]) -> dict[str, Value]:
    """The values the compiled probe holds, by macro name; a record of no known kind is left out."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    values: dict[str, Value] = {}
    with open(path, "rb") as stream:
        elf = ELFFile(stream)
        if not elf.little_endian or elf.elfclass != 64:
            return values  # the record layout above is the 64-bit little-endian one
        symbols = elf.get_section_by_name(".symtab")
        if not isinstance(symbols, SymbolTableSection):
            return values
        by_name = {f"niprobe_{index}": name for index, name in enumerate(candidates)}
        records = [(by_name[sym.name], sym["st_shndx"], sym["st_value"]) for sym in symbols.iter_symbols()
                   if sym.name in by_name and isinstance(sym["st_shndx"], int) and sym["st_size"] == _RECORD.size]
        data = _SectionData(elf)
        pointers = _string_pointers(elf, {where for _, where, _ in records})
        for name, where, offset in records:
            record = data.get(where)[offset : offset + _RECORD.size]
            if len(record) != _RECORD.size:
                continue
            kind, bits, real, _, size = _RECORD.unpack(record)
            text = pointers.get((where, offset + 24))
            # A string must point into read-only data: a literal, or a const array. A writable array's
            # bytes (`#define NAME some_buffer`) are only its initial contents, not a constant.
            value = _value(kind, bits, real, size, text if text and data.read_only(text[0]) else None, data)
            if value is not None:
                values[name] = value
    return values


class _SectionData:
    """Sections' bytes, read when first asked for (a large source's code is never read)."""

    def __init__(self, elf: Any) -> None:
        self.elf = elf
        self.read: dict[int, bytes] = {}

    def get(self, index: int) -> bytes:
        if index not in self.read:
            section = self.elf.get_section(index)
            self.read[index] = b"" if section["sh_type"] in ("SHT_NOBITS", "SHT_NULL") else section.data()
        return self.read[index]

    def read_only(self, index: int) -> bool:
        section = self.elf.get_section(index)
        return section["sh_type"] != "SHT_NOBITS" and not section["sh_flags"] & _SHF_WRITE


def _string_pointers(elf: Any, holding: set[int]) -> dict[tuple[int, int], tuple[int, int]]:
    """Where each pointer stored in the sections ``holding`` records points:
    (section, offset) -> (target section, offset in it), from the relocations applying to those sections."""
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.sections import SymbolTableSection

    pointers: dict[tuple[int, int], tuple[int, int]] = {}
    for section in elf.iter_sections():
        if not isinstance(section, RelocationSection) or section["sh_info"] not in holding:
            continue
        table = elf.get_section(section["sh_link"])
        if not isinstance(table, SymbolTableSection):
            continue
        for relocation in section.iter_relocations():
            target = table.get_symbol(relocation["r_info_sym"])
            addend = relocation["r_addend"] if section.is_RELA() else 0
            if isinstance(target["st_shndx"], int):
                pointers[(section["sh_info"], relocation["r_offset"])] = (target["st_shndx"],
                                                                          target["st_value"] + addend)
    return pointers


def _value(kind: int, bits: int, real: float, size: int, text: Optional[tuple[int, int]],
           data: _SectionData) -> Optional[Value]:
    if kind == 1:
        return bits - (1 << 64) if bits >= 1 << 63 else bits
    if kind == 2:
        return bits
    if kind == 3:
        return real
    if kind == 4 and text is not None:
        section, offset = text
        raw = data.get(section)
        # A string literal's size says where it ends (NULs inside included); a pointer's does not.
        end = offset + size - 1 if size else raw.find(b"\0", offset)
        if end < offset or end > len(raw):
            return None
        return raw[offset:end].decode("utf-8", "surrogateescape")
    return None


class ConstantProbe:
    """Finds a source's constants in a thread of its own, while the library compiles.

    ``compiler`` and ``flags`` are those of the library's build (without ``-shared``
    or the output); ``cwd`` and ``env`` as for it.
    """

    def __init__(self, compiler: Sequence[str], flags: Sequence[str], source: Path, *, cwd: Path,
                 env: Optional[dict[str, str]], timeout: float, is_gcc: bool) -> None:
        self.compiler = list(compiler)
        self.flags = list(flags)
        self.source = source
        self.cwd = cwd
        self.env = env
        self.timeout = timeout
        self.error_limit = "-fmax-errors=0" if is_gcc else "-ferror-limit=0"
        self.values: dict[str, Value] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._cancelled = False
        self._thread: Optional[threading.Thread] = None
        try:
            needed = may_define_constants(source.read_bytes(), self.flags, env)
        except OSError:
            needed = True  # the thread meets the same error and finds nothing, as before
        if needed:  # most small modules define none: no thread to compete with the build for the GIL
            import threading  # (and subprocess, tempfile: imported only by a source with constants)

            self._thread = threading.Thread(target=self._run, name="nativeimport-constants", daemon=True)
            self._thread.start()

    def result(self) -> dict[str, Value]:
        """The constants found (empty if none, or if finding them failed)."""
        if self._thread is not None:
            self._thread.join()
        return self.values

    def cancel(self) -> None:
        """Stop: the build this probe belonged to failed."""
        self._cancelled = True
        for process in list(self._processes):
            process.kill()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        import tempfile

        try:
            with tempfile.TemporaryDirectory(prefix="nativeimport-constants-") as scratch:
                self.values = self._find(Path(scratch))
        except Exception as exc:  # constants are a convenience: never the reason a build fails
            log.debug("no constants from %s: %s", self.source, exc)

    def _find(self, scratch: Path) -> dict[str, Value]:
        status, preprocessed = self._tool([*self.compiler, *self.flags, "-E", "-dD", "-w", str(self.source)],
                                          diagnostics=False)
        if status != 0:
            return {}  # the library's own compile reports what is wrong
        candidates = macro_candidates(preprocessed)
        if not candidates:
            return {}
        probe = scratch / "constants_probe.c"
        output = scratch / "constants_probe.o"
        for _ in range(_ROUNDS):
            if not candidates or self._cancelled:
                return {}
            probe.write_text(probe_source(candidates), encoding="utf-8")
            status, diagnostics = self._tool([*self.compiler, *self.flags, *unoptimized(self.flags), "-c", "-g0",
                                              "-w", self.error_limit,
                                              "-include", str(self.source), "-o", str(output), str(probe)],
                                             diagnostics=True)
            if status == 0:
                return read_probe_object(output, candidates)
            failed = failed_candidates(diagnostics.decode(errors="replace"), probe, len(candidates))
            if not failed:
                log.debug("constants probe for %s failed outside its records:\n%s", self.source,
                          diagnostics.decode(errors="replace")[:2000])
                return {}
            candidates = [name for index, name in enumerate(candidates) if index not in failed]
        return {}

    def _tool(self, command: list[str], *, diagnostics: bool) -> tuple[int, bytes]:
        """(exit status, output): the diagnostics if ``diagnostics``, else what it wrote to stdout."""
        if self._cancelled:
            return -1, b""
        import subprocess

        log.debug("running %s", " ".join(command))
        process = subprocess.Popen(command, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT if diagnostics else subprocess.DEVNULL,
                                   start_new_session=True)
        self._processes.append(process)
        try:
            output, _ = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise NativeImportError(f"the constants probe took longer than {self.timeout:g} s") from None
        finally:
            self._processes.remove(process)
        return process.returncode, output
