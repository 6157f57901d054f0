"""The import hook: the finders that map a module name to a native source, and the
loader that turns a source into a bound module through the cache.

One module, as importlib keeps its path finders and file loaders in one
(``_bootstrap_external``): a cache hit runs both halves, and each module on
that path costs about 0.1 ms to import. The finders only stat. The loader
reads the source's freshness record and binds the entry it names; a miss
imports :mod:`nativeimport._build`. An entry's key hashes a schema version,
the driver's fingerprint (toolchain, its version, flags), the source bytes
and every dependency's bytes; the freshness record skips all hashing while
no stat changed.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

# importlib.machinery's names, without importing importlib (and warnings) into every process
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)

from ._fresh import (
    FAST_FILE,
    LIBRARY_FILE,
    LIGHT_FILE,
    Settings,
    cache_root,
    check_elf,
    entry_dir,
    exec_stored,
    fresh_key,
)
from ._registry import DriverInfo, Registry
from .errors import BindingError, CacheError, NativeImportError, NativeImportWarning

TYPE_CHECKING = False
if TYPE_CHECKING:
    import types
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, Optional

__all__ = ["Listings", "NativeFinder", "NativeLoader", "ProjectFinder", "bind_module", "discover_drivers", "is_stale",
           "obtain_entry", "spec_for_path"]

# -- finding: module name -> native source and driver ------------------------------------

_RECENT_SECONDS = 2.0

# Python's own path hook for directories finds these: FileFinder(path, *_PYTHON_LOADERS)
_PYTHON_LOADERS = ((ExtensionFileLoader, EXTENSION_SUFFIXES), (SourceFileLoader, SOURCE_SUFFIXES),
                   (SourcelessFileLoader, BYTECODE_SUFFIXES))

# FileFinder's listing of its directory: the mtime it was read at and the names (exact and case-folded)
_LISTING = ("_path_mtime", "_path_cache", "_relaxed_path_cache")


class Listings:
    """The names in each directory, and the stems of those with one of ``suffixes`` (``mymath`` for ``mymath.c``).

    Asking whether a directory has anything of a name is then one set lookup
    instead of a stat per candidate file (most of which fail, raising an
    exception each). A listing is read again when the directory's mtime
    changes. Where Python's FileFinder serves the directory (the usual case),
    its mtime is taken from that finder: NativeFinder runs after PathFinder,
    which has just asked the FileFinder, so it is current and costs no system
    call. Elsewhere it costs one stat.

    A directory changed in the last two seconds gets no listing (None): a file
    created in the same clock tick as the listing would be missed, so the
    caller stats its candidates instead. (Python's FileFinder takes that risk;
    a listing here is never read so close to a change.) A path entry that does
    not exist is remembered as empty until :meth:`clear`, as Python's
    PathFinder remembers it until ``importlib.invalidate_caches()``.
    """

    def __init__(self, suffixes: Iterable[str]) -> None:
        self.suffixes = tuple(suffixes)
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def names(self, directory: str, now: float) -> Optional[frozenset[str]]:
        """The names in ``directory``; None when they must be stat'ed one by one. ``now`` is ``time.time()``."""
        cached = self._cache.get(directory)
        if cached is not None and cached[0] < 0:
            return cached[1]  # missing, or not a directory
        mtime = _mtime_python_saw(directory)
        if mtime is None:
            try:
                mtime = os.stat(directory).st_mtime
            except OSError:
                self._cache[directory] = (-1.0, frozenset())
                return frozenset()
        if cached is not None and cached[0] == mtime:
            return cached[1]
        if now - mtime < _RECENT_SECONDS:
            return None
        try:
            entries = os.listdir(directory)
        except NotADirectoryError:  # a zip file on sys.path
            self._cache[directory] = (-1.0, frozenset())
            return frozenset()
        except OSError:
            return frozenset()
        stems = [entry[: -len(s)] for entry in entries for s in self.suffixes if entry.endswith(s)]
        names = frozenset(entries).union(stems)
        self._cache[directory] = (mtime, names)
        return names

    def clear(self) -> None:
        self._cache.clear()


def _mtime_python_saw(directory: str) -> Optional[float]:
    """The directory's mtime when its FileFinder last looked (as ``os.stat().st_mtime``); None if unknown."""
    finder = sys.path_importer_cache.get(directory)
    mtime = getattr(finder, "_path_mtime", None) if isinstance(finder, FileFinder) else None
    return mtime if isinstance(mtime, float) else None  # -1, an int, until it has read the directory


class NativeFinder:
    """Finds ``<name><suffix>`` for every registered suffix on ``sys.path`` or a package's ``__path__``.

    Appended to ``sys.meta_path``, so Python's own finders answer first; an
    import that reaches it and finds nothing costs a set lookup per path
    directory (see :class:`Listings`).
    """

    def __init__(self, overrides: Optional[dict[str, Any]] = None, registry: Optional[Registry] = None) -> None:
        self.listings = Listings(registry.by_suffix if registry is not None else ())
        self._registry = registry
        self._discovering = False
        self._lock = _thread.RLock()  # _thread, not threading: this is on every import's path
        self.overrides = overrides or {}

    @property
    def registry(self) -> Optional[Registry]:
        """The drivers, looked up on the first import that reaches this finder.

        None while that lookup runs: importing the drivers must not come back here.
        """
        if self._registry is None:
            with self._lock:  # other threads wait; this thread, re-entering, gets None
                if self._registry is None and not self._discovering:
                    self._discovering = True
                    try:
                        registry = Registry.discover(_root_or_none(self.overrides))
                        self.listings = Listings(registry.by_suffix)
                        self._registry = registry
                    finally:
                        self._discovering = False
        return self._registry

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Optional[ModuleSpec]:
        name = fullname.rpartition(".")[2]
        if not name.isidentifier():
            return None
        registry = self.registry
        if registry is None:
            return None
        now = time.time()
        for directory in sys.path if path is None else path:
            if not isinstance(directory, str):
                continue
            directory = directory or os.getcwd()
            names = self.listings.names(directory, now)
            if names is not None and name not in names:
                continue  # the common case: nothing of that name here
            for suffix, driver in registry.by_suffix.items():
                candidate = os.path.join(directory, name + suffix)
                if (names is None or name + suffix in names) and os.path.isfile(candidate):
                    return spec_for_path(fullname, candidate, driver, self.overrides)
        return None

    def invalidate_caches(self) -> None:
        """Forget the directory listings (``importlib.invalidate_caches()`` calls this)."""
        self.listings.clear()

    def __repr__(self) -> str:
        return f"<nativeimport.NativeFinder {self.overrides or ''}>"


class ProjectFinder(FileFinder):
    """Python's finder for one ``sys.path`` directory, which also knows project directories.

    A directory such as a Cargo crate (``name/Cargo.toml``, no ``__init__.py``)
    would otherwise import as an empty namespace package. Installed as a path
    hook rather than a meta-path finder ahead of Python's, so an import pays
    one method call here, not a second search of ``sys.path``. A project
    directory is found as a regular package is: in ``sys.path`` order.
    """

    def __init__(self, path: str, files: NativeFinder) -> None:
        super().__init__(path, *_PYTHON_LOADERS)
        self.files = files

    def find_spec(self, fullname: str, target: Any = None) -> Optional[ModuleSpec]:
        spec = super().find_spec(fullname, target)
        if spec is None or spec.loader is not None or not spec.submodule_search_locations:
            return spec  # Python's answer, whatever it is, except a namespace package's portion
        registry = self.files.registry
        for driver in registry.with_marker if registry is not None else ():
            assert driver.directory_marker is not None
            for location in spec.submodule_search_locations:
                if os.path.isfile(os.path.join(location, driver.directory_marker)):
                    return spec_for_path(fullname, location, driver, self.files.overrides)
        return spec

    @classmethod
    def install(cls, files: NativeFinder) -> None:
        """Become the path hook for directories, in place of Python's FileFinder."""
        def project_finder_hook(path: str) -> ProjectFinder:
            if not os.path.isdir(path or "."):
                raise ImportError("only directories are supported", path=path)
            return cls(path, files)

        cls.uninstall()
        hooks = sys.path_hooks
        python = [i for i, hook in enumerate(hooks) if "FileFinder" in getattr(hook, "__qualname__", "")]
        hooks.insert(python[0] if python else len(hooks), project_finder_hook)
        _replace_finders(FileFinder, lambda path: cls(path, files))

    @classmethod
    def uninstall(cls) -> None:
        sys.path_hooks[:] = [h for h in sys.path_hooks if getattr(h, "__name__", "") != "project_finder_hook"]
        _replace_finders(cls, lambda path: FileFinder(path, *_PYTHON_LOADERS))


def _replace_finders(kind: type, make: Callable[[str], FileFinder]) -> None:
    """Replace each cached finder of exactly ``kind`` by ``make(path)``, handing over the listing it has read.

    Installing must not make every directory be listed again: at start-up
    Python has just listed each ``sys.path`` directory to find nativeimport.
    Should a later Python rename the attributes in ``_LISTING``, nothing is
    handed over and the new finder simply lists its directory on first use.
    """
    cache = sys.path_importer_cache
    for path, finder in list(cache.items()):
        if isinstance(finder, FileFinder) and type(finder) is kind:
            replacement = make(finder.path)
            for attribute in _LISTING:
                if attribute in vars(finder):
                    setattr(replacement, attribute, getattr(finder, attribute))
            cache[path] = replacement


def discover_drivers(overrides: dict[str, Any]) -> Registry:
    """The registered drivers: the installed finder's, else looked up afresh."""
    for finder in sys.meta_path:
        if isinstance(finder, NativeFinder):
            registry = finder.registry
            if registry is not None:
                return registry
    return Registry.discover(_root_or_none(overrides))


def _root_or_none(overrides: dict[str, Any]) -> Optional[str]:
    try:
        return cache_root(Settings.from_env(**overrides))
    except CacheError:
        return None  # the import that needs the cache will say why


def spec_for_path(fullname: str, source: str, driver: DriverInfo, overrides: dict[str, Any]) -> ModuleSpec:
    """A module spec whose loader builds ``source`` with ``driver``; ``__file__`` is the source."""
    source = os.path.abspath(source)
    spec = ModuleSpec(fullname, NativeLoader(source, driver, overrides), origin=source)  # type: ignore[arg-type]
    spec.has_location = True  # so the module's __file__ is the source
    return spec


# -- loading: native source -> cache entry -> bound module -----------------------------

class NativeLoader:
    """Loads one native source as a module (importlib's Loader protocol)."""

    def __init__(self, source: str, driver: DriverInfo, overrides: dict[str, Any]) -> None:
        self.source = source
        self.driver = driver
        self.overrides = overrides

    def create_module(self, spec: Any) -> Optional[types.ModuleType]:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        settings = Settings.from_env(**self.overrides)
        try:
            _enable_verbose(settings)
            entry = obtain_entry(self.source, self.driver, settings, module.__name__)
            try:
                bind_module(module, entry, settings)
            except NativeImportError:
                raise
            except Exception as exc:  # a damaged entry: evict it and build once more
                from ._build import evict

                evict(entry, self.source, exc)
                entry = obtain_entry(self.source, self.driver, settings, module.__name__)
                try:
                    bind_module(module, entry, settings)
                except NativeImportError:
                    raise
                except Exception as again:
                    raise BindingError(f"{self.source}: the freshly built library failed to load: {again}") from again
        except NativeImportError as error:
            if error.name is None:
                error.name = module.__name__
            if error.path is None:
                error.path = self.source
            raise

    def get_filename(self, fullname: str) -> str:
        return self.source


def bind_module(module: types.ModuleType, entry: str, settings: Settings) -> None:
    """Fill ``module`` with the entry's exports, dropping names a previous version had."""
    extension = _fast_extension(entry, module.__name__, settings)
    light = exec_stored(entry, LIGHT_FILE) if extension is not None else None
    if light is not None and light.ALL_FAST:
        namespace, released = _bind_light(module, entry, extension, light)
        skipped = light.SKIPPED
    else:
        from ._cffi_runtime import load_binding

        namespace, skipped = load_binding(entry, module.__name__)
        released = {}
        if extension is not None:
            wrappers = dict(namespace)  # the cffi wrappers, before the fast ones replace them
            kept, released = extension.bind(os.path.join(entry, LIBRARY_FILE), module.__name__, lambda: wrappers)
            namespace.update(kept)
    namespace["__native_release_gil__"] = dict(released)
    for name in getattr(module, "__native_exports__", ()):
        if name not in namespace:
            module.__dict__.pop(name, None)
    module.__dict__.update(namespace)
    module.__native_exports__ = tuple(namespace)  # type: ignore[attr-defined]
    module.__native_library__ = os.path.join(entry, LIBRARY_FILE)  # type: ignore[attr-defined]
    module.__native_key__ = os.path.basename(entry)  # type: ignore[attr-defined]
    module.__all__ = [name for name in namespace if not name.startswith("_")]  # type: ignore[attr-defined]
    if skipped:
        import warnings

        for name, reason in skipped:
            warnings.warn(f"{module.__name__}.{name} was left out: {reason}", NativeImportWarning, stacklevel=4)


def _bind_light(module: types.ModuleType, entry: str, extension: Any,
                light: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bind through the fast wrapper alone; cffi loads only if something needs it.

    Not through a module ``__getattr__``: CPython stops specialising attribute
    loads on a module that has one, which would cost every ``mod.f()`` call ~35 ns.
    """
    cffi: dict[str, Any] = {}

    def provider() -> dict[str, Any]:
        if not cffi:
            from ._cffi_runtime import load_binding

            cffi.update(load_binding(entry, module.__name__)[0])
        return cffi

    check_elf(os.path.join(entry, LIBRARY_FILE))
    kept, released = extension.bind(os.path.join(entry, LIBRARY_FILE), module.__name__, provider)
    namespace: dict[str, Any] = dict(getattr(light, "CONSTANTS", {}))  # #define constants (absent in older entries)
    namespace.update(kept)
    if light.ENUMS:
        from ._cffi_runtime import int_enum  # the runtime module loads only for what needs it

        for name, members, doc in light.ENUMS:
            if name:
                namespace[name] = int_enum(name, members, module.__name__, doc)
            namespace.update(members)
    namespace["__ffi__"] = OnFirstUse(lambda: provider()["__ffi__"])
    namespace["__lib__"] = OnFirstUse(lambda: provider()["__lib__"])
    return namespace, released


class OnFirstUse:
    """Stands for an object made the first time one of its attributes is used (``mod.__ffi__.new``)."""

    def __init__(self, make: Any) -> None:
        self._make = make
        self._made: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            self._made = self._make()
        return getattr(self._made, name)


def _fast_extension(entry: str, module_name: str, settings: Settings) -> Any:
    """This interpreter's fast wrapper module, building it once if missing; None where it cannot serve."""
    if sys.implementation.name != "cpython" or settings.binder == "cffi":
        return None
    path = os.path.join(entry, FAST_FILE)
    if not os.path.exists(path):
        from ._build import add_fast_wrapper  # missing for this interpreter: build it once

        if not add_fast_wrapper(entry, path, module_name, settings):
            return None
    check_elf(path)
    loader = ExtensionFileLoader("_nativeimport_fast", path)
    return loader.create_module(ModuleSpec("_nativeimport_fast", loader, origin=path))


def is_stale(module: types.ModuleType) -> bool:
    """Whether ``module``'s source or one of its dependencies changed since it was bound.

    Only stats; a changed file whose content hashes to the same build counts as
    stale too, and reloading it is then a cheap cache hit.
    """
    loader = getattr(module, "__loader__", None)
    if not isinstance(loader, NativeLoader):
        return False
    settings = Settings.from_env(**loader.overrides)
    key = fresh_key(cache_root(settings), loader.source, loader.driver.token())
    return key != getattr(module, "__native_key__", None)


def obtain_entry(source: str, driver: DriverInfo, settings: Settings, module_name: str) -> str:
    """The cache entry for ``source``, building it when no entry matches."""
    root = cache_root(settings)
    token = driver.token()
    key = fresh_key(root, source, token)
    if key is not None:
        return entry_dir(root, key)
    from ._build import check_or_build  # a miss: hashing, locking, maybe compiling

    return check_or_build(root, source, driver, token, settings, module_name)


def _enable_verbose(settings: Settings) -> None:
    # NATIVEIMPORT_VERBOSE is the user asking for output: the one place the library adds a handler.
    if not settings.verbose:
        return
    import logging

    logger = logging.getLogger("nativeimport")
    if any(getattr(h, "_nativeimport_verbose", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nativeimport: %(message)s"))
    handler._nativeimport_verbose = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
