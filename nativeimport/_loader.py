"""From a source file to a bound module: key -> cache -> build -> bind.

The key of an entry hashes a schema version, the driver's fingerprint
(toolchain, version, flags), the source bytes and every dependency's bytes.
A per-path record of stats skips all hashing when nothing changed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Optional

from . import __version__
from ._cache import Cache, cache_root, snapshot
from .driver import Driver
from .errors import BindingError, NativeImportError, NativeImportWarning, SourceError
from .settings import Settings

__all__ = ["KEY_SCHEMA", "NativeLoader", "obtain_entry"]

KEY_SCHEMA = f"nativeimport-{__version__}-key-1"
log = logging.getLogger("nativeimport")


class NativeLoader:
    """Loads one native source as a module (importlib's Loader protocol)."""

    def __init__(self, source: Path, driver: Driver, overrides: dict[str, Any]) -> None:
        self.source = source
        self.driver = driver
        self.overrides = overrides

    def create_module(self, spec: Any) -> Optional[types.ModuleType]:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        settings = Settings.from_env(**self.overrides)
        _enable_verbose(settings)
        entry = obtain_entry(self.source, self.driver, settings, module.__name__)
        try:
            bind_module(module, entry)
        except NativeImportError:
            raise
        except Exception as exc:  # a damaged entry: evict it and build once more
            log.warning("cache entry %s for %s failed to load (%s); rebuilding", entry, self.source, exc)
            cache = Cache(entry.parent.parent)
            cache.remove(entry.name)
            cache.forget_fresh(self.source)
            entry = obtain_entry(self.source, self.driver, settings, module.__name__)
            try:
                bind_module(module, entry)
            except NativeImportError:
                raise
            except Exception as again:
                raise BindingError(f"{self.source}: the freshly built library failed to load: {again}",
                                   name=module.__name__, path=str(self.source)) from again

    def get_filename(self, fullname: str) -> str:
        return str(self.source)


def bind_module(module: types.ModuleType, entry: Path) -> None:
    """Fill ``module`` with the entry's exports, dropping names a previous version had."""
    from . import _bind_cffi

    namespace, skipped = _bind_cffi.load(entry, module.__name__)
    for name in getattr(module, "__native_exports__", ()):
        if name not in namespace:
            module.__dict__.pop(name, None)
    module.__dict__.update(namespace)
    module.__native_exports__ = tuple(namespace)  # type: ignore[attr-defined]
    module.__native_library__ = str(entry / "library.so")  # type: ignore[attr-defined]
    module.__all__ = [name for name in namespace if not name.startswith("_")]  # type: ignore[attr-defined]
    for name, reason in skipped:
        warnings.warn(f"{module.__name__}.{name} was left out: {reason}", NativeImportWarning, stacklevel=4)


def fingerprint(cache: Cache, driver: Driver) -> str:
    """The driver's fingerprint, remembered across processes while its compiler file is unchanged."""
    environment = "\0".join(f"{var}={os.environ.get(var, '')}" for var in (*driver.environment, "PATH"))
    token = f"{type(driver).__module__}.{type(driver).__qualname__}\0{environment}"
    remembered = cache.remembered_fingerprint(token)
    if remembered is not None:
        return remembered
    computed = driver.fingerprint()
    cache.remember_fingerprint(token, computed, [driver.toolchain().path])
    return computed


def obtain_entry(source: Path, driver: Driver, settings: Settings, module_name: str) -> Path:
    """The cache entry for ``source``, building it if no entry matches."""
    cache = Cache(cache_root(settings))
    print_fp = fingerprint(cache, driver)
    key = cache.fresh_key(source, print_fp)
    if key is not None:
        return cache.entry(key)
    source_stats = snapshot([source])
    source_bytes = _read_source(driver, source, module_name)
    source_key = _digest(KEY_SCHEMA, print_fp, source_bytes)
    key, dep_stats = cache.match(source_key, _source_dir(source))
    if key is None:
        with cache.lock(source_key, settings, what=f"{module_name} ({source})"):
            key, dep_stats = cache.match(source_key, _source_dir(source))
            if key is None:
                log.debug("building %s: no cache entry for its content (source key %s)", source, source_key[:16])
                key, dep_stats = _build(cache, driver, settings, source, source_bytes, source_key, module_name)
    else:
        log.debug("%s: content matches cached build %s", source, key[:16])
    cache.remember_fresh(source, print_fp, source_stats + dep_stats, key)
    return cache.entry(key)


def _build(cache: Cache, driver: Driver, settings: Settings, source: Path, source_bytes: bytes,
           source_key: str, module_name: str) -> tuple[str, list[list[Any]]]:
    from ._build import build_into

    with cache.staging() as staging:
        built = build_into(staging, driver=driver, cache=cache, source=source, source_bytes=source_bytes,
                           module_name=module_name, timeout=settings.build_timeout)
        key = _digest(source_key, *(f"{d.path}\0{d.digest}" for d in built.dependencies))
        cache.write_manifest(staging, {"key": key, **built.manifest})
        cache.publish(staging, key)
    cache.add_build(source_key, built.dependencies, key)
    return key, built.stats


def _read_source(driver: Driver, source: Path, module_name: str) -> bytes:
    try:
        return driver.read_source(source)
    except IsADirectoryError:
        raise SourceError(f"{source} is a directory, not a source file", name=module_name, path=str(source)) from None
    except FileNotFoundError:
        raise SourceError(f"{source} no longer exists", name=module_name, path=str(source)) from None
    except OSError as exc:
        raise SourceError(f"cannot read {source}: {exc.strerror}", name=module_name, path=str(source)) from None


def _source_dir(source: Path) -> Path:
    return source if source.is_dir() else source.parent


def _digest(*parts: object) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode("utf-8", "surrogateescape")
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def _enable_verbose(settings: Settings) -> None:
    # NATIVEIMPORT_VERBOSE is the user asking for output, so this is the one place the library adds a handler.
    logger = logging.getLogger("nativeimport")
    if not settings.verbose or any(getattr(h, "_nativeimport_verbose", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nativeimport: %(message)s"))
    handler._nativeimport_verbose = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
