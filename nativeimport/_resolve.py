"""Unpickling by content: from an entry's key (and what rebuilds it) to a bound module, on any machine.

What :mod:`nativeimport._pickling` writes calls its ``module_for``, which asks
:func:`resolve_carried` here; that needs no ``install()`` and no source on
``sys.path``. It tries, in order:

1. a module this process already bound from that key;
2. the local cache, by the sender's key: no toolchain is asked, the entry is
   only checked to fit this machine (architecture, C library); the fast
   wrapper is used when the entry has one for this interpreter's ABI tag,
   else the cffi binding;
3. archives shipped to this machine (``NATIVEIMPORT_SHIPPED``: files,
   folders or packages holding ``nativeimport cache export`` archives),
   imported into the local cache;
4. a build from the carried source, if a compiler is here (one process per
   cache builds; the others wait and reuse it);
5. otherwise a stand-in whose use raises :class:`~nativeimport.errors.NativeImportError`
   naming the key and how to ship it.

Deserialisation itself never fails and never waits on anything but a build
(frameworks then report the error as the task's, instead of dropping the
worker). A module found is also put in ``sys.modules`` under its name when
that name is free, so pickles that name it (cloudpickle's, for module
globals) find it too.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import types
from typing import Any, Optional

from ._entry import LIBRARY_FILE, cache_root, entry_dir, entry_file, lock_file, scratch_dir
from ._loader import BOUND, bind_module, complete_entry, obtain_entry
from ._records import make_private_dirs
from ._stored import check_elf
from .errors import LockTimeout, NativeImportError
from .settings import Settings

__all__ = ["SHIPPED_VARIABLE", "Missing", "ShippedFinder", "Unavailable", "publish_names", "resolve_carried",
           "resolve_key", "unfit"]

log = logging.getLogger("nativeimport")

_LOCK = threading.RLock()  # one resolution at a time: a worker's threads unpickle concurrently
_BUILT_FOR: dict[str, types.ModuleType] = {}  # sender's key -> the module built here from its carried source
_BUILD_FAILED: dict[str, str] = {}  # key -> why building the carried source failed (not retried)
_SHIPPED_IMPORTED: set[str] = set()  # archives of NATIVEIMPORT_SHIPPED already in the local cache
SHIPPED_VARIABLE = "NATIVEIMPORT_SHIPPED"


def resolve_carried(carried: tuple[Any, ...]) -> tuple[Optional[types.ModuleType], str]:
    """The module bound from the carried entry, found or rebuilt here, or None and why; never raises."""
    try:
        with _LOCK:
            return _resolve(*carried)
    except Exception as exc:  # whatever went wrong, deserialisation goes on: the call reports it
        return None, f"{type(exc).__name__}: {exc}"


def resolve_key(key: str, name: str, binder: str = "auto") -> Optional[types.ModuleType]:
    """The module of entry ``key`` from this process, the local cache or shipped archives; None if none has it."""
    with _LOCK:
        module = _loaded(key)
        if module is None:
            module = _from_cache(key, name, binder)[0]
        if module is None and _import_shipped():
            module = _from_cache(key, name, binder)[0]
    return module


def _resolve(key: str, name: str, driver: str, binder: str, source_name: str, source: Optional[bytes],
             dependencies: tuple[tuple[str, bytes], ...]) -> tuple[Optional[types.ModuleType], str]:
    module = _loaded(key)
    if module is not None:
        return module, ""
    module, cache_problem = _from_cache(key, name, binder)
    if module is None and _import_shipped():
        module, cache_problem = _from_cache(key, name, binder)
    if module is not None:
        return module, ""
    if source is None and not driver:
        return None, (f"{cache_problem}; the pickle named it by key alone (as it does a function the cffi "
                      "binder serves, or an enum class), so no source came with it to build from")
    if source is None:
        return None, (f"{cache_problem}; the sender's source had changed since it was built, so none was "
                      "carried to build from")
    if key in _BUILD_FAILED:
        return None, f"{cache_problem}; building the carried source failed: {_BUILD_FAILED[key]}"
    try:
        module = _build_carried(key, name, driver, binder, source_name, source, dependencies)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _BUILD_FAILED[key] = reason
        log.info("cannot build %s from the carried source: %s", name, reason)
        return None, f"{cache_problem}; building the carried source failed: {reason}"
    # Built here under another key (another compiler, other flags): later pickles naming the sender's key
    # must not build, or even bind, again.
    _BUILT_FOR[key] = module
    return module, ""


def _loaded(key: str) -> Optional[types.ModuleType]:
    found: list[tuple[types.ModuleType, dict[str, Any]]] = [
        bound for (bound_key, _), bound in list(BOUND.items()) if bound_key == key]
    if not found:
        return _BUILT_FOR.get(key)
    current = [bound for bound, _ in found if getattr(bound, "__native_key__", None) == key]
    if current:
        return current[-1]
    module, namespace = found[-1]
    # Reloaded since: the functions of this key are the older namespace's.
    older = types.ModuleType(module.__name__)
    older.__dict__.update(namespace)
    older.__native_key__ = key  # type: ignore[attr-defined]
    return older


def _from_cache(key: str, name: str, binder: str) -> tuple[Optional[types.ModuleType], str]:
    """Bind entry ``key`` of the local cache if it is there and fits this machine: (module, why not)."""
    settings = Settings.from_env(binder=binder)
    entry = entry_dir(cache_root(settings.cache_dir), key)
    if not os.path.isdir(entry):
        return None, f"entry {key} is not in this machine's cache ({os.path.dirname(os.path.dirname(entry))})"
    problem = unfit(entry)
    if problem is not None:
        return None, f"entry {key} in this machine's cache does not fit it: {problem}"
    module = types.ModuleType(name)
    try:
        bind_module(module, entry, settings)
    except Exception as exc:  # a damaged entry, a library the dynamic loader refuses
        return None, f"entry {key} failed to load here: {exc}"
    log.debug("bound %s from cache entry %s (sent by key)", name, key)
    return _published(module), ""


def _published(module: types.ModuleType) -> types.ModuleType:
    """Also answer ``import name`` and by-name pickles in this process, when the name is free."""
    if module.__name__ not in sys.modules:
        sys.modules[module.__name__] = module
    return module


def unfit(entry: str) -> Optional[str]:
    """Why the entry's library cannot load on this machine (architecture, C library), or None."""
    library = entry_file(entry, LIBRARY_FILE)
    try:
        check_elf(library)
        with open(library, "rb") as stream:
            header = stream.read(20)
        with open(sys.executable, "rb") as stream:
            ours = stream.read(20)
    except (OSError, ValueError) as exc:
        return str(exc)
    if header[18:20] != ours[18:20] and ours[:4] == b"\x7fELF":
        return (f"it was built for ELF machine {int.from_bytes(header[18:20], 'little')}, this machine is "
                f"{int.from_bytes(ours[18:20], 'little')}")
    needed = _needed(library)
    glibc = _is_glibc()
    if "libc.so.6" in needed and not glibc:
        return "it needs glibc (libc.so.6), and this interpreter runs on another C library"
    if any(n == "libc.so" or n.startswith("libc.musl") for n in needed) and glibc:
        return "it needs musl's C library, and this interpreter runs on glibc"
    return None


def _needed(library: str) -> list[str]:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(library, "rb") as stream:
        for section in ELFFile(stream).iter_sections():
            if isinstance(section, DynamicSection):
                return [str(tag.needed) for tag in section.iter_tags()  # type: ignore[attr-defined]
                        if tag.entry.d_tag == "DT_NEEDED"]
    return []


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError, AttributeError):
        return False


def _import_shipped() -> bool:
    """Import the archives ``NATIVEIMPORT_SHIPPED`` names into the local cache; True if any was new."""
    from ._archive import import_archive

    new = False
    for archive in _shipped_archives():
        if archive in _SHIPPED_IMPORTED:
            continue
        _SHIPPED_IMPORTED.add(archive)
        with open(archive, "rb") as stream:
            keys = import_archive(cache_root(Settings.from_env().cache_dir), stream.read())
        log.debug("imported %d shipped entries from %s", len(keys), archive)
        new = True
    return new


def _shipped_archives() -> list[str]:
    found: list[str] = []
    for item in filter(None, os.environ.get(SHIPPED_VARIABLE, "").split(os.pathsep)):
        path = item if os.path.exists(item) else _package_folder(item)
        if path is None:
            continue
        if os.path.isdir(path):
            found.extend(os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".nativeimport"))
        else:
            found.append(path)
    return found


def _package_folder(name: str) -> Optional[str]:
    # Ray's py_modules put a shipped package on sys.path: its folder holds the archives.
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return locations[0] if locations else None


def _build_carried(key: str, name: str, driver: str, binder: str, source_name: str, source: bytes,
                   dependencies: tuple[tuple[str, bytes], ...]) -> types.ModuleType:
    """Write the carried source into the cache and build it as an import would; one process per cache at a time."""
    from . import _locks
    from ._finder import installed_drivers

    settings = Settings.from_env(binder=binder)
    root = cache_root(settings.cache_dir)
    info = installed_drivers({}).by_name(driver)
    if info is None:
        raise NativeImportError(f"no driver named {driver!r} is installed here (`nativeimport doctor` lists them)")
    lock = lock_file(root, f"carried-{key}")
    make_private_dirs(os.path.dirname(lock))
    descriptor = _locks.acquire(lock, timeout=settings.lock_timeout)
    if descriptor is None:
        raise LockTimeout(f"gave up after {settings.lock_timeout:g} s waiting for another process building {name} "
                          f"from a carried source (lock file {lock}); raise NATIVEIMPORT_LOCK_TIMEOUT")
    try:
        path = _write_carried(root, key, info, source_name, source, dependencies)
        entry = obtain_entry(path, info, settings, name)
        complete_entry(entry, name, settings)
        module = types.ModuleType(name)
        module.__file__ = path
        bind_module(module, entry, settings)
    finally:
        _locks.release(descriptor)
    log.info("built %s here from the source carried by a pickle", name)
    return _published(module)


def _write_carried(root: str, key: str, info: Any, source_name: str, source: bytes,
                   dependencies: tuple[tuple[str, bytes], ...]) -> str:
    """The carried files under ``scratch/carried/<key>/``, one stable path per key (so later hits are stats)."""
    folder = os.path.join(scratch_dir(root, "carried"), key[:32])
    name = os.path.basename(source_name)
    if not name or name in (".", ".."):
        raise NativeImportError(f"the pickle names no usable source file ({source_name!r})")
    marker = info.directory_marker
    directory_source = marker is not None and os.path.splitext(name)[1] not in info.suffixes
    path = os.path.join(folder, name)
    files = [(os.path.join(name, marker), source)] if directory_source else [(name, source)]
    base = path if directory_source else folder
    for relative, data in dependencies:
        target = os.path.normpath(os.path.join(base, relative))
        if os.path.isabs(relative) or not target.startswith(folder + os.sep):
            raise NativeImportError(f"the pickle carries a dependency outside its folder ({relative!r})")
        files.append((os.path.relpath(target, folder), data))
    for relative, data in files:
        target = os.path.join(folder, relative)
        try:
            with open(target, "rb") as stream:
                if stream.read() == data:
                    continue  # unchanged: keep its stats, so the freshness record still answers
        except OSError:
            pass
        make_private_dirs(os.path.dirname(target))
        temporary = f"{target}.{os.getpid()}.tmp"
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    return path


# -- stand-ins ----------------------------------------------------------------------------------


class Unavailable:
    """Stands for a module that could not be had here; its attributes are :class:`Missing` stand-ins.

    ``rebuild`` and ``attribute`` are the functions pickles call (in :mod:`nativeimport._pickling`):
    sent back or on, a stand-in pickles as what it stands for, and the receiver tries again.
    """

    def __init__(self, carried: tuple[Any, ...], reason: str, rebuild: Any, attribute: Any) -> None:
        self._carried = carried
        self._rebuild = rebuild
        self._attribute = attribute
        self.__native_key__ = carried[0]
        self.__name__ = carried[1]
        self.reason = reason

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        # Looked again: held in sys.modules (as an entry's alias module), it outlives a plugin shipping the entry.
        module, reason = resolve_carried(self._carried)
        if module is not None:
            return getattr(module, name)
        self.reason = reason
        return Missing(f"{self.__name__}.{name}", self.__name__, self.__native_key__, self.reason,
                       (self._attribute, (self, name)))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self._rebuild, self._carried)

    def __repr__(self) -> str:
        return f"<unavailable native module {self.__name__} (entry {self.__native_key__[:16]})>"


class Missing:
    """Stands for a native function, struct or value that could not be had here: using it raises why."""

    def __init__(self, what: str, module: str, key: str, reason: str, reduce: tuple[Any, Any]) -> None:
        self._what = what
        self.module = module
        self.key = key
        self.reason = reason
        self._reduce = reduce

    def _error(self) -> NativeImportError:
        return NativeImportError(
            f"{self._what} is not available in this process (host {_host()}, pid {os.getpid()}): {self.reason}. "
            f"Ship the module to this machine: for Dask, client.register_plugin(nativeimport.dask.NativeModules("
            f"{self.module})); for Ray, ray.init(runtime_env=nativeimport.ray.runtime_env({self.module})); "
            f"otherwise `nativeimport cache export {self.key} -o FILE` where it was built and "
            "`nativeimport cache import FILE` here, or install a compiler here so the carried source can be built",
            name=self.module)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._error()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self._error()

    def __reduce__(self) -> tuple[Any, Any]:
        return self._reduce

    def __repr__(self) -> str:
        return f"<unavailable {self._what}: {self.reason}>"


def _host() -> str:
    import socket

    return socket.gethostname()


# -- by name: modules shipped to a worker answer `import name` -----------------------------------


class ShippedFinder:
    """A ``sys.meta_path`` finder for modules shipped by key (Dask's plugin, Ray's setup hook).

    cloudpickle refers to a module a function uses as a global by its name
    alone; on a worker with neither the source nor ``install()``, this answers
    that name with the shipped entry. Appended last: any other module wins.
    """

    def __init__(self) -> None:
        self.names: dict[str, tuple[str, str]] = {}  # module name -> (key, binder)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, self, origin=  # type: ignore[arg-type]
                          f"nativeimport entry {self.names[fullname][0]}")

    def create_module(self, spec: Any) -> types.ModuleType:
        key, binder = self.names[spec.name]
        module = resolve_key(key, spec.name, binder)
        if module is None:
            raise ImportError(f"{spec.name}: its shipped entry {key} is not in this machine's cache (was the "
                              "plugin registered after a cache clear?)", name=spec.name)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass  # bound in create_module


def publish_names(names: dict[str, str], binder: str = "auto") -> ShippedFinder:
    """Let ``import name`` find each shipped module (name -> key) in this process."""
    for finder in sys.meta_path:
        if isinstance(finder, ShippedFinder):
            break
    else:
        finder = ShippedFinder()
        sys.meta_path.append(finder)
    finder.names.update({name: (key, binder) for name, key in names.items()})
    return finder
