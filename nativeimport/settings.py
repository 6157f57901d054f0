"""Options, from keyword arguments and ``NATIVEIMPORT_*`` environment variables.

Arguments win over the environment; the environment wins over the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Settings"]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _seconds(value: str | None, default: float) -> float:
    if value is None or not value.strip():
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"expected a number of seconds, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """How nativeimport builds and caches.

    Attributes:
        cache_dir: root of the build cache; ``None`` means the per-user cache
            directory (``NATIVEIMPORT_CACHE_DIR``).
        verbose: log the compiler commands and why each rebuild happened
            (``NATIVEIMPORT_VERBOSE``).
        build_timeout: seconds a single compiler run may take
            (``NATIVEIMPORT_BUILD_TIMEOUT``).
        lock_timeout: seconds to wait for another process building the same
            source (``NATIVEIMPORT_LOCK_TIMEOUT``).
    """

    cache_dir: Path | None = None
    verbose: bool = False
    build_timeout: float = 600.0
    lock_timeout: float = 900.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the environment, then apply ``overrides`` that are not ``None``."""
        env = os.environ if environ is None else environ
        cache_dir = env.get("NATIVEIMPORT_CACHE_DIR")
        settings = cls(
            cache_dir=Path(cache_dir).expanduser() if cache_dir else None,
            verbose=_flag(env.get("NATIVEIMPORT_VERBOSE")),
            build_timeout=_seconds(env.get("NATIVEIMPORT_BUILD_TIMEOUT"), cls.build_timeout),
            lock_timeout=_seconds(env.get("NATIVEIMPORT_LOCK_TIMEOUT"), cls.lock_timeout),
        )
        given = {key: value for key, value in overrides.items() if value is not None}
        if "cache_dir" in given:
            given["cache_dir"] = Path(str(given["cache_dir"])).expanduser()
        return dataclasses.replace(settings, **given)  # type: ignore[arg-type]
