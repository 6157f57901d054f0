"""A language-neutral description of what a native library exports.

Drivers produce an :class:`Interface` (from debug info, from the source, or
directly, as a compiler that knows its own signatures does); binders consume
it. It renders the cffi ``cdef`` text, the C signatures shown by ``help()``
and ``.pyi`` stubs, and round-trips through JSON so a cache entry can keep it.
"""

from __future__ import annotations

import json
import keyword
import math
from collections.abc import Iterable, Mapping

from ._frozen import frozen, replace

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a new module's build ~2 ms
    from typing import Any, Optional, Union

__all__ = [
    "INTEGER_TYPES",
    "SCHEMA_VERSION",
    "CType",
    "Constant",
    "Enum",
    "Field",
    "Function",
    "Interface",
    "Param",
    "Skipped",
    "Struct",
    "python_name",
    "replace",
    "takes_bytes",
]

SCHEMA_VERSION = 1

#: Canonical integer names and their (size in bytes, signed).
INTEGER_TYPES: Mapping[str, tuple[int, bool]] = {
    "int8_t": (1, True),
    "uint8_t": (1, False),
    "int16_t": (2, True),
    "uint16_t": (2, False),
    "int32_t": (4, True),
    "uint32_t": (4, False),
    "int64_t": (8, True),
    "uint64_t": (8, False),
}
FLOAT_TYPES: Mapping[str, int] = {"float": 4, "double": 8}

KINDS = ("void", "int", "float", "bool", "char", "pointer", "struct", "union", "enum", "function")

#: Type names of C's variable argument lists: a function taking one cannot be called from Python.
VA_LIST_NAMES = frozenset({"va_list", "__gnuc_va_list", "__builtin_va_list", "__va_list_tag", "__va_list"})


@frozen
class CType:
    """One C type, reduced to what a binding needs.

    ``kind`` is one of ``void int float bool char pointer struct union enum
    function``. ``name`` is canonical: ``int32_t`` or ``double`` for scalars
    (so the ABI is explicit whatever the source called it), the tag for
    structs, unions and enums.
    ``spelling`` is how the source wrote it (``size_t``, ``Point``), for
    ``help()``. ``char`` only appears as the pointee of a string pointer; a
    plain ``char`` value is an 8-bit integer. An enum keeps its integer
    representation in ``pointee``. ``length`` > 0 makes a fixed-size array of
    this type (struct fields only), -1 a flexible array member (``[]``);
    ``dims`` are an array's further dimensions (``m[3][4]``: length 3, dims (4,)).
    A ``function`` (only ever the pointee of a function pointer) keeps its
    result in ``pointee`` and its parameter types in ``params``.
    """

    kind: str
    name: str = ""
    spelling: str = ""
    pointee: Optional[CType] = None
    const: bool = False
    length: int = 0
    dims: tuple[int, ...] = ()
    params: tuple[CType, ...] = ()
    variadic: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown type kind {self.kind!r}")

    # -- constructors -------------------------------------------------
    @staticmethod
    def void() -> CType:
        return CType("void", "void", "void")

    @staticmethod
    def integer(name: str, spelling: str = "") -> CType:
        if name not in INTEGER_TYPES:
            raise ValueError(f"unknown integer type {name!r}")
        return CType("int", name, spelling or name)

    @staticmethod
    def floating(name: str, spelling: str = "") -> CType:
        if name not in FLOAT_TYPES:
            raise ValueError(f"unknown floating type {name!r}")
        return CType("float", name, spelling or name)

    @staticmethod
    def boolean(spelling: str = "bool") -> CType:
        return CType("bool", "_Bool", spelling)

    @staticmethod
    def char(const: bool = False) -> CType:
        return CType("char", "char", "char", const=const)

    @staticmethod
    def pointer(pointee: CType, const: bool = False, spelling: str = "") -> CType:
        return CType("pointer", "", spelling, pointee=pointee, const=const)

    @staticmethod
    def struct(name: str, spelling: str = "") -> CType:
        return CType("struct", name, spelling or name)

    @staticmethod
    def union(name: str, spelling: str = "") -> CType:
        return CType("union", name, spelling or name)

    @staticmethod
    def function(result: CType, params: tuple[CType, ...], variadic: bool = False) -> CType:
        return CType("function", "", "", pointee=result, params=params, variadic=variadic)

    @staticmethod
    def enum(name: str, representation: CType, spelling: str = "") -> CType:
        return CType("enum", name, spelling or name, pointee=representation)

    # -- questions ----------------------------------------------------
    @property
    def size(self) -> int:
        """Size in bytes of a scalar (0 for void, structs and unknowns)."""
        if self.kind == "int":
            return INTEGER_TYPES[self.name][0]
        if self.kind == "float":
            return FLOAT_TYPES[self.name]
        if self.kind in ("bool", "char"):
            return 1
        if self.kind == "enum" and self.pointee is not None:
            return self.pointee.size
        if self.kind == "pointer":
            return 8
        return 0

    @property
    def is_scalar(self) -> bool:
        return self.kind in ("int", "float", "bool", "enum")

    @property
    def is_record(self) -> bool:
        """A struct or a union."""
        return self.kind in ("struct", "union")

    @property
    def is_function_pointer(self) -> bool:
        return self.kind == "pointer" and self.pointee is not None and self.pointee.kind == "function"

    @property
    def is_string(self) -> bool:
        """A ``const char *``: taken as str/bytes, returned as str."""
        return self.kind == "pointer" and self.pointee is not None and self.pointee.kind == "char" and self.const

    def cdecl(self, declarator: str = "") -> str:
        """The declaration as cffi should read it, e.g. ``const double *xs``."""
        return self._declare(declarator, canonical=True)

    def spell(self, declarator: str = "") -> str:
        """The declaration as the source spells it, for ``help()``."""
        return self._declare(declarator, canonical=False)

    def _declare(self, declarator: str, canonical: bool) -> str:
        if self.length:  # the array's brackets bind to the declarator, before any pointer or function
            first = "[]" if self.length < 0 else f"[{self.length}]"
            declarator += first + "".join(f"[{d}]" for d in self.dims)
            return replace(self, length=0, dims=())._declare(declarator, canonical)
        if self.kind == "pointer":
            assert self.pointee is not None
            if self.spelling and not canonical:
                return f"{self.spelling} {declarator}".rstrip()
            inner = self.pointee
            if self.const and inner.kind == "pointer":
                # The pointee is itself a pointer: the const binds to it (T *const *p).
                return inner._declare(f"const *{declarator}", canonical)
            if inner.kind == "function":
                return inner._declare(f"(*{declarator})", canonical)
            base = inner._declare(f"*{declarator}", canonical)
            return f"const {base}" if self.const else base
        if self.kind == "function":
            assert self.pointee is not None
            params = [p._declare("", canonical) for p in self.params] + (["..."] if self.variadic else [])
            return self.pointee._declare(f"{declarator}({', '.join(params) or 'void'})", canonical)
        if self.is_record:
            base = f"{self.kind} {self.name}" if canonical else self.spelling or self.name
        elif self.kind == "enum" and canonical:
            assert self.pointee is not None
            base = self.pointee.name
        else:
            base = self.name if canonical else self.spelling or self.name
        return f"{base} {declarator}".rstrip()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.name:
            data["name"] = self.name
        if self.spelling and self.spelling != self.name:
            data["spelling"] = self.spelling
        if self.pointee is not None:
            data["pointee"] = self.pointee.to_json()
        if self.const:
            data["const"] = True
        if self.length:
            data["length"] = self.length
        if self.dims:
            data["dims"] = list(self.dims)
        if self.params:
            data["params"] = [p.to_json() for p in self.params]
        if self.variadic:
            data["variadic"] = True
        return data

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> CType:
        pointee = data.get("pointee")
        name = data.get("name", "")
        return CType(
            kind=data["kind"],
            name=name,
            spelling=data.get("spelling", name),
            pointee=CType.from_json(pointee) if pointee else None,
            const=bool(data.get("const", False)),
            length=int(data.get("length", 0)),
            dims=tuple(int(d) for d in data.get("dims", ())),
            params=tuple(CType.from_json(p) for p in data.get("params", ())),
            variadic=bool(data.get("variadic", False)),
        )


@frozen
class Param:
    """One parameter of a function."""

    name: str
    type: CType


@frozen
class Function:
    """One exported function. ``variadic``: it ends with ``...``."""

    name: str
    result: CType
    params: tuple[Param, ...] = ()
    doc: str = ""
    variadic: bool = False

    def c_signature(self) -> str:
        """The C prototype as the source spells its types."""
        params = [p.type.spell(p.name) for p in self.params] + (["..."] if self.variadic else [])
        return self.result.spell(f"{self.name}({', '.join(params) or 'void'})")

    def cdef(self) -> str:
        # The parameters bind to the name, inside the result's declarator: R (*f(int))(double) returns a callback.
        params = [p.type.cdecl(p.name) for p in self.params] + (["..."] if self.variadic else [])
        return self.result.cdecl(f"{self.name}({', '.join(params) or 'void'})") + ";"


@frozen
class Field:
    """One member of a struct or union.

    ``offset`` is its byte offset as the debug info records it (-1: unknown);
    a bit-field has ``bits`` > 0 and its position from the start of the record
    in ``bit_offset``. An anonymous struct or union member has no name.
    """

    name: str
    type: CType
    offset: int = -1
    bits: int = 0
    bit_offset: int = 0

    def cdecl(self, records: Mapping[str, Struct]) -> str:
        """The member as cffi reads it; an anonymous record's body is written in place."""
        if not self.name and self.type.is_record and self.type.name in records:
            return records[self.type.name].body(records) + ";"
        width = f" : {self.bits}" if self.bits else ""
        return f"{self.type.cdecl(self.name)}{width};"


@frozen
class Struct:
    """A struct (or, with ``kind="union"``, a union) type.

    ``fields is None`` for an opaque one: declared only, or whose contents
    cannot be described (``opaque`` says why); pointers to it are handles.
    ``packed``: laid out with no padding (``__attribute__((packed))``).
    ``anonymous``: an unnamed member of another record, its name made up
    (``_ni_anon_...``), written in place inside that record's declaration.
    ``aliases``: typedef names the source gives it (``typedef struct point_s Point``).
    """

    name: str
    fields: Optional[tuple[Field, ...]]
    size: int = 0
    doc: str = ""
    kind: str = "struct"
    packed: bool = False
    anonymous: bool = False
    opaque: str = ""
    aliases: tuple[str, ...] = ()

    def cdef(self, records: Optional[Mapping[str, Struct]] = None) -> str:
        if self.fields is None:
            return f"{self.kind} {self.name};"
        return self.body(records or {}) + ";"

    def body(self, records: Mapping[str, Struct]) -> str:
        """``struct name { ... }``, or ``union { ... }`` for an anonymous member."""
        head = self.kind if self.anonymous else f"{self.kind} {self.name}"
        return f"{head} {{ " + " ".join(f.cdecl(records) for f in self.fields or ()) + " }"

    def python_fields(self, records: Mapping[str, Struct]) -> tuple[str, ...]:
        """The names Python sees: an anonymous member's fields belong to this record, as in C."""
        return tuple(f.name for f in _flat_fields(self, records))


@frozen
class Enum:
    """An enumeration. ``name`` is empty for an anonymous enum."""

    name: str
    representation: CType
    members: tuple[tuple[str, int], ...]
    doc: str = ""


@frozen
class Constant:
    """A named constant (a C object-like ``#define``): its value as the compiler computed it."""

    name: str
    value: Union[int, float, str]

    def literal(self) -> str:
        """The value as Python source (``float('inf')`` where repr() would not parse)."""
        if isinstance(self.value, float) and not math.isfinite(self.value):
            return f"float({str(self.value)!r})"
        return repr(self.value)


@frozen
class Skipped:
    """An export that was left out, and why."""

    name: str
    reason: str


@frozen
class Interface:
    """Everything a library exports that can be bound faithfully."""

    functions: tuple[Function, ...] = ()
    structs: tuple[Struct, ...] = ()
    enums: tuple[Enum, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    constants: tuple[Constant, ...] = ()

    def cdef(self) -> str:
        """Declarations for ``cffi.FFI.cdef``; enums are declared by their integer type.

        Packed records are left to :meth:`cdef_packed`, which cffi reads with ``packed=True``.
        """
        records = self.records()
        named = [s for s in self.structs if not s.anonymous]
        lines = [f"{s.kind} {s.name};" for s in named]  # declared first: fields may point to any of them
        lines += [s.cdef(records) for s in named if s.fields is not None and not s.packed]
        lines += [f.cdef() for f in self.functions]
        return "\n".join(lines) + "\n"

    def cdef_packed(self) -> str:
        """The packed records' declarations (empty if none), for ``cdef(..., packed=True)``."""
        records = self.records()
        return "".join(s.cdef(records) + "\n" for s in self.structs
                       if s.fields is not None and s.packed and not s.anonymous)

    def records(self) -> dict[str, Struct]:
        """Every struct and union by name."""
        return {s.name: s for s in self.structs}

    def stub(self) -> str:
        """A ``.pyi`` stub of the Python-facing module."""
        lines = [
            "# Generated by nativeimport.",
            "from __future__ import annotations",
            "import enum",
            "from typing import Any, Callable, Final",
            "",
            "Buffer = Any  # any object with the buffer protocol (array.array, bytearray, numpy array, ...)",
            "",
        ]
        for constant in self.constants:
            if isinstance(constant.value, float) and not math.isfinite(constant.value):
                lines.append(f"{python_name(constant.name)}: Final[float]")
            else:
                lines.append(f"{python_name(constant.name)}: Final = {constant.literal()}")
        if self.constants:
            lines.append("")
        for enum in self.enums:
            if enum.name:
                lines.append(f"class {enum.name}(enum.IntEnum):")
                lines += [f"    {m} = {v}" for m, v in enum.members] or ["    ..."]
                lines.append("")
            lines += [f"{m}: int" for m, _ in enum.members]
        records = self.records()
        for struct in self.structs:
            if struct.fields is None and not struct.anonymous:
                lines += [f"class {struct.name}:  # an opaque handle: what a function returns, passed back as is",
                          "    ...", ""]
            if struct.fields is None or struct.anonymous:
                continue
            lines.append(f"class {struct.name}:")
            members = _flat_fields(struct, records)
            fields = [f"{python_name(f.name)}: {python_annotation(f.type, True)} = ..." for f in members]
            lines.append(f"    def __init__(self, {', '.join(fields)}) -> None: ...")
            lines += [f"    {python_name(f.name)}: {python_annotation(f.type, False)}" for f in members]
            lines.append("")
            lines += [f"{python_name(alias)} = {struct.name}" for alias in struct.aliases]
        for fn in self.functions:
            params = ", ".join(f"{python_name(p.name)}: {python_annotation(p.type, True)}" for p in fn.params)
            if fn.variadic:
                params += ", *args: Any" if params else "*args: Any"
            doc = fn.c_signature() + (f"\n\n{fn.doc}" if fn.doc else "")
            lines.append(f"def {fn.name}({params}) -> {python_annotation(fn.result, False)}:")
            lines.append(f"    {json.dumps(doc)}")
            lines.append("")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "functions": [
                {
                    "name": f.name,
                    "result": f.result.to_json(),
                    "params": [{"name": p.name, "type": p.type.to_json()} for p in f.params],
                    "doc": f.doc,
                    **({"variadic": True} if f.variadic else {}),
                }
                for f in self.functions
            ],
            "structs": [
                {
                    "name": s.name,
                    "fields": None if s.fields is None else [_field_json(f) for f in s.fields],
                    "size": s.size,
                    "doc": s.doc,
                    **_record_json(s),
                }
                for s in self.structs
            ],
            "enums": [
                {
                    "name": e.name,
                    "representation": e.representation.to_json(),
                    "members": [list(m) for m in e.members],
                    "doc": e.doc,
                }
                for e in self.enums
            ],
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
            "constants": [{"name": c.name, "value": c.value} for c in self.constants],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Interface:
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"interface schema {data.get('schema')!r}, expected {SCHEMA_VERSION}")
        return Interface(
            functions=tuple(
                Function(
                    name=f["name"],
                    result=CType.from_json(f["result"]),
                    params=tuple(Param(p["name"], CType.from_json(p["type"])) for p in f["params"]),
                    doc=f.get("doc", ""),
                    variadic=bool(f.get("variadic", False)),
                )
                for f in data["functions"]
            ),
            structs=tuple(
                Struct(
                    name=s["name"],
                    fields=None if s["fields"] is None else tuple(_field_from_json(f) for f in s["fields"]),
                    size=s.get("size", 0),
                    doc=s.get("doc", ""),
                    kind=s.get("kind", "struct"),
                    packed=bool(s.get("packed", False)),
                    anonymous=bool(s.get("anonymous", False)),
                    opaque=s.get("opaque", ""),
                    aliases=tuple(s.get("aliases", ())),
                )
                for s in data["structs"]
            ),
            enums=tuple(
                Enum(
                    name=e["name"],
                    representation=CType.from_json(e["representation"]),
                    members=tuple((str(m), int(v)) for m, v in e["members"]),
                    doc=e.get("doc", ""),
                )
                for e in data["enums"]
            ),
            skipped=tuple(Skipped(s["name"], s["reason"]) for s in data.get("skipped", [])),
            constants=tuple(Constant(c["name"], c["value"]) for c in data.get("constants", [])),
        )

    def restricted_to(self, exported: Iterable[str]) -> Interface:
        """Keep only the functions whose names are in ``exported``."""
        keep = set(exported)
        return replace(self, functions=tuple(f for f in self.functions if f.name in keep))


def _field_json(field: Field) -> dict[str, Any]:
    data: dict[str, Any] = {"name": field.name, "type": field.type.to_json()}
    if field.offset >= 0:
        data["offset"] = field.offset
    if field.bits:
        data["bits"], data["bit_offset"] = field.bits, field.bit_offset
    return data


def _field_from_json(data: Mapping[str, Any]) -> Field:
    return Field(data["name"], CType.from_json(data["type"]), int(data.get("offset", -1)), int(data.get("bits", 0)),
                 int(data.get("bit_offset", 0)))


def _record_json(struct: Struct) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if struct.kind != "struct":
        data["kind"] = struct.kind
    if struct.packed:
        data["packed"] = True
    if struct.anonymous:
        data["anonymous"] = True
    if struct.opaque:
        data["opaque"] = struct.opaque
    if struct.aliases:
        data["aliases"] = list(struct.aliases)
    return data


def _flat_fields(struct: Struct, records: Mapping[str, Struct]) -> list[Field]:
    """A record's fields as Python sees them, an anonymous member's own fields in its place."""
    out: list[Field] = []
    for field in struct.fields or ():
        inner = records.get(field.type.name) if not field.name and field.type.is_record else None
        out += _flat_fields(inner, records) if inner is not None else [field] if field.name else []
    return out


def python_name(name: str) -> str:
    """A C identifier made safe as a Python identifier (``from`` -> ``from_``)."""
    return f"{name}_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def takes_bytes(ctype: CType) -> bool:
    """A read-only pointer to bytes (``const char *``, ``const void *``, ``const uint8_t *``): both binders
    give it a str as UTF-8, NUL-terminated, or any bytes-like object as it is, embedded NULs included."""
    pointee = ctype.pointee
    if ctype.kind != "pointer" or not ctype.const or pointee is None:
        return False
    return pointee.kind in ("char", "void") or (pointee.kind == "int" and pointee.size == 1)


def python_annotation(ctype: CType, accepting: bool) -> str:
    """The Python type a parameter accepts (``accepting``) or a result/field holds."""
    if ctype.kind == "void":
        return "None"
    if ctype.kind in ("int", "enum"):
        return "int"
    if ctype.kind == "float":
        return "float"
    if ctype.kind == "bool":
        return "bool"
    if ctype.is_record:
        return ctype.name
    if ctype.is_function_pointer:
        return "Callable[..., Any] | None" if accepting else "Any"
    if ctype.is_string:
        return "str | Buffer | None" if accepting else "str | None"
    if ctype.kind == "pointer":
        pointee = ctype.pointee
        if accepting and pointee is not None and (pointee.is_scalar or pointee.kind in ("char", "void")):
            return "str | Buffer | None" if takes_bytes(ctype) else "Buffer | None"
        if pointee is not None and pointee.is_record:
            return f"{pointee.name} | None"
    return "Any"
