"""Cache entries as one archive: what ``nativeimport cache export/import``, the Dask plugin and Ray ship.

An archive is a gzip'd tar holding ``entries/<key>/<file>`` for each entry
(library, bindings, manifest, every interpreter's fast wrapper) and a listing,
``nativeimport-export.json``, with each file's SHA-256. Importing checks the
whole archive before writing anything: only regular files with plain names,
exactly the files listed, each with its digest, each entry with its manifest
naming its key. Files are written by this module under names it builds (never
extracted by the tar module), so nothing lands outside the cache; a new entry
appears in one rename, as a build's does. An entry already present gains only
the files it lacks (another interpreter's fast wrapper).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from typing import Any

from ._entry import LAST_USED, LIBRARY_FILE, MANIFEST_FILE, STAGING_PREFIX, entry_dir, list_entries, staging_parent
from ._records import make_private_dirs, write_atomically
from .errors import CacheError

__all__ = ["LISTING", "export_entries", "import_archive", "match_keys", "shipment", "write_export"]

LISTING = "nativeimport-export.json"
FORMAT = "nativeimport-export-1"
_KEY = re.compile(r"[0-9a-f]{64}")
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_MAX_BYTES = 4 << 30  # an archive claiming more is refused before anything is read


def _shipped(name: str) -> bool:
    """Whether one of an entry's files travels: not the use stamp, markers of this machine, or temporary files."""
    return (name != LAST_USED and not name.startswith(".") and ".unavailable-" not in name
            and not name.endswith(".tmp") and _FILE.fullmatch(name) is not None)


def match_keys(root: str, wanted: Iterable[str]) -> list[str]:
    """Full keys for ``wanted`` (keys, unique key prefixes, or module names); CacheError for one that matches none."""
    entries = list_entries(root)
    keys = []
    for text in wanted:
        found = [e.key for e in entries if e.key.startswith(text)] if text else []
        if not found:
            found = [e.key for e in entries if (e.manifest or {}).get("module") == text]
            found = sorted(found, key=lambda k: -next(e.last_used for e in entries if e.key == k))[:1]
        if len(found) != 1:
            what = "no entry" if not found else f"{len(found)} entries"
            raise CacheError(f"{text!r} matches {what} in {root}; `nativeimport cache list` shows the keys")
        keys.append(found[0])
    return keys


def export_entries(root: str, keys: Iterable[str]) -> bytes:
    """The archive of entries ``keys`` of the cache at ``root``."""
    listing: dict[str, dict[str, str]] = {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        for key in keys:
            entry = entry_dir(root, key)
            if not os.path.isdir(entry):
                raise CacheError(f"entry {key} is not in the cache {root}")
            files = listing[key] = {}
            for name in sorted(os.listdir(entry)):
                path = os.path.join(entry, name)
                if not _shipped(name) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as stream:
                    data = stream.read()
                files[name] = hashlib.sha256(data).hexdigest()
                _add(archive, f"entries/{key}/{name}", data)
        _add(archive, LISTING, json.dumps({"format": FORMAT, "entries": listing}, indent=1).encode())
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write_export(root: str, keys: Iterable[str], path: str) -> int:
    """Write the archive to ``path`` atomically; its size."""
    data = export_entries(root, keys)
    write_atomically(path, data)
    return len(data)


def import_archive(root: str, data: bytes) -> list[str]:
    """Put an archive's entries into the cache at ``root``; the keys it held. Refused whole if anything is off."""
    contents = _read_checked(data)
    for key, files in contents.items():
        target = entry_dir(root, key)
        if os.path.isdir(target):
            _complete(target, files)
            continue
        parent = staging_parent(root)
        make_private_dirs(parent)
        # A staging directory like a build's: swept if this process dies, never mistaken for the user's.
        staging = tempfile.mkdtemp(dir=parent, prefix=f"{STAGING_PREFIX}{os.getpid()}-import-")
        try:
            for name, content in files.items():
                fd = os.open(os.path.join(staging, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                with open(fd, "wb") as stream:
                    stream.write(content)
            make_private_dirs(os.path.dirname(target))
            try:
                os.replace(staging, target)
            except OSError:
                if not os.path.isdir(target):
                    raise
                _complete(target, files)  # imported meanwhile by another process
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return list(contents)


def _complete(entry: str, files: dict[str, bytes]) -> None:
    """Add the files an existing entry lacks (a wrapper for another interpreter), each in one rename."""
    for name, content in files.items():
        path = os.path.join(entry, name)
        if os.path.exists(path):
            continue
        temporary = os.path.join(entry, f".{name}.{os.getpid()}.import")
        with open(temporary, "wb") as stream:
            stream.write(content)
        os.replace(temporary, path)


def _read_checked(data: bytes) -> dict[str, dict[str, bytes]]:
    """The archive's files by entry, after every check; CacheError naming the first problem."""
    def refuse(why: str) -> CacheError:
        return CacheError(f"refusing the archive: {why}; nothing was imported")

    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (read within this function)
        members = archive.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise refuse(f"it is not a nativeimport export ({exc})") from None
    if sum(m.size for m in members) > _MAX_BYTES:
        raise refuse("it claims more than 4 GiB")
    read: dict[str, bytes] = {}
    for member in members:
        if not member.isfile():
            raise refuse(f"{member.name!r} is not a regular file (links and devices are never shipped)")
        parts = member.name.split("/")
        plain = member.name == LISTING or (len(parts) == 3 and parts[0] == "entries"
                                           and _KEY.fullmatch(parts[1]) is not None and _shipped(parts[2]))
        if not plain:
            raise refuse(f"{member.name!r} is not a file of an entry")
        if member.name in read:
            raise refuse(f"{member.name!r} appears twice")
        stream = archive.extractfile(member)
        assert stream is not None
        read[member.name] = stream.read()
    try:
        listing = json.loads(read.pop(LISTING))
        assert listing["format"] == FORMAT and isinstance(listing["entries"], dict)
    except (KeyError, ValueError, AssertionError, TypeError):
        raise refuse(f"its listing {LISTING} is missing or not of format {FORMAT}") from None
    listed = {f"entries/{key}/{name}": digest for key, files in listing["entries"].items()
              for name, digest in dict(files).items()}
    if set(listed) != set(read):
        extra = sorted(set(read) ^ set(listed))
        raise refuse(f"its files and its listing differ ({', '.join(extra[:3])})")
    contents: dict[str, dict[str, bytes]] = {}
    for name, content in read.items():
        if hashlib.sha256(content).hexdigest() != listed[name]:
            raise refuse(f"{name} does not have the content its listing records (altered after export?)")
        _, key, filename = name.split("/")
        contents.setdefault(key, {})[filename] = content
    for key, files in contents.items():
        if LIBRARY_FILE not in files or MANIFEST_FILE not in files:
            raise refuse(f"entry {key} lacks its {LIBRARY_FILE} or {MANIFEST_FILE}")
        try:
            manifest = json.loads(files[MANIFEST_FILE])
        except ValueError:
            raise refuse(f"entry {key} has a damaged {MANIFEST_FILE}") from None
        if not isinstance(manifest, dict) or manifest.get("key") != key:
            raise refuse(f"entry {key}'s manifest names another key")
    return contents


def shipment(modules: Iterable[Any]) -> tuple[dict[str, str], bytes]:
    """(module name -> key, archive of their entries) for native modules of this process (or their names,
    or functions of them), from the caches they were bound from."""
    import sys

    from ._loader import BOUND

    names: dict[str, str] = {}
    by_root: dict[str, list[str]] = {}
    for item in modules:
        module = sys.modules.get(item) if isinstance(item, str) else item
        if module is not None and not hasattr(module, "__native_key__"):  # a function, struct type or enum
            module = next((bound for bound, namespace in list(BOUND.values())
                           if any(value is item for value in namespace.values())), None)
        key = getattr(module, "__native_key__", None)
        library = getattr(module, "__native_library__", None)
        if module is None or not isinstance(key, str) or not isinstance(library, str):
            raise TypeError(f"{item!r} is not a module nativeimport imported in this process")
        names[module.__name__] = key
        by_root.setdefault(os.path.dirname(os.path.dirname(os.path.dirname(library))), []).append(key)
    if len(by_root) > 1:  # one archive per root would do; one root is what every real program has
        raise CacheError("the modules to ship come from several caches; ship each cache's modules separately")
    root, keys = next(iter(by_root.items())) if by_root else ("", [])
    return names, export_entries(root, keys) if keys else b""
