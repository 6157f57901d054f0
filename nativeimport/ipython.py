"""IPython and Jupyter: ``%load_ext nativeimport``, ``%%native``, automatic reloads.

    %load_ext nativeimport

    %%native c
    int popcount(unsigned long long v) { return __builtin_popcountll(v); }

    popcount(255)          # 8: the cell's exports are names in the notebook

``%%native LANG NAME`` binds the module to ``NAME`` instead. A cell goes
through the same pipeline and cache as a file: its text is stored in the
cache under a name derived from its content, so an unchanged cell is a cache
hit and two notebooks with the same cell share one build.

With the extension loaded, a native module imported from a file whose source
or headers changed is rebuilt and reloaded before the next cell runs
(``%native_autoreload off`` stops that). IPython's own ``%autoreload`` only
handles Python source, so it never reloads these modules.

This module is imported only by IPython; ``import nativeimport`` stays light.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from ._api import install, load
from ._entry import cache_root, cell_source
from ._finder import installed_drivers
from ._loader import is_stale
from ._records import write_atomically
from .errors import CompileError, NativeImportError
from .settings import Settings

__all__ = ["NativeMagics", "load_ipython_extension", "unload_ipython_extension"]

log = logging.getLogger("nativeimport")


class _NotebookHandler(logging.Handler):
    """Build notes and compiler warnings, written to whatever stderr the cell has now (the notebook)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"nativeimport: {self.format(record)}\n")
        except Exception:
            self.handleError(record)


@magics_class
class NativeMagics(Magics):
    """The ``%%native`` cell magic and the ``%native_autoreload`` line magic."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)  # type: ignore[no-untyped-call, unused-ignore]
        self.autoreload = True
        self.failed: dict[str, str] = {}  # module -> the error already shown for its current files

    @cell_magic  # type: ignore[untyped-decorator, unused-ignore]
    def native(self, line: str, cell: str) -> None:
        """%%native LANG [NAME]: compile the cell with the LANG driver (c, rust, zig, ...) and bind it.

        Without NAME, the cell's exports become names in the notebook; with it, the module does.
        """
        words = line.split()
        if not words or len(words) > 2:
            raise UsageError("usage: %%native LANG [NAME], e.g. %%native c or %%native rust stats")
        language, name = words[0], (words[1] if len(words) == 2 else None)
        if name is not None and not name.isidentifier():
            raise UsageError(f"%%native: {name!r} is not a valid Python name")
        registry = installed_drivers({})
        info = registry.by_name(language)
        if info is None:
            known = ", ".join(d.name for d in registry.drivers)
            raise UsageError(f"%%native: no driver for {language!r}; installed drivers: {known}")
        source = _cell_file(cell, info.suffixes[0])
        try:
            module = load(source, name=name or os.path.splitext(os.path.basename(source))[0])
        except CompileError as exc:
            raise UsageError(_cell_diagnostics(exc, source)) from None
        except NativeImportError as exc:
            raise UsageError(f"%%native: {exc}") from None
        namespace = self.shell.user_ns  # type: ignore[union-attr]
        if name is not None:
            namespace[name] = module
        else:
            namespace.update({attr: getattr(module, attr) for attr in module.__all__})

    @line_magic  # type: ignore[untyped-decorator, unused-ignore]
    def native_autoreload(self, line: str) -> None:
        """%native_autoreload on|off: rebuild and reload edited native modules before each cell (default on)."""
        choice = line.strip().lower()
        if choice not in ("on", "off", ""):
            raise UsageError("usage: %native_autoreload on|off")
        if choice:
            self.autoreload = choice == "on"
        print(f"nativeimport autoreload is {'on' if self.autoreload else 'off'}")

    def reload_edited(self) -> None:
        """Before a cell runs: reload native modules whose files changed (pre_run_cell hook)."""
        if not self.autoreload:
            return
        for module in [m for m in list(sys.modules.values()) if is_stale(m)]:
            try:
                importlib.reload(module)
            except NativeImportError as exc:
                message = str(exc)
                if self.failed.get(module.__name__) != message:  # say it once per broken version
                    self.failed[module.__name__] = message
                    sys.stderr.write(f"nativeimport: {module.__name__} changed but did not rebuild; "
                                     f"the previous version stays loaded:\n{message}\n")
                continue
            self.failed.pop(module.__name__, None)
            sys.stderr.write(f"nativeimport: reloaded {module.__name__} ({os.path.basename(module.__file__ or '')} "
                             "changed)\n")


def _cell_file(cell: str, suffix: str) -> str:
    """The cell's text as a source file in the cache, named by its content (never beside the notebook)."""
    data = cell.encode("utf-8")
    digest = hashlib.sha256(data + suffix.encode()).hexdigest()
    path = cell_source(cache_root(Settings.from_env().cache_dir), digest, suffix)
    if not os.path.exists(path):
        write_atomically(path, cell)  # private, whatever the umask
    return path


def _cell_diagnostics(exc: CompileError, source: str) -> str:
    """The compiler's diagnostics with the cell's file shown as ``cell``: line numbers count from its first line."""
    text = exc.diagnostics or exc.message
    text = re.sub(re.escape(source) + r"|" + re.escape(os.path.basename(source)), "cell", text)
    return f"%%native: the cell does not compile ({exc.message.splitlines()[0]}):\n{text.rstrip()}"


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nativeimport``: the magics, the import hook, autoreload and visible build notes."""
    install()
    magics = NativeMagics(ipython)
    ipython.register_magics(magics)
    ipython.events.register("pre_run_cell", _pre_run_cell_hook(magics))
    if not any(isinstance(h, _NotebookHandler) for h in log.handlers):
        handler = _NotebookHandler()
        handler.setLevel(logging.INFO)
        log.addHandler(handler)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)
    ipython.nativeimport_magics = magics


def unload_ipython_extension(ipython: Any) -> None:
    magics = getattr(ipython, "nativeimport_magics", None)
    if magics is not None:
        magics.autoreload = False


def _pre_run_cell_hook(magics: NativeMagics) -> Any:
    def hook(*_: Any) -> None:
        magics.reload_edited()

    return hook
