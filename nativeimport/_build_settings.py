"""A source's own build settings: the ``nativeimport:`` comment at its top and ``nativeimport.toml`` beside it.

::

    /* nativeimport:
    sources = ["lz4.c", "xxhash.c"]
    define = ["HAVE_STDINT_H", "LEVEL=3"]
    libraries = ["z"]
    */

or the same TOML in consecutive ``//`` lines after ``// nativeimport:`` (for Zig,
or by taste), or ``!`` lines after ``! nativeimport:`` in Fortran.
``nativeimport.toml`` holds the same keys in a table per module (``[lz4]``), and a
table with ``sources`` defines a module that has no file of its own name: the
first source is its primary one. Paths are relative to the
file that names them. pkg-config's answers are folded into the other keys.

Only a build (and the finder, for directories holding a ``nativeimport.toml``)
reads these: the settings are in the key through the source's bytes, the
module's table (a dependency of its own) and :attr:`Resolved.key_text`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
from pathlib import Path

from ._records import sha256
from .driver import BuildSettings
from .errors import SourceError, ToolchainNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a new module's build ~2 ms
    from typing import Any, Optional

__all__ = ["CONFIG_FILE", "KEYS", "Resolved", "config_of", "defined_modules", "definition_of", "parse_definition",
           "resolve", "table_dependency", "table_digest"]

CONFIG_FILE = "nativeimport.toml"
# The keys, each a list of strings; paths are resolved against the file that names them.
KEYS = ("sources", "include-dirs", "define", "libraries", "library-dirs", "pkg-config", "flags", "link-flags")
_PATH_KEYS = frozenset({"sources", "include-dirs", "library-dirs"})
_MARK = "nativeimport:"
_TABLE_SEPARATOR = "#table:"  # a dependency on one table of nativeimport.toml, not the whole file


class Resolved:
    """The settings a build uses, and what of them the cache key needs beyond the files' bytes."""

    def __init__(self, settings: BuildSettings, key_text: str, table: Path) -> None:
        self.settings = settings
        self.key_text = key_text  # canonical settings with pkg-config's answers
        self.table = table  # the pseudo-path of the module's table in nativeimport.toml (present or not)


def resolve(source: Path, definition: Optional[str] = None) -> Resolved:
    """The settings of ``source`` built as its own module (its stem's table in ``nativeimport.toml`` beside
    it), or as the module ``definition`` (from :func:`defined_modules`) names."""
    if definition is not None:
        config, table_name = parse_definition(definition)
        directory = config.parent
    else:
        directory = source if source.is_dir() else source.parent
        table_name = source.name.partition(".")[0]
    merged: dict[str, list[str]] = {key: [] for key in KEYS}
    if source.is_file():
        for key, values in _header(source).items():
            merged[key] += _resolved_paths(key, values, source.parent)
    config = directory / CONFIG_FILE
    table = _tables(config).get(table_name)
    if table is not None:
        for key, values in table.items():
            merged[key] += _resolved_paths(key, values, directory)
    primary = os.path.normpath(source)
    merged["sources"] = [s for s in dict.fromkeys(merged["sources"]) if os.path.normpath(s) != primary]
    for extra in merged["sources"]:
        if not os.path.isfile(extra):
            raise SourceError(f"{source}: the extra source {extra} does not exist")
    asked = json.dumps(merged, sort_keys=True)
    if merged["pkg-config"]:
        _add_pkg_config(merged, source)
    settings = BuildSettings(
        sources=tuple(Path(s) for s in merged["sources"]),
        include_dirs=tuple(Path(d) for d in merged["include-dirs"]),
        defines=tuple(merged["define"]),
        libraries=tuple(merged["libraries"]),
        library_dirs=tuple(Path(d) for d in merged["library-dirs"]),
        flags=tuple(merged["flags"]),
        link_flags=tuple(merged["link-flags"]),
    )
    key_text = asked if not merged["pkg-config"] else json.dumps([asked, merged], sort_keys=True)
    return Resolved(settings, key_text, table_dependency(config, table_name))


def table_dependency(config: Path, table_name: str) -> Path:
    """The pseudo-path standing for one table of ``config`` among a build's dependencies."""
    return Path(f"{config}{_TABLE_SEPARATOR}{table_name}")


def table_digest(path: Path) -> Optional[str]:
    """The digest of a pseudo-path from :func:`table_dependency` ("absent" when there is no such table);
    None when ``path`` is an ordinary file."""
    config, separator, name = str(path).partition(_TABLE_SEPARATOR)
    if not separator:
        return None
    try:
        table = _tables(Path(config)).get(name)
    except SourceError:
        return "unreadable"
    text = "absent" if table is None else json.dumps(table, sort_keys=True)
    return str(sha256(text.encode()).hexdigest())


def config_of(dependency: Path) -> Path:
    """The file to stat for a dependency: the configuration file behind a table's pseudo-path."""
    return Path(str(dependency).partition(_TABLE_SEPARATOR)[0])


def definition_of(config: str | Path, name: str) -> str:
    """How a module defined by a table of ``config`` is named through the loader and the cache."""
    return f"{config}{_TABLE_SEPARATOR}{name}"


def parse_definition(definition: str) -> tuple[Path, str]:
    """The configuration file and the table name of a :func:`definition_of` string."""
    config, _, name = definition.rpartition(_TABLE_SEPARATOR)
    return Path(config), name


def defined_modules(directory: str) -> dict[str, str]:
    """Modules ``nativeimport.toml`` in ``directory`` defines from ``sources``: name -> primary source path.

    An unreadable or invalid file defines nothing here; importing a module it
    configures reports the error.
    """
    config = Path(directory, CONFIG_FILE)
    try:
        tables = _tables(config)
    except SourceError:
        return {}
    return {name: str(Path(directory, table["sources"][0])) for name, table in tables.items()
            if name.isidentifier() and table.get("sources")}


# -- reading --------------------------------------------------------------------------------------


def _tables(config: Path) -> dict[str, dict[str, list[str]]]:
    try:
        info = os.stat(config)
    except OSError:
        return {}
    return _read_tables(str(config), info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=32)
def _read_tables(config: str, mtime_ns: int, size: int) -> dict[str, dict[str, list[str]]]:
    text = Path(config).read_text(encoding="utf-8", errors="replace")
    document = _parse_toml(text, config, first_line=1)
    tables: dict[str, dict[str, list[str]]] = {}
    for name, table in document.items():
        if not isinstance(table, dict):
            raise SourceError(f"{config}:{_line_of(text, name)}: {name!r} must be a table of settings "
                              f"([{name}] followed by keys such as sources = [...])")
        tables[name] = _checked(table, config, text, 1)
    return tables


def _header(source: Path) -> dict[str, list[str]]:
    """The settings in the ``nativeimport:`` comment at the top of ``source`` (empty without one)."""
    try:
        with open(source, encoding="utf-8", errors="replace") as stream:
            head = stream.read(65536)
    except OSError:
        return {}
    block = _settings_comment(head)
    if block is None:
        return {}
    text, first_line = block
    return _checked(_parse_toml(text, str(source), first_line), str(source), text, first_line)


def _settings_comment(head: str) -> Optional[tuple[str, int]]:
    """The TOML text of the settings comment among the comments opening a file, and the line it starts on."""
    lines = head.split("\n")
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped or stripped.startswith("#!"):
            index += 1
        elif stripped.startswith("/*"):
            end = index
            while end < len(lines) and "*/" not in lines[end]:
                end += 1
            body = "\n".join(lines[index:end + 1])
            body = body[body.index("/*") + 2 : body.rindex("*/") if "*/" in body else len(body)]
            if body.lstrip().startswith(_MARK):
                _, _, rest = body.lstrip().partition("\n")
                return rest, index + 2
            index = end + 1
        elif stripped.startswith(("//", "!")):  # C-family line comments, or Fortran's
            marker = "//" if stripped.startswith("//") else "!"
            end = index
            while end < len(lines) and lines[end].strip().startswith(marker):
                end += 1
            comment = [line.strip()[len(marker):].lstrip("/!") for line in lines[index:end]]
            if comment[0].strip().startswith(_MARK):
                return "\n".join(line[1:] if line.startswith(" ") else line for line in comment[1:]), index + 2
            index = end
        else:
            return None  # code: the settings comment must come first
    return None


def _parse_toml(text: str, where: str, first_line: int) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]
    try:
        return dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = first_line + int(found.group(1)) - 1 if found else first_line
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise SourceError(f"{where}:{line}: nativeimport settings are not valid TOML: {message}") from None


def _checked(table: dict[str, Any], where: str, text: str, first_line: int) -> dict[str, list[str]]:
    checked: dict[str, list[str]] = {}
    for key, value in table.items():
        line = first_line + _line_of(text, key) - 1
        if key not in KEYS:
            close = [k for k in KEYS if k.replace("-", "") == key.replace("-", "").replace("_", "")]
            hint = f"; did you mean {close[0]!r}?" if close else f"; the keys are {', '.join(KEYS)}"
            raise SourceError(f"{where}:{line}: unknown nativeimport setting {key!r}{hint}")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise SourceError(f"{where}:{line}: nativeimport setting {key!r} must be a list of strings, "
                              f"not {type(value).__name__} {value!r}")
        checked[key] = list(value)
    return checked


def _line_of(text: str, key: str) -> int:
    found = re.search(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[=\]]|^\s*\[\s*{re.escape(key)}\s*\]", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _resolved_paths(key: str, values: list[str], base: Path) -> list[str]:
    if key not in _PATH_KEYS:
        return values
    return [os.path.normpath(os.path.join(base, os.path.expanduser(value))) for value in values]


def _add_pkg_config(merged: dict[str, list[str]], source: Path) -> None:
    """Fold ``pkg-config --cflags --libs`` of the packages asked for into the other settings."""
    import subprocess  # only here: a build without pkg-config imports none of it

    packages = merged["pkg-config"]
    program = os.environ.get("PKG_CONFIG", "pkg-config")
    for option, flags_key in (("--cflags", "flags"), ("--libs", "link-flags")):
        try:
            done = subprocess.run([*shlex.split(program), option, *packages], capture_output=True, text=True,
                                  timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolchainNotFound(f"{source}: cannot run {program} for pkg-config = {packages}: {exc}; install "
                                    "pkg-config (Debian/Ubuntu: apt-get install pkg-config)") from None
        if done.returncode != 0:
            raise SourceError(f"{source}: pkg-config knows no {' '.join(packages)}: {done.stderr.strip()}")
        for word in shlex.split(done.stdout):
            if word.startswith("-I"):
                merged["include-dirs"].append(word[2:])
            elif word.startswith("-D"):
                merged["define"].append(word[2:])
            elif word.startswith("-L"):
                merged["library-dirs"].append(word[2:])
            elif word.startswith("-l"):
                merged["libraries"].append(word[2:])
            else:
                merged[flags_key].append(word)
