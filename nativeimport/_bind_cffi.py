"""The universal binder: cffi's out-of-line ABI mode, plus generated wrappers.

At build time this writes one Python module into the cache entry: the module
``cffi.recompiler.make_py_source`` produces (an ``ffi`` object that needs
neither pycparser nor a C compiler to load), followed by a ``bind()`` function
that dlopens the library and wraps every export with the binding rules users
see (buffers without copies, strings, structs, named argument errors, help
text). It runs on any interpreter with cffi, so one entry serves them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .errors import InterfaceError
from .interface import CType, Function, Interface, Param, Struct, python_annotation, python_name, replace, takes_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: typing costs a new module's build ~2 ms
    from typing import Any

__all__ = ["generate"]

_ANY_BUFFER = ("void", "char")
# The names the generated module defines at its top level (cffi's part: ffi, _cffi_backend; ours: the rest).
_BINDING_NAMES = frozenset({"ffi", "_cffi_backend", "bind", "SKIPPED"})


def generate(interface: Interface, *, where: str = "") -> str:
    """The source of the binding module for ``interface``."""
    from cffi.recompiler import make_py_source

    ffi: Any = _scalar_declarations(interface)  # most small modules: no parsing, so no pycparser to import
    proxied: set[str] = set()
    if ffi is None:
        ffi, proxied = _parsed_declarations(interface, where)
    return _emitted(make_py_source, ffi) + "\n" + "\n".join(_wrappers(interface, proxied)) + "\n"


def _emitted(make_py_source: Any, ffi: Any) -> str:
    """The out-of-line module cffi writes for ``ffi``: into memory where cffi takes a stream (1.16 and
    later), else through a file (PyPy 3.9's built-in cffi only writes to paths)."""
    from cffi import recompiler

    if hasattr(recompiler, "_is_file_like"):
        import io

        memory = io.StringIO()
        make_py_source(ffi, "_nativeimport_ffi", memory)
        return memory.getvalue()
    import tempfile  # cffi before 1.16 writes to a file only

    with tempfile.TemporaryDirectory(prefix="nativeimport-cffi-") as scratch:
        target = os.path.join(scratch, "_nativeimport_ffi.py")
        make_py_source(ffi, "_nativeimport_ffi", target)
        with open(target, encoding="utf-8") as stream:
            return stream.read()


def _parsed_declarations(interface: Interface, where: str) -> tuple[Any, set[str]]:
    """An ``FFI`` that parsed the interface's declarations (cffi's parser is pycparser: ~20 ms to import),
    and the records passed by value through a stand-in struct."""
    from cffi import FFI, CDefError

    from ._cffi_check import proxy_members

    records = interface.records()
    proxies = {}  # records passed by value through a stand-in struct libffi accepts
    for function in interface.functions:
        for ctype in (function.result, *(p.type for p in function.params)):
            if ctype.is_record and ctype.name in records:
                members = proxy_members(records[ctype.name], records)
                if members:
                    proxies[ctype.name] = members
    declared = replace(interface, functions=tuple(_proxied(f, proxies) for f in interface.functions))
    stand_ins = "".join(f"struct _ni_v_{name} {{ {'; '.join(members)}; }};\n" for name, members in proxies.items())
    ffi = FFI()
    try:
        ffi.cdef(stand_ins + declared.cdef())
        packed = interface.cdef_packed()
        if packed:
            ffi.cdef(packed, packed=True)
    except CDefError as exc:  # a name or type cffi cannot express
        raise InterfaceError(f"{where}: cffi cannot declare the library's exports: {exc}", path=where) from None
    _declare_typedefs(ffi, interface)
    return ffi, set(proxies)


class _Parser:
    """What cffi's recompiler reads of an ``FFI``'s parser: the declarations it made."""

    def __init__(self, declarations: dict[str, tuple[Any, int]]) -> None:
        self._declarations = declarations
        self._included_declarations: set[Any] = set()


class _Declared:
    """What cffi's recompiler reads of an ``FFI`` (``make_py_source``): its parser's declarations,
    no included FFIs, no embedding. Made by :func:`_scalar_declarations` without parsing C."""

    def __init__(self, declarations: dict[str, tuple[Any, int]]) -> None:
        self._parser = _Parser(declarations)
        self._included_ffis: list[Any] = []
        self._embedding = None


def _scalar_declarations(interface: Interface) -> _Declared | None:
    """The declarations cffi's parser makes of ``interface.cdef()`` and the typedefs :func:`_declare_typedefs`
    adds, built from cffi's type model directly; None unless every export takes and returns only
    scalars and pointers to scalars (no record, no function pointer, nothing variadic).

    The same objects as the parser's (``tests/test_binders.py`` compares the generated modules), so the
    binding is the same whichever way it was made; anything else goes through the parser.
    """
    from cffi import model
    from cffi.commontypes import COMMON_TYPES, resolve_common_type

    if interface.structs or any(f.variadic for f in interface.functions):
        return None

    def scalar(ctype: CType) -> Any:
        if ctype.kind == "void":
            return model.void_type
        name = ctype.pointee.name if ctype.kind == "enum" and ctype.pointee is not None else ctype.name
        if ctype.kind not in ("int", "float", "bool", "char", "enum") or ctype.length or \
                name not in model.PrimitiveType.ALL_PRIMITIVE_TYPES:
            return None
        return resolve_common_type(None, name)[0]  # the parser's own (interned) object for the name

    def declared(ctype: CType) -> Any:
        if ctype.kind != "pointer":
            return scalar(ctype)
        if ctype.pointee is None or ctype.pointee.kind == "pointer" or ctype.length:
            return None
        pointee = scalar(ctype.pointee)
        return None if pointee is None else model.PointerType(pointee, model.Q_CONST if ctype.const else 0)

    declarations: dict[str, tuple[Any, int]] = {}
    for function in interface.functions:
        result = declared(function.result)
        params = [declared(p.type) for p in function.params]
        if result is None or any(p is None for p in params):
            return None
        raw = model.RawFunctionType(tuple(params), result, False, None)
        declarations[f"function {function.name}"] = (raw.as_function_pointer(), 0)
    taken = {f.name for f in interface.functions} | {m for e in interface.enums for m, _ in e.members}
    for name, declaration in _typedefs(interface).items():  # as _declare_typedefs would declare them
        if name in taken or name in COMMON_TYPES or name in model.PrimitiveType.ALL_PRIMITIVE_TYPES:
            continue  # a name cffi already knows
        base = declaration[len("typedef "):-len(f" {name};")]
        if base not in model.PrimitiveType.ALL_PRIMITIVE_TYPES:
            return None
        declarations[f"typedef {name}"] = (resolve_common_type(None, base)[0], 0)
    return _Declared(declarations)


def _declare_typedefs(ffi: Any, interface: Interface) -> None:
    """Declare the source's type names (``typedef struct thing thing;``) so ``mod.__ffi__.new("thing **")``
    works as a C programmer would write it. A name cffi already knows, or refuses, is left out."""
    from cffi import CDefError

    taken = {f.name for f in interface.functions} | {m for e in interface.enums for m, _ in e.members}
    for name, declaration in sorted(_typedefs(interface).items()):
        if name in taken:
            continue
        try:
            ffi.typeof(name)
            continue  # already a type: one of cffi's (size_t, FILE) or the struct's own name
        except (CDefError, TypeError, ValueError):
            pass
        try:
            ffi.cdef(declaration)
        except (CDefError, TypeError, ValueError):
            continue


def _typedefs(interface: Interface) -> dict[str, str]:
    """name -> ``typedef ...;`` for every struct or scalar type name the source spelled."""
    found: dict[str, str] = {}

    def visit(ctype: CType | None) -> None:
        while ctype is not None:
            spelled = ctype.spelling
            if spelled.isidentifier():
                if ctype.is_record:
                    found.setdefault(spelled, f"typedef {ctype.kind} {ctype.name} {spelled};")
                elif ctype.kind in ("int", "float") and spelled != ctype.name:
                    found.setdefault(spelled, f"typedef {ctype.name} {spelled};")
                elif ctype.kind == "enum" and ctype.pointee is not None:  # declared by its integer type
                    found.setdefault(spelled, f"typedef {ctype.pointee.name} {spelled};")
            ctype = ctype.pointee

    for function in interface.functions:
        visit(function.result)
        for param in function.params:
            visit(param.type)
    for struct in interface.structs:
        if struct.anonymous:
            continue
        for alias in (struct.name, *struct.aliases):
            found.setdefault(alias, f"typedef {struct.kind} {struct.name} {alias};")
        for field in struct.fields or ():
            visit(field.type)
    return found


def _proxied(function: Function, proxies: dict[str, tuple[str, ...]]) -> Function:
    """``function`` as declared to cffi: each record in ``proxies`` by value replaced by its stand-in."""
    def swap(ctype: CType) -> CType:
        return CType.struct(f"_ni_v_{ctype.name}") if ctype.is_record and ctype.name in proxies else ctype

    params = tuple(Param(p.name, swap(p.type)) for p in function.params)
    return replace(function, result=swap(function.result), params=params)


def _wrappers(interface: Interface, proxied: set[str]) -> Iterator[str]:
    yield "# ---- generated by nativeimport: the Python-facing wrappers ----"
    yield "from nativeimport import _cffi_runtime as _ni_rt"
    if _has_function_pointers(interface):
        yield "from nativeimport import _cffi_callbacks as _ni_cb"
    yield ""
    yield f"SKIPPED = {tuple((s.name, s.reason) for s in interface.skipped)!r}"
    yield ""
    yield ""
    yield "def bind(_ni_path, _ni_module):"
    yield "    _ni_lib = ffi.dlopen(_ni_path)"
    yield "    _ni_ns = {'__ffi__': ffi, '__lib__': _ni_lib}"
    yield from _constants(interface)
    records = interface.records()
    aliases: list[str] = []
    for struct in interface.structs:
        if struct.fields is None or struct.anonymous:
            continue
        fields = struct.python_fields(records)
        doc = _record_doc(struct, records) + (f"\n\n{struct.doc}" if struct.doc else "")
        callbacks = {f.name: _callback_spec(f.type, f"{struct.name}.{f.name} ({f.type.spell()})")
                     for f in struct.fields if f.type.is_function_pointer and not f.type.length}
        extra = "" if struct.kind == "struct" else f", kind={struct.kind!r}"
        if callbacks:
            extra += ", callbacks={" + ", ".join(f"{k!r}: {v}" for k, v in callbacks.items()) + "}"
        exposed = "" if struct.name.startswith("_ni_anon_") else f"_ni_ns[{python_name(struct.name)!r}] = "
        yield (f"    _ni_s_{struct.name} = {exposed}_ni_rt.StructType("
               f"ffi, {struct.name!r}, {fields!r}, _ni_module, {doc!r}{extra})")
        aliases += [f"    _ni_ns.setdefault({python_name(a)!r}, _ni_s_{struct.name})" for a in struct.aliases]
    yield from aliases  # the typedef names C code uses (never hiding a record's own name)
    for name in sorted(proxied):
        yield f"    _ni_v_{name} = ffi.typeof('struct _ni_v_{name} *')"
    for enum in interface.enums:
        if enum.name:
            yield (f"    _ni_ns[{python_name(enum.name)!r}] = _ni_rt.int_enum({enum.name!r}, "
                   f"{enum.members!r}, _ni_module, {enum.doc!r})")
        for member, value in enum.members:
            yield f"    _ni_ns[{python_name(member)!r}] = {value!r}"
    opaque = {s.name for s in interface.structs if s.fields is None}
    for function in interface.functions:
        yield ""
        yield from _function(function, opaque, proxied)
    yield "    return _ni_ns"


def _constants(interface: Interface) -> Iterator[str]:
    """The ``#define`` constants, first: an enumerator, struct or function of the same name wins."""
    for constant in interface.constants:
        yield f"    _ni_ns[{python_name(constant.name)!r}] = {constant.literal()}"


def _function(function: Function, opaque: set[str], proxied: set[str]) -> Iterator[str]:
    name = python_name(function.name)
    params = [python_name(p.name) for p in function.params]
    annotated = ", ".join(f"{n}: {python_annotation(p.type, True)!r}" for n, p in zip(params, function.params))
    if params:  # positional-only, as C arguments are (and as the fast binder's are)
        annotated += ", /"
    if function.variadic:
        annotated += ", *_ni_va" if params else "*_ni_va"
    doc = function.c_signature() + (f"\n\n{function.doc}" if function.doc else "")
    native = f"_ni_c_{function.name}"
    setup = [f"    {native} = getattr(_ni_lib, {function.name!r})"]
    body: list[str] = []
    # Per parameter: None when converted above, else what _ni_rt.retry needs for one cffi converts itself.
    checked: list[tuple[Any, ...] | None] = []
    arguments = list(params)  # what the C function is called with
    for index, (var, param) in enumerate(zip(params, function.params)):
        what = f"{name}() argument {param.name!r} ({param.type.spell()})"
        spec = f"_ni_b_{function.name}_{index}"
        conversion = _conversion(var, param.type, what, spec, opaque)
        if param.type.is_record and param.type.name in proxied:
            conversion = f"_ni_rt.to_proxy(ffi, {conversion}, _ni_v_{param.type.name})"
        if conversion.startswith(("_ni_rt.as_buffer", "_ni_rt.as_bytes")):
            setup.append(f"    {spec} = _ni_rt.BufferSpec(ffi, *{_buffer_spec(param.type)!r}, {what!r})")
        if conversion.startswith("_ni_cb.function_pointer"):
            setup.append(f"    {spec} = {_callback_spec(param.type, what)}")
        if conversion.startswith("_ni_cb.function_pointer"):
            # Under another name: the callable stays referenced (its callback holds it only weakly).
            body.append(f"        _ni_k{index} = {conversion}")
            arguments[index] = f"_ni_k{index}"
            checked.append(None)
        elif conversion:
            body.append(f"        {var} = {conversion}")
            checked.append(None)
        else:
            spec_tuple: tuple[str, str, str, bool] | tuple[str, str, str, bool, bool] = (
                param.name, param.type.cdecl(), param.type.spell(), param.type.kind in ("int", "enum"))
            if param.type.kind == "pointer":  # a pointer cffi checks itself (a handle, T **): None is NULL
                body.append(f"        {var} = ffi.NULL if {var} is None else {var}")
                pointee = param.type.pointee
                if pointee is not None and pointee.is_record and pointee.name in opaque:
                    spec_tuple = (*spec_tuple, True)
            checked.append(spec_tuple)
    yield from setup
    # Inside bind() a wrapper's name is a local every other wrapper would see: one that would hide a
    # name of the binding module itself (a C function called ffi) is defined under another.
    local = f"_ni_w_{name}" if name in _BINDING_NAMES or name.startswith("_ni_") else name
    yield f"    def {local}({annotated}) -> {python_annotation(function.result, False)!r}:"
    yield f"        {doc!r}"
    yield from body
    if function.variadic:
        yield f"        _ni_va = _ni_rt.variadic(ffi, _ni_va, {name!r}, {len(params)})"
        arguments.append("*_ni_va")
    call = f"{native}({', '.join(arguments)})"
    result = function.result
    calls_back = any(p.type.is_function_pointer for p in function.params)
    indent = "        "
    if calls_back:  # exceptions raised in Python callbacks are raised again once the call returns
        yield "        _ni_errors = _ni_cb.begin_calls()"
        yield "        try:"
        indent += "    "
    if any(checked):
        yield f"{indent}try:"
        yield f"{indent}    _ni_r = {call}"
        yield f"{indent}except (TypeError, OverflowError) as _ni_e:"
        args = "(" + "".join(f"{v}, " for v in arguments) + ")"
        yield f"{indent}    _ni_r = _ni_rt.retry(ffi, _ni_e, {native}, {name!r}, {tuple(checked)!r}, {args})"
    else:
        yield f"{indent}_ni_r = {call}"
    if calls_back:
        yield "        finally:"
        yield "            _ni_cb.end_calls(_ni_errors)"
    if result.is_string:
        yield "        return None if _ni_r == ffi.NULL else ffi.string(_ni_r).decode('utf-8', 'surrogateescape')"
    elif result.kind == "pointer":  # NULL is None; anything else the cdata every function taking it accepts
        yield "        return None if _ni_r == ffi.NULL else _ni_r"
    elif result.is_record and result.name in proxied:
        yield f"        return _ni_rt.from_proxy(ffi, _ni_r, _ni_s_{result.name})"
    elif result.kind == "void":
        yield "        return None"
    else:
        yield "        return _ni_r"
    yield f"    {local}.__module__ = _ni_module"
    yield f"    {local}.__name__ = {local}.__qualname__ = {name!r}"
    yield f"    {local}.__native__ = {native}"
    yield f"    _ni_ns[{name!r}] = {local}"


def _conversion(var: str, ctype: CType, what: str, spec: str, opaque: set[str]) -> str:
    """The expression converting argument ``var``, or '' when cffi converts it itself."""
    if ctype.kind == "bool":
        return f"True if {var} else False"
    if ctype.is_record:
        return f"_ni_rt.struct_value(ffi, {var}, _ni_s_{ctype.name}, {what!r})"
    if ctype.kind != "pointer":
        return ""
    pointee = ctype.pointee
    assert pointee is not None
    if takes_bytes(ctype):
        return f"_ni_rt.as_bytes(ffi, {var}, {spec})"
    if pointee.is_record and pointee.name in opaque:
        return ""  # a handle: cffi checks its type itself, and _ni_rt.retry explains a refusal
    if pointee.is_record:
        return f"_ni_rt.struct_pointer(ffi, {var}, _ni_s_{pointee.name}, {what!r})"
    if pointee.kind == "function":
        return f"_ni_cb.function_pointer(ffi, {var}, {spec})"
    if pointee.kind in _ANY_BUFFER or pointee.is_scalar:
        return f"_ni_rt.as_buffer(ffi, {var}, {spec})"
    return ""  # a pointer to a pointer: cdata (or None, made NULL by the caller), checked by cffi


def _buffer_spec(ctype: CType) -> tuple[str, str, int, bool]:
    """(cffi item type, item kind or '' for any buffer, item size, writable) of a buffer parameter."""
    pointee = ctype.pointee
    assert pointee is not None
    writable = not ctype.const
    if pointee.kind == "void":
        return ("char", "", 1, writable)  # cffi passes a char array to a void * parameter
    if pointee.kind == "char" or (pointee.kind == "int" and pointee.size == 1):
        return (pointee.cdecl(), "", 1, writable)
    kind = {"float": "float", "bool": "bool"}.get(pointee.kind)
    if kind is None:
        representation = pointee.pointee if pointee.kind == "enum" else pointee
        assert representation is not None
        kind = "uint" if representation.name.startswith("u") else "int"
    return (pointee.cdecl(), kind, pointee.size, writable)


def _callback_spec(ctype: CType, what: str) -> str:
    """The expression making the runtime's description of a function-pointer type."""
    function = ctype.pointee
    assert function is not None and function.pointee is not None
    args = tuple(_callback_kind(p) for p in function.params)
    result = function.pointee
    kind = "void" if result.kind == "void" else "bool" if result.kind == "bool" else _callback_kind(result)
    return f"_ni_cb.CallbackSpec(ffi, {ctype.cdecl()!r}, {args!r}, {kind!r}, {what!r})"


def _callback_kind(ctype: CType) -> str:
    """How a value crosses between C and a Python callback: as a string, a pointer (NULL is None), or as is."""
    if ctype.is_string:
        return "string"
    return "pointer" if ctype.kind == "pointer" else ""


def _record_doc(struct: Struct, records: dict[str, Struct]) -> str:
    """``struct name { ... }`` as the source spells its types, anonymous members in place."""
    parts = []
    for field in struct.fields or ():
        if not field.name and field.type.name in records:
            parts.append(_record_doc(records[field.type.name], records) + ";")
        else:
            parts.append(f"{field.type.spell(field.name)}{f' : {field.bits}' if field.bits else ''};")
    head = struct.kind if struct.anonymous else f"{struct.kind} {struct.name}"
    return f"{head} {{ {' '.join(parts)} }}"


def _has_function_pointers(interface: Interface) -> bool:
    """Whether the binding needs the callback machinery: a function-pointer parameter or field."""
    types = [p.type for f in interface.functions for p in f.params]
    types += [f.type for s in interface.structs for f in s.fields or ()]
    return any(t.is_function_pointer for t in types)
