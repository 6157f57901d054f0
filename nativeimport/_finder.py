"""Finding: a module name -> a native source and the driver that builds it. Only stats, never builds.

Two finders. :class:`NativeFinder` is appended to ``sys.meta_path``, so
Python's own finders answer first. :class:`ProjectFinder` replaces Python's
``FileFinder`` path hook so a directory that is a driver's project (a Cargo
crate) is found where Python would import it as an empty namespace package.

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

# FileFinder's listing of its directory: the mtime it was read at and the names (exact and case-folded)
_LISTING = ("_path_mtime", "_path_cache", "_relaxed_path_cache")


class Listings:
    """The names in each directory, and their stems (``mymath`` for ``mymath.c``, ``mymath.cpython-311.so``).

    Asking whether a directory has anything of a name is then one set lookup
    instead of a stat per candidate file (most of which fail, raising an
    exception each). A listing is read again when the directory's mtime
    changes. Where Python's FileFinder serves the directory (the usual case),
    its mtime is taken from that finder: NativeFinder runs after PathFinder,
    which has just asked the FileFinder, so it is current and costs no system
    call. Elsewhere it costs one stat.

    A directory changed in the last two seconds is listed afresh on every
    call and its listing is not kept: a file created in the same clock tick as
    a kept listing would be missed. (Python's FileFinder takes that risk; a
    listing here is never kept from so close to a change.) A path entry that does
    not exist is remembered as empty until :meth:`clear`, as Python's
    PathFinder remembers it until ``importlib.invalidate_caches()``.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def names(self, directory: str, now: float) -> frozenset[str]:
        """The names in ``directory`` and their stems. ``now`` is ``time.time()``."""
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
        try:
            entries = os.listdir(directory)
        except NotADirectoryError:  # a zip file on sys.path
            self._cache[directory] = (-1.0, frozenset())
            return frozenset()
        except OSError:
            return frozenset()
        # A module name has no dot, so a file that could be ``name`` + a suffix starts with ``name.``.
        names = frozenset(entries).union([entry.partition(".")[0] for entry in entries])
        if now - mtime >= _RECENT_SECONDS:
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
        self.listings = Listings()
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
                        self._registry = discover_drivers(self.overrides)
                    finally:
                        self._discovering = False
        return self._registry

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Optional[ModuleSpec]:
        name = fullname.rpartition(".")[2]
        if not name.isidentifier():
            return None
        now = time.time()
        for directory in sys.path if path is None else path:
            if not isinstance(directory, str):
                continue
            directory = directory or os.getcwd()
            names = self.listings.names(directory, now)
            if name not in names:
                continue  # the common case: nothing of that name here
            registry = self.registry  # only now: a file here starts with the name
            if registry is None:
                return None
            for suffix, driver in registry.by_suffix.items():
                candidate = os.path.join(directory, name + suffix)
                if name + suffix in names and os.path.isfile(candidate) and driver.claims(candidate):
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
