"""The package's logger, without importing :mod:`logging` (~5 ms) before a message can go anywhere.

A build's first compiler starts only after the modules it needs are imported:
``logging`` was one of them, for debug messages nobody sees. Until something
imports ``logging`` (the application, ``verbose``, pytest's caplog), no handler
and no level can have been set, so a debug or info message would be dropped
(the root logger's default level is WARNING): it is dropped here without
importing it. Warnings and errors always go through ``logging`` (its last
resort handler prints them).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a new module's build ~2 ms
    from typing import Any

__all__ = ["QuietLogger"]


class QuietLogger:
    """The subset of :class:`logging.Logger` our modules use, importing ``logging`` only when it can matter."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _logger(self) -> Any:
        import logging

        return logging.getLogger(self.name)

    # stacklevel=2: the record names our caller (its file, function and line), not this module.
    def debug(self, message: str, *args: object) -> None:
        if "logging" in sys.modules:
            self._logger().debug(message, *args, stacklevel=2)

    def info(self, message: str, *args: object) -> None:
        if "logging" in sys.modules:
            self._logger().info(message, *args, stacklevel=2)

    def warning(self, message: str, *args: object) -> None:
        self._logger().warning(message, *args, stacklevel=2)

    def error(self, message: str, *args: object) -> None:
        self._logger().error(message, *args, stacklevel=2)
