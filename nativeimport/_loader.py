"""Loading: runs one import. Asks the cache for the source's entry, builds on a miss, then binds.

By the time binding starts, the entry is complete for the running interpreter
(a wrapper another interpreter's build lacked is added first), so binding
only reads. A hit reads the source's freshness record and binds the entry it
names; a miss imports :mod:`nativeimport._build`. A library that fails to
load is evicted and built once more.
"""

from __future__ import annotations

import os
import sys

# importlib.machinery's ModuleSpec, without importing importlib into every process
from _frozen_importlib import ModuleSpec

from ._entry import (
    LIBRARY_FILE,
    cache_root,
    entry_dir,
    entry_file,
    fast_build_running,
    fresh_identity,
    fresh_key,
    why_not_fresh,
)

# Every hit binds through these: imported with this module, so by install(), not by the first native import.
from ._fast_runtime import bind_light, bind_wrapper, load_extension, wants_wrapper
from .errors import BindingError, NativeImportError
from .settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    import types
    from collections.abc import Callable
    from typing import Any, Optional

    from ._build import WrapperJob
    from ._registry import DriverInfo

__all__ = ["BIND_HOOKS", "BOUND", "NativeLoader", "bind_module", "complete_entry", "is_stale", "obtain_entry",
           "spec_for_path"]

# Every binding made in this process: (key, id(module)) -> (module, the namespace bound from that entry).
# Pickling looks objects up here (nativeimport._pickling), unpickling finds modules already loaded
# (nativeimport._resolve). The namespace is kept apart from the module: after a reload, functions of the
# older key still pickle; one entry may be bound into several modules (load() under another name).
BOUND: dict[tuple[str, int], tuple[types.ModuleType, dict[str, Any]]] = {}
# Called with each module and the namespace bound into it: install() and load() add nativeimport._pickling's
# (the loader knows nothing of pickling, which sits above it).
BIND_HOOKS: list[Callable[[types.ModuleType, dict[str, Any]], None]] = []


def spec_for_path(fullname: str, source: str, driver: DriverInfo, overrides: dict[str, Any],
                  definition: Optional[str] = None) -> ModuleSpec:
    """A module spec whose loader builds ``source`` with ``driver``; ``__file__`` is the source.

    ``definition`` names the ``nativeimport.toml`` table defining a module that has no file of its
    own; ``source`` is then its primary source.
    """
    source = os.path.abspath(source)
    loader = NativeLoader(source, driver, overrides, definition)
    spec = ModuleSpec(fullname, loader, origin=source)  # type: ignore[arg-type]
    spec.has_location = True  # so the module's __file__ is the source
    return spec


class NativeLoader:
    """Loads one native source as a module (importlib's Loader protocol)."""

    def __init__(self, source: str, driver: DriverInfo, overrides: dict[str, Any],
                 definition: Optional[str] = None) -> None:
        self.source = source
        self.driver = driver
        self.overrides = overrides
        self.definition = definition

    def create_module(self, spec: Any) -> Optional[types.ModuleType]:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        try:
            settings = Settings.from_env(**self.overrides)
            _enable_verbose(settings)
            self._bind_with_one_rebuild(module, settings)
        except NativeImportError as error:
            if error.name is None:
                error.name = module.__name__
            if error.path is None:
                error.path = self.source
            raise

    def _bind_with_one_rebuild(self, module: types.ModuleType, settings: Settings) -> None:
        damage: Optional[Exception] = None
        while True:
            damaged = None if damage is None else f"its cache entry failed to load ({damage})"
            entry = obtain_entry(self.source, self.driver, settings, module.__name__, damaged, self.definition)
            job: Optional[WrapperJob] = None
            try:
                job = prepare_entry(entry, module.__name__, settings)
                bind_module(module, entry, settings)
            except BaseException as exc:
                if job is not None:
                    job.abandon()
                if isinstance(exc, NativeImportError) or not isinstance(exc, Exception):
                    raise
                if damage is not None:  # a damaged entry: evicted, and built once more
                    raise BindingError(f"{self.source}: the freshly built library failed to load: {exc}") from exc
                damage = exc
                from ._build import evict

                evict(entry, fresh_identity(self.source, self.definition), exc)
                continue
            if job is not None:
                job.start()  # after binding: a new module's first call does not wait for a process to start
            return

    def get_filename(self, fullname: str) -> str:
        return self.source


def obtain_entry(source: str, driver: DriverInfo, settings: Settings, module_name: str,
                 damaged: Optional[str] = None, definition: Optional[str] = None) -> str:
    """The cache entry for ``source``; built when no entry matches.

    ``damaged`` says why the entry the freshness record named was just evicted.
    """
    root = cache_root(settings.cache_dir)
    token = driver.token()
    identity = fresh_identity(source, definition)
    key = fresh_key(root, identity, token, settings.verify) if damaged is None else None
    if key is not None:
        entry = entry_dir(root, key)
    else:
        from ._early import start

        start(root, driver.name, source, module_name)  # a new source's compiler, while _build is imported
        from ._build import check_or_build  # a miss: hashing, locking, maybe compiling

        reason = damaged or why_not_fresh(root, identity, token, settings.verify)
        entry = check_or_build(root, source, driver, token, settings, module_name, reason=reason,
                               definition=definition)
    return entry


def complete_entry(entry: str, module_name: str, settings: Settings) -> None:
    """Make ``entry`` complete for this interpreter before anything binds it.

    An entry another interpreter built lacks this one's fast wrapper, and so does a new build:
    with the ``wrapper`` setting ``"background"`` it is compiled by a detached process and this
    one binds through cffi meanwhile; with ``"wait"`` it is compiled (or waited for) here. An entry
    removed meanwhile (``cache prune`` in another process) fails here as a
    damaged one does, and the loader builds it again.
    """
    job = prepare_entry(entry, module_name, settings)
    if job is not None:
        job.start()


def prepare_entry(entry: str, module_name: str, settings: Settings) -> Optional[WrapperJob]:
    """:func:`complete_entry` in two steps, for a module about to be bound: does what must precede the
    binding, and returns what may follow it: the detached compile, claimed (the binding sees it running
    and switches to the wrapper when it ends), to start once the module is bound, or to abandon."""
    if not wants_wrapper(entry, settings.binder):
        return None
    if settings.wrapper == "background":
        if fast_build_running(entry):
            return None  # this process binds through cffi; the next import or reload finds the wrapper
        from ._build import claim_fast_wrapper

        job = claim_fast_wrapper(entry, module_name, settings)
        if job is not None:
            return job
    elif fast_build_running(entry, wait=settings.build_timeout) or not wants_wrapper(entry, settings.binder):
        return None  # the background compile took too long, or finished (with a wrapper or a note)
    from ._build import add_fast_wrapper

    add_fast_wrapper(entry, module_name, settings)
    return None


def bind_module(module: types.ModuleType, entry: str, settings: Settings) -> None:
    """Fill ``module`` with the entry's exports, dropping names a previous version had. Only reads the entry."""
    extension = load_extension(entry, settings.binder)
    cffi: dict[str, Any] = {}

    def cffi_namespace() -> dict[str, Any]:
        if not cffi:
            from ._cffi_runtime import load_binding

            cffi.update(load_binding(entry, module.__name__)[0])
        return cffi

    light = bind_light(entry, module.__name__, extension, cffi_namespace) if extension is not None else None
    if light is not None:
        namespace, released, keeping, skipped = light
    else:
        from ._cffi_runtime import load_binding

        namespace, skipped = load_binding(entry, module.__name__)
        released, keeping = {}, {}
        if extension is not None:
            wrappers = dict(namespace)  # the cffi wrappers, before the fast ones replace them
            kept, released, keeping = bind_wrapper(extension, entry_file(entry, LIBRARY_FILE), module.__name__,
                                                   lambda: wrappers)
            namespace.update(kept)
    namespace["__native_release_gil__"] = dict(released)
    namespace["__native_keep_gil__"] = dict(keeping)
    for name in getattr(module, "__native_exports__", ()):
        if name not in namespace:
            module.__dict__.pop(name, None)
    module.__dict__.update(namespace)
    module.__native_exports__ = tuple(namespace)  # type: ignore[attr-defined]
    module.__native_library__ = entry_file(entry, LIBRARY_FILE)  # type: ignore[attr-defined]
    module.__native_key__ = os.path.basename(entry)  # type: ignore[attr-defined]
    module.__all__ = [name for name in namespace if not name.startswith("_")]  # type: ignore[attr-defined]
    module.__native_left_out__ = dict(skipped)  # type: ignore[attr-defined]
    BOUND[module.__native_key__, id(module)] = (module, namespace)
    for hook in BIND_HOOKS:
        hook(module, namespace)
    if extension is None and settings.binder == "auto" and sys.implementation.name == "cpython" \
            and fast_build_running(entry):
        _switch_when_built(module, entry, settings, namespace)


def _switch_when_built(module: types.ModuleType, entry: str, settings: Settings, namespace: dict[str, Any]) -> None:
    """A new module bound through cffi while its wrapper compiles in the background: when the wrapper is
    in place, its functions replace the cffi ones in the module, in this process too.

    The cffi namespace the module was bound with stays the wrapper's fallback, so the structs, handles
    and callbacks made before the switch are accepted after it; a name fetched before it (``f = mod.f``)
    keeps the cffi function. Nothing switches if the module was reloaded meanwhile.
    """
    import _thread

    key = os.path.basename(entry)

    def switch() -> None:
        fast_build_running(entry, wait=settings.build_timeout)
        try:
            extension = load_extension(entry, settings.binder)
            if extension is None or getattr(module, "__native_key__", None) != key:
                return
            wrappers = dict(namespace)
            kept, released, keeping = bind_wrapper(extension, entry_file(entry, LIBRARY_FILE), module.__name__,
                                                   lambda: wrappers)
        except Exception as exc:  # a damaged wrapper: the module simply stays on cffi
            import logging

            logging.getLogger("nativeimport").debug("%s stays on cffi: its wrapper failed to load (%s)",
                                                    module.__name__, exc)
            return
        namespace.update(kept)
        module.__dict__.update(kept)
        getattr(module, "__native_release_gil__", {}).update(released)
        getattr(module, "__native_keep_gil__", {}).update(keeping)
        for hook in BIND_HOOKS:
            hook(module, namespace)

    # Not threading.Thread: its start() waits until the new thread runs, which took the import 2-4 ms while
    # the wrapper's compile (just started) and the new thread competed for the cores.
    _thread.start_new_thread(switch, ())


def is_stale(module: types.ModuleType) -> bool:
    """Whether ``module``'s source or one of its dependencies changed since it was bound.

    Only stats; a changed file whose content hashes to the same build counts as
    stale too, and reloading it is then a cheap cache hit.
    """
    loader = getattr(module, "__loader__", None)
    if not isinstance(loader, NativeLoader):
        return False
    settings = Settings.from_env(**loader.overrides)
    identity = fresh_identity(loader.source, loader.definition)
    key = fresh_key(cache_root(settings.cache_dir), identity, loader.driver.token())
    return key != getattr(module, "__native_key__", None)


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
