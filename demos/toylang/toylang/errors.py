"""A Toy compile error, located in the source the way real compilers say it."""

from __future__ import annotations


class ToyError(Exception):
    """``file:line:column: error: message``."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message

    def render(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: error: {self.message}"
