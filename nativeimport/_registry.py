"""Which drivers exist: the ``nativeimport.compilers`` entry points, remembered between runs.

Reading entry points imports :mod:`importlib.metadata` and scans every
installed distribution (tens of ms here), so the table of drivers (name,
suffixes, marker, environment, entry point) is kept in the cache root and
reused while no ``sys.path`` directory has changed. A driver class is imported
only when a source of its language is built.
"""

from __future__ import annotations

import os
import sys

from ._entry import cache_root, drivers_table
from ._records import read_lines, write_lines
from ._version import __version__
from .errors import CacheError
from .settings import cache_dir_setting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Optional

    from .driver import Driver

__all__ = ["DriverInfo", "Registry", "discover_drivers"]

ENTRY_POINT_GROUP = "nativeimport.compilers"  # the same as nativeimport.driver.ENTRY_POINT_GROUP
TABLE_KIND = "driver-table-2"  # rows gained the search environment; a table of the old kind reads as missing


class DriverInfo:
    """What the finder needs to know of a driver, without importing it."""

    __slots__ = ("_driver", "custom_claims", "directory_marker", "environment", "name", "search_environment",
                 "suffixes", "target")

    def __init__(self, name: str, suffixes: tuple[str, ...], directory_marker: Optional[str],
                 environment: tuple[str, ...], target: str, driver: Optional[Driver] = None,
                 custom_claims: bool = False, search_environment: tuple[str, ...] = ()) -> None:
        self.name = name
        self.suffixes = suffixes
        self.directory_marker = directory_marker
        self.environment = environment
        self.search_environment = search_environment  # Driver.search_environment: in the token and the key
        self.target = target  # "module:Class"
        self.custom_claims = custom_claims  # the driver overrides Driver.claims: ask it
        self._driver = driver

    def load(self) -> Driver:
        """The driver instance (imported and created once)."""
        if self._driver is None:
            import importlib

            module_name, _, attribute = self.target.partition(":")
            found: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
            self._driver = found()
        return self._driver

    def token(self) -> str:
        """The driver and the environment that configures it: a change means re-checking the build."""
        names = (*self.environment, *self.search_environment, "PATH")
        values = "\0".join(f"{var}={os.environ.get(var, '')}" for var in names)
        return f"nativeimport {__version__}\0{self.target}\0{values}"

    def claims(self, path: str) -> bool:
        """Whether the driver builds ``path``: its own answer when it overrides :meth:`Driver.claims`.

        Otherwise the base class's rule (a suffix, or a directory holding the
        marker), answered here without importing the driver.
        """
        if self.custom_claims:
            from pathlib import Path

            return bool(self.load().claims(Path(path)))
        if os.path.splitext(path)[1] in self.suffixes:
            return True
        return self.directory_marker is not None and os.path.isfile(os.path.join(path, self.directory_marker))


class Registry:
    """The drivers available, by suffix and by name."""

    def __init__(self, drivers: list[DriverInfo]) -> None:
        self.drivers = tuple(sorted(drivers, key=lambda d: d.name))
        self.by_suffix: dict[str, DriverInfo] = {}
        for info in self.drivers:
            for suffix in info.suffixes:
                self.by_suffix.setdefault(suffix, info)
        self.with_marker = tuple(d for d in self.drivers if d.directory_marker)

    @classmethod
    def discover(cls, root: Optional[str]) -> Registry:
        """The registered drivers, from the remembered table when ``sys.path`` is unchanged."""
        stamp = _stamp()
        table = drivers_table(root) if root is not None else None
        rows = read_lines(table, TABLE_KIND) if table is not None else None
        if rows is not None and [row for row in rows if row[0] == "stamp"] == stamp:
            return cls([DriverInfo(name, tuple(_split(suffixes)), marker or None, tuple(_split(environment)), target,
                                   custom_claims=custom == "custom-claims", search_environment=tuple(_split(search)))
                        for _, name, suffixes, marker, environment, target, custom, search in
                        (r for r in rows if r[0] == "driver" and len(r) == 8)])
        loaded, complete = _from_entry_points()
        registry = cls(loaded)
        if table is not None and complete:  # a driver that failed to load is tried again next time
            drivers = [["driver", d.name, ",".join(d.suffixes), d.directory_marker or "", ",".join(d.environment),
                        d.target, "custom-claims" if d.custom_claims else "suffixes", ",".join(d.search_environment)]
                       for d in registry.drivers]
            try:
                write_lines(table, TABLE_KIND, stamp + drivers)
            except OSError:
                pass  # a read-only cache only costs the next process a scan
        return registry

    def for_path(self, path: str) -> Optional[DriverInfo]:
        """The driver that claims ``path`` (a source file, or a directory holding a driver's marker)."""
        info = self.by_suffix.get(os.path.splitext(path)[1])
        if info is not None and info.claims(path):
            return info
        for info in self.with_marker:
            if info.claims(path):
                return info
        return None

    def by_name(self, name: str) -> Optional[DriverInfo]:
        for info in self.drivers:
            if info.name == name:
                return info
        return None


def discover_drivers(overrides: Mapping[str, object]) -> Registry:
    """The registered drivers, for the cache the settings ``overrides`` name."""
    # Only the cache directory is read: another setting's bad value is for a native import to report.
    try:
        root: Optional[str] = cache_root(cache_dir_setting(overrides))
    except CacheError:
        root = None  # the import that needs the cache will say why
    return Registry.discover(root)


def _stamp() -> list[list[str]]:
    """What the table depends on: this nativeimport (version and folder) and every sys.path directory's mtime."""
    # sys.path[0] is the script's folder: distributions are not installed there, and it changes often. But a
    # checkout of nativeimport there shadows the installed one, whose drivers it may lack: its folder counts.
    stamp = [["stamp", "nativeimport", __version__, os.path.dirname(os.path.abspath(__file__))]]
    for entry in sys.path[1:]:
        try:
            stamp.append(["stamp", entry, str(os.stat(entry).st_mtime_ns)])
        except (OSError, TypeError, ValueError):
            continue
    return stamp


def _split(joined: str) -> list[str]:
    return joined.split(",") if joined else []


def _from_entry_points() -> tuple[list[DriverInfo], bool]:
    """The drivers that load, and whether all of them did."""
    import warnings
    from importlib import metadata

    if sys.version_info >= (3, 10):
        entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    else:
        entry_points = list(metadata.entry_points().get(ENTRY_POINT_GROUP, ()))
    infos = []
    seen = set()
    complete = True
    for entry_point in entry_points:
        if entry_point.value in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add(entry_point.value)
        try:
            driver = entry_point.load()()
            infos.append(DriverInfo(driver.name or entry_point.name, tuple(driver.suffixes), driver.directory_marker,
                                    tuple(driver.environment), entry_point.value, driver,
                                    custom_claims=_overrides_claims(driver),
                                    search_environment=tuple(driver.search_environment)))
        except Exception as exc:  # a broken plugin must not break every import
            complete = False
            warnings.warn(f"nativeimport: driver {entry_point.name!r} ({entry_point.value}) failed to load: {exc}",
                          RuntimeWarning, stacklevel=2)
    return infos, complete


def _overrides_claims(driver: Driver) -> bool:
    from .driver import Driver  # the driver's module imported it already

    return type(driver).claims is not Driver.claims
