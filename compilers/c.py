"""The C driver: ``.c`` files, built by the system C compiler into a shared library."""

from __future__ import annotations

import os
import re
import shlex
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from nativeimport.driver import (
    BuildRequest,
    BuildResult,
    Driver,
    Toolchain,
    find_program,
    parse_depfile,
    run_tool,
    tool_version,
    ziglang_executable,
)
from nativeimport.errors import CompileError, ToolchainNotFound

from ._macros import ConstantProbe

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing and the Interface model are imported while the compiler runs
    from typing import ClassVar

    from nativeimport.interface import Constant, Interface

__all__ = ["CDriver"]

INSTALL_HINT = (
    "Install a C compiler (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc; "
    "macOS: xcode-select --install) or `pip install ziglang` to use `zig cc`."
)
BASE_FLAGS = ("-g", "-O2", "-fPIC", "-shared", "-fdiagnostics-color=never")
# GCC's identical code folding turns a function into an alias of its twin, with no debug
# info of its own: it would be left out. Keeping every function whole costs nothing measurable.
GCC_FLAGS = ("-fno-ipa-icf",)


class CDriver(Driver):
    """C sources: every exported function, struct and enum becomes a Python attribute."""

    name = "c"
    suffixes: ClassVar[tuple[str, ...]] = (".c",)
    environment = ("CC", "CFLAGS", "LDFLAGS")
    # What a C-family driver built on this one changes (the C++ driver):
    compiler_variable = "CC"  # the compiler from the environment, and in Python's sysconfig
    compiler_candidates: ClassVar[tuple[str, ...]] = ("cc", "gcc", "clang")
    language = "C"
    install_hint = INSTALL_HINT
    flags_variable = "CFLAGS"  # the compiler's flags from the environment
    compiler_label = "C compiler"
    zig_subcommand = "cc"  # `zig cc`, the last resort
    libraries_always: ClassVar[tuple[str, ...]] = ("-lm",)
    finds_constants: ClassVar[bool] = True  # object-like #defines as attributes (the probe is C: _Generic)

    def __init__(self) -> None:
        super().__init__()
        # The constants probe compile() started for each library, until describe() takes its result.
        self._probes: dict[Path, ConstantProbe] = {}

    def find_toolchain(self) -> Toolchain:
        candidates = []
        python_compiler = shlex.split(sysconfig.get_config_var(self.compiler_variable) or "")
        if python_compiler:
            # The program only: flags like -pthread differ between interpreters, and would keep
            # CPython and PyPy from sharing one build of the same source.
            candidates.append(python_compiler[0])
        candidates += self.compiler_candidates
        try:
            command = find_program(self.compiler_variable, candidates, install_hint=self.install_hint,
                                   language=self.language)
        except ToolchainNotFound:
            zig = ziglang_executable()
            if zig is None or os.environ.get(self.compiler_variable, "").strip():
                raise
            command = (zig, self.zig_subcommand)
        return Toolchain(self.zig_subcommand, command, tool_version(command))

    def flags(self) -> tuple[str, ...]:
        return (*self._own_flags(), *_env_flags(self.flags_variable), "|", *_env_flags("LDFLAGS"))

    def _own_flags(self) -> tuple[str, ...]:
        return (*BASE_FLAGS, *GCC_FLAGS) if self._is_gcc() else BASE_FLAGS

    def _speed_flags(self) -> tuple[str, ...]:
        """Flags that make the compile faster without changing its output (so not in :meth:`flags`, the key):
        GCC's ``-pipe`` hands the assembly to ``as`` through a pipe, not a file, and the two run at once
        (~10% of a small module's compile, the same library byte for byte)."""
        return ("-pipe",) if self._is_gcc() else ()

    def _is_gcc(self) -> bool:
        version = self.toolchain().version.lower()
        return ("gcc" in version or "free software foundation" in version) and "clang" not in version

    def compile(self, request: BuildRequest) -> BuildResult:
        settings = request.settings
        library = request.output_dir / f"lib{request.library_name}.so"
        env = None
        if request.toolchain.command[1:2] == (self.zig_subcommand,):  # zig keeps its own cache: put it in ours
            env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(request.scratch_dir / "zig-global"),
                   "ZIG_LOCAL_CACHE_DIR": str(request.scratch_dir / "zig-local")}
        what = f"{Path(request.toolchain.path).name} ({self.compiler_label})"
        compile_flags = [*self._own_flags(), *self._speed_flags(), *settings.c_compile_flags(),
                         *_env_flags(self.flags_variable)]
        # The constants are found while the library compiles, with the same compiler and flags (those of the
        # first source: it is "the source" whose defines and local headers count).
        probe = None
        if self.finds_constants:
            probe = ConstantProbe(request.toolchain.command, [f for f in compile_flags if f != "-shared"],
                                  request.source.resolve(), cwd=request.source.parent, env=env,
                                  timeout=request.timeout, is_gcc=self._is_gcc())
        try:
            diagnostics, dependencies = self._build(request, compile_flags, env, what)
        except BaseException:
            if probe is not None:
                probe.cancel()
            raise
        if probe is not None:
            self._probes[library] = probe  # still running, while the caller checks the source and reads the DWARF
        source = request.source.resolve()
        return BuildResult(  # only a file of the source's name can be the source (resolve() stats each part)
            library=library,
            dependencies=tuple(dict.fromkeys(p for p in dependencies
                                             if p.name != source.name or p.resolve() != source)),
            diagnostics=diagnostics,
        )

    def describe(self, request: BuildRequest, result: BuildResult) -> Interface:
        """The exports from the debug info, and the constants compile() found."""
        probe = self._probes.pop(result.library, None)
        try:
            interface = super().describe(request, result)
        except BaseException:
            if probe is not None:
                probe.cancel()
            raise
        if probe is None:
            return interface
        from nativeimport.interface import replace

        return replace(interface, constants=constants_for(interface, probe.result()))

    def _build(self, request: BuildRequest, compile_flags: list[str], env: dict[str, str] | None,
               what: str) -> tuple[str, list[Path]]:
        """Compile and link the library: (the compiler's diagnostics, the files it read)."""
        settings = request.settings
        library = request.output_dir / f"lib{request.library_name}.so"
        # An undefined symbol is an error when linking, naming the symbol, rather than when loading.
        link_flags = [*settings.c_link_flags(), *_env_flags("LDFLAGS"), *self.libraries_always,
                      *self._no_undefined()]
        sources = [request.source, *settings.sources]
        depfiles = []
        if len(sources) == 1:  # one command: compile and link
            depfiles.append(request.output_dir / "deps.d")
            inputs = [str(request.source)]
            compile_flags = [*compile_flags, "-MD", "-MF", str(depfiles[0])]
        else:  # gcc writes one depfile per command: compile each source on its own, then link
            inputs = []
            for index, source in enumerate(sources):
                obj = request.output_dir / f"{index}-{source.stem}.o"
                depfiles.append(obj.with_suffix(".d"))
                run_tool([*request.toolchain.command, *compile_flags, "-c", "-MD", "-MF", str(depfiles[-1]),
                          "-o", str(obj), str(source)], cwd=source.parent, timeout=request.timeout, env=env,
                         what=what)
                inputs.append(str(obj))
        command = [*request.toolchain.command, *compile_flags, "-o", str(library), *inputs, *link_flags]
        try:
            diagnostics = run_tool(command, cwd=request.source.parent, timeout=request.timeout, env=env, what=what)
        except CompileError as error:
            raise _explained(error, sources, self.suffixes) from None
        dependencies: list[Path] = []
        for depfile in depfiles:
            for path in parse_depfile(depfile.read_text(errors="replace")):
                dependencies.append(Path(path) if os.path.isabs(path) else request.source.parent / path)
            depfile.unlink()
        return diagnostics, dependencies

    def _no_undefined(self) -> list[str]:
        # GNU ld, gold and lld (gcc, clang, zig cc on Linux) take it; other platforms' linkers differ.
        return ["-Wl,--no-undefined"] if sys.platform.startswith("linux") else []


def constants_for(interface: Interface, values: Mapping[str, object]) -> tuple[Constant, ...]:
    """The constants that become module attributes: not a name the interface already binds."""
    from nativeimport.interface import Constant, python_name

    taken = {python_name(f.name) for f in interface.functions}
    taken |= {python_name(s.name) for s in interface.structs}
    for enum in interface.enums:
        taken |= {python_name(enum.name)} | {python_name(m) for m, _ in enum.members}
    return tuple(Constant(name, value) for name, value in sorted(values.items())
                 if isinstance(value, (int, float, str)) and python_name(name) not in taken)


def _explained(error: CompileError, sources: list[Path], suffixes: tuple[str, ...]) -> CompileError:
    """A link error naming the undefined symbols, and the files beside the sources that define them."""
    missing = list(dict.fromkeys(re.findall(r"undefined reference to [`']([^'`]+)'", error.diagnostics)))
    if not missing:
        return error
    where = []
    for symbol in missing[:20]:
        definers = _defining_files(symbol, sources, suffixes)
        hint = f" (defined in {', '.join(definers)}: add it to `sources`)" if definers else ""
        where.append(f"  {symbol}{hint}")
    message = (f"undefined symbol{'s' if len(missing) > 1 else ''} when linking:\n" + "\n".join(where)
               + "\nlist the files that define them in the source's `sources` setting, or link the library "
               "that does (`libraries`)")
    return CompileError(message, command=error.command, returncode=error.returncode, diagnostics=error.diagnostics)


def _defining_files(symbol: str, sources: list[Path], suffixes: tuple[str, ...]) -> list[str]:
    """Files of the driver's suffixes beside the sources (not already sources) whose text seems to define
    ``symbol``."""
    # A definition's head: the name, its parameters, then its body's brace (or a line end before it).
    pattern = re.compile(rf"^[^;#/\n]*\b{re.escape(symbol)}\s*\([^;]*\)\s*(\{{|$)", re.MULTILINE)
    found = []
    directories = dict.fromkeys(source.parent for source in sources)
    for directory in directories:
        for candidate in sorted(directory.iterdir()):
            if candidate.suffix not in suffixes or candidate in sources:
                continue
            try:
                text = candidate.read_text(errors="replace")
            except OSError:
                continue
            if pattern.search(text):
                found.append(candidate.name)
    return found


def _env_flags(variable: str) -> list[str]:
    return shlex.split(os.environ.get(variable, ""))
