"""The ``sys.meta_path`` finder: module name -> native source + driver. It only stats."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, Optional

from .driver import Driver, DriverRegistry

__all__ = ["NativeFinder", "spec_for_path"]


class NativeFinder:
    """Finds ``<name><suffix>`` for every registered suffix on ``sys.path`` or a package's ``__path__``.

    Appended to ``sys.meta_path``, so Python's own finders answer first and an
    import nativeimport does not provide costs nothing until they have failed.
    """

    def __init__(self, registry: Optional[DriverRegistry] = None, **overrides: Any) -> None:
        self._registry = registry
        self.overrides = overrides

    @property
    def registry(self) -> DriverRegistry:
        if self._registry is None:  # entry points are read on the first import that reaches us
            self._registry = DriverRegistry.from_entry_points()
        return self._registry

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Any = None) -> Optional[ModuleSpec]:
        name = fullname.rpartition(".")[2]
        if not name.isidentifier():
            return None
        registry = self.registry
        for directory in sys.path if path is None else path:
            if not isinstance(directory, str):
                continue
            base = os.path.join(directory or os.getcwd(), name)
            for suffix, driver in registry.by_suffix.items():
                if os.path.isfile(base + suffix):
                    return spec_for_path(fullname, Path(base + suffix), driver, self.overrides)
            for driver in registry.with_marker:
                assert driver.directory_marker is not None
                if os.path.isfile(os.path.join(base, driver.directory_marker)):
                    return spec_for_path(fullname, Path(base), driver, self.overrides)
        return None

    def invalidate_caches(self) -> None:
        """Nothing to forget: every lookup stats afresh."""

    def __repr__(self) -> str:
        return f"<nativeimport.NativeFinder {self.overrides or ''}>"


def spec_for_path(fullname: str, source: Path, driver: Driver, overrides: dict[str, Any]) -> ModuleSpec:
    """A module spec whose loader builds ``source`` with ``driver``; ``__file__`` is the source."""
    from ._loader import NativeLoader

    source = Path(os.path.abspath(source))
    spec = importlib.util.spec_from_file_location(fullname, str(source),
                                                  loader=NativeLoader(source, driver, overrides))  # type: ignore[arg-type]
    assert spec is not None
    return spec
