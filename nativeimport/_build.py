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
from typing import Any, Optional

from . import _bind_cffi
from ._bind_fast import FastBuild, Prebuilt, build_fast, light_binding
from ._build_settings import Resolved, config_of, resolve, table_digest
from ._cache import Cache, Dependency, digest_file
from ._entry import (
    BINDING_FILE,
    BUILD_LOG,
    INTERFACE_FILE,
    LIBRARY_FILE,
    LIGHT_FILE,
    entry_dir,
    forget_fresh,
    fresh_identity,
    remember_fresh,
    root_of,
)
from ._progress import showing_progress
from ._records import snapshot
from ._version import __version__
from .driver import BuildRequest, BuildResult, Driver
from .errors import CacheError, NativeImportWarning, SourceError
from .interface import Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._records import Snapshot
    from ._registry import DriverInfo
    from .settings import Settings

__all__ = ["Built", "add_fast_wrapper", "build_into", "check_or_build", "dependency_of", "evict"]

log = logging.getLogger("nativeimport")
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
               module_name: str, timeout: float, fast: bool, resolved: Resolved) -> Built:
    """Build ``source`` with its ``resolved`` settings into ``staging``; raise on any failure (the caller
    discards ``staging``)."""
    started = time.perf_counter()
    _import_in_background(_LATER_MODULES)
    output = staging / "build"
    output.mkdir()
    toolchain = driver.toolchain()
    request = BuildRequest(source=source, module_name=module_name, output_dir=output, toolchain=toolchain,
                           scratch_dir=cache.scratch(driver.name), timeout=timeout, settings=resolved.settings)
    result = driver.compile(request)
    if driver.read_source(source) != source_bytes:
        raise SourceError(f"{source} changed while it was being compiled; import it again",
                          name=module_name, path=str(source))
    interface = _checked_interface(driver, request, result)
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
        (staging / BUILD_LOG).write_text(result.diagnostics, encoding="utf-8")

    source_dir = _source_dir(source)
    # Every file the build read, the extra sources included, and the module's table in nativeimport.toml.
    files = sorted({*result.dependencies, *resolved.settings.sources, resolved.table})
    stats = snapshot([config_of(f) for f in files])  # before hashing: an edit racing with us is seen next time
    dependencies = [Dependency(dependency_of(f, source_dir), table_digest(f) or digest_file(f)) for f in files]
    duration = time.perf_counter() - started
    manifest = {
        "module": module_name,
        "source": str(source),
        "language": driver.name,
        "toolchain": {"command": list(toolchain.command), "version": toolchain.version},
        "flags": list(driver.flags()),
        "settings": json.loads(resolved.key_text),
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
                   module_name: str, reason: str = "asked to build", definition: Optional[str] = None) -> str:
    """The entry ``source_name`` builds to: a content match, or a new build. ``reason`` says why
    the freshness record did not answer (for the log). ``definition`` names the ``nativeimport.toml``
    table that defines the module when it has no file of its own (``source_name`` is then its primary source).

    Starts no process unless it builds (or asks pkg-config): the toolchain's fingerprint is remembered.
    """
    cache = Cache(Path(root))
    source = Path(source_name)
    driver = info.load()
    source_stats = snapshot([source_name])
    source_bytes = _read_source(driver.read_source, source)
    if not source_bytes.strip():
        raise SourceError(f"{source} is empty: there is nothing to import")
    log.debug("%s: looking for a build (%s)", source, reason)
    resolved = resolve(source, definition or source.name.partition(".")[0])
    try:
        fingerprint, compiler_stats = cache.fingerprint(token, info)
        # The version too: an entry holds bindings generated by this release, for its runtime.
        source_key = _digest(KEY_SCHEMA, __version__, fingerprint, resolved.key_text, source_bytes)
        key, dep_stats = cache.match(source_key, _source_dir(source))
        if key is None:
            with cache.lock(source_key, settings, what=f"{module_name} ({source})"):
                key, dep_stats = cache.match(source_key, _source_dir(source))
                if key is None:
                    log.debug("building %s (%s): no cached build of this content (source key %s)", source,
                              reason, source_key[:16])
                    key, dep_stats = _publish_build(cache, info, settings, source, source_bytes, source_key,
                                                    module_name, resolved)
        else:
            log.debug("%s: changed on disk, but its content matches cached build %s", source, key[:16])
    except OSError as exc:  # a read-only cache, a full disk: nothing was published, say what to do
        raise CacheError(
            f"cannot write the build cache {root}: {exc.strerror or exc}; free some space, make it writable, "
            "or set NATIVEIMPORT_CACHE_DIR to another directory"
        ) from exc
    try:
        remember_fresh(root, fresh_identity(source_name, definition), token,
                       source_stats + compiler_stats + dep_stats, key)
    except OSError:
        pass  # only the next import's shortcut is lost: it hashes again
    return entry_dir(root, key)


def _publish_build(cache: Cache, info: DriverInfo, settings: Settings, source: Path, source_bytes: bytes,
                   source_key: str, module_name: str, resolved: Resolved) -> tuple[str, Snapshot]:
    driver = info.load()
    what = f"{source.name} with {os.path.basename(driver.toolchain().path)}"
    with cache.staging() as staging, showing_progress(what, settings.progress, settings.verbose):
        fast = sys.implementation.name == "cpython" and settings.binder == "auto"
        built = build_into(staging, driver=driver, cache=cache, source=source, source_bytes=source_bytes,
                           module_name=module_name, timeout=settings.build_timeout, fast=fast, resolved=resolved)
        key = _digest(source_key, *(f"{d.path}\0{d.digest}" for d in built.dependencies))
        cache.write_manifest(staging, {"key": key, **built.manifest})
        cache.publish(staging, key)
    cache.add_build(source_key, built.dependencies, key)
    _warn_left_out(module_name, source, built.manifest["skipped"])
    return key, built.stats


def _warn_left_out(module_name: str, source: Path, skipped: dict[str, str]) -> None:
    """One warning per build naming what was left out; `nativeimport show` says why for each.

    Once per build, never on a cache hit: a library with hundreds of unbindable
    exports would otherwise print hundreds of lines on every import.
    """
    if not skipped:
        return
    import warnings

    names = sorted(skipped)
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    count = f"{len(names)} export{'s' if len(names) != 1 else ''}"
    warnings.warn(f"{module_name}: {count} left out ({shown}); `nativeimport show {source}` lists each and why",
                  NativeImportWarning, stacklevel=_caller_level())


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the user's code: the first frame outside
    nativeimport and the import machinery."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        filename = frame.f_code.co_filename
        # warnings.warn itself skips the import machinery's frames when it counts levels
        if not ("importlib" in filename and "_bootstrap" in filename):
            if not filename.startswith(package):
                return level
            level += 1
        frame = frame.f_back  # type: ignore[assignment]
    return 1


def add_fast_wrapper(entry: str, module_name: str, settings: Settings) -> None:
    """Build this interpreter's wrapper into an existing entry another interpreter built.

    Added once, in place (its file appears in one rename); when it cannot be
    built, a note in the entry keeps this interpreter from trying again.
    """
    log.debug("%s: adding the fast wrapper for %s to entry %s", module_name, sys.implementation.cache_tag, entry)
    interface = Interface.from_json(json.loads(Path(entry, INTERFACE_FILE).read_text(encoding="utf-8")))
    scratch = Cache(Path(root_of(entry))).scratch(PREBUILT_SCRATCH)
    build_fast(Path(entry), interface, module_name, settings.build_timeout, scratch)


def evict(entry: str, source: str, why: Exception) -> None:
    """Remove an entry that failed to load, and the freshness record pointing at it."""
    log.warning("cache entry %s for %s failed to load (%s); rebuilding", entry, source, why)
    root = root_of(entry)
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
