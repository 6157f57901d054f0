"""Pickling by content: what a native function, struct, enum or module becomes in a pickle, and back.

Each pickles as a small reference to its cache entry's key plus what rebuilds
the entry elsewhere (:class:`Reference`): the module's name, its driver, the
binder asked for, and the source and dependency bytes. Unpickling calls the
functions at the end of this module, which need neither ``install()`` nor the
source: :mod:`nativeimport._resolve` finds or rebuilds the module, or gives a
stand-in whose use raises why.

The objects themselves are the binders' own, so a call costs what it did:
:func:`enable` (run by ``install()`` and ``load()``) registers
:func:`reduce_native` with ``copyreg`` for their types, which pickle,
multiprocessing's pickler and cloudpickle all consult. Objects of those types
that are not ours (``len``, another library's module) pickle as before.

A pointer into this process's memory means nothing elsewhere: it is refused,
saying what to send instead.

``install()`` imports this module, so at module level it imports only what a
cache hit has already loaded.
"""

from __future__ import annotations

import copyreg
import os
import sys

from ._entry import MANIFEST_FILE, entry_file, fresh_identity, fresh_key, root_of
from ._loader import BIND_HOOKS, BOUND, NativeLoader
from ._records import read_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = ["ALIAS", "EntryFinder", "Reference", "attribute", "bound_from", "enable", "enum_member", "module_for",
           "on_bind", "reduce_native", "reduce_record", "reference_for", "released", "same", "struct_value"]

_REFERENCES: dict[tuple[str, str], Reference] = {}  # per key and module name, built once: reading is not free


class Reference:
    """What rebuilds one entry's module in another process; pickles as a call to :func:`module_for`.

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
        return (module_for, (self.key, self.module, self.driver, self.binder, self.source_name, self.source,
                             self.dependencies))


def enable() -> None:
    """Make native objects pickle by content from now on (idempotent; costs a call nothing)."""
    if on_bind in BIND_HOOKS:
        return
    BIND_HOOKS.append(on_bind)
    table = copyreg.dispatch_table
    table.setdefault(type(len), reduce_native)  # the fast binder's functions are builtin functions
    table.setdefault(type(sys), reduce_native)  # modules: pickle has no reducer of its own for them
    for module, namespace in list(BOUND.values()):  # bound before this was enabled
        on_bind(module, namespace)


def on_bind(module: Any, namespace: dict[str, Any]) -> None:
    """Prepare what a newly bound namespace brings: its enums, cffi's cdata for its structs, its Python functions.

    Python functions (the cffi binder's wrappers) and classes always pickle by
    module and name, whatever copyreg says; so theirs become the entry's
    alias module (:data:`ALIAS` + key), which any process resolves by key
    (:class:`EntryFinder`), instead of a name only processes that ran
    ``install()`` with the source at hand can import.
    """
    table = copyreg.dispatch_table
    alias = f"{ALIAS}{module.__native_key__}"
    aliased = records = False
    for value in namespace.values():
        kind = type(value)
        if kind is _FUNCTION:
            value.__module__ = alias
            aliased = True
        elif kind.__name__ == "StructType" and kind.__module__ == "nativeimport._cffi_runtime":
            if kind in table:
                continue
            table[kind] = reduce_native
            for sample in _cdata_samples(value._ffi):
                table.setdefault(type(sample), reduce_native)
        elif isinstance(value, type) and isinstance(getattr(value, "__native_size__", None), int):
            value.__module__ = alias  # a fast binder's struct type: pickled by the entry's alias, as enums
            aliased = records = True
        elif isinstance(value, type) and issubclass(value, int) and hasattr(value, "_member_map_"):
            table.setdefault(value, reduce_native)  # the enum's members
            table.setdefault(kind, reduce_native)  # enum classes themselves, for pickle
            value.__module__ = alias  # and for cloudpickle, which names classes
            aliased = True
    if aliased:  # pickle and cloudpickle look the alias up in sys.modules
        sys.modules[alias] = _snapshot(alias, namespace)
    if records:  # no cffi StructType told of cffi's cdata: the module's ffi does, now or once it is made
        ffi = namespace.get("__ffi__")
        if type(ffi).__name__ == "FFI":
            _cdata_reducers(ffi)
        else:
            then = getattr(ffi, "then", None)  # _fast_runtime.OnFirstUse: cffi not loaded yet
            if isinstance(then, list):
                then.append(_cdata_reducers)


def _cdata_reducers(ffi: Any) -> None:
    """Pickle cffi's cdata (of every Python type cffi makes them) through :func:`reduce_native`."""
    for sample in _cdata_samples(ffi):
        copyreg.dispatch_table.setdefault(type(sample), reduce_native)


_FUNCTION = type(on_bind)
ALIAS = f"{__name__}.k"  # nativeimport._pickling.k<key>: the module a key names, in any process


def _snapshot(name: str, namespace: dict[str, Any]) -> Any:
    """A module holding exactly ``namespace`` (not the live module: a reload must not change what a key names)."""
    snapshot = type(sys)(name)
    snapshot.__dict__.update(namespace)
    return snapshot


class EntryFinder:
    """Answers ``import nativeimport._pickling.k<key>`` in any process: the module bound from that entry.

    Appended to ``sys.meta_path`` when this module is imported, which a pickle
    naming such a module does first; it answers no other name.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(ALIAS):
            return None
        from _frozen_importlib import ModuleSpec

        return ModuleSpec(fullname, self)  # type: ignore[arg-type]

    def create_module(self, spec: Any) -> Any:
        key = spec.name[len(ALIAS):]
        enable()
        from ._resolve import Unavailable, resolve_carried

        found = bound_from(key)
        name = found[-1][0].__name__ if found else _module_name(key)
        carried = (key, name, "", "auto", "", None, ())
        module, reason = resolve_carried(carried)
        if module is None:
            return Unavailable(carried, reason, module_for, attribute)
        found = bound_from(key)
        return _snapshot(spec.name, found[-1][1] if found else vars(module))

    def exec_module(self, module: Any) -> None:
        pass  # made whole in create_module


def _module_name(key: str) -> str:
    """The module name an entry of the local cache was built as (its manifest says), else a placeholder."""
    from ._entry import cache_root, entry_dir
    from .settings import Settings

    try:
        manifest = read_record(entry_file(entry_dir(cache_root(Settings.from_env().cache_dir), key), MANIFEST_FILE))
    except Exception:
        manifest = None
    return str((manifest or {}).get("module") or f"entry_{key[:16]}")


# The import system looks submodules up only under a package: an empty path makes this one, with no files.
__path__: list[str] = []
if not any(isinstance(finder, EntryFinder) for finder in sys.meta_path):
    sys.meta_path.append(EntryFinder())


def _cdata_samples(ffi: Any) -> list[Any]:
    # cffi's cdata come in several Python types (owning memory or not); one reducer serves them all.
    return [ffi.NULL, ffi.new("char[1]"), ffi.new("int *"), ffi.from_buffer(bytearray(1)),
            ffi.gc(ffi.new("char[1]"), lambda _: None)]


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
        return value.__qualname__ if found is None else (attribute, found)
    if isinstance(value, int) and hasattr(kind, "_member_map_"):  # an enum member
        found = _find(kind)
        if found is None:
            return value.__reduce_ex__(2)
        return (enum_member, (*found, int(value)))
    return _reduce_cdata(value)


def _reduce_builtin(function: Any) -> Any:
    found = _find(function)
    if found is not None:
        return (attribute, found)
    for (key, _), (module, namespace) in list(BOUND.items()):
        variants = namespace.get("__native_release_gil__") or {}
        for name, variant in variants.items():
            if variant is function:
                return (released, (reference_for(key, module), name))
    return function.__reduce__()  # someone else's: by name, as pickle does by default


def _reduce_module(module: Any) -> Any:
    key = getattr(module, "__native_key__", None)
    if isinstance(key, str) and (key, id(module)) in BOUND:
        return (same, (reference_for(key, module),))
    raise TypeError(f"cannot pickle 'module' object ({module.__name__})")


def _reduce_attribute(value: Any, what: str) -> Any:
    found = _find(value)
    if found is None:
        raise TypeError(f"cannot pickle {value!r}: this {what} belongs to no module nativeimport bound "
                        "in this process")
    return (attribute, found)


def _find(value: Any) -> Optional[tuple[Reference, str]]:
    """(reference, name) of a function, struct type or enum class of a bound module, by identity."""
    name = getattr(value, "__name__", None)
    for (key, _), (module, namespace) in list(BOUND.items()):
        if name is not None and namespace.get(name) is value:
            return reference_for(key, module), name
    for (key, _), (module, namespace) in list(BOUND.items()):  # exported under another name (a keyword, say)
        for exported, candidate in namespace.items():
            if candidate is value:
                return reference_for(key, module), exported
    return None


def _reduce_cdata(value: Any) -> Any:
    """A struct instance pickles as its bytes; any other cdata is a pointer into this process and refused."""
    for (key, _), (module, namespace) in list(BOUND.items()):
        for name, struct in namespace.items():
            if isinstance(getattr(struct, "__native_size__", None), int) and isinstance(struct, type):
                found = _record_cdata(key, module, namespace, name, struct, value)
                if found is not None:
                    return found
                continue
            if type(struct).__name__ != "StructType" or not isinstance(value, struct):
                continue
            ffi = struct._ffi
            pointer = ffi.typeof(value) is struct.pointer_type
            if pointer and type(value).__name__ not in _OWNING:
                copy = f"{module.__name__}.{name}(" + ", ".join(f"p.{f}" for f in struct.fields) + ")"
                raise TypeError(f"cannot pickle {value!r}: it points into this process's memory (a struct the "
                                f"library returned by pointer); send a copy instead, {copy}, or its fields as a dict")
            _refuse_pointer_field(struct.__name__, _pointer_field(ffi, struct.value_type))
            data = bytes(ffi.buffer(value if pointer else ffi.addressof(value)))
            return (struct_value, (reference_for(key, module), name, data))
    try:
        what = repr(value)
    except Exception:
        what = "a cffi object"
    raise TypeError(f"cannot pickle {what}: a pointer into this process's memory means nothing in another "
                    "process; send the data instead (bytes(ffi.buffer(p, size)), a numpy array, or a struct "
                    "instance made with the module's struct type)")


def _record_cdata(key: str, module: Any, namespace: dict[str, Any], name: str, struct: type, value: Any) -> Any:
    """A cffi cdata of a record the fast binder serves (``mod.__ffi__.new("Vec2 *")``, what a cffi-served
    function returned) pickles as that type's instances do; None if ``value`` is no such cdata."""
    ffi: Any = namespace.get("__ffi__")
    if type(ffi).__name__ != "FFI" and getattr(ffi, "_made", None) is None:
        return None  # this module's cffi binding was never loaded: the cdata is another's
    try:
        ctype = ffi.typeof(value)
    except (TypeError, AttributeError):
        return None
    kind = "union" if ctype.cname.startswith("union") else "struct"
    if ctype.cname not in (f"{kind} {struct.__name__}", f"{kind} {struct.__name__} *"):
        return None
    pointer = ctype.kind == "pointer"
    if pointer and type(value).__name__ not in _OWNING:
        fields = getattr(struct, "__native_fields__", ())
        copy = f"{module.__name__}.{name}(" + ", ".join(f"p.{f}" for f in fields) + ")"
        raise TypeError(f"cannot pickle {value!r}: it points into this process's memory (a struct the "
                        f"library returned by pointer); send a copy instead, {copy}, or its fields as a dict")
    _refuse_pointer_field(struct.__name__, _pointer_field(ffi, ctype.item if pointer else ctype))
    data = bytes(ffi.buffer(value if pointer else ffi.addressof(value)))
    return (struct_value, (reference_for(key, module), name, data))


# The cdata types that own their memory (ffi.new, ffi.gc): a struct instance made by mod.Point(...).
_OWNING = frozenset({"__CDataOwn", "__CDataOwnGC", "__CDataGCP"})


def _refuse_pointer_field(name: str, field: Optional[str]) -> None:
    """A record holding a pointer is not pickled: its bytes would carry an address into this process."""
    if field is not None:
        raise TypeError(f"cannot pickle a struct {name}: its field {field!r} is a pointer, which means nothing "
                        "in another process; send the data it points to instead")


def _pointer_field(ffi: Any, ctype: Any) -> Optional[str]:
    """The first field (nested structs, unions and arrays included) that holds a pointer, or None."""
    for field_name, field in ctype.fields or ():
        inner = field.type
        while inner.kind == "array":
            inner = inner.item
        if inner.kind == "pointer" or inner.kind == "function":
            return str(field_name)
        if inner.kind in ("struct", "union"):
            found = _pointer_field(ffi, inner)
            if found is not None:
                return f"{field_name}.{found}"
    return None


def reference_for(key: str, module: Any) -> Reference:
    """The reference to the entry ``key`` that ``module`` of this process was bound from."""
    reference = _REFERENCES.get((key, module.__name__))
    if reference is None:
        reference = _REFERENCES[key, module.__name__] = _make_reference(key, module)
    return reference


def bound_from(key: str) -> list[tuple[Any, dict[str, Any]]]:
    """(module, namespace) of every binding of entry ``key`` in this process, the latest last."""
    return [found for (bound_key, _), found in list(BOUND.items()) if bound_key == key]


def _make_reference(key: str, module: Any) -> Reference:
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
    # Carried only while the files still hold what built this entry: their content is checked against the
    # digests in the freshness record (stats alone may be "racily clean" just after an edit).
    if isinstance(loader, NativeLoader) and fresh_key(root, fresh_identity(loader.source, loader.definition),
                                                      loader.driver.token(), verify=True) == key:
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

        from ._build_settings import config_of  # pickling a module is rare: it pays for this import

        data = loader.driver.load().read_source(Path(source))
        dependencies: list[tuple[str, bytes]] = []
        for relative in manifest.get("dependencies", []):
            if os.path.isabs(relative) or relative.startswith(".."):
                continue  # system headers and the like: the receiving machine has its own
            relative = str(config_of(Path(relative)))  # a module's table in nativeimport.toml: the file it is in
            if relative in (name for name, _ in dependencies) or not os.path.exists(os.path.join(folder, relative)):
                continue
            with open(os.path.join(folder, relative), "rb") as stream:
                dependencies.append((relative, stream.read()))
    except OSError:
        return None, ()
    return data, tuple(dependencies)


# -- what the pickles call, in the receiving process ------------------------------------------------


def module_for(key: str, name: str, driver: str, binder: str, source_name: str, source: Optional[bytes],
               dependencies: tuple[tuple[str, bytes], ...]) -> Any:
    """The module bound from entry ``key``, found or rebuilt here; a stand-in (never an exception) otherwise."""
    enable()  # what this process binds pickles by content too (sent back, or on)
    from ._resolve import Unavailable, resolve_carried

    carried = (key, name, driver, binder, source_name, source, dependencies)
    module, reason = resolve_carried(carried)
    return module if module is not None else Unavailable(carried, reason, module_for, attribute)


def same(value: Any) -> Any:
    """A module pickles as its reference, which unpickles to the module itself."""
    return value


def attribute(module: Any, name: str) -> Any:
    """A function, struct type or enum class of a module :func:`module_for` gave."""
    try:
        return getattr(module, name)
    except AttributeError:
        from ._resolve import Missing

        key = str(getattr(module, "__native_key__", ""))
        return Missing(f"{module.__name__}.{name}", module.__name__, key,
                       f"{module.__name__} (entry {key}) has no attribute {name!r}", (attribute, (module, name)))


def released(module: Any, name: str) -> Any:
    """The variant of a function that releases the GIL (``nativeimport.release_gil``)."""
    variants = getattr(module, "__native_release_gil__", None)
    if isinstance(variants, dict) and name in variants:
        return variants[name]
    return attribute(module, name)


def enum_member(module: Any, enum_name: str, value: int) -> Any:
    """An enum member; its plain value when the module is not available here (an IntEnum is an int)."""
    try:
        return getattr(module, enum_name)(value)
    except Exception:
        return value


def struct_value(module: Any, name: str, data: bytes) -> Any:
    """A struct instance made from the sender's bytes; a stand-in when its module is not available here."""
    from ._resolve import Missing

    struct = attribute(module, name)
    if isinstance(struct, Missing):
        return Missing(f"a {name} instance", struct.module, struct.key, struct.reason,
                       (struct_value, (module, name, data)))
    size = struct.__native_size__
    if size != len(data):
        return Missing(f"a {name} instance", module.__name__, str(module.__native_key__),
                       f"struct {name} is {size} bytes here and {len(data)} where it was pickled (another build?)",
                       (struct_value, (module, name, data)))
    made = struct()
    if hasattr(struct, "_ffi"):  # the cffi binder's
        struct._ffi.memmove(made, data, size)
    else:  # the fast binder's type: its bytes are its buffer
        memoryview(made).cast("B")[:] = data
    return made


def reduce_record(value: Any, borrowed: bool, pointer_field: Optional[str] = None) -> Any:
    """What an instance of a fast binder's struct type pickles as: its bytes, as the cffi binder's instances
    (so either binder's process unpickles it). ``borrowed``: a view of memory a function returned;
    ``pointer_field``: the first field holding a pointer, which makes it refused as the cffi binder's are."""
    kind = type(value)
    for (key, _), (module, namespace) in list(BOUND.items()):
        for name, struct in namespace.items():
            if struct is not kind:
                continue
            if borrowed:
                copy = f"{module.__name__}.{name}(" + ", ".join(f"p.{f}" for f in kind.__native_fields__) + ")"
                raise TypeError(f"cannot pickle {value!r}: it points into this process's memory (a struct the "
                                f"library returned by pointer); send a copy instead, {copy} or copy.copy(p), "
                                "or its fields as a dict")
            _refuse_pointer_field(kind.__name__, pointer_field)
            return (struct_value, (reference_for(key, module), name, bytes(memoryview(value))))
    raise TypeError(f"cannot pickle {value!r}: its type belongs to no module nativeimport bound in this process")
