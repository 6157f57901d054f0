"""A word while a long build runs: one line naming the source and the compiler, with the time so far.

Shown when a build has run for a second, to an interactive user (stderr is a
terminal, or a Jupyter kernel's output) or when asked (``NATIVEIMPORT_PROGRESS=on``,
or ``NATIVEIMPORT_VERBOSE``); never in a plain non-interactive run unless asked. On a
terminal or in Jupyter the elapsed time updates in place; elsewhere the line is
written once and the total when the build ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["showing_progress"]

_FIRST_WORD_AFTER = 1.0  # seconds: a quick build says nothing
_UPDATE_EVERY = 0.5


@contextmanager
def showing_progress(what: str, mode: str, verbose: bool) -> Iterator[None]:
    """Around a build of ``what`` (``lz4.c with gcc``): show progress per ``mode`` ("auto", "on", "off")."""
    stream = sys.stderr
    live = _is_live(stream)
    if mode == "off" or (mode == "auto" and not (live or verbose)) or stream is None:
        yield
        return
    import threading  # only here: a build nobody watches starts no thread

    finished = threading.Event()
    started = time.monotonic()
    shown: list[bool] = []

    def report() -> None:
        if finished.wait(_FIRST_WORD_AFTER):
            return
        shown.append(True)
        while True:
            elapsed = time.monotonic() - started
            _write(stream, f"\rnativeimport: building {what} ... {elapsed:.0f} s" if live
                   else f"nativeimport: building {what} ...\n")
            if not live or finished.wait(_UPDATE_EVERY):
                return

    reporter = threading.Thread(target=report, name="nativeimport-progress", daemon=True)
    reporter.start()
    outcome = "stopped"
    try:
        yield
        outcome = "built"
    finally:
        finished.set()
        reporter.join()
        if shown:
            prefix = "\r" if live else ""  # overwrite the ticking line
            ending = f"nativeimport: {outcome} {what} in {time.monotonic() - started:.1f} s"
            _write(stream, f"{prefix}{ending:<{len(what) + 32}}\n")  # padded over the longer ticking line


def _is_live(stream: object) -> bool:
    """Whether someone watches ``stream`` as it is written: a terminal, or a Jupyter cell's output."""
    try:
        if stream is not None and stream.isatty():  # type: ignore[attr-defined]
            return True
    except (AttributeError, ValueError):
        pass
    return type(stream).__module__.startswith("ipykernel")


def _write(stream: object, text: str) -> None:
    try:
        stream.write(text)  # type: ignore[attr-defined]
        stream.flush()  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        pass  # a closed or broken stderr must not fail the build
