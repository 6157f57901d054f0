"""From a source file to a bound module: freshness record -> entry -> bind.

An entry's key hashes a schema version, the driver's fingerprint (toolchain,
its version, flags), the source bytes and every dependency's bytes. A
per-path freshness record skips all hashing when no stat changed, so a cache
hit imports nothing beyond this module and ``_fresh`` (and the cffi runtime
only when the fast wrapper does not serve every function). A miss goes to
:mod:`nativeimport._build`.
"""

from __future__ import annotations

import os
import sys

from ._fresh import (
    LIBRARY_FILE,
    LIGHT_FILE,
    cache_root,
    check_elf,
    entry_dir,
    exec_stored,
    fresh_key,
)
from .errors import BindingError, NativeImportError, NativeImportWarning
from .settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import types
    from typing import Any, Optional

    from ._registry import DriverInfo

__all__ = ["NativeLoader", "bind_module", "is_stale", "obtain_entry"]

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
    namespace: dict[str, Any] = dict(kept)
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
    # importlib.machinery's classes, without importing importlib (and warnings) on every hit
    from _frozen_importlib import ModuleSpec
    from _frozen_importlib_external import EXTENSION_SUFFIXES, ExtensionFileLoader

    path = os.path.join(entry, f"fast{EXTENSION_SUFFIXES[0]}")
    if not os.path.exists(path) and not _build_fast(entry, path, module_name, settings):
        return None
    check_elf(path)
    loader = ExtensionFileLoader("_nativeimport_fast", path)
    return loader.create_module(ModuleSpec("_nativeimport_fast", loader, origin=path))


def _build_fast(entry: str, wrapper: str, module_name: str, settings: Settings) -> bool:
    """Build this interpreter's wrapper into an existing entry, unless it already found it cannot."""
    import json
    from pathlib import Path

    from ._bind_fast import build_fast, unavailable_marker
    from .interface import Interface

    if os.path.exists(unavailable_marker(wrapper)):
        return False
    interface = Interface.from_json(json.loads(Path(entry, "interface.json").read_text(encoding="utf-8")))
    scratch = Path(os.path.dirname(os.path.dirname(entry)), "scratch", "fast-pch")
    return build_fast(Path(entry), interface, module_name, settings.build_timeout, scratch) is not None


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



