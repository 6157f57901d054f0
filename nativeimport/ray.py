"""Ship native modules to Ray workers through Ray's own mechanism, the runtime environment.

``ray.init(runtime_env=nativeimport.ray.runtime_env(mymath))`` returns a
``runtime_env`` whose ``py_modules`` holds a small package with the export
archive of ``mymath``'s entries, whose ``env_vars`` name that package
(``NATIVEIMPORT_SHIPPED``), and whose ``worker_process_setup_hook`` imports the
archive into each worker's cache and lets ``import mymath`` find it. Ray
uploads the package once per cluster and unpacks it on every node.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Any

from ._archive import import_archive, shipment
from ._entry import cache_root
from ._pickling import enable
from ._resolve import SHIPPED_VARIABLE, publish_names
from .settings import Settings

__all__ = ["runtime_env", "setup_worker"]

_ARCHIVE = "entries.nativeimport"
_NAMES = "names.json"


def runtime_env(*modules: Any, directory: str | None = None) -> dict[str, Any]:
    """What to merge into a ``runtime_env`` so Ray workers have ``modules`` without compiling them.

    ``modules``: modules nativeimport imported in this process (or functions of
    them, or their names). The package is written under ``directory`` (a new
    temporary folder by default), which must outlive ``ray.init``.
    """
    names, archive = shipment(modules)
    digest = hashlib.sha256(",".join(sorted(names.values())).encode()).hexdigest()[:16]
    package = f"nativeimport_shipped_{digest}"
    folder = os.path.join(directory or tempfile.mkdtemp(prefix="nativeimport-ray-"), package)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "__init__.py"), "w", encoding="utf-8") as stream:
        stream.write('"""Native modules shipped by nativeimport.ray.runtime_env (cache entries, not code)."""\n')
    with open(os.path.join(folder, _ARCHIVE), "wb") as stream:
        stream.write(archive)
    with open(os.path.join(folder, _NAMES), "w", encoding="utf-8") as stream:
        json.dump(names, stream)
    return {
        "py_modules": [folder],
        "env_vars": {SHIPPED_VARIABLE: package},
        "worker_process_setup_hook": "nativeimport.ray.setup_worker",
    }


def setup_worker() -> None:
    """Ray's setup hook: import the shipped archives into this worker's cache and publish their module names."""
    import importlib.util

    enable()  # what the worker binds pickles by content (results sent back)
    root = cache_root(Settings.from_env().cache_dir)
    for package in filter(None, os.environ.get(SHIPPED_VARIABLE, "").split(os.pathsep)):
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            continue
        with open(os.path.join(locations[0], _ARCHIVE), "rb") as stream:
            import_archive(root, stream.read())
        with open(os.path.join(locations[0], _NAMES), encoding="utf-8") as stream:
            publish_names(json.load(stream))
