"""The C++ driver: ``.cpp``/``.cc``/``.cxx`` files, whose ``extern "C"`` functions become Python functions.

Only ``extern "C"`` functions have a C ABI name, so only they are bound; their
parameters and results may be C types, structs, enums and pointers to C++
classes, which are opaque handles (Python passes them from one function to the
next and never looks inside). The signatures come from the DWARF g++/clang++
emit, read by the default :meth:`Driver.describe`, exactly as for C.

C++ exceptions: an exception escaping an ``extern "C"`` function finds no
handler in the Python frames above it, so the C++ runtime calls
``std::terminate``: the process stops with SIGABRT after the runtime prints the
exception's type and ``what()`` (libstdc++: ``terminate called after throwing
an instance of 'std::domain_error'  what():  division by zero``). It is never
silent, but it is fatal: an exported function must catch what it can throw.
The library is linked by the C++ compiler driver, so it always carries its
C++ runtime and that message.
"""

from __future__ import annotations

import re

from nativeimport.driver import BuildRequest, BuildResult
from nativeimport.interface import Interface, Skipped, replace

from .c import CDriver

__all__ = ["CppDriver"]

INSTALL_HINT = (
    "Install a C++ compiler (Debian/Ubuntu: apt-get install g++; Fedora: dnf install gcc-c++; "
    "macOS: xcode-select --install) or `pip install ziglang` to use `zig c++`."
)
# A free function at global scope, mangled (Itanium ABI): _Z, its name's length, its name.
_GLOBAL_FUNCTION = re.compile(r"_Z(\d+)")


class CppDriver(CDriver):
    """C++ sources: ``extern "C"`` functions, C structs and enums, classes behind handles.

    Built as C is (build settings, several sources, header tracking, undefined
    symbols named when linking), by the C++ compiler.
    """

    name = "cpp"
    suffixes = (".cpp", ".cc", ".cxx")
    environment = ("CXX", "CXXFLAGS", "LDFLAGS")
    compiler_variable = "CXX"
    compiler_candidates = ("c++", "g++", "clang++")
    language = "C++"
    install_hint = INSTALL_HINT
    flags_variable = "CXXFLAGS"
    compiler_label = "C++ compiler"
    zig_subcommand = "c++"
    libraries_always = ()
    finds_constants = False  # the #define probe classifies values with C11's _Generic, which C++ lacks

    def _is_gcc(self) -> bool:
        toolchain = self.toolchain()
        version = toolchain.version.lower()
        # GCC names itself as it was called: "g++ (Debian 12.2.0-14) 12.2.0", "c++ (GCC) 13.1".
        named_gcc = any(word in version for word in ("g++", "gcc", "free software foundation")) or \
            version.startswith("c++ (")
        return named_gcc and "clang" not in version and toolchain.command[1:2] != ("c++",)

    def describe(self, request: BuildRequest, result: BuildResult) -> Interface:
        interface = super().describe(request, result)
        return replace(interface, skipped=tuple(_cxx_skipped(interface.skipped)))


def _cxx_skipped(skipped: tuple[Skipped, ...]) -> list[Skipped]:
    """What to say about the exports left out.

    A C++ library exports many C++-ABI functions: class members, inline functions and
    template instances from the headers (std::vector's among them). None has a C name,
    and warning about each would bury the useful messages, so they are dropped. The one
    said aloud is a free function at global scope, most likely an ``extern "C"`` forgotten.
    """
    kept = []
    for entry in skipped:
        if not entry.name.startswith("_Z"):
            kept.append(entry)
            continue
        match = _GLOBAL_FUNCTION.match(entry.name)
        if match is None:
            continue
        start = match.end()
        plain = entry.name[start : start + int(match.group(1))]
        kept.append(Skipped(plain, f"it is a C++ function (its symbol is the mangled {entry.name}); "
                                   'declare it extern "C" to export it'))
    return kept
