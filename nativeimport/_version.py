"""The version of nativeimport: a leaf, so no module inside the package imports ``__init__`` for it."""

__all__ = ["__version__"]

__version__ = "0.1.0"
