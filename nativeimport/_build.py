"""A cache miss: key the source's content, find a matching build or make one.

:func:`check_or_build` hashes, matches the content index, and builds under the
per-key lock; :func:`build_into` is one build (compile, describe, generate the
bindings, write the entry's files) inside a staging directory the cache then
publishes. Only a miss imports this module. Knows the driver API, the
Interface and the binders, not the finder or the module being imported.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__, _bind_cffi, _cffi_check
from ._bind_fast import FastBuild, Prebuilt, build_fast, light_binding, unavailable_marker
from ._cache import Cache, Dependency, digest_file
from ._fresh import BINDING_FILE, LIBRARY_FILE, LIGHT_FILE, entry_dir, forget_fresh, remember_fresh, snapshot
from .driver import BuildRequest, BuildResult, Driver
from .errors import CacheError, SourceError
from .interface import Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._fresh import Settings, Snapshot
    from ._registry import DriverInfo

__all__ = ["Built", "add_fast_wrapper", "build_into", "check_or_build", "dependency_of", "evict"]

log = logging.getLogger("nativeimport")
INTERFACE_FILE = "interface.json"
PREBUILT_SCRATCH = "fast-pch"  # the fast binder's precompiled header and helpers, under scratch/


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
    interface = _cffi_check.checked(interface)  # types cffi would get wrong: opaque, with reasons
    # This interpreter's fast wrapper compiles while the cffi binding is generated.
    prebuilt = Prebuilt(cache.scratch(PREBUILT_SCRATCH)) if fast else None
    fast_build = FastBuild(staging, interface, module_name, prebuilt) if prebuilt is not None else None
    try:
        binding = _bind_cffi.generate(interface, where=str(source))
    except BaseException:
        if fast_build is not None:
            fast_build.cancel()
        raise
    if fast_build is not None:
        fast_build.finish(timeout)
    if prebuilt is not None:
        prebuilt.build_in_background()

    shutil.move(str(result.library), staging / LIBRARY_FILE)
    shutil.rmtree(output)
    (staging / BINDING_FILE).write_text(binding, encoding="utf-8")
    (staging / LIGHT_FILE).write_text(light_binding(interface), encoding="utf-8")
    (staging / INTERFACE_FILE).write_text(json.dumps(interface.to_json(), indent=1), encoding="utf-8")
    if result.diagnostics.strip():
        (staging / "build.log").write_text(result.diagnostics, encoding="utf-8")

    source_dir = _source_dir(source)
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


KEY_SCHEMA = "nativeimport-key-1"


def check_or_build(root: str, source_name: str, info: DriverInfo, token: str, settings: Settings,
                   module_name: str) -> str:
    """The key of the entry ``source_name`` builds to: a content match, or a new build."""
    cache = Cache(Path(root))
    source = Path(source_name)
    driver = info.load()
    source_stats = snapshot([source_name, driver.toolchain().path])
    source_bytes = _read_source(driver.read_source, source)
    if not source_bytes.strip():
        raise SourceError(f"{source} is empty: there is nothing to import")
    try:
        fingerprint = cache.fingerprint(token, driver)
        # The version too: an entry holds bindings generated by this release, for its runtime.
        source_key = _digest(KEY_SCHEMA, __version__, fingerprint, source_bytes)
        key, dep_stats = cache.match(source_key, _source_dir(source))
        if key is None:
            with cache.lock(source_key, settings, what=f"{module_name} ({source})"):
                key, dep_stats = cache.match(source_key, _source_dir(source))
                if key is None:
                    log.debug("building %s: no cached build of this content (source key %s)", source,
                              source_key[:16])
                    key, dep_stats = _publish_build(cache, info, settings, source, source_bytes, source_key,
                                                    module_name)
        else:
            log.debug("%s: changed on disk, but its content matches cached build %s", source, key[:16])
    except OSError as exc:  # a read-only cache, a full disk: nothing was published, say what to do
        raise CacheError(
            f"cannot write the build cache {root}: {exc.strerror or exc}; free some space, make it writable, "
            "or set NATIVEIMPORT_CACHE_DIR to another directory"
        ) from exc
    try:
        remember_fresh(root, source_name, token, source_stats + dep_stats, key)
    except OSError:
        pass  # only the next import's shortcut is lost: it hashes again
    return entry_dir(root, key)


def _publish_build(cache: Cache, info: DriverInfo, settings: Settings, source: Path, source_bytes: bytes,
                   source_key: str, module_name: str) -> tuple[str, Snapshot]:
    with cache.staging() as staging:
        fast = sys.implementation.name == "cpython" and settings.binder == "auto"
        built = build_into(staging, driver=info.load(), cache=cache, source=source, source_bytes=source_bytes,
                           module_name=module_name, timeout=settings.build_timeout, fast=fast)
        key = _digest(source_key, *(f"{d.path}\0{d.digest}" for d in built.dependencies))
        cache.write_manifest(staging, {"key": key, **built.manifest})
        cache.publish(staging, key)
    cache.add_build(source_key, built.dependencies, key)
    return key, built.stats


def add_fast_wrapper(entry: str, wrapper: str, module_name: str, settings: Settings) -> bool:
    """Build this interpreter's wrapper into an existing entry, unless it already found it cannot.

    An entry another interpreter built lacks this one's wrapper; it is added once, in place
    (its file appears in one rename).
    """
    if os.path.exists(unavailable_marker(wrapper)):
        return False
    interface = Interface.from_json(json.loads(Path(entry, INTERFACE_FILE).read_text(encoding="utf-8")))
    scratch = Cache(Path(entry).parents[1]).scratch(PREBUILT_SCRATCH)
    return build_fast(Path(entry), interface, module_name, settings.build_timeout, scratch) is not None


def evict(entry: str, source: str, why: Exception) -> None:
    """Remove an entry that failed to load, and the freshness record pointing at it."""
    log.warning("cache entry %s for %s failed to load (%s); rebuilding", entry, source, why)
    root = os.path.dirname(os.path.dirname(entry))
    Cache(Path(root)).remove(os.path.basename(entry))
    forget_fresh(root, source)


def _read_source(read: Any, source: Path) -> bytes:
    try:
        data: bytes = read(source)
    except IsADirectoryError:
        raise SourceError(f"{source} is a directory, not a source file") from None
    except FileNotFoundError:
        raise SourceError(f"{source} no longer exists") from None
    except OSError as exc:
        raise SourceError(f"cannot read {source}: {exc.strerror}") from None
    return data


def _source_dir(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def _digest(*parts: object) -> str:
    import hashlib

    hasher = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogateescape")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()
