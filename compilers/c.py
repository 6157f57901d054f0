"""The C driver: ``.c`` files, built by the system C compiler into a shared library."""

from __future__ import annotations

import os
import re
import shlex
import sys
import sysconfig
from pathlib import Path
from typing import ClassVar

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
    flags_variable = "CFLAGS"  # the compiler's flags from the environment
    compiler_label = "C compiler"
    zig_subcommand = "cc"  # `zig cc`, the last resort
    libraries_always: ClassVar[tuple[str, ...]] = ("-lm",)

    def find_toolchain(self) -> Toolchain:
        candidates = []
        python_cc = shlex.split(sysconfig.get_config_var("CC") or "")
        if python_cc:
            # The program only: flags like -pthread differ between interpreters, and would keep
            # CPython and PyPy from sharing one build of the same source.
            candidates.append(python_cc[0])
        candidates += ["cc", "gcc", "clang"]
        try:
            command = find_program("CC", candidates, install_hint=INSTALL_HINT, language="C")
        except ToolchainNotFound:
            zig = ziglang_executable()
            if zig is None or os.environ.get("CC", "").strip():
                raise
            command = (zig, self.zig_subcommand)
        return Toolchain("cc", command, tool_version(command))

    def flags(self) -> tuple[str, ...]:
        return (*self._own_flags(), *_env_flags(self.flags_variable), "|", *_env_flags("LDFLAGS"))

    def _own_flags(self) -> tuple[str, ...]:
        version = self.toolchain().version.lower()
        is_gcc = ("gcc" in version or "free software foundation" in version) and "clang" not in version
        return (*BASE_FLAGS, *GCC_FLAGS) if is_gcc else BASE_FLAGS

    def compile(self, request: BuildRequest) -> BuildResult:
        settings = request.settings
        library = request.output_dir / f"lib{request.library_name}.so"
        env = None
        if request.toolchain.command[1:2] == (self.zig_subcommand,):  # zig keeps its own cache: put it in ours
            env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(request.scratch_dir / "zig-global"),
                   "ZIG_LOCAL_CACHE_DIR": str(request.scratch_dir / "zig-local")}
        what = f"{Path(request.toolchain.path).name} ({self.compiler_label})"
        compile_flags = [*self._own_flags(), *settings.c_compile_flags(), *_env_flags(self.flags_variable)]
        # An undefined symbol is an error when linking, naming the symbol, rather than when loading.
        link_flags = [*settings.c_link_flags(), *_env_flags("LDFLAGS"), *self.libraries_always,
                      *self._no_undefined()]
        sources = [request.source, *settings.sources]
        depfiles = []
        if len(sources) == 1:  # one command: compile and link
            depfiles.append(request.output_dir / "deps.d")
            inputs = [str(request.source)]
            compile_flags += ["-MD", "-MF", str(depfiles[0])]
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
        source = request.source.resolve()
        return BuildResult(
            library=library,
            dependencies=tuple(dict.fromkeys(p for p in dependencies if p.resolve() != source)),
            diagnostics=diagnostics,
        )

    def _no_undefined(self) -> list[str]:
        # GNU ld, gold and lld (gcc, clang, zig cc on Linux) take it; other platforms' linkers differ.
        return ["-Wl,--no-undefined"] if sys.platform.startswith("linux") else []


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
