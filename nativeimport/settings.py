"""Options, from keyword arguments and ``NATIVEIMPORT_*`` environment variables.

Arguments win over the environment; the environment wins over the defaults.
A value nativeimport cannot use is a :class:`~nativeimport.errors.SettingsError`
naming the variable and what it accepts, raised where a native import (or
``install()``) reads it: never from an import nativeimport does not serve.

Every native import reads the settings, so this module imports nothing that
Python has not loaded at start-up (``dataclasses`` alone costs milliseconds).
"""

from __future__ import annotations

import os

from .errors import SettingsError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["BINDERS", "PROGRESS", "WRAPPERS", "Settings", "cache_dir_setting"]

BINDERS = ("auto", "cffi")
PROGRESS = ("auto", "on", "off")
WRAPPERS = ("background", "wait")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

# Each setting: its environment variable and its default.
_VARIABLES = {
    "cache_dir": ("NATIVEIMPORT_CACHE_DIR", None),
    "verbose": ("NATIVEIMPORT_VERBOSE", False),
    "build_timeout": ("NATIVEIMPORT_BUILD_TIMEOUT", 600.0),
    "lock_timeout": ("NATIVEIMPORT_LOCK_TIMEOUT", 900.0),
    "binder": ("NATIVEIMPORT_BINDER", "auto"),
    "progress": ("NATIVEIMPORT_PROGRESS", "auto"),
    "verify": ("NATIVEIMPORT_VERIFY", False),
    "wrapper": ("NATIVEIMPORT_WRAPPER", "background"),
}


class Settings:
    """How nativeimport builds and caches (immutable).

    A small frozen class rather than a dataclass: every native import reads it.

    Attributes:
        cache_dir: root of the build cache; ``None`` means the per-user cache
            directory (``NATIVEIMPORT_CACHE_DIR``).
        verbose: log the compiler commands and why each rebuild happened
            (``NATIVEIMPORT_VERBOSE=1``).
        build_timeout: seconds a single compiler run may take
            (``NATIVEIMPORT_BUILD_TIMEOUT``, default 600).
        lock_timeout: seconds to wait for another process building the same
            source (``NATIVEIMPORT_LOCK_TIMEOUT``, default 900).
        binder: ``"auto"`` (the fast CPython wrapper where it can serve a
            function, cffi for the rest) or ``"cffi"`` (cffi only)
            (``NATIVEIMPORT_BINDER``).
        progress: a line while a build runs for more than a second: ``"auto"``
            (when stderr is a terminal or a Jupyter cell, or with ``verbose``),
            ``"on"`` or ``"off"`` (``NATIVEIMPORT_PROGRESS``).
        verify: check the content of the source and every dependency on each
            import instead of trusting unchanged file stats, as a checked
            hash-based ``.pyc`` does (``NATIVEIMPORT_VERIFY=1``). Costs a
            hash of every file the build read on each import (README, "Cache").
        wrapper: when the fast binder's wrapper is missing from an entry (a
            new build): ``"background"`` binds through cffi at once and compiles
            the wrapper in a detached process for the next import or reload;
            ``"wait"`` compiles it before the import returns
            (``NATIVEIMPORT_WRAPPER``).
    """

    __slots__ = ("binder", "build_timeout", "cache_dir", "lock_timeout", "progress", "verbose", "verify", "wrapper")
    cache_dir: str | None
    verbose: bool
    build_timeout: float
    lock_timeout: float
    binder: str
    progress: str
    verify: bool
    wrapper: str

    def __init__(self, cache_dir: os.PathLike[str] | str | None = None, verbose: bool = False,
                 build_timeout: float = 600.0, lock_timeout: float = 900.0, binder: str = "auto",
                 progress: str = "auto", verify: bool = False, wrapper: str = "background") -> None:
        set_ = object.__setattr__
        set_(self, "binder", _choice("binder", binder, BINDERS))
        set_(self, "progress", _choice("progress", progress, PROGRESS))
        set_(self, "cache_dir", os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None else None)
        set_(self, "verbose", _flag("verbose", verbose))
        set_(self, "build_timeout", _seconds("build_timeout", build_timeout))
        set_(self, "lock_timeout", _seconds("lock_timeout", lock_timeout))
        set_(self, "verify", _flag("verify", verify))
        set_(self, "wrapper", _choice("wrapper", wrapper, WRAPPERS))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the environment, then apply the ``overrides`` that are not ``None``.

        Raises :class:`SettingsError` naming the variable (or argument) whose value is not accepted.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        origin: dict[str, str] = {}
        for name, (variable, default) in _VARIABLES.items():
            text = env.get(variable)
            values[name] = text.strip() if text is not None and text.strip() else default
            origin[name] = variable
        for name, value in overrides.items():
            if name not in _VARIABLES:
                raise TypeError(f"unknown setting {name!r}; settings are {', '.join(_VARIABLES)}")
            if value is not None:
                values[name] = value
                origin[name] = f"the {name!r} argument"
        try:
            return cls(**values)  # type: ignore[arg-type]
        except SettingsError as error:
            name = error.message.partition(":")[0]
            raise SettingsError(f"{origin.get(name, name)}{error.message[len(name):]}") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Settings are immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Settings(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)


def cache_dir_setting(overrides: Mapping[str, object], environ: Mapping[str, str] | None = None) -> str | None:
    """Only the cache directory setting: what finding drivers needs, and it cannot be invalid."""
    value = overrides.get("cache_dir")
    if value is None:
        value = (os.environ if environ is None else environ).get("NATIVEIMPORT_CACHE_DIR", "").strip() or None
    return os.path.expanduser(os.fspath(value)) if isinstance(value, (str, os.PathLike)) else None


# The messages start with the setting's name: from_env replaces it with the variable it came from.

def _choice(name: str, value: object, accepted: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in accepted:
        raise SettingsError(f"{name}: {value!r} is not accepted; use one of {', '.join(accepted)}")
    return text


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise SettingsError(f"{name}: {value!r} is not accepted; use 1/true/yes/on or 0/false/no/off")


def _seconds(name: str, value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise SettingsError(f"{name}: {value!r} is not accepted; use a positive number of seconds")
    return seconds
