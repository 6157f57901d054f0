"""Finding: a module name -> a native source and the driver that builds it. Only stats, never builds.

Native sources are found in ``sys.path`` order, exactly where a ``.py`` file
of the same name would be: :class:`ProjectFinder` replaces Python's
``FileFinder`` path hook, asks Python's finder first, and looks for native
sources in the same directory only when Python found nothing there (or only
a namespace portion). So ``xxhash.c`` beside a script shadows an installed
``xxhash`` package, as ``xxhash.py`` would, and ``pkg/__init__.c`` makes a
package. :class:`NativeFinder`, appended to ``sys.meta_path``, holds the
settings and drivers and searches only the path entries no ProjectFinder
serves.

An import nativeimport does not serve costs a set lookup per ``sys.path``
directory: a directory's listing holds the stem of every name in it, and only
a name some file there starts with makes the finder look up the drivers
(which reads the driver table, and on a machine's first use scans the entry
points). So an unrelated import imports no driver and writes nothing.
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

from ._loader import spec_for_path
from ._registry import Registry, discover_drivers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, Optional

__all__ = ["Listings", "NativeFinder", "ProjectFinder", "install", "installed", "installed_drivers", "uninstall"]

_RECENT_SECONDS = 2.0

# Python's own path hook for directories finds these: FileFinder(path, *_PYTHON_LOADERS)
_PYTHON_LOADERS = ((ExtensionFileLoader, EXTENSION_SUFFIXES), (SourceFileLoader, SOURCE_SUFFIXES),
                   (SourcelessFileLoader, BYTECODE_SUFFIXES))

# Per-directory build settings, which may define modules that have no file of their own
# (the name _build_settings.CONFIG_FILE, spelled here so an unrelated import does not import that module)
_CONFIG_FILE = "nativeimport.toml"

# FileFinder's listing of its directory: the mtime it was read at and the names (exact and case-folded)
_LISTING = ("_path_mtime", "_path_cache", "_relaxed_path_cache")


class Listings:
    """The names in each directory, and their stems (``mymath`` for ``mymath.c``, ``mymath.cpython-311.so``).

    Asking whether a directory has anything of a name is then one set lookup
    instead of a stat per candidate file (most of which fail, raising an
    exception each). A listing is read again when the directory's mtime
    changes. Where Python's FileFinder serves the directory (the usual case),
    its mtime is taken from that finder, which has just brought it up to date
    for the same import, so it costs no system call. Elsewhere it costs one stat.

    A directory changed in the last two seconds is listed afresh on every
    call and its listing is not kept: a file created in the same clock tick as
    a kept listing would be missed. (Python's FileFinder takes that risk; a
    listing here is never kept from so close to a change.) A path entry that does
    not exist is remembered as empty until :meth:`clear`, as Python's
    PathFinder remembers it until ``importlib.invalidate_caches()``.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def names(self, directory: str, mtime: Optional[float] = None) -> frozenset[str]:
        """The names in ``directory`` and their stems; ``mtime`` is its ``st_mtime`` if known."""
        cached = self._cache.get(directory)
        if cached is not None and cached[0] < 0:
            return cached[1]  # missing, or not a directory
        if mtime is None:
            mtime = _mtime_python_saw(directory)
        if mtime is None:
            try:
                mtime = os.stat(directory).st_mtime
            except OSError:
                self._cache[directory] = (-1.0, frozenset())
                return frozenset()
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            entries = os.listdir(directory)
        except NotADirectoryError:  # a zip file on sys.path
            self._cache[directory] = (-1.0, frozenset())
            return frozenset()
        except OSError:
            return frozenset()
        # A module name has no dot, so a file that could be ``name`` + a suffix starts with ``name.``.
        names = frozenset(entries).union([entry.partition(".")[0] for entry in entries])
        if time.time() - mtime >= _RECENT_SECONDS:
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
    """Finds ``<name><suffix>`` for every registered suffix in a directory; holds the settings and the drivers.

    :class:`ProjectFinder` asks it about its own directory, in ``sys.path``
    order. Appended to ``sys.meta_path`` it also searches the path entries no
    ProjectFinder serves (a finder cached before ``install()`` by another
    path hook); an import that reaches it costs a type check per entry.
    """

    def __init__(self, overrides: Optional[dict[str, Any]] = None, registry: Optional[Registry] = None) -> None:
        self.listings = Listings()
        self._registry = registry
        self._discovering = False
        self._defining = False
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
                        self._registry = discover_drivers(self.overrides)
                    finally:
                        self._discovering = False
        return self._registry

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Optional[ModuleSpec]:
        cache = sys.path_importer_cache
        for directory in sys.path if path is None else path:
            if not isinstance(directory, str):
                continue
            directory = directory or os.getcwd()
            if isinstance(cache.get(directory), ProjectFinder):
                continue  # searched already, in its place in the path
            spec = self.in_directory(fullname, directory, None)
            if spec is not None:
                return spec
        return None

    def in_directory(self, fullname: str, directory: str, python_spec: Optional[ModuleSpec],
                     mtime: Optional[float] = None) -> Optional[ModuleSpec]:
        """The native module ``fullname`` in ``directory``, where Python found nothing or ``python_spec``,
        a namespace portion; None if there is none.

        In one directory, as in Python's FileFinder, a package (``name/__init__.c``,
        or a project directory such as a crate) comes before a module file
        (``name.c``), which comes before a namespace portion.
        """
        name = fullname.rpartition(".")[2]
        names = self.listings.names(directory, mtime)
        configured = _CONFIG_FILE in names
        if name not in names and not configured:
            return None  # the common case: nothing of that name here
        registry = self.registry  # only now: a file here starts with the name
        if registry is None or not name.isidentifier():
            return None
        if python_spec is not None and python_spec.submodule_search_locations:
            package = self._package(fullname, python_spec.submodule_search_locations, registry)
            if package is not None:
                return package
        for suffix, driver in registry.by_suffix.items():
            candidate = os.path.join(directory, name + suffix)
            if name + suffix in names and os.path.isfile(candidate) and driver.claims(candidate):
                return spec_for_path(fullname, candidate, driver, self.overrides)
        return self._defined(fullname, directory, registry) if configured else None

    def _defined(self, fullname: str, directory: str, registry: Registry) -> Optional[ModuleSpec]:
        """A module ``nativeimport.toml`` in ``directory`` defines from several sources, with no file of its own."""
        if self._defining:
            return None  # reading the file imports modules (tomllib, json): those are not defined there
        self._defining = True
        try:
            from ._build_settings import CONFIG_FILE, defined_modules, definition_of  # only such directories pay

            name = fullname.rpartition(".")[2]
            primary = defined_modules(directory).get(name)
        finally:
            self._defining = False
        driver = registry.for_path(primary) if primary is not None else None
        if primary is None or driver is None:
            return None
        definition = definition_of(os.path.join(directory, CONFIG_FILE), name)
        return spec_for_path(fullname, primary, driver, self.overrides, definition=definition)

    def _package(self, fullname: str, locations: Sequence[str], registry: Registry) -> Optional[ModuleSpec]:
        for location in locations:
            for suffix, driver in registry.by_suffix.items():
                init = os.path.join(location, "__init__" + suffix)
                if os.path.isfile(init) and driver.claims(init):
                    spec = spec_for_path(fullname, init, driver, self.overrides)
                    spec.submodule_search_locations = [location]
                    return spec
            for driver in registry.with_marker:
                assert driver.directory_marker is not None
                if os.path.isfile(os.path.join(location, driver.directory_marker)):
                    return spec_for_path(fullname, location, driver, self.overrides)
        return None

    def invalidate_caches(self) -> None:
        """Forget the directory listings (``importlib.invalidate_caches()`` calls this)."""
        self.listings.clear()

    def __repr__(self) -> str:
        return f"<nativeimport.NativeFinder {self.overrides or ''}>"


class ProjectFinder(FileFinder):
    """Python's finder for one ``sys.path`` directory, which also finds the native sources in it.

    Python's answer comes first: a package, an extension module, ``.py`` or
    ``.pyc`` of the name in this directory wins over a native source there.
    Then a native package (``name/__init__.c``, a Cargo crate ``name/Cargo.toml``
    that Python would import as an empty namespace package), then a native
    module file (``name.c``, ``name.rs``, ... in the drivers' alphabetical
    order). Installed as a path hook rather than a meta-path finder ahead of
    Python's, so an import pays one method call and a set lookup here, not a
    second search of ``sys.path``.
    """

    def __init__(self, path: str, files: NativeFinder) -> None:
        super().__init__(path, *_PYTHON_LOADERS)
        self.files = files

    def find_spec(self, fullname: str, target: Any = None) -> Optional[ModuleSpec]:
        spec = super().find_spec(fullname, target)
        if spec is not None and spec.loader is not None:
            return spec  # Python's own module or package in this directory
        mtime = getattr(self, "_path_mtime", None)  # Python's finder has just brought its listing up to date
        native = self.files.in_directory(fullname, self.path, spec, mtime if isinstance(mtime, float) else None)
        return native if native is not None else spec

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


def installed_drivers(overrides: dict[str, Any]) -> Registry:
    """The registered drivers: the installed finder's, else looked up afresh."""
    finder = installed()
    registry = finder.registry if finder is not None else None
    return registry if registry is not None else discover_drivers(overrides)


def install(overrides: dict[str, Any]) -> NativeFinder:
    """Append the finder to ``sys.meta_path`` and the project finder to the path hooks (once)."""
    finder = installed()
    if finder is not None:
        finder.overrides = overrides
        return finder
    finder = NativeFinder(overrides)
    sys.meta_path.append(finder)
    ProjectFinder.install(finder)
    return finder


def installed() -> Optional[NativeFinder]:
    """The finder :func:`install` added, if it is still in ``sys.meta_path``."""
    for finder in sys.meta_path:
        if isinstance(finder, NativeFinder):
            return finder
    return None


def uninstall() -> None:
    """Remove what :func:`install` added."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, NativeFinder)]
    ProjectFinder.uninstall()
