"""Options, from keyword arguments and ``NATIVEIMPORT_*`` environment variables.

Arguments win over the environment; the environment wins over the defaults.
``Settings`` is a small frozen class rather than a dataclass because every
import reads it, and importing :mod:`dataclasses` alone costs several ms.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Settings"]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _seconds(name: str, value: str | None, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None


class Settings:
    """How nativeimport builds and caches (immutable).

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
    """

    __slots__ = ("binder", "build_timeout", "cache_dir", "lock_timeout", "verbose")
    cache_dir: str | None
    verbose: bool
    build_timeout: float
    lock_timeout: float
    binder: str

    def __init__(self, cache_dir: os.PathLike[str] | str | None = None, verbose: bool = False,
                 build_timeout: float = 600.0, lock_timeout: float = 900.0, binder: str = "auto") -> None:
        if binder not in ("auto", "cffi"):
            raise ValueError(f"binder must be 'auto' or 'cffi', not {binder!r}")
        set_ = object.__setattr__
        set_(self, "binder", binder)
        set_(self, "cache_dir", os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None else None)
        set_(self, "verbose", bool(verbose))
        set_(self, "build_timeout", float(build_timeout))
        set_(self, "lock_timeout", float(lock_timeout))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the environment, then apply the ``overrides`` that are not ``None``."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {
            "cache_dir": env.get("NATIVEIMPORT_CACHE_DIR") or None,
            "verbose": _flag(env.get("NATIVEIMPORT_VERBOSE")),
            "build_timeout": _seconds("NATIVEIMPORT_BUILD_TIMEOUT", env.get("NATIVEIMPORT_BUILD_TIMEOUT"), 600.0),
            "lock_timeout": _seconds("NATIVEIMPORT_LOCK_TIMEOUT", env.get("NATIVEIMPORT_LOCK_TIMEOUT"), 900.0),
            "binder": (env.get("NATIVEIMPORT_BINDER") or "auto").strip().lower(),
        }
        for name, value in overrides.items():
            if name not in cls.__slots__:
                raise TypeError(f"unknown setting {name!r}; settings are {', '.join(cls.__slots__)}")
            if value is not None:
                values[name] = value
        return cls(**values)  # type: ignore[arg-type]

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
