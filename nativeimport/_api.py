"""What the public functions of :mod:`nativeimport` do: install and remove the finders, load and build a source.

Kept out of ``__init__`` so the package's own modules (the CLI, IPython's
extension, ``nativeimport.auto``) use them without importing the package.
"""

from __future__ import annotations

import os

from .errors import SourceError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib, typing and types cost milliseconds: `import nativeimport` stays light without them
    import types
    from pathlib import Path
    from typing import Any, Optional, Union

    from ._registry import DriverInfo

__all__ = ["bind_shipped", "build", "install", "keep_gil", "load", "release_gil", "uninstall", "wait_for_wrapper"]


def install(*, cache_dir: Union[str, Path, None] = None, verbose: Optional[bool] = None,
            binder: Optional[str] = None, verify: Optional[bool] = None) -> Any:
    """Let ``import name`` find ``name.c`` (``.rs``, ``.zig``, ...) on ``sys.path``. Idempotent.

    Appends the finder to ``sys.meta_path`` (after Python's own, which answer
    first) and returns it. For drivers that build whole directories (Cargo
    crates), Python's finder for ``sys.path`` directories is replaced by a
    subclass that knows them (see :class:`nativeimport._finder.ProjectFinder`).
    Keyword arguments override the ``NATIVEIMPORT_*`` environment variables.
    """
    from . import _finder, _pickling
    from .settings import Settings

    _pickling.enable()  # native objects pickle by content
    overrides = {k: v for k, v in {"cache_dir": cache_dir, "verbose": verbose, "binder": binder,
                                   "verify": verify}.items() if v is not None}
    # A bad argument is reported here; a bad NATIVEIMPORT_* variable by the native import that reads it, so
    # a process that installs the hook (sitecustomize, nativeimport.auto) starts whatever the environment says.
    Settings.from_env({}, **overrides)
    return _finder.install(overrides)


def uninstall() -> None:
    """Remove the finders ``install()`` added. Modules already imported stay usable."""
    from . import _finder

    _finder.uninstall()


def load(path: Union[str, Path], name: Optional[str] = None, **overrides: Any) -> types.ModuleType:
    """Build (or reuse) and bind one source file as a module, without touching ``sys.path``.

    The module is not added to ``sys.modules``. ``name`` defaults to the file's stem.
    """
    from types import ModuleType

    from . import _pickling
    from ._loader import spec_for_path

    _pickling.enable()
    source, driver = _driver_for(path, overrides)
    spec = spec_for_path(name or os.path.splitext(os.path.basename(source))[0], source, driver, overrides)
    module = ModuleType(spec.name)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__loader__ = spec.loader
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def release_gil(module: types.ModuleType, *names: str) -> None:
    """Make the named functions of ``module`` release the GIL while they run.

    By default a call keeps the GIL (releasing it costs about 35 ns); release it
    for long-running functions called from several threads. Functions served by
    cffi, and those taking callbacks, already release it. Applies until the
    module is reloaded.
    """
    _use_variants(module, "__native_release_gil__", names)


def keep_gil(module: types.ModuleType, *names: str) -> None:
    """Make the named functions of ``module`` that take callbacks keep the GIL while they run.

    They release it by default, as cffi's calls do, so that C may call back from
    threads of its own while the call waits for them; keeping it makes each
    callback from the calling thread cheaper (about 30 ns instead of 70), but a
    callback from another thread then waits until the call returns, and forever
    if the call waits for that thread. Other functions already keep the GIL.
    Applies until the module is reloaded.
    """
    _use_variants(module, "__native_keep_gil__", names)


def _use_variants(module: types.ModuleType, table: str, names: tuple[str, ...]) -> None:
    """Put the variants ``table`` names (``__native_release_gil__``, ...) in place of the named functions."""
    variants = getattr(module, table, None)
    if variants is None:
        raise TypeError(f"{module!r} was not imported by nativeimport")
    for name in names:
        if not callable(getattr(module, name, None)):
            raise AttributeError(f"{module.__name__} has no function {name!r}")
        if name in variants:
            setattr(module, name, variants[name])


def build(path: Union[str, Path], module: Optional[str] = None, **overrides: Any) -> Path:
    """Build one source ahead of time (or find it cached); return its cache entry's directory.

    ``path`` may also be a ``nativeimport.toml``, with ``module`` naming the module one of its
    tables defines from several sources.
    """
    from pathlib import Path

    from ._loader import complete_entry, obtain_entry
    from .settings import Settings

    definition = None
    if os.path.basename(os.fspath(path)) == "nativeimport.toml":
        from ._build_settings import defined_modules, definition_of

        config = os.path.abspath(os.fspath(path))
        primary = defined_modules(os.path.dirname(config)).get(module or "")
        if primary is None or module is None:
            raise SourceError(f"{path} defines no module {module!r} (a table with `sources`)", path=os.fspath(path))
        path, definition = primary, definition_of(config, module)
    source, driver = _driver_for(path, overrides)
    stem = module if definition is not None and module else os.path.splitext(os.path.basename(source))[0]
    settings = Settings.from_env(**overrides)
    entry = obtain_entry(source, driver, settings, stem, definition=definition)
    complete_entry(entry, stem, settings)
    return Path(entry)


def wait_for_wrapper(module: types.ModuleType, timeout: float = 600.0) -> bool:
    """Wait up to ``timeout`` seconds for the fast wrapper of ``module`` compiling in the background;
    whether its entry now has one for this interpreter.

    A new module binds through cffi while its wrapper compiles (``NATIVEIMPORT_WRAPPER``, default
    ``background``); the next import, or ``importlib.reload(module)``, binds through the wrapper.
    """
    from ._entry import FAST_FILE, entry_file, fast_build_running

    library = getattr(module, "__native_library__", None)
    if library is None:
        raise TypeError(f"{module!r} was not imported by nativeimport")
    entry = os.path.dirname(library)
    fast_build_running(entry, wait=timeout)
    return os.path.exists(entry_file(entry, FAST_FILE))


def bind_shipped(name: str, built_with: str) -> None:
    """Bind the module ``name`` from the prebuilt entry a wheel ships beside its file.

    Called by the ``<module>.py`` that :mod:`nativeimport.build_meta` writes into
    a wheel, as that module is imported; ``built_with`` is the nativeimport
    version that made the wheel. Needs no compiler, no source and no cache.
    """
    from ._shipped import bind_shipped as bind

    bind(name, built_with)


def _driver_for(path: Union[str, Path], overrides: dict[str, Any]) -> tuple[str, DriverInfo]:
    # os.path, not pathlib: importing pathlib costs several ms, more than the cache hit itself
    from ._finder import installed_drivers

    source = os.path.abspath(os.fspath(path))
    if not os.path.exists(source):
        raise SourceError(f"{source} does not exist", path=source)
    driver = installed_drivers(overrides).for_path(source)
    if driver is None:
        raise SourceError(f"no nativeimport driver builds {os.path.basename(source)}; `nativeimport doctor` lists "
                          "the drivers", path=source)
    return source, driver
