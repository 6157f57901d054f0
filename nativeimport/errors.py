"""The exceptions nativeimport raises.

Every error is an :class:`ImportError` (through :class:`NativeImportError`), so
``try: import x except ImportError`` keeps working, and each one carries
``name=`` (the module) and ``path=`` (the source) and says what to do next.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

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
]


class NativeImportError(ImportError):
    """Base class of every error nativeimport raises."""

    def __init__(self, message: str, *, name: str | None = None, path: str | None = None) -> None:
        super().__init__(message, name=name, path=path)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SettingsError(NativeImportError):
    """An option (an argument or a ``NATIVEIMPORT_*`` variable) has a value nativeimport does not accept."""


class ToolchainNotFound(NativeImportError):
    """The compiler a driver needs is not installed or not where it was said to be."""


class SourceError(NativeImportError):
    """The source cannot be read: missing, a directory, unreadable, not text."""


class CompileError(NativeImportError):
    """The compiler failed. ``str()`` holds its diagnostics with ``file:line``."""

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] = (),
        returncode: int | None = None,
        diagnostics: str = "",
        name: str | None = None,
        path: str | None = None,
    ) -> None:
        text = message
        if diagnostics.strip():
            text = f"{message}\n{diagnostics.rstrip()}"
        super().__init__(text, name=name, path=path)
        self.command = tuple(command)
        self.returncode = returncode
        self.diagnostics = diagnostics


class InterfaceError(NativeImportError):
    """The exports of a built library could not be described faithfully."""


class BindingError(NativeImportError):
    """A built library or its binding could not be loaded."""


class CacheError(NativeImportError):
    """The build cache could not be read or written."""


class LockTimeout(CacheError):
    """Waiting for another process's build of the same source took too long."""


class NativeImportWarning(UserWarning):
    """An export was left out of a module, or a cache could not be used as asked."""
