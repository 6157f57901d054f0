"""What the generated cffi bindings call at run time.

Kept apart from :mod:`nativeimport._bind_cffi` (which writes the bindings and
imports cffi's code generator) so a cache hit imports only this small module.
It must run on every interpreter cffi runs on: no CPython-only tricks.
"""

from __future__ import annotations

import os
import sys

from ._entry import BINDING_FILE, LIBRARY_FILE
from ._fast_runtime import int_enum  # the bindings call it here (_ni_rt.int_enum); the fast binder's too
from ._stored import check_elf, exec_stored

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "BufferSpec",
    "StructType",
    "as_buffer",
    "as_bytes",
    "from_proxy",
    "handle",
    "int_enum",
    "load_binding",
    "retry",
    "struct_pointer",
    "struct_value",
    "to_proxy",
    "variadic",
]

# Libraries stay loaded for the life of the process, as CPython's extension modules do: after a
# reload, functions, pointers and strings obtained from the old version must not dangle.
_NEVER_UNLOADED: list[Any] = []


_SIGNED = frozenset("bhilqn")
_UNSIGNED = frozenset("BHILQN")
_FLOATS = frozenset("efd")
_KIND_NAMES = {"int": "signed integers", "uint": "unsigned integers", "float": "floats", "bool": "bools"}
_FOREIGN_ORDER = ">!" if sys.byteorder == "little" else "<"


class BufferSpec:
    """What a pointer parameter accepts: its cffi array type and, unless any buffer will do, the item kind."""

    __slots__ = ("array", "itemsize", "kind", "what", "writable")

    def __init__(self, ffi: Any, cdecl: str, kind: str, itemsize: int, writable: bool, what: str) -> None:
        # ``ffi`` is unused, but bindings already in caches pass it: the signature stays.
        self.array = cdecl + "[]"
        self.kind = kind  # "int", "uint", "float", "bool" or "" for any buffer
        self.itemsize = itemsize
        self.writable = writable
        self.what = what  # e.g. "sum() argument 'xs' (const double *)"


def _item_kind(fmt: str) -> str:
    code = fmt.lstrip("@=<>!")
    if fmt[:1] in _FOREIGN_ORDER or len(code) != 1:
        return "?" + fmt
    if code in _SIGNED:
        return "int"
    if code in _UNSIGNED:
        return "uint"
    if code in _FLOATS:
        return "float"
    if code == "?":
        return "bool"
    return "?" + fmt


def as_buffer(ffi: Any, value: Any, spec: BufferSpec) -> Any:
    """A pointer parameter's argument: a buffer taken without copying, cdata of the pointer type, or None."""
    if value is None:
        return ffi.NULL
    if isinstance(value, ffi.CData):
        return value  # cffi itself checks the cdata's type
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"{spec.what}: expected a buffer (array.array, bytearray, numpy array, ...), "
                        f"not {type(value).__name__}") from None
    with view:
        if spec.kind:
            kind = _item_kind(view.format)
            if kind != spec.kind or view.itemsize != spec.itemsize:
                held = f"{view.itemsize}-byte {_KIND_NAMES.get(kind, 'items of an unknown kind')}"
                wanted = f"{spec.itemsize}-byte {_KIND_NAMES[spec.kind]}"
                raise TypeError(f"{spec.what}: the buffer holds {held} (format {view.format!r}), not {wanted}")
        if spec.writable and view.readonly:
            raise TypeError(f"{spec.what}: the function writes through this pointer; pass a writable buffer, "
                            f"not a read-only {type(value).__name__}")
        if not view.c_contiguous:
            raise ValueError(f"{spec.what}: the buffer must be C-contiguous")
    return ffi.from_buffer(spec.array, value, require_writable=spec.writable)


def as_bytes(ffi: Any, value: Any, spec: BufferSpec) -> Any:
    """A read-only byte pointer's argument (``const char *``, ``const void *``, ``const uint8_t *``).

    bytes, and any other bytes-like object, pass as they are (embedded NULs included, no copy);
    a str is encoded as UTF-8 and NUL-terminated; cdata and None (NULL) pass too.
    """
    if type(value) is bytes:  # cffi passes it without copying, NUL-terminated
        return value
    if isinstance(value, str):
        if "\0" in value:  # C would see it cut short: a str is text, not binary data
            raise ValueError(f"{spec.what}: embedded null character in str (pass bytes for binary data)")
        return value.encode("utf-8")
    if value is None:
        return ffi.NULL
    if isinstance(value, ffi.CData):
        return value  # cffi itself checks the cdata's type
    try:
        view = memoryview(value)
    except TypeError:
        raise TypeError(f"{spec.what}: expected str or a bytes-like object (bytes, bytearray, memoryview, "
                        f"array.array, numpy array, ...), not {type(value).__name__}") from None
    with view:
        if not view.c_contiguous:
            raise ValueError(f"{spec.what}: the buffer must be C-contiguous")
    return ffi.from_buffer(spec.array, value)


def struct_value(ffi: Any, value: Any, struct: StructType, what: str) -> Any:
    """A struct passed by value: an instance (by pointer or by value), a dict or a sequence of fields."""
    if isinstance(value, ffi.CData):
        ctype = ffi.typeof(value)
        if ctype is struct.pointer_type:
            return value[0]
        if ctype is struct.value_type:
            return value
        raise TypeError(f"{what}: expected {struct.__name__}, not <cdata {ffi.getctype(ctype)!r}>")
    if isinstance(value, dict):
        return struct(**value)[0]
    if isinstance(value, (list, tuple)):
        return struct(*value)[0]
    native = _native_record(ffi, value, struct, False)
    if native is not None:
        return native[0]
    raise TypeError(f"{what}: expected {struct.__name__}, not {type(value).__name__}")


def struct_pointer(ffi: Any, value: Any, struct: StructType, what: str) -> Any:
    """A struct passed by pointer: an instance (writes show in its fields), or None."""
    if value is None:
        return ffi.NULL
    if isinstance(value, ffi.CData):
        ctype = ffi.typeof(value)
        if ctype is struct.value_type:
            return ffi.addressof(value)
        if ctype is struct.pointer_type or (ctype.kind == "array" and ctype.item is struct.value_type):
            return value
        raise TypeError(f"{what}: expected {struct.__name__}, not <cdata {ffi.getctype(ctype)!r}>")
    native = _native_record(ffi, value, struct, True)
    if native is not None:
        return native
    raise TypeError(f"{what}: expected {struct.__name__} (make one with {struct.__name__}(...)), "
                    f"not {type(value).__name__}")


def _native_record(ffi: Any, value: Any, struct: StructType, writable: bool) -> Any:
    """An instance of the fast binder's type for the same record, as a one-item cffi array over its bytes
    (no copy: writes through a pointer show in it); None for anything else."""
    kind = type(value)
    if kind.__name__ != struct.__name__ or getattr(kind, "__native_size__", None) != ffi.sizeof(struct.value_type):
        return None
    return ffi.from_buffer(ffi.getctype(struct.value_type, "[]"), value, require_writable=writable)


class StructType:
    """A C struct (or union) as a callable on the module: ``mod.Point(x=1.0, y=2.0)``.

    Instances are cffi cdata owning their memory, with attribute access to the
    fields; ``isinstance(p, mod.Point)`` works. A function-pointer field given
    to the constructor takes what a function-pointer parameter takes (a native
    function or a Python callable); the instance keeps that callback alive.
    """

    def __init__(self, ffi: Any, name: str, fields: Sequence[str], module: str, doc: str,
                 kind: str = "struct", callbacks: dict[str, Any] | None = None) -> None:
        self._ffi = ffi
        self.__name__ = self.__qualname__ = name
        self.__module__ = module
        self.__doc__ = doc
        self.fields = tuple(fields)
        self.pointer_type = ffi.typeof(f"{kind} {name} *")
        self.value_type = ffi.typeof(f"{kind} {name}")
        self.callbacks = callbacks or {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(self.fields):
            raise TypeError(f"{self.__name__}() takes at most {len(self.fields)} positional arguments "
                            f"({len(args)} given)")
        init = dict(zip(self.fields, args))
        for field, value in kwargs.items():
            if field not in self.fields:
                raise TypeError(f"{self.__name__}() has no field {field!r}; its fields are {', '.join(self.fields)}")
            if field in init:
                raise TypeError(f"{self.__name__}() got field {field!r} twice")
            init[field] = value
        if not self.callbacks:
            return self._ffi.new(self.pointer_type, init)
        from ._cffi_callbacks import with_callbacks

        return with_callbacks(self._ffi, self.pointer_type, init, self.callbacks)

    def __instancecheck__(self, value: Any) -> bool:
        return isinstance(value, self._ffi.CData) and self._ffi.typeof(value) in (self.pointer_type, self.value_type)

    @property
    def __native_size__(self) -> int:
        """The record's size in bytes (as the fast binder's types say it)."""
        return int(self._ffi.sizeof(self.value_type))

    def __repr__(self) -> str:
        return f"<struct {self.__name__} ({', '.join(self.fields)}) from {self.__module__}>"


def to_proxy(ffi: Any, value: Any, proxy: Any) -> Any:
    """A struct or union value copied into the stand-in struct libffi passes the same way."""
    made = ffi.new(proxy)
    ffi.memmove(made, ffi.addressof(value), ffi.sizeof(value))
    return made[0]


def from_proxy(ffi: Any, value: Any, struct: StructType) -> Any:
    """A stand-in struct's bytes, returned by a function, as an instance of the record it stands for."""
    made = ffi.new(struct.pointer_type)
    ffi.memmove(made, ffi.addressof(value), ffi.sizeof(struct.value_type))
    return made


def handle(ffi: Any, value: Any, ctype: Any, what: str) -> Any:
    """A pointer to an opaque struct: what some function returned (of any module binding that type), or None."""
    if value is None:
        return ffi.NULL
    if isinstance(value, ffi.CData):
        held = ffi.typeof(value)
        if held is ctype:
            return value
        if held.kind == "pointer" and held.cname == ctype.cname:  # the same C type, from another module
            return ffi.cast(ctype, value)
        shown = f"<cdata {held.cname!r}>"
    else:
        shown = type(value).__name__
    raise TypeError(f"{what}: expected a {ctype.cname!r} handle (as a function returning one gives), not {shown}")


def variadic(ffi: Any, values: Sequence[Any], function: str, first: int) -> list[Any]:
    """The extra arguments of a variadic call, by C's default argument promotions."""
    out = []
    for position, value in enumerate(values, first + 1):
        if isinstance(value, ffi.CData):
            out.append(value)
        elif value is None:
            out.append(ffi.NULL)
        elif isinstance(value, int):
            for cdecl, low, high in _PROMOTED_INTS:
                if low <= value <= high:
                    out.append(ffi.cast(cdecl, value))
                    break
            else:
                raise OverflowError(f"{function}() argument {position}: {value} does not fit any C integer type")
        elif isinstance(value, float):
            out.append(ffi.cast("double", value))
        elif isinstance(value, (str, bytes)):
            text = value.encode("utf-8") if isinstance(value, str) else value
            out.append(ffi.new("char[]", text))  # NUL-terminated, alive for the call
        else:
            raise TypeError(f"{function}() argument {position} (variadic): cannot pass {type(value).__name__} "
                            f"through '...'; give a C type, e.g. mod.__ffi__.cast('long', x) or "
                            f"mod.__ffi__.new('double[]', values)")
    return out


_PROMOTED_INTS = (("int", -(2**31), 2**31 - 1), ("long long", -(2**63), 2**63 - 1),
                  ("unsigned long long", 0, 2**64 - 1))


def retry(ffi: Any, exc: Exception, native: Any, function: str,
          params: Sequence[tuple[Any, ...] | None], args: Sequence[Any]) -> Any:
    """After cffi refused an argument: convert ``__index__`` objects as Python's int() would and call
    again, or raise the error again naming the function and the parameter at fault.

    ``params`` holds, per parameter cffi converts itself, (name, cffi type, type as the source
    spells it, is an integer[, is a handle]); None for one already converted. Only the error path
    pays for this.
    """
    import operator

    converted = list(args)
    for index, (spec, value) in enumerate(zip(params, args)):
        if spec is not None and spec[3] and not isinstance(value, int) and hasattr(type(value), "__index__"):
            converted[index] = operator.index(value)
        elif spec is not None and len(spec) > 4 and spec[4]:  # a handle: from another module, or an error
            converted[index] = handle(ffi, value, ffi.typeof(spec[1]), f"{function}() argument {spec[0]!r} "
                                                                          f"({spec[2]})")
    if any(new is not old for new, old in zip(converted, args)):
        try:
            return native(*converted)
        except (TypeError, OverflowError) as again:
            exc = again
    for spec, value in zip(params, converted):
        if spec is None:
            continue
        name, cdecl, spelled = spec[:3]
        if value is None:  # ffi.new takes None as "zero", a call does not
            raise TypeError(f"{function}() argument {name!r} ({spelled}): a number is required, not NoneType")
        try:
            ffi.new(cdecl + " *", value)
        except (TypeError, OverflowError) as culprit:
            raise type(culprit)(f"{function}() argument {name!r} ({spelled}): {culprit}") from None
    raise exc


def load_binding(entry: str, module_name: str) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """Import an entry's binding module and bind its library: (namespace, exports left out and why)."""
    check_elf(os.path.join(entry, LIBRARY_FILE))
    binding = exec_stored(entry, BINDING_FILE)
    namespace: dict[str, Any] = binding.bind(os.path.join(entry, LIBRARY_FILE), module_name)
    _NEVER_UNLOADED.append(namespace["__lib__"])
    return namespace, binding.SKIPPED
