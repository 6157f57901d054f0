"""The Toy driver: a nativeimport driver written only against the public driver API.

It compiles ``.toy`` files itself (lexer, parser, type checker and C back end
are in this package), builds the C with the machine's C compiler through the
driver API's helpers, and hands nativeimport the Interface directly, because a
compiler that knows its own signatures has no need to read debug info.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from nativeimport.driver import BuildRequest, BuildResult, Driver, Toolchain, find_program, run_tool, tool_version
from nativeimport.errors import CompileError
from nativeimport.interface import CType, Function, Interface, Param

from . import checker, emit, syntax
from .errors import ToyError

__all__ = ["ToyDriver"]

VERSION = "toyc 0.1.0"
CTYPES = {
    "i64": CType.integer("int64_t", "i64"),
    "i32": CType.integer("int32_t", "i32"),
    "f64": CType.floating("double", "f64"),
    "bool": CType.boolean("bool"),
}


class ToyDriver(Driver):
    """``.toy`` sources."""

    name = "toy"
    suffixes = (".toy",)
    environment = ("CC",)

    def find_toolchain(self) -> Toolchain:
        python_cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
        cc = find_program("CC", [python_cc, "cc", "gcc", "clang"], language="C",
                          install_hint="Toy compiles through C: install gcc (apt-get install gcc) or clang.")
        # The Toy compiler's own version is part of the fingerprint: a new toyc rebuilds everything.
        return Toolchain("toyc", cc, f"{VERSION} with {tool_version(cc)}")

    def compile(self, request: BuildRequest) -> BuildResult:
        text = request.source.read_text(encoding="utf-8")
        try:
            functions = syntax.parse(text)
            signatures = checker.check(functions)
        except ToyError as error:
            diagnostic = error.render(_display(request.source))
            raise CompileError("toyc found an error", command=("toyc", str(request.source)), returncode=1,
                               diagnostics=diagnostic) from None
        c_file = request.output_dir / f"{request.library_name}.c"
        c_file.write_text(emit.emit(functions, signatures), encoding="utf-8")
        library = request.output_dir / f"lib{request.library_name}.so"
        output = run_tool([*request.toolchain.command, "-O2", "-fPIC", "-shared", "-o", str(library), str(c_file)],
                          timeout=request.timeout, what="C compiler (Toy back end)")
        interface = Interface(functions=tuple(
            Function(f.name, CTYPES[f.result], tuple(Param(n, CTYPES[t]) for n, t in f.params), f.doc)
            for f in functions
        ))
        return BuildResult(library, (), diagnostics=output, interface=interface)


def _display(path: Path) -> str:
    """The path as the user would write it: relative to where they are, when inside it."""
    relative = os.path.relpath(path)
    return path.name if relative.startswith("..") is False and os.sep not in relative else relative
