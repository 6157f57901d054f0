"""Ship native modules to Dask workers through Dask's own mechanism, a worker plugin.

``client.register_plugin(nativeimport.dask.NativeModules(mymath))`` puts the
cache entries of ``mymath`` (library, bindings, the fast wrapper of every
interpreter that built one) into each worker's cache, workers that join later
included (the scheduler hands them the plugin), and lets ``import mymath``
find them there. Workers need no compiler and no source; functions pickled by
content then resolve from the worker's cache by key.
"""

from __future__ import annotations

import hashlib
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ._archive import import_archive, shipment
from ._entry import cache_root
from ._pickling import enable
from ._resolve import publish_names
from .settings import Settings

__all__ = ["NativeModules"]


class NativeModules(WorkerPlugin):
    """A worker plugin carrying native modules' built entries to every worker.

    ``modules`` are modules nativeimport imported in this process, functions
    of them, or their names. The entries travel inside the plugin (a few
    hundred kB each, once per worker); each worker imports them into its own
    cache (``NATIVEIMPORT_CACHE_DIR`` there) with the checks of
    ``nativeimport cache import``.
    """

    def __init__(self, *modules: Any) -> None:
        self.modules, self.archive = shipment(modules)
        keys = ",".join(sorted(self.modules.values()))
        # One plugin per set of entries: registering another set adds to, rather than replaces, this one.
        self.name = f"nativeimport-{hashlib.sha256(keys.encode()).hexdigest()[:16]}"

    def setup(self, worker: Any = None) -> None:
        if self.archive:
            import_archive(cache_root(Settings.from_env().cache_dir), self.archive)
        publish_names(self.modules)
        enable()  # what the worker binds pickles by content (results sent back)

    def __repr__(self) -> str:
        return f"NativeModules({', '.join(sorted(self.modules))})"
