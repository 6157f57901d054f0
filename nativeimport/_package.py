"""A package's native modules, and what each one puts into a wheel.

For ``mypkg/fast.c`` a wheel holds, beside where the source was:

    mypkg/fast.nativeimport/   the prebuilt entry: library, bindings, this CPython's wrapper, records
    mypkg/fast.py              one call binding it (``nativeimport.bind_shipped``)
    mypkg/fast.pyi             the stub type checkers read

A module is what the finder would import under the package's name: a file a
driver claims (``fast.c``, ``kernels.rs``, ``vec.zig``) or a project directory
holding a driver's marker (``crate/Cargo.toml``), unless Python's own module
or package of the same name (which the import would find first) is there.
Used by :mod:`nativeimport.build_meta` and by ``nativeimport stubs``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._build_settings import CONFIG_FILE, defined_modules
from ._entry import BINDING_FILE, INTERFACE_FILE, LIGHT_FILE, shipped_entry, shipped_files, stored_code
from ._stored import code_record
from ._version import __version__
from .interface import Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["NativeModule", "entry_files", "inside_native_project", "native_modules", "shim", "stub_path", "stub_text"]


class NativeModule:
    """One native module of a package: its name (``fast``) and what ``nativeimport.build`` takes (a file,
    a project directory, or a ``nativeimport.toml`` with ``definition`` naming the module one of its tables
    defines)."""

    __slots__ = ("definition", "name", "source")

    def __init__(self, name: str, source: str, definition: str | None = None) -> None:
        self.name = name
        self.source = source
        self.definition = definition

    def __repr__(self) -> str:
        return f"NativeModule({self.name!r}, {self.source!r})"


def native_modules(package_dir: str, registry: Registry) -> list[NativeModule]:
    """The native modules ``import <package>.<name>`` would find in ``package_dir``, in name order.

    As the finder decides within one directory: a project directory (a crate)
    before a module file, and among files the drivers' suffixes in the
    registry's order. Modules a ``nativeimport.toml`` defines (issue 15) slot in
    here as further :class:`NativeModule`\\ s whose ``source`` is what
    ``nativeimport.build`` accepts for them.
    """
    try:
        entries = os.listdir(package_dir)
    except OSError:
        return []
    python = _python_names(package_dir, entries)
    stems = sorted({entry.partition(".")[0] for entry in entries})
    found = []
    for name in stems:
        if name in python or not name.isidentifier() or name == "__init__":
            continue  # Python's module wins; a native __init__ makes the package itself native (not shipped)
        source = _source_of(package_dir, name, registry)
        if source is not None:
            found.append(NativeModule(name, source))
    if CONFIG_FILE in entries:  # modules built from several sources, with no file of their own name
        taken = python | {module.name for module in found}
        config = os.path.join(package_dir, CONFIG_FILE)
        found += [NativeModule(name, config, definition=name) for name in sorted(defined_modules(package_dir))
                  if name not in taken]
    return sorted(found, key=lambda module: module.name)


def _python_names(package_dir: str, entries: list[str]) -> set[str]:
    """Names Python's finder imports from this directory: module files, extensions, regular packages."""
    from importlib.machinery import all_suffixes

    suffixes = tuple(all_suffixes())  # what Python's own FileFinder looks for, in this interpreter
    names = set()
    for entry in entries:
        path = os.path.join(package_dir, entry)
        if entry.endswith(suffixes):
            names.add(entry.partition(".")[0])
        elif any(os.path.isfile(os.path.join(path, "__init__" + s)) for s in suffixes):
            names.add(entry)
    return names


def _source_of(package_dir: str, name: str, registry: Registry) -> str | None:
    directory = os.path.join(package_dir, name)
    if os.path.isdir(directory):
        for driver in registry.with_marker:
            if driver.claims(directory):
                return directory
    for suffix, driver in registry.by_suffix.items():
        candidate = os.path.join(package_dir, name + suffix)
        if os.path.isfile(candidate) and driver.claims(candidate):
            return candidate
    return None


def inside_native_project(directory: str, top: str, registry: Registry) -> bool:
    """Whether ``directory`` (below ``top``) lies in a native project directory, such as a crate's ``src/``:
    setuptools may list it as a namespace package, but its files are the crate's, not modules."""
    markers = [d.directory_marker for d in registry.with_marker if d.directory_marker]
    current = os.path.abspath(directory)
    top = os.path.abspath(top)
    while current.startswith(top + os.sep) or current == top:
        if any(os.path.isfile(os.path.join(current, marker)) for marker in markers):
            return True
        if current == top:
            break
        current = os.path.dirname(current)
    return False


def entry_files(entry: str, package_path: str, name: str) -> dict[str, bytes]:
    """The wheel's files for one module's entry, by archive name (``mypkg/fast.nativeimport/library.so``, ...).

    With the building interpreter's code objects of the generated bindings, so
    that interpreter imports the module without compiling them.
    """
    shipped = shipped_entry(package_path, name)
    files = {}
    for filename in shipped_files(entry):
        files[f"{shipped}/{filename}"] = Path(entry, filename).read_bytes()
    for filename in (LIGHT_FILE, BINDING_FILE):
        source = Path(entry, filename)
        if source.is_file():
            code = compile(source.read_bytes(), f"{shipped}/{filename}", "exec", dont_inherit=True)
            files[stored_code(shipped, filename)] = code_record(code)
    return files


def shim(module: str, source_name: str) -> str:
    """The ``<name>.py`` that binds the shipped entry when ``module`` is imported."""
    name = module.rpartition(".")[2]
    return (
        f'"""{module}: native functions built from {source_name} (see {name}.pyi)."""\n'
        f"# Generated by nativeimport.build_meta. The build of {source_name} is shipped in {name}.nativeimport/\n"
        "# beside this file: this binds it, compiling nothing and writing nothing.\n"
        "# No name is bound here: every name in this module is the native module's own.\n"
        f"__import__(\"nativeimport\").bind_shipped(__name__, {__version__!r})\n"
    )


def stub_text(entry: str) -> str:
    """The ``.pyi`` stub of the module an entry holds."""
    interface = Interface.from_json(json.loads(Path(entry, INTERFACE_FILE).read_text(encoding="utf-8")))
    return interface.stub()


def stub_path(source: str) -> str:
    """Where the stub of ``source`` goes: ``x.pyi`` beside ``x.c``, ``crate.pyi`` beside a crate directory."""
    source = os.path.abspath(source)
    if os.path.isdir(source):
        return source + ".pyi"
    return os.path.splitext(source)[0] + ".pyi"
