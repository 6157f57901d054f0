"""``import nativeimport.auto`` installs the import hook in one line."""

from __future__ import annotations

from ._api import install

__all__: list[str] = []

install()
