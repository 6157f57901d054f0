"""Which drivers exist: the ``nativeimport.compilers`` entry points, remembered between runs.

Reading entry points imports :mod:`importlib.metadata` and scans every
installed distribution (tens of ms here), so the table of drivers (name,
suffixes, marker, environment, entry point) is kept in the cache root and
reused while no ``sys.path`` directory has changed. A directory that did
change is listed: if its distributions' metadata (``*.dist-info`` and the
like, with their mtimes) did not, the table holds (a source saved in a project
folder on ``sys.path`` changes the folder, not the drivers). A driver class is
imported only when a source of its language is built.
"""

from __future__ import annotations

import os
import sys

from ._entry import cache_root, drivers_table
from ._records import read_lines, text_checksum, write_lines
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
TABLE_KIND = "driver-table-3"  # 3: stamps carry their folder's distributions; an older table reads as missing


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
        if rows is not None:
            recorded = [row for row in rows if row[0] == "stamp"]
            kept = _still_valid(recorded, stamp)
            if kept is not None:
                driver_rows = [r for r in rows if r[0] == "driver" and len(r) == 8]
                if kept != recorded and table is not None:  # only other files changed: remember the new stamps
                    _write(table, kept + driver_rows)
                return cls([DriverInfo(name, tuple(_split(suffixes)), marker or None, tuple(_split(environment)),
                                       target, custom_claims=custom == "custom-claims",
                                       search_environment=tuple(_split(search)))
                            for _, name, suffixes, marker, environment, target, custom, search in driver_rows])
        # Listed before the scan, as the stamps are taken: a distribution installed meanwhile is seen next time.
        stamp = [*stamp[:1], *([*row, _distributions(row[1])] for row in stamp[1:])] if table is not None else stamp
        loaded, complete = _from_entry_points()
        registry = cls(loaded)
        if table is not None and complete:  # a driver that failed to load is tried again next time
            drivers = [["driver", d.name, ",".join(d.suffixes), d.directory_marker or "", ",".join(d.environment),
                        d.target, "custom-claims" if d.custom_claims else "suffixes", ",".join(d.search_environment)]
                       for d in registry.drivers]
            _write(table, stamp + drivers)
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


def _write(table: str, rows: list[list[str]]) -> None:
    try:
        write_lines(table, TABLE_KIND, rows)
    except OSError:
        pass  # a read-only cache only costs the next process a scan


def _still_valid(recorded: list[list[str]], stamp: list[list[str]]) -> Optional[list[list[str]]]:
    """The stamp rows to record if the table of the ``recorded`` ones holds now (``stamp``: the same, or only
    folders whose distributions are unchanged moved), else None. Lists no folder while no stamp moved."""
    if len(recorded) != len(stamp) or recorded[:1] != stamp[:1]:
        return None  # another nativeimport, or sys.path itself changed
    if all(before[:3] == now for before, now in zip(recorded[1:], stamp[1:])):
        return recorded
    updated = stamp[:1]
    for before, now in zip(recorded[1:], stamp[1:]):
        if before[1] != now[1] or len(before) != 4:
            return None
        if before[2] != now[2] and (before[3] == "-" or _distributions(now[1]) != before[3]):
            return None  # a distribution was installed, removed or changed there (or it cannot be listed)
        updated.append([*now, before[3]])
    return updated


# What can carry entry points in a sys.path folder (importlib.metadata reads these).
_METADATA_SUFFIXES = (".dist-info", ".egg-info", ".egg-link", ".egg", ".pth")


def _distributions(directory: str) -> str:
    """A checksum of the distributions' metadata in ``directory``: each name with its mtime (a reinstall
    makes the folder anew); "-" if it cannot be listed (a zip file): such a folder's every change counts."""
    try:
        with os.scandir(directory) as entries:
            rows = sorted(f"{entry.name}\0{entry.stat(follow_symlinks=False).st_mtime_ns}" for entry in entries
                          if entry.name.endswith(_METADATA_SUFFIXES))
    except OSError:
        return "-"
    return text_checksum("\n".join(rows))


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
