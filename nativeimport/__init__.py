"""Import C, Rust and Zig sources as Python modules.

    import nativeimport
    nativeimport.install()
    import mymath          # mymath.c beside the script: compiled, cached, bound

The public surface is this module, :mod:`nativeimport.driver` (for writing a
language driver), :mod:`nativeimport.interface`, :mod:`nativeimport.errors`
and :mod:`nativeimport.settings`.
"""

from __future__ import annotations

__version__ = "0.1.0"

import os
import sys

from .errors import (
    BindingError,
    CacheError,
    CompileError,
    InterfaceError,
    LockTimeout,
    NativeImportError,
    NativeImportWarning,
    SourceError,
    ToolchainNotFound,
)

TYPE_CHECKING = False
if TYPE_CHECKING:  # pathlib, typing and types cost milliseconds: `import nativeimport` stays light without them
    import types
    from pathlib import Path
    from typing import Any, Optional, Union

__all__ = [
    "BindingError",
    "CacheError",
    "CompileError",
    "InterfaceError",
    "LockTimeout",
    "NativeImportError",
    "NativeImportWarning",
    "SourceError",
    "ToolchainNotFound",
    "build",
    "install",
    "load",
    "release_gil",
    "uninstall",
]


def install(*, cache_dir: Union[str, Path, None] = None, verbose: Optional[bool] = None,
            binder: Optional[str] = None) -> Any:
    """Let ``import name`` find ``name.c`` (``.rs``, ``.zig``, ...) on ``sys.path``. Idempotent.

    Appends the finder to ``sys.meta_path`` (after Python's own, which answer
    first) and returns it. For drivers that build whole directories (Cargo
    crates), Python's finder for ``sys.path`` directories is replaced by a
    subclass that knows them (see :class:`nativeimport._hook.ProjectFinder`).
    Keyword arguments override the ``NATIVEIMPORT_*`` environment variables.
    """
    from ._hook import NativeFinder, ProjectFinder

    overrides = {k: v for k, v in {"cache_dir": cache_dir, "verbose": verbose, "binder": binder}.items()
                 if v is not None}
    for finder in sys.meta_path:
        if isinstance(finder, NativeFinder):
            finder.overrides = overrides
            return finder
    finder = NativeFinder(overrides)
    sys.meta_path.append(finder)
    ProjectFinder.install(finder)
    return finder


def uninstall() -> None:
    """Remove the finders ``install()`` added. Modules already imported stay usable."""
    from ._hook import NativeFinder, ProjectFinder

    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, NativeFinder)]
    ProjectFinder.uninstall()


def load(path: Union[str, Path], name: Optional[str] = None, **overrides: Any) -> types.ModuleType:
    """Build (or reuse) and bind one source file as a module, without touching ``sys.path``.

    The module is not added to ``sys.modules``. ``name`` defaults to the file's stem.
    """
    from types import ModuleType

    from ._hook import spec_for_path

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
    cffi already release it. Applies until the module is reloaded.
    """
    variants = getattr(module, "__native_release_gil__", None)
    if variants is None:
        raise TypeError(f"{module!r} was not imported by nativeimport")
    for name in names:
        if not callable(getattr(module, name, None)):
            raise AttributeError(f"{module.__name__} has no function {name!r}")
        if name in variants:
            setattr(module, name, variants[name])


def build(path: Union[str, Path], **overrides: Any) -> Path:
    """Build one source ahead of time (or find it cached); return its cache entry's directory."""
    from pathlib import Path

    from ._fresh import Settings
    from ._hook import obtain_entry

    source, driver = _driver_for(path, overrides)
    stem = os.path.splitext(os.path.basename(source))[0]
    return Path(obtain_entry(source, driver, Settings.from_env(**overrides), stem))


def _driver_for(path: Union[str, Path], overrides: dict[str, Any]) -> tuple[str, Any]:
    # os.path, not pathlib: importing pathlib costs several ms, more than the cache hit itself
    from ._hook import discover_drivers

    source = os.path.abspath(os.fspath(path))
    if not os.path.exists(source):
        raise SourceError(f"{source} does not exist", path=source)
    driver = discover_drivers(overrides).for_path(source)
    if driver is None:
        raise SourceError(f"no nativeimport driver builds {os.path.basename(source)}; `nativeimport doctor` lists "
                          "the drivers", path=source)
    return source, driver


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nativeimport`` (see :mod:`nativeimport.ipython`)."""
    from .ipython import load_ipython_extension as load_extension

    load_extension(ipython)
