"""Options, from keyword arguments and ``NATIVEIMPORT_*`` environment variables.

Arguments win over the environment; the environment wins over the defaults.
:class:`Settings` is defined in :mod:`nativeimport._fresh`, which every import
already loads, and published here.
"""

from ._fresh import Settings

__all__ = ["Settings"]
