"""A PEP 517 build backend: setuptools' own, plus the project's native modules prebuilt in the wheel.

In the project's ``pyproject.toml``::

    [build-system]
    requires = ["setuptools>=64", "nativeimport"]
    build-backend = "nativeimport.build_meta"

    [project]
    dependencies = ["nativeimport"]     # the wheel's modules bind through it

Every hook is setuptools' (sdists, metadata, editable installs are its
business). ``build_wheel`` lets setuptools build the wheel, then finds the
native sources in the packages setuptools put into it (``mypkg/fast.c``,
``mypkg/kernels.rs``, a crate ``mypkg/crate/Cargo.toml``), builds each as an
import would (``nativeimport.build``: the user's cache serves what was built
before), and adds for each, beside where the source was: the prebuilt entry
(``fast.nativeimport/``), a ``fast.py`` that binds it, a ``fast.pyi`` stub,
and the package's ``py.typed``. Installed, ``import mypkg.fast`` needs no
compiler, no source and no cache, and never builds.

Tags: the native library is built for this platform, the cffi binding serves
every interpreter with cffi (any CPython 3, PyPy), and the fast wrapper only
the building CPython's ABI. So the wheel is ``py3-none-<platform>`` (it
installs and works everywhere on this platform) and, when it carries fast
wrappers, also ``cp311-cp311-<platform>`` (the compressed set
``cp311.py3-cp311.none-linux_x86_64``), which says which ABI imports through
them; elsewhere the same wheel binds through cffi. A project whose wheel
setuptools already made platform-specific (its own C extensions) keeps those tags.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Optional

from setuptools import build_meta as _setuptools

from ._api import build
from ._entry import FAST_FILE, fast_unavailable_marker
from ._finder import installed_drivers
from ._package import NativeModule, entry_files, inside_native_project, native_modules, shim, stub_text
from ._version import __version__
from ._wheel import Tags, read_metadata, rewrite_wheel, wheel_tags
from .errors import SourceError

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

log = logging.getLogger("nativeimport")

# setuptools' hooks as they are. An editable install keeps the sources in place: nativeimport.install()
# imports them (building on first import), so nothing prebuilt goes into an editable wheel.
get_requires_for_build_wheel = _setuptools.get_requires_for_build_wheel
get_requires_for_build_sdist = _setuptools.get_requires_for_build_sdist
prepare_metadata_for_build_wheel = _setuptools.prepare_metadata_for_build_wheel
get_requires_for_build_editable = _setuptools.get_requires_for_build_editable
prepare_metadata_for_build_editable = _setuptools.prepare_metadata_for_build_editable
build_editable = _setuptools.build_editable


def build_sdist(sdist_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    """PEP 517 ``build_sdist``: setuptools' sdist, with the packages' native sources in it.

    setuptools puts only Python files (and what ``MANIFEST.in`` names) into an
    sdist; a wheel built from it (``python -m build`` does so, as does pip from
    an sdist) would lack every native module.
    """
    with _reporting(), _native_sources_in_manifest():
        name: str = _setuptools.build_sdist(sdist_directory, config_settings)
        return name


def build_wheel(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    """PEP 517 ``build_wheel``: setuptools' wheel with the packages' native modules prebuilt in it."""
    with _reporting():
        with _recording_packages() as packages:
            name = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
        return ship_native_modules(Path(wheel_directory, name), packages, Path.cwd()).name


def ship_native_modules(wheel: Path, packages: dict[str, str], project: Path) -> Path:
    """Build the native modules of ``packages`` (name -> source directory) into ``wheel``; its new path."""
    registry = installed_drivers({})
    found = [(package, directory, module) for package, directory in sorted(packages.items())
             if not inside_native_project(directory, str(project), registry)
             for module in native_modules(directory, registry)]
    parts = _parts(module for _, _, module in found)
    found = [(package, directory, module) for package, directory, module in found
             if os.path.abspath(module.source) not in parts]
    if not found:
        where = f"the packages {', '.join(sorted(packages))}" if packages else "the project (it has no packages)"
        log.info("no native sources in %s: the wheel is setuptools' own", where)
        return wheel
    _require_runtime(wheel)  # before compiling anything
    added: dict[str, bytes] = {}
    sources: list[str] = []  # archive names of the sources, in the wheel if MANIFEST.in or an sdist put them there
    for package, directory in packages.items():  # the parts of modules are sources too
        inside = os.path.abspath(directory) + os.sep
        sources += [_archive_name(package.replace(".", "/"), directory, part) for part in sorted(parts)
                    if part.startswith(inside) and os.sep not in part[len(inside):]]
    carries_wrappers = False
    for package, directory, module in found:
        package_path = package.replace(".", "/")
        sources.append(_archive_name(package_path, directory, module.source))
        files, has_wrapper = _module_files(package, module)
        added.update(files)
        carries_wrappers = carries_wrappers or has_wrapper
        added.setdefault(f"{_typed_package(package, packages).replace('.', '/')}/py.typed", b"")
    tags = wheel_tags(wheel.name)
    if tags.pure:
        tags = _native_tags(carries_wrappers)
    result = rewrite_wheel(wheel, added, tags, purelib=False,
                           removed=lambda name: any(name == s or name.startswith(s + "/") for s in sources))
    log.info("%s: prebuilt %s", result.name, ", ".join(f"{p}.{m.name}" for p, _, m in found))
    return result


def _module_files(package: str, module: NativeModule) -> tuple[dict[str, bytes], bool]:
    """One module's files in the wheel (entry, binding ``.py``, stub), and whether this CPython's wrapper is one."""
    package_path = package.replace(".", "/")
    log.debug("%s.%s: the entry of %s", package, module.name, module.source)  # a real build logs its own line
    entry = str(build(module.source, module=module.definition, wrapper="wait"))  # the wheel ships it
    files = {name: _without_debug_info(data) if name.endswith(".so") else data
             for name, data in entry_files(entry, package_path, module.name).items()}
    files[f"{package_path}/{module.name}.py"] = shim(f"{package}.{module.name}",
                                                    os.path.basename(module.source)).encode("utf-8")
    stub = stub_text(entry)
    try:
        ast.parse(stub)
    except SyntaxError as exc:  # a stub that does not parse would break every type check of its users
        log.warning("%s.%s: its stub is left out of the wheel: line %s does not parse (%s)", package, module.name,
                    exc.lineno, exc.msg)
    else:
        files[f"{package_path}/{module.name}.pyi"] = stub.encode("utf-8")
    has_wrapper = os.path.isfile(os.path.join(entry, FAST_FILE))
    if not has_wrapper and os.path.isfile(fast_unavailable_marker(entry)):
        why = Path(fast_unavailable_marker(entry)).read_text(encoding="utf-8", errors="replace").strip()
        log.info("%s.%s: no fast wrapper for this CPython in the wheel (%s): it binds through cffi", package,
                 module.name, why)
    return files, has_wrapper


def _typed_package(package: str, packages: dict[str, str]) -> str:
    """Where ``py.typed`` goes (PEP 561): the top-level package, unless that is a namespace package."""
    top = package.partition(".")[0]
    return top if os.path.isfile(os.path.join(packages.get(top, ""), "__init__.py")) else package


def _archive_name(package_path: str, directory: str, source: str) -> str:
    return f"{package_path}/{os.path.relpath(source, directory).replace(os.sep, '/')}"


def _without_debug_info(library: bytes) -> bytes:
    """``library`` without its debug info, when binutils' ``strip`` is at hand.

    The DWARF is what the interface was read from, and the entry holds that
    interface: nothing reads it at run time. Most of a Rust library is the
    standard library's debug info (4 MB for a one-line function).
    """
    import shutil
    import subprocess
    import tempfile

    strip = shutil.which("strip")
    if strip is None:
        return library
    with tempfile.TemporaryDirectory() as scratch:
        full, stripped = Path(scratch, "full.so"), Path(scratch, "stripped.so")
        full.write_bytes(library)
        try:
            done = subprocess.run([strip, "--strip-debug", "-o", str(stripped), str(full)], capture_output=True,
                                  timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return library  # only the wheel's size is at stake
        return stripped.read_bytes() if done.returncode == 0 and stripped.is_file() else library


def _native_tags(carries_wrappers: bool) -> Tags:
    """``py3-none-<platform>``, with this CPython's tag when its fast wrappers are in the wheel."""
    import sysconfig

    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    soabi = sysconfig.get_config_var("SOABI")
    if not carries_wrappers or sys.implementation.name != "cpython" or not isinstance(soabi, str):
        return Tags(["py3"], ["none"], [platform])
    version = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    abi = "cp" + soabi.split("-")[1]  # cpython-311-x86_64-linux-gnu -> cp311 (cp311d, cp313t for those builds)
    return Tags([version, "py3"], [abi, "none"], [platform])


def _require_runtime(wheel: Path) -> None:
    """Refuse a wheel whose modules could not import: their ``.py`` imports nativeimport at run time."""
    import email.parser
    import re

    metadata = email.parser.Parser().parsestr(read_metadata(wheel))
    names = {re.split(r"[\s;\[<>=!~(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")
             for requirement in metadata.get_all("Requires-Dist") or []}
    if "nativeimport" not in names:
        wheel.unlink()
        raise SourceError(f"{metadata.get('Name')}: its native modules bind through nativeimport when imported; "
                          f'add "nativeimport>={__version__}" to [project] dependencies in pyproject.toml')


@contextlib.contextmanager
def _recording_packages() -> Iterator[dict[str, str]]:
    """The packages setuptools builds into the wheel, with their source directories.

    Asked of setuptools' ``build_py`` as it runs (setuptools runs the build in
    this process), so every way of declaring packages (``pyproject.toml``,
    ``setup.cfg``, ``setup.py``, automatic discovery, ``package-dir``) is
    honoured exactly as setuptools reads it.
    """
    from setuptools.command.build_py import build_py

    found: dict[str, str] = {}
    original = build_py.run

    def run(self: build_py) -> None:
        original(self)
        for package in self.packages or ():
            found[package] = os.path.abspath(self.get_package_dir(package))

    build_py.run = run
    try:
        yield found
    finally:
        build_py.run = original


@contextlib.contextmanager
def _native_sources_in_manifest() -> Iterator[None]:
    """Make setuptools' file list (the sdist's contents) include each package's native sources.

    Asked of setuptools' ``egg_info`` as it lists the files, in this process,
    so the packages are found as setuptools finds them. A project directory
    (a crate) goes in whole but for its build output (``target/``) and hidden files.
    """
    from setuptools.command.egg_info import manifest_maker

    original = manifest_maker.add_defaults

    def add_defaults(self: manifest_maker) -> None:
        original(self)
        build_py = self.get_finalized_command("build_py")
        registry = installed_drivers({})
        for package in build_py.packages or ():
            directory = build_py.get_package_dir(package) or "."
            if inside_native_project(directory, ".", registry):
                continue
            for module in native_modules(directory, registry):
                self.filelist.extend(_project_files(module.source))
                self.filelist.extend(_settings_files(module))

    manifest_maker.add_defaults = add_defaults
    try:
        yield
    finally:
        manifest_maker.add_defaults = original


def _parts(modules: Iterable[NativeModule]) -> set[str]:
    """The files other modules' build settings name as their extra ``sources``: parts of those modules,
    not modules of their own (a folder of them may even be a namespace package to setuptools)."""
    from ._build_settings import defined_modules, definition_of, resolve

    parts: set[str] = set()
    for module in modules:
        if os.path.isdir(module.source):
            continue
        if module.definition is None:
            resolved = resolve(Path(module.source))
        else:
            primary = defined_modules(os.path.dirname(os.path.abspath(module.source)))[module.definition]
            parts.add(os.path.abspath(primary))
            resolved = resolve(Path(primary), definition_of(os.path.abspath(module.source), module.definition))
        parts.update(os.path.abspath(path) for path in resolved.settings.sources)
    return parts


def _settings_files(module: NativeModule) -> list[str]:
    """What a module's build settings name: nativeimport.toml, the extra sources, and the headers in the
    source's folder and its include directories (other files a build reads belong in MANIFEST.in)."""
    from ._build_settings import CONFIG_FILE, defined_modules, definition_of, resolve

    directory = os.path.dirname(os.path.abspath(module.source))
    primary = defined_modules(directory).get(module.name, "") if module.definition else module.source
    if not primary or os.path.isdir(primary):
        return []
    definition = definition_of(os.path.join(directory, CONFIG_FILE), module.definition) if module.definition else None
    settings = resolve(Path(primary), definition).settings
    files = [str(path) for path in settings.sources]
    for folder in (Path(directory), *settings.include_dirs):
        files += [str(path) for path in sorted(folder.glob("*.h")) if path.is_file()]
    config = os.path.join(directory, CONFIG_FILE)
    return [os.path.relpath(f) for f in ([config] if os.path.isfile(config) else []) + files]


def _project_files(source: str) -> list[str]:
    if not os.path.isdir(source):
        return [source]
    found = []
    for directory, subdirectories, files in os.walk(source):
        subdirectories[:] = sorted(d for d in subdirectories if d != "target" and not d.startswith("."))
        found += [os.path.join(directory, f) for f in sorted(files) if not f.startswith(".")]
    return found


@contextlib.contextmanager
def _reporting() -> Iterator[None]:
    """A build backend talks to a person through its frontend's output: one line per module built."""
    logger = logging.getLogger("nativeimport")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nativeimport: %(message)s"))
    logger.addHandler(handler)
    level, propagate = logger.level, logger.propagate
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.propagate = False  # setuptools gives the root logger a handler of its own: one line, not two
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
