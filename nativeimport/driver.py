"""The public plugin API: how a language plugs into nativeimport.

A driver owns one language. It says which source suffixes it claims, finds and
identifies its toolchain, compiles a source into a shared library with a plain
C ABI (reporting every file the build read), and describes what the library
exports as an :class:`~nativeimport.interface.Interface`. It knows nothing of
caches or Python modules.

Drivers are found through the ``nativeimport.compilers`` entry-point group
(``ENTRY_POINT_GROUP``)::

    [project.entry-points."nativeimport.compilers"]
    toy = "toylang.driver:ToyDriver"

The helpers below (:func:`run_tool`, :func:`parse_depfile`,
:func:`find_program`, :func:`doc_comment_above`) are public too, so a third
party driver needs nothing private.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from . import _early, _tool_versions
from ._child import compiler_started, find_executable, kill_group, start_compiler
from ._doc_comments import doc_comment_above
from ._frozen import frozen
from ._log import QuietLogger
from .errors import CompileError, ToolchainNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing (~2 ms) and the Interface model are imported while the compiler runs
    from typing import ClassVar, Optional

    from ._child import Process
    from .interface import Interface

__all__ = [
    "C_SEARCH_ENVIRONMENT",
    "ENTRY_POINT_GROUP",
    "BuildRequest",
    "BuildResult",
    "BuildSettings",
    "Driver",
    "Toolchain",
    "doc_comment_above",
    "find_program",
    "parse_depfile",
    "run_tool",
    "tool_version",
    "ziglang_executable",
]

if not TYPE_CHECKING:
    def __getattr__(name: str) -> object:
        """``Interface``, which a driver written before it left this module's imports may import from here."""
        if name == "Interface":
            from .interface import Interface

            return Interface
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

ENTRY_POINT_GROUP = "nativeimport.compilers"
log = QuietLogger("nativeimport")

# Where GCC and Clang look for headers, libraries and their own parts besides the command line
# (https://gcc.gnu.org/onlinedocs/gcc/Environment-Variables.html): the default search environment.
C_SEARCH_ENVIRONMENT = ("CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH", "LIBRARY_PATH",
                        "GCC_EXEC_PREFIX", "COMPILER_PATH")


@frozen
class Toolchain:
    """A found compiler: the command prefix to run it and what it says it is."""

    name: str
    command: tuple[str, ...]
    version: str

    @property
    def path(self) -> str:
        return self.command[0]


@frozen
class BuildSettings:
    """A source's own build settings, from the ``nativeimport:`` comment at its top and its table in
    ``nativeimport.toml`` beside it; pkg-config's answers are already folded in.

    Paths are absolute. A driver applies what its toolchain understands and
    raises :class:`~nativeimport.errors.CompileError` for what it cannot
    honour (never ignores a setting silently).

    Attributes:
        sources: more source files compiled and linked into the module.
        include_dirs: searched for headers (``-I``).
        defines: macros, ``NAME`` or ``NAME=VALUE`` (``-D``).
        libraries: linked libraries by name (``z`` for ``-lz``).
        library_dirs: searched for libraries (``-L``).
        flags: extra compiler flags.
        link_flags: extra linker flags.
    """

    sources: tuple[Path, ...] = ()
    include_dirs: tuple[Path, ...] = ()
    defines: tuple[str, ...] = ()
    libraries: tuple[str, ...] = ()
    library_dirs: tuple[Path, ...] = ()
    flags: tuple[str, ...] = ()
    link_flags: tuple[str, ...] = ()

    def c_compile_flags(self) -> list[str]:
        """``-I``, ``-D`` and the extra flags, as a C-family compiler takes them."""
        return ([f"-I{d}" for d in self.include_dirs] + [f"-D{d}" for d in self.defines] + list(self.flags))

    def c_link_flags(self) -> list[str]:
        """``-L``, ``-l`` and the extra link flags, as a C-family compiler driver takes them."""
        return ([f"-L{d}" for d in self.library_dirs] + [f"-l{name}" for name in self.libraries]
                + list(self.link_flags))


@frozen
class BuildRequest:
    """What to build and where.

    Attributes:
        source: the source file (or crate directory) to compile.
        module_name: the Python module name (``pkg.fast``); ``library_name``
            is its last part, a valid C identifier.
        output_dir: an empty private directory; the library goes here.
        toolchain: the toolchain :meth:`Driver.find_toolchain` returned.
        scratch_dir: a directory inside the cache for the toolchain's own
            caches (Zig's, Cargo's target dir), kept between builds.
        timeout: seconds any single compiler run may take.
        settings: the source's own build settings (more sources, include
            directories, macros, libraries, flags).
    """

    source: Path
    module_name: str
    output_dir: Path
    toolchain: Toolchain
    scratch_dir: Path
    timeout: float = 600.0
    settings: BuildSettings = BuildSettings()

    @property
    def library_name(self) -> str:
        return self.module_name.rpartition(".")[2]


@frozen
class BuildResult:
    """What a build produced.

    Attributes:
        library: the shared library, inside ``request.output_dir``.
        dependencies: every file besides the source the build read (headers,
            modules); a change to any of them makes the next import rebuild.
        diagnostics: the compiler's warnings, shown to the user.
        interface: the exports, when the driver knows them without reading
            the library (a compiler that knows its own signatures); ``None``
            means :meth:`Driver.describe` is called.
    """

    library: Path
    dependencies: tuple[Path, ...] = ()
    diagnostics: str = ""
    interface: Optional[Interface] = None


class Driver:
    """Base class of a language driver. Subclass it and register the subclass.

    Class attributes:
        name: short language name (``"c"``), used by ``%%native`` and the CLI.
        suffixes: file suffixes it claims (``(".c",)``).
        directory_marker: a file whose presence makes a directory a source of
            this driver (``"Cargo.toml"``), or ``None``.
        environment: environment variables that choose the toolchain or its
            flags; their values are part of the cache key.
        search_environment: environment variables that change where the
            compiler (or the linker it runs) looks for headers, libraries or
            its own parts: switching a conda environment changes ``CPATH``
            and finds other headers under the same names. Their values are
            part of the cache key too. The default is
            :data:`C_SEARCH_ENVIRONMENT`, which every driver that compiles or
            links through a C compiler needs; add the variables your own
            compiler reads (the Rust driver adds ``RUSTUP_TOOLCHAIN``,
            ``CARGO_HOME``, ..., the Zig driver ``ZIG_LIB_DIR``).
    """

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    directory_marker: ClassVar[Optional[str]] = None
    environment: ClassVar[tuple[str, ...]] = ()
    search_environment: ClassVar[tuple[str, ...]] = C_SEARCH_ENVIRONMENT

    def __init__(self) -> None:
        self._toolchains: dict[tuple[Optional[str], ...], Toolchain] = {}

    # -- to implement ---------------------------------------------------
    def find_toolchain(self) -> Toolchain:
        """Locate the compiler. Raise :class:`ToolchainNotFound` saying how to install it."""
        raise NotImplementedError

    def compile(self, request: BuildRequest) -> BuildResult:
        """Build ``request.source`` into a shared library in ``request.output_dir``.

        Raise :class:`CompileError` (see :func:`run_tool`) on failure.
        """
        raise NotImplementedError

    # -- may override ---------------------------------------------------
    def read_source(self, path: Path) -> bytes:
        """The bytes that identify the source in the cache key: the file's content.

        A driver whose sources are directories returns its manifest's bytes and
        reports the other files as dependencies.
        """
        return path.read_bytes()

    def flags(self) -> tuple[str, ...]:
        """Options that change the output (e.g. from ``$CFLAGS``); part of the key."""
        return ()

    def tools(self) -> list[Toolchain]:
        """Every tool the driver uses, for ``nativeimport doctor`` (the compiler by default)."""
        return [self.toolchain()]

    def describe(self, request: BuildRequest, result: BuildResult) -> Interface:
        """The library's exports. The default reads its DWARF debug info."""
        from .dwarf import read_interface  # heavy: only builds pay for pyelftools

        return read_interface(result.library, exported_from=request.source)

    # -- provided -------------------------------------------------------
    def toolchain(self) -> Toolchain:
        """The toolchain, found once per process for each setting of ``environment``."""
        key = tuple(os.environ.get(var) for var in (*self.environment, "PATH"))
        found = self._toolchains.get(key)
        if found is None:
            found = self._toolchains[key] = self.find_toolchain()
        return found

    def fingerprint(self) -> str:
        """Everything about the toolchain and its options that changes the output.

        The same compiler reached by another name (``gcc``, ``x86_64-linux-gnu-gcc``, the one
        each interpreter was built with) gives the same fingerprint, so every interpreter on
        the machine shares one build.
        """
        toolchain = self.toolchain()
        program = os.path.realpath(toolchain.command[0])
        name, _, rest = toolchain.version.partition(" ")
        version = rest if name == os.path.basename(toolchain.command[0]) else toolchain.version
        return "\n".join([self.name, shlex.join([program, *toolchain.command[1:]]), version,
                          shlex.join(self.flags())])

    def claims(self, path: Path) -> bool:
        """Whether this driver builds ``path``."""
        if path.suffix in self.suffixes:
            return True
        return self.directory_marker is not None and (path / self.directory_marker).is_file()


# ---------------------------------------------------------------------------
# Helpers for driver authors


def find_program(
    env_var: Optional[str], candidates: Sequence[str], *, install_hint: str, language: str
) -> tuple[str, ...]:
    """The command for a tool: ``$env_var`` (which may carry arguments) or the first candidate on PATH.

    Raises :class:`ToolchainNotFound` with ``install_hint`` when nothing is found.
    """
    if env_var and os.environ.get(env_var, "").strip():
        words = shlex.split(os.environ[env_var])
        resolved = find_executable(words[0])
        if resolved is None:
            raise ToolchainNotFound(
                f"{env_var}={os.environ[env_var]!r} names no executable {language} toolchain; "
                f"point {env_var} at one or unset it. {install_hint}"
            )
        return (resolved, *words[1:])
    for candidate in candidates:
        words = shlex.split(candidate)
        resolved = find_executable(words[0])
        if resolved is not None:
            return (resolved, *words[1:])
    tried = ", ".join(([f"${env_var}"] if env_var else []) + list(candidates))
    raise ToolchainNotFound(f"no {language} toolchain found (tried {tried}). {install_hint}")


def ziglang_executable() -> Optional[str]:
    """The ``zig`` binary inside the ``ziglang`` wheel (``pip install ziglang``), if installed.

    Found without importing the package. Drivers use it as a last-resort
    compiler (``zig cc``, ``zig c++``) and the Zig driver as its toolchain.
    """
    import importlib.util

    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location, "zig")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def tool_version(command: Sequence[str], flag: str = "--version") -> str:
    """The first line a tool prints for ``--version`` (empty if it prints nothing).

    During a build, remembered in the cache while the tool's files are unchanged: a process each time
    costs 5-30 ms of every new module's import.
    """
    def run() -> str:
        import subprocess

        try:
            done = subprocess.run([*command, flag], capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else ""

    return _tool_versions.probe(command, flag, run)


def run_tool(
    command: Sequence[str],
    *,
    cwd: Optional[Path] = None,
    timeout: float = 600.0,
    env: Optional[Mapping[str, str]] = None,
    what: str = "compiler",
) -> str:
    """Run a compiler; return what it printed (its warnings).

    No shell is involved. On failure raise :class:`CompileError` holding the
    command, the exit code and the diagnostics; on a timeout or a signal say so.
    The tool runs in its own process group so a timeout kills its children too,
    is killed by the kernel if this process dies (Linux), and creates its
    files private (umask 077).
    """
    log.debug("running %s", shlex.join(command))
    # The same command already started while the build imported its modules (a new source): waited for here.
    early = _early.adopt(command, None if cwd is None else str(cwd), env)
    if early is not None:
        log.debug("adopted the compiler started early for %s", early.source)
    try:
        process: Process
        if early is not None:
            process = early.process
        else:  # subprocess only here: a compiler started early (_early) needs none of it
            process = start_compiler(command, None if cwd is None else str(cwd), env)
    except FileNotFoundError as exc:
        raise ToolchainNotFound(f"cannot run {command[0]}: {exc.strerror}") from None
    compiler_started()  # what a build does meanwhile (its imports for later) starts now
    try:
        output, _ = process.communicate(timeout=timeout)
        if early is not None:
            _early.finish(early)
    except BaseException as error:
        kill_group(process)
        if not _timed_out(error):
            process.wait()
            raise
        output = _output_after_kill(process)
        raise CompileError(
            f"{what} timed out after {timeout:g} s (set NATIVEIMPORT_BUILD_TIMEOUT to allow longer)",
            command=command,
            diagnostics=output.decode(errors="replace"),
        ) from None
    text = output.decode(errors="replace")
    returncode = process.wait()  # ended: communicate waited
    if returncode < 0:
        import signal

        signame = signal.Signals(-returncode).name
        raise CompileError(f"{what} was killed by {signame}", command=command, returncode=returncode,
                           diagnostics=text)
    if returncode != 0:
        raise CompileError(f"{what} failed with exit code {returncode}", command=command,
                           returncode=returncode, diagnostics=text)
    return text


def _timed_out(error: BaseException) -> bool:
    """Whether ``error`` is ``subprocess.TimeoutExpired`` (without importing subprocess: a process that
    raised it imported it)."""
    subprocess = sys.modules.get("subprocess")
    return subprocess is not None and isinstance(error, subprocess.TimeoutExpired)


def _output_after_kill(process: Process) -> bytes:
    """What the killed tool printed; bounded, since a descendant that left its group may hold the pipe open."""
    try:
        output, _ = process.communicate(timeout=5)
    except Exception as error:
        if not _timed_out(error):
            raise
        process.kill()
        process.wait()
        return b""
    return output




def parse_depfile(text: str) -> list[str]:
    """The prerequisites of a Make-style dependency file (``gcc -MD``, ``rustc --emit=dep-info``).

    Handles line continuations and escaped spaces; the targets are dropped.
    """
    paths: list[str] = []
    for rule in _logical_lines(text):
        target_end = _rule_colon(rule)
        if target_end < 0:
            continue
        for word in _split_escaped(rule[target_end + 1 :]):
            if word not in paths:
                paths.append(word)
    return paths


def _logical_lines(text: str) -> Iterator[str]:
    current = ""
    for line in text.splitlines():
        if line.endswith("\\") and not line.endswith("\\\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip() and not current.lstrip().startswith("#"):
            yield current
        current = ""
    if current.strip():
        yield current


def _rule_colon(rule: str) -> int:
    # The first ':' followed by whitespace or the end, skipping escaped ones (and C: drive letters).
    for index, char in enumerate(rule):
        if char == ":" and (index + 1 == len(rule) or rule[index + 1] in " \t") and rule[index - 1 : index] != "\\":
            return index
    return -1


def _split_escaped(text: str) -> Iterator[str]:
    word = ""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in " #:\\":
            word += text[index + 1]
            index += 2
            continue
        if char == "$" and text[index + 1 : index + 2] == "$":
            word += "$"
            index += 2
            continue
        if char in " \t":
            if word:
                yield word
            word = ""
        else:
            word += char
        index += 1
    if word:
        yield word
