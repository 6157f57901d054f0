"""Rewriting a wheel archive: files added, tags and ``Root-Is-Purelib`` set, ``RECORD`` made anew.

Knows the wheel format (PEP 427 / the binary distribution format spec) and
nothing of nativeimport: :mod:`nativeimport.build_meta` decides what to add
and which tags the result carries.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import os
import time
import zipfile
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Tags", "read_metadata", "rewrite_wheel", "wheel_tags"]


class Tags:
    """A compressed tag set (``cp311.py3-cp311.none-linux_x86_64``): every combination of its parts applies."""

    __slots__ = ("abis", "interpreters", "platforms")

    def __init__(self, interpreters: list[str], abis: list[str], platforms: list[str]) -> None:
        self.interpreters = interpreters
        self.abis = abis
        self.platforms = platforms

    @classmethod
    def parse(cls, text: str) -> Tags:
        interpreters, abis, platforms = text.split("-")
        return cls(interpreters.split("."), abis.split("."), platforms.split("."))

    def __str__(self) -> str:
        return "-".join(".".join(part) for part in (self.interpreters, self.abis, self.platforms))

    def expanded(self) -> list[str]:
        """Each tag on its own, as the ``WHEEL`` file lists them."""
        return ["-".join(t) for t in itertools.product(self.interpreters, self.abis, self.platforms)]

    @property
    def pure(self) -> bool:
        """Whether the set says nothing about the ABI or the platform (``py3-none-any``)."""
        return self.abis == ["none"] and self.platforms == ["any"]


def wheel_tags(filename: str) -> Tags:
    """The tags in a wheel's file name (``name-1.0[-build]-py3-none-any.whl``)."""
    return Tags.parse("-".join(filename[: -len(".whl")].split("-")[-3:]))


def read_metadata(wheel: Path) -> str:
    """The text of the wheel's ``.dist-info/METADATA``."""
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(_dist_info(archive) + "METADATA").decode("utf-8")


def rewrite_wheel(wheel: Path, added: dict[str, bytes], tags: Tags, purelib: bool,
                  removed: Callable[[str], bool] = lambda name: False) -> Path:
    """Add ``added`` (archive name -> bytes; replacing files of the same name) to ``wheel``, leave out the
    files ``removed`` says, give it ``tags`` and ``Root-Is-Purelib``, and return its path, renamed for the tags."""
    name_parts = wheel.name[: -len(".whl")].split("-")
    target = wheel.with_name("-".join([*name_parts[:-3], str(tags)]) + ".whl")
    temporary = wheel.with_name(f".{wheel.name}.{os.getpid()}.tmp")
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as out:
        info_dir = _dist_info(source)
        record, wheel_file = info_dir + "RECORD", info_dir + "WHEEL"
        when = _timestamp(source)

        def write(info: zipfile.ZipInfo, data: bytes) -> None:
            out.writestr(info, data)
            records.append((info.filename, _hash(data), str(len(data))))

        for info in source.infolist():
            name = info.filename
            if name not in (record, wheel_file) and name not in added and not removed(name):
                write(info, source.read(info))
        for name in sorted(added):
            write(_new_info(name, when, executable=name.endswith(".so")), added[name])
        text = _wheel_file(source.read(wheel_file).decode("utf-8"), tags, purelib)
        write(_new_info(wheel_file, when), text.encode("utf-8"))
        listing = io.StringIO()
        writer = csv.writer(listing, lineterminator="\n")
        writer.writerows([*records, (record, "", "")])
        out.writestr(_new_info(record, when), listing.getvalue())
    os.replace(temporary, target)
    if target != wheel:
        wheel.unlink()
    return target


def _dist_info(archive: zipfile.ZipFile) -> str:
    found = {n.split("/")[0] for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/WHEEL")}
    if len(found) != 1:
        raise ValueError(f"{archive.filename} is not a wheel: {len(found)} .dist-info/WHEEL files")
    return found.pop() + "/"


def _wheel_file(text: str, tags: Tags, purelib: bool) -> str:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("Tag:", "Root-Is-Purelib:"))]
    lines.append(f"Root-Is-Purelib: {'true' if purelib else 'false'}")
    lines += [f"Tag: {tag}" for tag in tags.expanded()]
    return "\n".join(lines) + "\n\n"


def _hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def _timestamp(archive: zipfile.ZipFile) -> tuple[int, int, int, int, int, int]:
    # SOURCE_DATE_EPOCH for reproducible builds, as setuptools' own wheel writer honours it
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return time.gmtime(max(int(epoch), 315532800))[:6]  # zip cannot say before 1980
    infos = archive.infolist()
    return infos[0].date_time if infos else time.localtime()[:6]


def _new_info(name: str, when: tuple[int, int, int, int, int, int], executable: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, when)
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info
