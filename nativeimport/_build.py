"""One build: compile, describe, generate the binding, write the entry's files.

Runs inside a staging directory the cache provides; publishing is the
caller's business. Knows the driver API, the Interface and the binder, not
the finder or the module being imported.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from . import _bind_cffi
from ._bind_fast import FastBuild, PrecompiledHeader, light_binding
from ._cache import Cache, Dependency, digest_file
from ._fresh import BINDING_FILE, LIBRARY_FILE, LIGHT_FILE, snapshot
from .driver import BuildRequest, BuildResult, Driver
from .errors import SourceError
from .interface import Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._fresh import Snapshot

__all__ = ["Built", "build_into", "dependency_of"]

log = logging.getLogger("nativeimport")
INTERFACE_FILE = "interface.json"


class Built:
    """What :func:`build_into` left in the staging directory."""

    def __init__(self, dependencies: list[Dependency], stats: Snapshot, manifest: dict[str, Any]) -> None:
        self.dependencies = dependencies
        self.stats = stats
        self.manifest = manifest


def dependency_of(path: Path, source_dir: Path) -> str:
    """How a dependency is recorded: relative to the source's folder when inside it, so copies match."""
    try:
        return str(path.relative_to(source_dir))
    except ValueError:
        return str(path)


def build_into(staging: Path, *, driver: Driver, cache: Cache, source: Path, source_bytes: bytes,
               module_name: str, timeout: float, fast: bool) -> Built:
    """Build ``source`` into ``staging``; raise on any failure (the caller discards ``staging``)."""
    started = time.perf_counter()
    _import_in_background(_LATER_MODULES)
    output = staging / "build"
    output.mkdir()
    toolchain = driver.toolchain()
    request = BuildRequest(source=source, module_name=module_name, output_dir=output, toolchain=toolchain,
                           scratch_dir=cache.scratch(driver.name), timeout=timeout)
    result = driver.compile(request)
    if driver.read_source(source) != source_bytes:
        raise SourceError(f"{source} changed while it was being compiled; import it again",
                          name=module_name, path=str(source))
    interface = _checked_interface(driver, request, result)
    # This interpreter's fast wrapper compiles while the cffi binding is generated.
    header = PrecompiledHeader(cache.scratch("fast-pch")) if fast else None
    fast_build = FastBuild(staging, interface, module_name, header) if header is not None else None
    try:
        binding = _bind_cffi.generate(interface, where=str(source))
    except BaseException:
        if fast_build is not None:
            fast_build.cancel()
        raise
    if fast_build is not None:
        fast_build.finish(timeout)
    if header is not None:
        header.build_in_background()

    shutil.move(str(result.library), staging / LIBRARY_FILE)
    shutil.rmtree(output)
    (staging / BINDING_FILE).write_text(binding, encoding="utf-8")
    (staging / LIGHT_FILE).write_text(light_binding(interface), encoding="utf-8")
    (staging / INTERFACE_FILE).write_text(json.dumps(interface.to_json(), indent=1), encoding="utf-8")
    if result.diagnostics.strip():
        (staging / "build.log").write_text(result.diagnostics, encoding="utf-8")

    source_dir = source.parent if source.is_file() else source
    files = sorted(set(result.dependencies))
    stats = snapshot(files)  # before hashing: an edit racing with us is seen next time
    dependencies = [Dependency(dependency_of(f, source_dir), digest_file(f)) for f in files]
    duration = time.perf_counter() - started
    manifest = {
        "module": module_name,
        "source": str(source),
        "language": driver.name,
        "toolchain": {"command": list(toolchain.command), "version": toolchain.version},
        "flags": list(driver.flags()),
        "dependencies": [d.path for d in dependencies],
        "exports": [f.name for f in interface.functions],
        "skipped": {s.name: s.reason for s in interface.skipped},
        "sizes": {p.name: p.stat().st_size for p in staging.iterdir() if p.is_file()},
        "created": time.time(),
        "build_seconds": round(duration, 4),
        "built_by": f"{sys.implementation.name} {sys.version.split()[0]}",
    }
    log.info("built %s from %s with %s in %.2f s", module_name, source.name, toolchain.version or toolchain.path,
             duration)
    if result.diagnostics.strip():
        log.warning("%s: compiler output:\n%s", source, result.diagnostics.rstrip())
    return Built(dependencies, stats, manifest)


# Imported by the steps after compiling (DWARF, the cffi binding): tens of ms that a thread spends
# while the main thread waits for the compiler, instead of after it.
_LATER_MODULES = ("elftools.elf.elffile", "elftools.dwarf.dwarfinfo", "cffi", "cffi.cparser", "cffi.recompiler")


def _import_in_background(names: tuple[str, ...]) -> None:
    """Start importing ``names`` in a daemon thread.

    An import that fails there fails again where the module is used, and is
    reported there. Third-party modules only: they never import nativeimport,
    so no import cycle runs across threads.
    """
    import importlib
    import threading

    def work() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                pass

    threading.Thread(target=work, name="nativeimport-imports", daemon=True).start()


def _checked_interface(driver: Driver, request: BuildRequest, result: BuildResult) -> Interface:
    """The driver's Interface, restricted to what the library really exports."""
    if result.interface is None:
        return driver.describe(request, result)
    from elftools.elf.elffile import ELFFile  # only a build reads the symbol table

    from .dwarf import exported_functions
    from .interface import Skipped

    with open(result.library, "rb") as stream:
        exported = exported_functions(ELFFile(stream))
    missing = [f.name for f in result.interface.functions if f.name not in exported]
    interface = result.interface.restricted_to(exported)
    skipped = tuple(Skipped(name, "the library does not export it") for name in missing)
    return Interface(interface.functions, interface.structs, interface.enums, interface.skipped + skipped)
