"""Pickling by content: what a native function, struct, enum or module becomes in a pickle.

Each pickles as a small reference to its cache entry's key plus what rebuilds
the entry elsewhere (:class:`Reference`): the module's name, its driver, the
binder asked for, and the source and dependency bytes. The receiving side is
:mod:`nativeimport._resolve`, which needs neither ``install()`` nor the source.

The objects themselves are the binders' own (a call costs what it did): the
loader registers :func:`reduce_native` with ``copyreg`` for their types, and
this module is imported by the first pickle. Objects of those types that are
not ours (``len``, another library's module) pickle exactly as before.

A pointer into this process's memory means nothing elsewhere: it is refused,
saying what to send instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

from . import _resolve
from ._entry import MANIFEST_FILE, entry_file, fresh_key, root_of
from ._loader import BOUND, NativeLoader
from ._records import read_record

__all__ = ["Reference", "reduce_native", "reference_for"]

_REFERENCES: dict[str, Reference] = {}  # one per key, built once: reading the source is not free


class Reference:
    """What rebuilds one entry's module in another process; pickles as a call to :func:`_resolve.module_for`.

    Pickle's memo stores it once per pickle however many functions of the module refer to it.
    """

    __slots__ = ("binder", "dependencies", "driver", "key", "module", "source", "source_name")

    def __init__(self, key: str, module: str, driver: str, binder: str, source_name: str,
                 source: Optional[bytes], dependencies: tuple[tuple[str, bytes], ...]) -> None:
        self.key = key
        self.module = module
        self.driver = driver
        self.binder = binder
        self.source_name = source_name
        self.source = source  # None when the file changed since it was built: only the key can find it then
        self.dependencies = dependencies

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_resolve.module_for, (self.key, self.module, self.driver, self.binder, self.source_name,
                                      self.source, self.dependencies))


def reduce_native(value: Any) -> Any:
    """The ``copyreg`` reducer for the binders' types; objects of those types that are not ours pickle as before."""
    kind = type(value)
    if kind is type(len):
        return _reduce_builtin(value)
    if kind is type(sys):
        return _reduce_module(value)
    if kind.__name__ == "StructType" and kind.__module__ == "nativeimport._cffi_runtime":
        return _reduce_attribute(value, "struct type")
    if isinstance(value, type):  # an enum class (its metaclass is registered)
        found = _find(value)
        return value.__qualname__ if found is None else (_resolve.attribute, found)
    if isinstance(value, int) and hasattr(kind, "_member_map_"):  # an enum member
        found = _find(kind)
        if found is None:
            return value.__reduce_ex__(2)
        return (_resolve.enum_member, (*found, int(value)))
    return _reduce_cdata(value)


def _reduce_builtin(function: Any) -> Any:
    found = _find(function)
    if found is not None:
        return (_resolve.attribute, found)
    for key, (_, namespace) in list(BOUND.items()):
        released = namespace.get("__native_release_gil__") or {}
        for name, variant in released.items():
            if variant is function:
                return (_resolve.released, (reference_for(key), name))
    return function.__reduce__()  # someone else's: by name, as pickle does by default


def _reduce_module(module: Any) -> Any:
    key = getattr(module, "__native_key__", None)
    if isinstance(key, str) and key in BOUND:
        return (_resolve.same, (reference_for(key),))
    raise TypeError(f"cannot pickle 'module' object ({module.__name__})")


def _reduce_attribute(value: Any, what: str) -> Any:
    found = _find(value)
    if found is None:
        raise TypeError(f"cannot pickle {value!r}: this {what} belongs to no module nativeimport bound "
                        "in this process")
    return (_resolve.attribute, found)


def _find(value: Any) -> Optional[tuple[Reference, str]]:
    """(reference, name) of a function, struct type or enum class of a bound module, by identity."""
    name = getattr(value, "__name__", None)
    for key, (_, namespace) in list(BOUND.items()):
        if name is not None and namespace.get(name) is value:
            return reference_for(key), name
    for key, (_, namespace) in list(BOUND.items()):  # exported under another name (a Python keyword, say)
        for exported, candidate in namespace.items():
            if candidate is value:
                return reference_for(key), exported
    return None


def _reduce_cdata(value: Any) -> Any:
    """A struct instance pickles as its bytes; any other cdata is a pointer into this process and refused."""
    for key, (_, namespace) in list(BOUND.items()):
        for name, struct in namespace.items():
            if type(struct).__name__ != "StructType" or not isinstance(value, struct):
                continue
            ffi = struct._ffi
            pointer = ffi.typeof(value) is struct.pointer_type
            if pointer and type(value).__name__ not in _OWNING:
                raise TypeError(f"cannot pickle {value!r}: it points into this process's memory (a struct the "
                                f"library returned by pointer); send a copy instead: {name}(**{{f: p.f ...}}) "
                                "or the fields as a dict")
            inner = _pointer_field(ffi, struct.value_type)
            if inner is not None:
                raise TypeError(f"cannot pickle a struct {struct.__name__}: its field {inner!r} is a pointer, which "
                                "means nothing in another process; send the data it points to instead")
            data = bytes(ffi.buffer(value if pointer else ffi.addressof(value)))
            return (_resolve.struct_value, (reference_for(key), name, data))
    try:
        what = repr(value)
    except Exception:
        what = "a cffi object"
    raise TypeError(f"cannot pickle {what}: a pointer into this process's memory means nothing in another "
                    "process; send the data instead (bytes(ffi.buffer(p, size)), a numpy array, or a struct "
                    "instance made with the module's struct type)")


# The cdata types that own their memory (ffi.new, ffi.gc): a struct instance made by mod.Point(...).
_OWNING = frozenset({"__CDataOwn", "__CDataOwnGC", "__CDataGCP"})


def _pointer_field(ffi: Any, ctype: Any) -> Optional[str]:
    """The first field (nested structs and arrays included) that holds a pointer, or None."""
    for field_name, field in ctype.fields or ():
        inner = field.type
        while inner.kind == "array":
            inner = inner.item
        if inner.kind == "pointer" or inner.kind == "function":
            return str(field_name)
        if inner.kind == "struct":
            found = _pointer_field(ffi, inner)
            if found is not None:
                return f"{field_name}.{found}"
    return None


def reference_for(key: str) -> Reference:
    """The reference to the entry ``key`` a module of this process was bound from."""
    reference = _REFERENCES.get(key)
    if reference is None:
        reference = _REFERENCES[key] = _make_reference(key)
    return reference


def _make_reference(key: str) -> Reference:
    module, _ = BOUND[key]
    loader = getattr(module, "__loader__", None)
    overrides = loader.overrides if isinstance(loader, NativeLoader) else {}
    binder = str(overrides.get("binder") or os.environ.get("NATIVEIMPORT_BINDER") or "auto")
    # The cache the module was bound from, whatever NATIVEIMPORT_CACHE_DIR says now.
    entry = os.path.dirname(str(getattr(module, "__native_library__", "")))
    root = root_of(entry)
    manifest = read_record(entry_file(entry, MANIFEST_FILE)) or {}
    driver = str(manifest.get("language", ""))
    source_path = loader.source if isinstance(loader, NativeLoader) else str(manifest.get("source", ""))
    source: Optional[bytes] = None
    dependencies: tuple[tuple[str, bytes], ...] = ()
    # Carried only while the file still holds what built this entry (its stats match the freshness record).
    if isinstance(loader, NativeLoader) and fresh_key(root, loader.source, loader.driver.token()) == key:
        driver = loader.driver.name
        source, dependencies = _read_sources(loader, manifest)
    return Reference(key, module.__name__, driver, binder, os.path.basename(source_path), source, dependencies)


def _read_sources(loader: NativeLoader, manifest: dict[str, Any]) -> tuple[Optional[bytes],
                                                                         tuple[tuple[str, bytes], ...]]:
    """The source's bytes (what the driver hashes) and those of the dependencies inside its folder."""
    source = loader.source
    folder = source if os.path.isdir(source) else os.path.dirname(source)
    try:
        from pathlib import Path

        data = loader.driver.load().read_source(Path(source))
        dependencies = []
        for relative in manifest.get("dependencies", []):
            if os.path.isabs(relative) or relative.startswith(".."):
                continue  # system headers and the like: the receiving machine has its own
            with open(os.path.join(folder, relative), "rb") as stream:
                dependencies.append((relative, stream.read()))
    except OSError:
        return None, ()
    return data, tuple(dependencies)
