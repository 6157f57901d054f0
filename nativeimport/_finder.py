"""The ``sys.meta_path`` finder: module name -> native source + driver. It only stats."""

from __future__ import annotations

import _thread
import os
import sys
import time

from ._registry import DriverInfo, Registry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from typing import Any, Optional

__all__ = ["DirectoryFinder", "Listings", "NativeFinder", "discover_drivers", "spec_for_path"]


class Listings:
    """The names in each directory, read again when the directory's mtime changes.

    One stat per directory and a set lookup replace a stat per candidate file
    (most of which fail, raising an exception each), as CPython's FileFinder
    does. A directory changed in the last two seconds gets no listing (None):
    a file created in the same clock tick as the listing would be missed, so
    the caller stats its candidates instead.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, frozenset[str]]] = {}

    def names(self, directory: str) -> Optional[frozenset[str]]:
        try:
            mtime = os.stat(directory).st_mtime_ns
        except OSError:
            return frozenset()
        cached = self._cache.get(directory)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        if time.time_ns() - mtime < 2_000_000_000:
            return None
        try:
            names = frozenset(os.listdir(directory))
        except OSError:
            return frozenset()
        self._cache[directory] = (mtime, names)
        return names

    def clear(self) -> None:
        self._cache.clear()


class NativeFinder:
    """Finds ``<name><suffix>`` for every registered suffix on ``sys.path`` or a package's ``__path__``.

    Appended to ``sys.meta_path``, so Python's own finders answer first and an
    import nativeimport does not provide costs nothing until they have failed.
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
                        self._registry = Registry.discover(_root_or_none(self.overrides))
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
        for directory in sys.path if path is None else path:
            if not isinstance(directory, str):
                continue
            directory = directory or os.getcwd()
            names = self.listings.names(directory)
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


class DirectoryFinder:
    """Finds project directories (``name/Cargo.toml``) for drivers that build whole directories.

    Python's PathFinder would import such a directory as an empty namespace
    package, so this finder sits just before it and asks it first: a module or
    a regular package Python finds is returned as is (the import costs one
    extra call, not one extra stat), and only a namespace package is checked
    for a marker file. A directory holding ``__init__.py`` stays a Python package.
    """

    def __init__(self, files: NativeFinder) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Optional[ModuleSpec]:
        registry = self.files.registry
        if registry is None or not registry.with_marker:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.origin not in (None, "namespace") or not spec.submodule_search_locations:
            return spec  # Python's answer, whatever it is, except a namespace package
        for location in spec.submodule_search_locations:
            for driver in registry.with_marker:
                assert driver.directory_marker is not None
                if os.path.isfile(os.path.join(location, driver.directory_marker)):
                    return spec_for_path(fullname, location, driver, self.files.overrides)
        return spec

    def invalidate_caches(self) -> None:
        """PathFinder and the NativeFinder keep the caches; nothing here."""


def discover_drivers(overrides: dict[str, Any]) -> Registry:
    """The registered drivers: the installed finder's, else looked up afresh."""
    for finder in sys.meta_path:
        if isinstance(finder, NativeFinder):
            registry = finder.registry
            if registry is not None:
                return registry
    return Registry.discover(_root_or_none(overrides))


def _root_or_none(overrides: dict[str, Any]) -> Optional[str]:
    from ._fresh import cache_root
    from .errors import CacheError
    from .settings import Settings

    try:
        return cache_root(Settings.from_env(**overrides))
    except CacheError:
        return None  # the import that needs the cache will say why


def spec_for_path(fullname: str, source: str, driver: DriverInfo, overrides: dict[str, Any]) -> ModuleSpec:
    """A module spec whose loader builds ``source`` with ``driver``; ``__file__`` is the source."""
    from importlib.machinery import ModuleSpec

    from ._loader import NativeLoader

    source = os.path.abspath(source)
    spec = ModuleSpec(fullname, NativeLoader(source, driver, overrides), origin=source)  # type: ignore[arg-type]
    spec.has_location = True  # so the module's __file__ is the source
    return spec
