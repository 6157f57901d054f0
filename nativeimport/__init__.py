"""Import C, Rust and Zig sources as Python modules.

    import nativeimport
    nativeimport.install()
    import mymath          # mymath.c beside the script: compiled, cached, bound

The public surface is this module, :mod:`nativeimport.driver` (for writing a
language driver), :mod:`nativeimport.interface`, :mod:`nativeimport.errors`
and :mod:`nativeimport.settings`.
"""

from __future__ import annotations

from ._api import bind_shipped, build, install, keep_gil, load, release_gil, uninstall, wait_for_wrapper
from ._version import __version__
from .errors import (
    BindingError,
    CacheError,
    CompileError,
    InterfaceError,
    LockTimeout,
    NativeImportError,
    NativeImportWarning,
    SettingsError,
    SourceError,
    ToolchainNotFound,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BindingError",
    "CacheError",
    "CompileError",
    "InterfaceError",
    "LockTimeout",
    "NativeImportError",
    "NativeImportWarning",
    "SettingsError",
    "SourceError",
    "ToolchainNotFound",
    "__version__",
    "bind_shipped",
    "build",
    "install",
    "keep_gil",
    "load",
    "release_gil",
    "uninstall",
    "wait_for_wrapper",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nativeimport`` (see :mod:`nativeimport.ipython`)."""
    from .ipython import load_ipython_extension as load_extension

    load_extension(ipython)
