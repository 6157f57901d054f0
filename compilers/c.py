"""The C driver: ``.c`` files, built by the system C compiler into a shared library."""

from __future__ import annotations

import dataclasses
import os
import shlex
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
from nativeimport.errors import ToolchainNotFound
from nativeimport.interface import Constant, Interface, python_name

from ._macros import ConstantProbe

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
    suffixes = (".c",)
    environment = ("CC", "CFLAGS", "LDFLAGS")

    def __init__(self) -> None:
        super().__init__()
        # The constants probe compile() started for each library, until describe() takes its result.
        self._probes: dict[Path, ConstantProbe] = {}

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
            command = (zig, "cc")
        return Toolchain("cc", command, tool_version(command))

    def flags(self) -> tuple[str, ...]:
        return (*self._own_flags(), *_env_flags("CFLAGS"), "|", *_env_flags("LDFLAGS"))

    def _own_flags(self) -> tuple[str, ...]:
        return (*BASE_FLAGS, *GCC_FLAGS) if self._is_gcc() else BASE_FLAGS

    def _is_gcc(self) -> bool:
        version = self.toolchain().version.lower()
        return ("gcc" in version or "free software foundation" in version) and "clang" not in version

    def compile(self, request: BuildRequest) -> BuildResult:
        library = request.output_dir / f"lib{request.library_name}.so"
        depfile = request.output_dir / "deps.d"
        command = [
            *request.toolchain.command,
            *self._own_flags(),
            *_env_flags("CFLAGS"),
            "-MD",
            "-MF",
            str(depfile),
            "-o",
            str(library),
            str(request.source),
            *_env_flags("LDFLAGS"),
            "-lm",
        ]
        env = None
        if request.toolchain.command[1:2] == ("cc",):  # zig cc keeps its own cache: put it inside ours
            env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(request.scratch_dir / "zig-global"),
                   "ZIG_LOCAL_CACHE_DIR": str(request.scratch_dir / "zig-local")}
        # The constants are found while the library compiles, with the same compiler and flags.
        probe = ConstantProbe(request.toolchain.command, [f for f in (*self._own_flags(), *_env_flags("CFLAGS"))
                                                          if f != "-shared"],
                              request.source.resolve(), cwd=request.source.parent, env=env,
                              timeout=request.timeout, is_gcc=self._is_gcc())
        try:
            diagnostics = run_tool(command, cwd=request.source.parent, timeout=request.timeout, env=env,
                                   what=f"{Path(request.toolchain.path).name} (C compiler)")
        except BaseException:
            probe.cancel()
            raise
        self._probes[library] = probe  # still running, while the caller checks the source and reads the DWARF
        dependencies = [Path(path) for path in parse_depfile(depfile.read_text(errors="replace"))]
        depfile.unlink()
        source = request.source.resolve()
        absolute = [(p if p.is_absolute() else request.source.parent / p) for p in dependencies]
        return BuildResult(
            library=library,
            dependencies=tuple(p for p in absolute if p.resolve() != source),
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
        return dataclasses.replace(interface, constants=constants_for(interface, probe.result()))


def constants_for(interface: Interface, values: Mapping[str, object]) -> tuple[Constant, ...]:
    """The constants that become module attributes: not a name the interface already binds."""
    taken = {python_name(f.name) for f in interface.functions}
    taken |= {python_name(s.name) for s in interface.structs}
    for enum in interface.enums:
        taken |= {python_name(enum.name)} | {python_name(m) for m, _ in enum.members}
    return tuple(Constant(name, value) for name, value in sorted(values.items())
                 if isinstance(value, (int, float, str)) and python_name(name) not in taken)


def _env_flags(variable: str) -> list[str]:
    return shlex.split(os.environ.get(variable, ""))
