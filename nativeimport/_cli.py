"""The ``nativeimport`` command: ``cache dir|list|clear|prune|export|import``, ``build``, ``doctor``, ``show``,
``stubs``.

Each command computes a result; one renderer prints it as text or ``--json``.
This is the only module that prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from ._api import build
from ._cache import Cache
from ._entry import INTERFACE_FILE, MANIFEST_FILE, cache_root, interpreters_served
from ._finder import installed_drivers
from ._package import stub_path, stub_text
from ._records import read_record
from ._version import __version__
from .errors import NativeImportError, ToolchainNotFound
from .settings import Settings

__all__ = ["main"]

Result = tuple[Any, Callable[[Any], str]]  # (data for --json, text renderer)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="nativeimport: %(message)s",
                        stream=sys.stderr)
    status: int
    try:
        status, (data, render) = args.handler(args)
    except NativeImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        text = render(data)
        if text:
            print(text)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nativeimport", description="Import C, Rust and Zig sources as modules.")
    parser.add_argument("--version", action="version", version=f"nativeimport {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument("-v", "--verbose", action="store_true", help="show compiler commands and cache decisions")
    common.add_argument("--cache-dir", type=Path,
                        help="cache root (default: $NATIVEIMPORT_CACHE_DIR or the user cache)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    cache = commands.add_parser("cache", help="inspect or clear the build cache")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    cache_commands.add_parser("dir", parents=[common], help="print the cache root").set_defaults(handler=_cache_dir)
    cache_commands.add_parser("list", parents=[common], help="list cached builds").set_defaults(handler=_cache_list)
    clear = cache_commands.add_parser("clear", parents=[common], help="delete cached builds (all, or of SOURCEs)")
    clear.add_argument("sources", nargs="*", type=Path, metavar="SOURCE")
    clear.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    clear.set_defaults(handler=_cache_clear)
    prune = cache_commands.add_parser("prune", parents=[common],
                                      help="delete damaged builds, old ones, and the least recently used beyond a size")
    prune.add_argument("--older-than", type=float, metavar="DAYS", help="builds not used for this many days")
    prune.add_argument("--max-size", type=_parse_size, metavar="SIZE", help="keep at most this much (e.g. 500M, 2G)")
    prune.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    prune.set_defaults(handler=_cache_prune)
    export = cache_commands.add_parser("export", parents=[common],
                                       help="write cached builds to one archive (for machines without a compiler)")
    export.add_argument("keys", nargs="+", metavar="KEY", help="an entry's key, a unique prefix, or a module name")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    export.set_defaults(handler=_cache_export)
    import_parser = cache_commands.add_parser("import", parents=[common],
                                              help="add the builds of an archive `cache export` wrote")
    import_parser.add_argument("archive", type=Path, metavar="FILE")
    import_parser.set_defaults(handler=_cache_import)

    build_parser = commands.add_parser("build", parents=[common], help="build sources ahead of time")
    build_parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    build_parser.set_defaults(handler=_build)
    commands.add_parser("doctor", parents=[common], help="show drivers and toolchains").set_defaults(handler=_doctor)
    show = commands.add_parser("show", parents=[common], help="show the Python-facing interface of a source")
    show.add_argument("path", type=Path)
    show.set_defaults(handler=_show)
    stubs = commands.add_parser("stubs", parents=[common],
                                help="write a .pyi stub beside each source (x.pyi beside x.c) for type checkers")
    stubs.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    stubs.set_defaults(handler=_stubs)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(cache_dir=args.cache_dir, verbose=args.verbose or None)


def _cache_dir(args: argparse.Namespace) -> tuple[int, Result]:
    root = cache_root(_settings(args).cache_dir)
    return 0, ({"cache_dir": root}, lambda data: data["cache_dir"])


def _cache_list(args: argparse.Namespace) -> tuple[int, Result]:
    cache = Cache(Path(cache_root(_settings(args).cache_dir)))
    now = time.time()
    rows = []
    for e in cache.entries():
        manifest = e.manifest or {}
        rows.append({
            "key": e.key,
            "module": manifest.get("module", "(damaged: prune removes it)"),
            "source": manifest.get("source"),
            "language": manifest.get("language", "?"),
            "size": e.size,
            "age_seconds": round(now - manifest.get("created", now)),
            "last_used_seconds_ago": round(now - e.last_used),
            "built_by": manifest.get("built_by"),
            "interpreters": interpreters_served(e.path),
            "toolchain": manifest.get("toolchain", {}).get("version"),
            "path": str(e.path),
            "damaged": e.manifest is None,
        })
    return 0, (rows, _render_list)


def _render_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "the cache is empty"
    lines = [f"{'MODULE':<20} {'LANG':<5} {'SIZE':>8} {'AGE':>6}  {'INTERPRETERS':<32} SOURCE"]
    for row in rows:
        served = ", ".join(row["interpreters"]) or "-"
        lines.append(f"{row['module']:<20} {row['language']:<5} {_size(row['size']):>8} "
                     f"{_age(row['age_seconds']):>6}  {served:<32} {row['source']}")
    total = sum(row["size"] for row in rows)
    lines.append(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}, {_size(total)}")
    return "\n".join(lines)


def _cache_clear(args: argparse.Namespace) -> tuple[int, Result]:
    cache = Cache(Path(cache_root(_settings(args).cache_dir)))
    wanted = {str(p.absolute()) for p in args.sources}
    doomed = [e for e in cache.entries() if not wanted or (e.manifest or {}).get("source") in wanted]
    if doomed and not args.yes:
        if not sys.stdin.isatty():
            print("error: refusing to delete without confirmation; pass --yes", file=sys.stderr)
            return 1, ({"removed": 0}, lambda data: "")
        answer = input(f"delete {len(doomed)} cached build(s) from {cache.root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1, ({"removed": 0}, lambda data: "nothing deleted")
    for entry in doomed:
        cache.remove(entry.key)
    if not wanted:
        cache.clear_records()
    return 0, ({"removed": len(doomed)}, lambda data: f"removed {data['removed']} cached build(s)")


def _cache_prune(args: argparse.Namespace) -> tuple[int, Result]:
    cache = Cache(Path(cache_root(_settings(args).cache_dir)))
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: refusing to delete without confirmation; pass --yes", file=sys.stderr)
            return 1, ({"removed": []}, lambda data: "")
        answer = input(f"prune the cache at {cache.root}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 1, ({"removed": []}, lambda data: "nothing deleted")
    older_than = args.older_than * 86400 if args.older_than is not None else None
    removed = cache.prune(older_than=older_than, max_size=args.max_size)
    rows = [{"key": e.key, "module": (e.manifest or {}).get("module", "(damaged)"), "size": e.size} for e in removed]
    left = sum(e.size for e in cache.entries())

    def render(data: list[dict[str, Any]]) -> str:
        freed = sum(row["size"] for row in data)
        return f"removed {len(data)} cached build(s), {_size(freed)}; {_size(left)} left"

    return 0, (rows, render)


def _cache_export(args: argparse.Namespace) -> tuple[int, Result]:
    from ._archive import match_keys, write_export

    root = cache_root(_settings(args).cache_dir)
    keys = match_keys(root, args.keys)
    size = write_export(root, keys, str(args.output))
    data = {"archive": str(args.output), "keys": keys, "size": size}
    return 0, (data, lambda d: f"wrote {len(d['keys'])} build(s) to {d['archive']} ({_size(d['size'])})")


def _cache_import(args: argparse.Namespace) -> tuple[int, Result]:
    from ._archive import import_archive

    root = cache_root(_settings(args).cache_dir)
    try:
        data = args.archive.read_bytes()
    except OSError as exc:
        raise NativeImportError(f"cannot read {args.archive}: {exc.strerror}") from None
    keys = import_archive(root, data)
    return 0, ({"keys": keys, "cache_dir": root},
               lambda d: f"imported {len(d['keys'])} build(s) into {d['cache_dir']}: " + " ".join(d["keys"]))


def _parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GiB``, ``4096`` -> bytes."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 500M or 2G)")
    return int(float(match[1]) * 1024 ** "_KMGT".index(match[2].upper() or "_"))


def _build(args: argparse.Namespace) -> tuple[int, Result]:
    results = []
    status = 0
    for path in args.paths:
        started = time.perf_counter()
        try:
            entry = build(path, cache_dir=args.cache_dir, verbose=args.verbose or None,
                          wrapper="wait")  # built ahead of time: complete
        except NativeImportError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            results.append({"path": str(path), "ok": False, "error": str(exc)})
            status = 1
            continue
        manifest = read_record(entry / MANIFEST_FILE) or {}
        results.append({"path": str(path), "ok": True, "entry": str(entry), "exports": manifest.get("exports", []),
                        "seconds": round(time.perf_counter() - started, 3)})

    def render(rows: list[dict[str, Any]]) -> str:
        return "\n".join(f"built {r['path']}: {len(r['exports'])} function(s) in {r['seconds']} s -> {r['entry']}"
                         for r in rows if r["ok"])

    return status, (results, render)


def _doctor(args: argparse.Namespace) -> tuple[int, Result]:
    settings = _settings(args)
    registry = installed_drivers({"cache_dir": args.cache_dir} if args.cache_dir else {})
    drivers = []
    for info in registry.drivers:
        row: dict[str, Any] = {"name": info.name, "suffixes": list(info.suffixes), "entry_point": info.target}
        try:
            driver = info.load()
            toolchain = driver.toolchain()
            row.update(found=True, path=toolchain.path, command=list(toolchain.command), version=toolchain.version,
                       tools=[{"name": t.name, "path": t.path, "version": t.version} for t in driver.tools()])
        except ToolchainNotFound as exc:
            row.update(found=False, problem=str(exc))
        except Exception as exc:  # a broken driver is what doctor is for
            row.update(found=False, problem=f"driver failed: {exc}")
        drivers.append(row)
    data = {
        "nativeimport": __version__,
        "python": f"{sys.implementation.name} {sys.version.split()[0]}",
        "executable": sys.executable,
        "interpreter_tag": sys.implementation.cache_tag,
        "binders": _binders(),
        "cache_dir": cache_root(settings.cache_dir),
        "drivers": drivers,
    }

    def render(d: dict[str, Any]) -> str:
        lines = [f"nativeimport {d['nativeimport']} on {d['python']} ({d['executable']})",
                 f"binders: {d['binders']}", f"cache: {d['cache_dir']}"]
        # Columns as wide as their widest entry: a driver may claim many suffixes (C++: .cpp .cc .cxx).
        name_width = max((len(row["name"]) for row in d["drivers"]), default=0)
        suffix_width = max((len(" ".join(row["suffixes"])) for row in d["drivers"]), default=0)
        tool_width = max((len(t["name"]) for row in d["drivers"] for t in row.get("tools", ())), default=0)
        for row in d["drivers"]:
            label = f"{row['name']:<{name_width}} {' '.join(row['suffixes']):<{suffix_width}}"
            if row["found"]:
                for index, tool in enumerate(row["tools"]):
                    label = label if index == 0 else " " * len(label)
                    lines.append(f"  {label} ok   {tool['name']:<{tool_width}} {tool['path']}  {tool['version']}")
            else:
                lines.append(f"  {label} MISSING  {row['problem']}")
        return "\n".join(lines)

    return 0, (data, render)


def _binders() -> str:
    """Which binders serve this interpreter, and why the fast one does not when it does not."""
    if sys.implementation.name != "cpython":
        return f"cffi ({sys.implementation.name}: the fast binder is for CPython; cffi calls are cheap under a JIT)"
    from ._bind_fast import missing_prerequisite

    problem = missing_prerequisite()
    return "fast (METH_FASTCALL wrappers) + cffi" if problem is None else f"cffi only: {problem}"


def _show(args: argparse.Namespace) -> tuple[int, Result]:
    from .interface import Interface

    entry = build(args.path, cache_dir=args.cache_dir, verbose=args.verbose or None)
    interface = Interface.from_json(json.loads((entry / INTERFACE_FILE).read_text(encoding="utf-8")))
    data = interface.to_json()

    def render(_: Any) -> str:
        text = interface.stub()
        if interface.skipped:
            text += "\n# Left out:\n" + "\n".join(f"#   {s.name}: {s.reason}" for s in interface.skipped)
        return text

    return 0, (data, render)


def _stubs(args: argparse.Namespace) -> tuple[int, Result]:
    # Writing beside the sources is what this command is asked for; nothing else in nativeimport does it.
    results = []
    status = 0
    for path in args.paths:
        try:
            entry = build(path, cache_dir=args.cache_dir, verbose=args.verbose or None)
            target = stub_path(str(path))
            Path(target).write_text(stub_text(str(entry)), encoding="utf-8")  # a file the user owns, as they would
        except NativeImportError as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            results.append({"path": str(path), "ok": False, "error": str(exc)})
            status = 1
            continue
        except OSError as exc:
            print(f"error: {path}: cannot write its stub: {exc.strerror or exc}", file=sys.stderr)
            results.append({"path": str(path), "ok": False, "error": str(exc)})
            status = 1
            continue
        results.append({"path": str(path), "ok": True, "stub": target})

    def render(rows: list[dict[str, Any]]) -> str:
        return "\n".join(f"wrote {r['stub']}" for r in rows if r["ok"])

    return status, (results, render)


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length:.0f}{unit}"
    return f"{seconds:.0f}s"
