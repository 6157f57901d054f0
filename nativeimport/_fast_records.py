"""The fast binder's structs and unions: each record becomes an extension type in the wrapper.

An instance holds the C struct's bytes inline, or is a view (a data pointer
and the object keeping it alive) for a nested record field or a record a
function returned by pointer, so ``outer.inner.x = 1`` writes through. Fields
are read and written in C with the conversions and errors of the scalar
arguments. Functions take an instance by value or by pointer (its data
pointer) and return new instances (by value) or borrowed views (by pointer).

The per-type C is a declaration, a field table and a one-line constructor;
what every type shares (getters, setters, ``repr``, ``==``, the buffer
protocol, pickling, making the type at bind) is in :data:`RECORD_HELPERS`,
compiled once with the rest of :mod:`nativeimport._fast_c`.

A record is served when every field is a scalar (integer, float, bool, enum),
a one-dimensional array of scalars (read as a memoryview writing through), a
served record or a data pointer; one with function pointers, bit-fields or
other arrays stays on cffi with every function using it (its instances are cffi's).

A pointer field (``char *name``, ``void *data``, ``struct node *next``, a
handle) reads and writes exactly as the cffi binder's field does, because it
is cffi that converts it: a read gives a cdata of the field's pointer type
(a NULL cdata, not None, for NULL), a write takes what cffi's field takes
(a cdata of a compatible pointer type, ``ffi.NULL``; not None, bytes or an
int), through the functions cffi exports (:mod:`nativeimport._fast_c`'s
``ni_lazy_type``). An instance of the pointed-to record's type (any record's
for ``void *``) is taken as its address, as the cffi binder's instances are
(cdata pointers): like cffi, the field then keeps no reference to it. The
pointer types come from the module's cffi binding the first time such a field
is read or written, so a module whose pointer fields Python never touches
does not load cffi.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ._fast_spelling import c_string, scalar_c_type
from .interface import CType, Field, Interface, Struct, python_name

__all__ = ["RECORD_DECLARATIONS", "RECORD_HELPERS", "RecordPlan", "pointer_cdecls", "pointer_field", "record_c_type",
           "served_records"]


class RecordPlan:
    """The records a wrapper serves, nested ones before those holding them (C needs them declared first)."""

    def __init__(self, records: list[Struct], all_records: Mapping[str, Struct]) -> None:
        self.records = records
        self.names = frozenset(s.name for s in records)
        self.all_records = all_records

    def typed(self) -> list[Struct]:
        """The records that become Python types (an unnamed member's record is only declared)."""
        return [s for s in self.records if not s.anonymous]

    def serves_all(self, interface: Interface) -> bool:
        """Whether every record the module exposes is served (else the cffi binding makes the rest)."""
        return all(s.name in self.names for s in interface.structs
                   if s.fields is not None and not s.anonymous and not s.name.startswith("_ni_anon_"))


def served_records(interface: Interface) -> RecordPlan:
    """The records the fast wrapper can hold and convert, in declaration order."""
    records = interface.records()
    verdict: dict[str, bool] = {}
    ordered: list[Struct] = []

    def servable(name: str) -> bool:
        if name in verdict:
            return verdict[name]
        verdict[name] = False  # a record never holds itself by value; this ends any malformed cycle
        struct = records.get(name)
        if struct is None or struct.fields is None or not struct.fields or not (name.isascii() and name.isidentifier()):
            return False  # the name goes into C identifiers (ni_t_<name>)
        for field in struct.fields:
            ctype = field.type
            scalar = ctype.kind in ("int", "float", "bool", "enum")
            array = ctype.length > 0 and not ctype.dims and scalar  # one dimension of scalars
            if field.bits or (ctype.length and not array):
                return False
            if not (scalar or pointer_field(ctype, records) or (ctype.is_record and servable(ctype.name))):
                return False
        verdict[name] = True
        ordered.append(struct)
        return True

    for struct in interface.structs:
        servable(struct.name)
    return RecordPlan(ordered, records)


def pointer_field(ctype: CType, records: Mapping[str, Struct]) -> bool:
    """Whether a field of this type is a data pointer the wrapper serves as cffi reads it: not a function
    pointer (a callback stays on cffi), and pointing (through any pointers) to what the cffi binding
    declares under that name (not to an unnamed member's record, which it writes in place)."""
    if ctype.kind != "pointer" or ctype.length or ctype.is_function_pointer:
        return False
    target = ctype.pointee
    while target is not None and target.kind == "pointer" and not target.length:
        target = target.pointee
    if target is None or target.length:  # a pointer to an array: not something the cdef spells (T (*)[n])
        return False
    if target.is_record:
        record = records.get(target.name)
        return record is not None and not record.anonymous
    return True


def pointer_cdecls(plan: RecordPlan) -> list[str]:
    """The cffi types of the served records' pointer fields, as the cffi binding declares them (once each)."""
    found = (field.type.cdecl() for struct in plan.typed() for field, _ in _flat(struct, plan.all_records, "")
             if field.type.kind == "pointer")
    return list(dict.fromkeys(found))


def record_c_type(ctype: CType) -> str:
    """The wrapper's own name for a record type (its tag prefixed: no clash with what Python.h declares)."""
    return f"{ctype.kind} ni_r_{ctype.name}"


def _field_c_type(ctype: CType) -> str:
    if ctype.kind == "pointer":
        return "void *"
    return record_c_type(ctype) if ctype.is_record else scalar_c_type(ctype)


def _kind(ctype: CType) -> str:
    if ctype.kind == "pointer":  # 'v': a void pointer, which takes any record's instance, as in cffi
        return "v" if ctype.pointee is not None and ctype.pointee.kind == "void" else "p"
    if ctype.kind == "float":
        return "f"
    if ctype.kind == "bool":
        return "b"
    if ctype.is_record:
        return "r"
    representation = ctype.pointee if ctype.kind == "enum" else ctype
    assert representation is not None
    return "u" if representation.name.startswith("u") else "i"


def _flat(struct: Struct, records: Mapping[str, Struct], base: str) -> Iterator[tuple[Field, str]]:
    """(field, C offset expression) as Python sees the fields: an unnamed member's own fields in its place."""
    tag = record_c_type(CType(struct.kind, struct.name))
    for index, field in enumerate(struct.fields or ()):
        offset = f"{base}offsetof({tag}, m{index})"
        if not field.name and field.type.is_record:
            yield from _flat(records[field.type.name], records, offset + " + ")
        elif field.name:
            yield field, offset


def declarations(plan: RecordPlan, types: Mapping[str, int]) -> Iterator[str]:
    """Each served record's C declaration, field table and constructor; ``ni_t_<name>`` is its type.

    ``types``: where each pointer field's cffi type is in the module's table (``ni_handle_types``); the
    generated code refers to the wrapper's ``ni_this``, declared before these.
    """
    for struct in plan.records:
        tag = record_c_type(CType(struct.kind, struct.name))
        members = " ".join(f"{_field_c_type(f.type)} m{i}{f'[{f.type.length}]' if f.type.length else ''};"
                           for i, f in enumerate(struct.fields or ()))
        packed = " __attribute__((packed))" if struct.packed else ""
        yield f"{tag} {{ {members} }}{packed};"
        # The debug info's layout must be the compiler's: a mismatch fails the wrapper (cffi then serves all).
        if struct.size > 0:
            yield f"_Static_assert(sizeof({tag}) == {struct.size}, \"layout of {struct.name}\");"
        for index, field in enumerate(struct.fields or ()):
            if field.offset >= 0:
                yield f"_Static_assert(offsetof({tag}, m{index}) == {field.offset}, \"layout of {struct.name}\");"
    typed = plan.typed()
    for struct in typed:
        yield f"static NiRecordSpec ni_spec_{struct.name};"
        yield f"static PyTypeObject *ni_t_{struct.name};"
    for struct in typed:
        name = struct.name
        rows = []
        for field, offset in _flat(struct, plan.all_records, ""):
            ctype = field.type
            target = ctype.pointee if ctype.kind == "pointer" else ctype  # a record held, or pointed to
            nested = "NULL"
            if target is not None and target.is_record and target.name in plan.names:
                nested = f"&ni_spec_{target.name}"
            size = f"sizeof({_field_c_type(ctype)})"
            what = c_string(f"{name}.{field.name} ({ctype.spell().replace(' [', '[')})")
            kind = _kind(ctype)
            extra = ""
            if ctype.length:
                extra = f", {ctype.length}, \"{_FORMATS[kind, ctype.size]}\""
            elif ctype.kind == "pointer":
                extra = f", 0, NULL, &ni_this, {types[ctype.cdecl()]}"
            rows.append(f"    {{{c_string(field.name)}, {offset}, '{kind}', {size}, {what}, {nested}{extra}}},")
        exposed = dict.fromkeys(python_name(a) for a in (struct.name, *struct.aliases))  # keywords as cffi's: from_
        aliases = ", ".join(c_string(a) for a in exposed if a != struct.name)
        doc = c_string(_doc(struct, plan.all_records))
        yield f"static NiField ni_fields_{name}[] = {{\n" + "\n".join(rows) + "\n};"
        yield f"static const char *ni_aliases_{name}[] = {{{aliases + ', ' if aliases else ''}NULL}};"
        yield (f"static PyObject *ni_new_{name}(PyObject *t, PyObject *const *a, size_t n, PyObject *k) "
               f"{{ return ni_record_call(&ni_spec_{name}, a, n, k); }}")
        tag = record_c_type(CType(struct.kind, struct.name))
        inner = _pointer_path(struct, plan.all_records)
        yield (f"static NiRecordSpec ni_spec_{name} = {{{c_string(name)}, {doc}, sizeof({tag}), "
               f"{int(struct.kind == 'union')}, {len(rows)}, ni_fields_{name}, &ni_t_{name}, ni_new_{name}, "
               f"ni_aliases_{name}, NULL, {c_string(inner) if inner else 'NULL'}}};")
    specs = ", ".join(f"&ni_spec_{s.name}" for s in typed) or "NULL"
    yield f"static NiRecordSpec *ni_records[] = {{{specs}}};"


def _pointer_path(struct: Struct, records: Mapping[str, Struct]) -> str | None:
    """The first field holding a pointer (``inner.next`` through a nested record), or None: pickling
    refuses such a record, as :mod:`nativeimport._pickling` does the cffi binder's."""
    for field, _ in _flat(struct, records, ""):
        if field.type.kind == "pointer":
            return field.name
        if field.type.is_record and field.type.name in records:
            inner = _pointer_path(records[field.type.name], records)
            if inner is not None:
                return f"{field.name}.{inner}"
    return None


# An array field's items as the struct module (and so memoryview) spells them.
_FORMATS = {("i", 1): "b", ("u", 1): "B", ("i", 2): "h", ("u", 2): "H", ("i", 4): "i", ("u", 4): "I", ("i", 8): "q",
            ("u", 8): "Q", ("f", 4): "f", ("f", 8): "d", ("b", 1): "?"}


def _doc(struct: Struct, records: Mapping[str, Struct]) -> str:
    """``struct Vec2 { double x; double y; }`` (as the source spells the types), then the doc comment."""
    def body(record: Struct) -> str:
        parts = []
        for field in record.fields or ():
            inner = records.get(field.type.name) if not field.name and field.type.is_record else None
            parts.append(body(inner) + ";" if inner is not None else f"{field.type.spell(field.name)};")
        head = record.kind if record.anonymous else f"{record.kind} {record.name}"
        return f"{head} {{ {' '.join(parts)} }}"

    return body(struct) + (f"\n\n{struct.doc}" if struct.doc else "")


def param_kind(ctype: CType, served: frozenset[str]) -> str | None:
    """``record`` (by value) or ``record_pointer`` for a served record; None for anything else."""
    if ctype.is_record and ctype.name in served:
        return "record"
    pointee = ctype.pointee if ctype.kind == "pointer" else None
    if pointee is not None and pointee.is_record and pointee.name in served:
        return "record_pointer"
    return None


def convert_param(kind: str, ctype: CType, position: int, fall_back: str) -> Iterator[str]:
    """The C taking argument ``position``: exactly the record's type (anything else goes to cffi, which takes
    cdata, dicts and sequences and explains a wrong type)."""
    arg = f"args[{position}]"
    record = ctype if kind == "record" else ctype.pointee
    assert record is not None
    check = f"if (Py_TYPE({arg}) != ni_t_{record.name}) {fall_back}"
    if kind == "record":
        yield f"    {check}"
        yield f"    {record_c_type(record)} *a{position} = ({record_c_type(record)} *)((NiRecord *){arg})->data;"
    else:
        yield f"    void *a{position} = NULL;"
        yield f"    if ({arg} != Py_None) {{ {check} a{position} = ((NiRecord *){arg})->data; }}"


def call_arg(ctype: CType, position: int) -> str | None:
    """How a record argument goes into the call (by value: the struct itself); None for other arguments."""
    return f"*a{position}" if ctype.is_record else None


def result_ok(ctype: CType, served: frozenset[str]) -> bool:
    return param_kind(ctype, served) is not None


def convert_result(ctype: CType) -> str | None:
    """The C returning a record result ``r``: a new instance, or a borrowed view (None for NULL)."""
    if ctype.is_record:
        return f"return ni_record_copy(&ni_spec_{ctype.name}, &r);"
    pointee = ctype.pointee if ctype.kind == "pointer" else None
    if pointee is not None and pointee.is_record:
        return f"return ni_record_view(&ni_spec_{pointee.name}, (void *)r, NULL);"
    return None


RECORD_DECLARATIONS = r"""
/* A struct or union field as Python sees it (an unnamed member's fields are the record's own). */
typedef struct NiRecordSpec NiRecordSpec;
typedef struct {
    const char *name;
    Py_ssize_t offset;
    char kind;             /* 'i' signed, 'u' unsigned, 'f' floating, 'b' bool, 'r' a served record,
                              'p' a pointer, 'v' a void pointer (read and written as cffi's cdata) */
    Py_ssize_t size;
    const char *what;      /* "Vec2.x (int32_t)": how errors name it */
    NiRecordSpec *record;  /* 'r': the nested record; 'p': the record pointed to, if served (else NULL) */
    Py_ssize_t count;      /* > 0: an array of that many items of the kind and size above */
    const char *format;    /* an array's items for memoryview ("d") */
    NiModule *module;      /* 'p', 'v': the wrapper whose table holds the pointer's cffi type ... */
    int type_index;        /* ... at this index (ni_lazy_type) */
} NiField;

struct NiRecordSpec {
    const char *name;
    const char *doc;
    Py_ssize_t size;
    int is_union;
    int count;
    NiField *fields;
    PyTypeObject **type;       /* where its type goes, made at bind */
    vectorcallfunc call;       /* the constructor (one per type: it names its spec) */
    const char **aliases;      /* typedef names, NULL-terminated */
    PyObject *names;           /* the field names, interned, for keyword arguments */
    const char *pointer_field; /* the first field holding a pointer ("inner.next"), which pickling refuses */
};

/* An instance: the C struct inline after this header, or a view into memory another object owns
   (owner) or nothing here owns (a pointer a function returned: owner NULL, data not inline). */
typedef struct {
    PyObject_HEAD
    char *data;
    PyObject *owner;
    NiRecordSpec *spec;
} NiRecord;
#define NI_RECORD_INLINE ((Py_ssize_t)((sizeof(NiRecord) + 15) & ~(size_t)15))

NI_HELPER PyObject *ni_record_call(NiRecordSpec *spec, PyObject *const *args, size_t nargsf, PyObject *kwnames);

/* A new instance holding a copy of ``data`` (a by-value result): in each wrapper, as the scalar conversions. */
static inline PyObject *ni_record_copy(NiRecordSpec *spec, const void *data) {
    PyTypeObject *type = *spec->type;
    NiRecord *self = (NiRecord *)PyObject_Malloc((size_t)type->tp_basicsize);
    if (self == NULL) return PyErr_NoMemory();
    PyObject_Init((PyObject *)self, type);
    self->data = (char *)self + NI_RECORD_INLINE;
    self->owner = NULL;
    self->spec = spec;
    memcpy(self->data, data, (size_t)spec->size);
    return (PyObject *)self;
}
NI_HELPER PyObject *ni_record_view(NiRecordSpec *spec, void *data, PyObject *owner);
NI_HELPER int ni_bind_records(NiRecordSpec **specs, int count, PyObject *module_name, PyObject *into);
"""

RECORD_HELPERS = r"""
static NiRecord *ni_record_alloc(NiRecordSpec *spec) {
    PyTypeObject *type = *spec->type;
    NiRecord *self = (NiRecord *)PyObject_Malloc((size_t)type->tp_basicsize);
    if (self == NULL) return (NiRecord *)PyErr_NoMemory();
    memset((char *)self + NI_RECORD_INLINE, 0, (size_t)spec->size);  /* a new record is zeroed, as in cffi */
    PyObject_Init((PyObject *)self, type);
    self->data = (char *)self + NI_RECORD_INLINE;
    self->owner = NULL;
    self->spec = spec;
    return self;
}

NI_HELPER PyObject *ni_record_view(NiRecordSpec *spec, void *data, PyObject *owner) {
    if (data == NULL) Py_RETURN_NONE;
    PyTypeObject *type = *spec->type;
    /* a view needs no room for the bytes: only the header is allocated */
    NiRecord *self = (NiRecord *)PyObject_Malloc(sizeof(NiRecord));
    if (self == NULL) return PyErr_NoMemory();
    PyObject_Init((PyObject *)self, type);
    self->data = (char *)data;
    Py_XINCREF(owner);
    self->owner = owner;
    self->spec = spec;
    return (PyObject *)self;
}

static void ni_record_dealloc(PyObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    Py_XDECREF(((NiRecord *)self)->owner);
    PyObject_Free(self);
    Py_DECREF(type);  /* instances of heap types hold their type */
}

static const char *ni_int_name(char kind, Py_ssize_t size) {
    static const char *names[2][4] = {{"int8_t", "int16_t", "int32_t", "int64_t"},
                                      {"uint8_t", "uint16_t", "uint32_t", "uint64_t"}};
    int i = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : 3;
    return names[kind == 'u'][i];
}

static PyObject *ni_load_array(const char *p, NiField *f, PyObject *owner);

static PyObject *ni_load(const char *p, NiField *f, PyObject *owner) {
    if (f->count > 0) return ni_load_array(p, f, owner);
    switch (f->kind) {
    case 'f':
        if (f->size == 4) { float v; memcpy(&v, p, 4); return PyFloat_FromDouble(v); }
        else { double v; memcpy(&v, p, 8); return PyFloat_FromDouble(v); }
    case 'b': return PyBool_FromLong(*(const unsigned char *)p != 0);
    case 'p': case 'v': {  /* a cdata of the field's type, as cffi reads it (NULL too) */
        PyObject *ctype = ni_lazy_type(f->module, f->type_index);
        if (ctype == NULL) return NULL;
        void *v;
        memcpy(&v, p, sizeof v);
        PyObject *made = ni_pointer_object(v, ctype);
        Py_DECREF(ctype);
        return made;
    }
    case 'r': return ni_record_view(f->record, (void *)p, owner);
    case 'i':
        switch (f->size) {
        case 1: return PyLong_FromLong(*(const int8_t *)p);
        case 2: { int16_t v; memcpy(&v, p, 2); return PyLong_FromLong(v); }
        case 4: { int32_t v; memcpy(&v, p, 4); return PyLong_FromLong(v); }
        default: { int64_t v; memcpy(&v, p, 8); return PyLong_FromLongLong(v); }
        }
    default:
        switch (f->size) {
        case 1: return PyLong_FromUnsignedLong(*(const uint8_t *)p);
        case 2: { uint16_t v; memcpy(&v, p, 2); return PyLong_FromUnsignedLong(v); }
        case 4: { uint32_t v; memcpy(&v, p, 4); return PyLong_FromUnsignedLong(v); }
        default: { uint64_t v; memcpy(&v, p, 8); return PyLong_FromUnsignedLongLong(v); }
        }
    }
}

/* A value into a field: the scalar arguments' conversions and errors; a record from an instance of its
   type, or from what its constructor takes (a dict of fields, a sequence). 0, or -1 with an error set. */
static int ni_store_array(char *p, NiField *f, PyObject *value);

static int ni_store(char *p, NiField *f, PyObject *value) {
    if (f->count > 0) return ni_store_array(p, f, value);
    switch (f->kind) {
    case 'f': {
        double v;
        if (ni_double(value, &v, f->what)) return -1;
        if (f->size == 4) { float s = (float)v; memcpy(p, &s, 4); } else memcpy(p, &v, 8);
        return 0;
    }
    case 'b': {
        int v = PyObject_IsTrue(value);
        if (v < 0) return -1;
        *(unsigned char *)p = (unsigned char)v;
        return 0;
    }
    case 'p': case 'v': {
        void *v;
        /* An instance of the record pointed to (any record's for void *): its address, as the cffi binder's
           instance (a cdata pointer) gives; like cffi, nothing keeps it alive for the field. */
        if (Py_TYPE(value)->tp_dealloc == ni_record_dealloc
                && (f->kind == 'v' || (f->record != NULL && Py_TYPE(value) == *f->record->type))) {
            v = ((NiRecord *)value)->data;
        } else {  /* anything else as cffi's field takes it: cdata of a compatible pointer type, ffi.NULL */
            PyObject *ctype = ni_lazy_type(f->module, f->type_index);
            int failed = ctype == NULL || ni_to_pointer(value, ctype, &v, f->what);
            Py_XDECREF(ctype);
            if (failed) return -1;
        }
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case 'r': {
        PyTypeObject *type = *f->record->type;
        if (Py_TYPE(value) == type) {
            memmove(p, ((NiRecord *)value)->data, (size_t)f->record->size);
            return 0;
        }
        PyObject *made = NULL;
        if (PyDict_Check(value)) {
            PyObject *empty = PyTuple_New(0);
            made = empty == NULL ? NULL : PyObject_Call((PyObject *)type, empty, value);
            Py_XDECREF(empty);
        } else if (PyTuple_Check(value) || PyList_Check(value)) {
            PyObject *tuple = PySequence_Tuple(value);
            made = tuple == NULL ? NULL : PyObject_Call((PyObject *)type, tuple, NULL);
            Py_XDECREF(tuple);
        } else {
            PyErr_Format(PyExc_TypeError, "%s: expected %s, not %.200s", f->what, f->record->name,
                         Py_TYPE(value)->tp_name);
            return -1;
        }
        if (made == NULL) return -1;
        memcpy(p, ((NiRecord *)made)->data, (size_t)f->record->size);
        Py_DECREF(made);
        return 0;
    }
    case 'i': {
        long long v;
        long long high = f->size == 8 ? INT64_MAX : (1LL << (f->size * 8 - 1)) - 1;
        if (ni_signed(value, -high - 1, high, &v, f->what, ni_int_name('i', f->size))) return -1;
        if (f->size == 1) { int8_t s = (int8_t)v; memcpy(p, &s, 1); }
        else if (f->size == 2) { int16_t s = (int16_t)v; memcpy(p, &s, 2); }
        else if (f->size == 4) { int32_t s = (int32_t)v; memcpy(p, &s, 4); }
        else { int64_t s = (int64_t)v; memcpy(p, &s, 8); }
        return 0;
    }
    default: {
        unsigned long long v;
        unsigned long long high = f->size == 8 ? UINT64_MAX : (1ULL << (f->size * 8)) - 1;
        if (ni_unsigned(value, high, &v, f->what, ni_int_name('u', f->size))) return -1;
        if (f->size == 1) { uint8_t s = (uint8_t)v; memcpy(p, &s, 1); }
        else if (f->size == 2) { uint16_t s = (uint16_t)v; memcpy(p, &s, 2); }
        else if (f->size == 4) { uint32_t s = (uint32_t)v; memcpy(p, &s, 4); }
        else { uint64_t s = (uint64_t)v; memcpy(p, &s, 8); }
        return 0;
    }
    }
}

/* An array field: a memoryview of its items, writing through to the record (which it keeps alive). */
static PyObject *ni_load_array(const char *p, NiField *f, PyObject *owner) {
    PyObject *whole = PyMemoryView_FromObject(owner);
    if (whole == NULL) return NULL;
    Py_ssize_t start = p - ((NiRecord *)owner)->data;
    PyObject *part = PySequence_GetSlice(whole, start, start + f->count * f->size);
    Py_DECREF(whole);
    if (part == NULL) return NULL;
    PyObject *items = PyObject_CallMethod(part, "cast", "s", f->format);
    Py_DECREF(part);
    return items;
}

/* An array field from a sequence of at most its length (the rest zeroed), each item as a field's. */
static int ni_store_array(char *p, NiField *f, PyObject *value) {
    PyObject *items = PySequence_Fast(value, "");
    if (items == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: expected a sequence, not %.200s", f->what, Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    if (n > f->count) {
        PyErr_Format(PyExc_IndexError, "%s: too many items (%zd), it holds %zd", f->what, n, f->count);
        Py_DECREF(items);
        return -1;
    }
    NiField item = *f;
    item.count = 0;
    char scratch[8 * 64], *staged = f->count * f->size <= (Py_ssize_t)sizeof scratch ? scratch
                                    : PyMem_Malloc((size_t)(f->count * f->size));
    if (staged == NULL) { Py_DECREF(items); PyErr_NoMemory(); return -1; }
    memset(staged, 0, (size_t)(f->count * f->size));  /* all or nothing: staged, then copied */
    int failed = 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++)
        failed = ni_store(staged + i * f->size, &item, PySequence_Fast_GET_ITEM(items, i));
    if (!failed) memcpy(p, staged, (size_t)(f->count * f->size));
    if (staged != scratch) PyMem_Free(staged);
    Py_DECREF(items);
    return failed ? -1 : 0;
}

static PyObject *ni_field_get(PyObject *self, void *closure) {
    NiField *f = (NiField *)closure;
    return ni_load(((NiRecord *)self)->data + f->offset, f, self);
}

static int ni_field_set(PyObject *self, PyObject *value, void *closure) {
    NiField *f = (NiField *)closure;
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "cannot delete the field %s", f->what);
        return -1;
    }
    return ni_store(((NiRecord *)self)->data + f->offset, f, value);
}

static int ni_field_index(NiRecordSpec *spec, PyObject *name) {
    for (int i = 0; i < spec->count; i++)
        if (PyTuple_GET_ITEM(spec->names, i) == name) return i;  /* keywords are usually interned */
    for (int i = 0; i < spec->count; i++)
        if (PyUnicode_Compare(PyTuple_GET_ITEM(spec->names, i), name) == 0) return i;
    return -1;
}

/* Vec2(1.0, 2.0), Vec2(x=1.0, y=2.0), Vec2(): the fields in order, by name, the rest zero; the errors are
   the cffi binder's (_cffi_runtime.StructType.__call__), names checked before any value is converted. */
NI_HELPER PyObject *ni_record_call(NiRecordSpec *spec, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs > spec->count) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", spec->name,
                     spec->count, nargs);
        return NULL;
    }
    int stack[16];
    int *where = nkw <= 16 ? stack : PyMem_Malloc(sizeof(int) * (size_t)nkw);
    if (where == NULL) return PyErr_NoMemory();
    NiRecord *self = NULL;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int index = ni_field_index(spec, key);
        if (index < 0) {
            PyObject *sep = PyUnicode_FromString(", ");
            PyObject *all = sep == NULL ? NULL : PyUnicode_Join(sep, spec->names);
            if (all != NULL)
                PyErr_Format(PyExc_TypeError, "%s() has no field %R; its fields are %U", spec->name, key, all);
            Py_XDECREF(sep);
            Py_XDECREF(all);
            goto done;
        }
        if (index < nargs) {
            PyErr_Format(PyExc_TypeError, "%s() got field %R twice", spec->name, key);
            goto done;
        }
        where[k] = index;
    }
    self = ni_record_alloc(spec);
    if (self == NULL) goto done;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        NiField *f = &spec->fields[i];
        if (ni_store(self->data + f->offset, f, args[i])) { Py_CLEAR(self); goto done; }
    }
    for (Py_ssize_t k = 0; k < nkw; k++) {
        NiField *f = &spec->fields[where[k]];
        if (ni_store(self->data + f->offset, f, args[nargs + k])) { Py_CLEAR(self); goto done; }
    }
done:
    if (where != stack) PyMem_Free(where);
    return (PyObject *)self;
}

static PyObject *ni_record_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    /* calls go through the type's vectorcall; this serves Vec2.__new__(Vec2, ...) */
    return PyObject_VectorcallDict((PyObject *)type, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args), kwds);
}

static PyObject *ni_record_repr(PyObject *self) {
    NiRecord *record = (NiRecord *)self;
    NiRecordSpec *spec = record->spec;
    PyObject *parts = PyList_New(0), *sep = NULL, *joined = NULL, *out = NULL;
    if (parts == NULL) return NULL;
    for (int i = 0; i < spec->count; i++) {
        PyObject *value = ni_field_get(self, &spec->fields[i]);
        if (value != NULL && spec->fields[i].count > 0) Py_SETREF(value, PyObject_CallMethod(value, "tolist", NULL));
        PyObject *part = value == NULL ? NULL : PyUnicode_FromFormat("%s=%R", spec->fields[i].name, value);
        Py_XDECREF(value);
        if (part == NULL || PyList_Append(parts, part) < 0) { Py_XDECREF(part); goto done; }
        Py_DECREF(part);
    }
    sep = PyUnicode_FromString(", ");
    joined = sep == NULL ? NULL : PyUnicode_Join(sep, parts);
    if (joined != NULL) out = PyUnicode_FromFormat("%s(%U)", spec->name, joined);
done:
    Py_DECREF(parts);
    Py_XDECREF(sep);
    Py_XDECREF(joined);
    return out;
}

/* Equal values: a struct field by field (floats as numbers, so 0.0 == -0.0), a union byte for byte. */
static int ni_record_equal(NiRecordSpec *spec, const char *a, const char *b) {
    if (spec->is_union) return memcmp(a, b, (size_t)spec->size) == 0;
    for (int i = 0; i < spec->count; i++) {
        NiField *f = &spec->fields[i];
        int same = 1;
        for (Py_ssize_t k = 0; k < (f->count > 0 ? f->count : 1) && same; k++) {
            const char *x = a + f->offset + k * f->size, *y = b + f->offset + k * f->size;
            if (f->kind == 'r') same = ni_record_equal(f->record, x, y);
            else if (f->kind == 'b') same = (*x != 0) == (*y != 0);
            else if (f->kind == 'f' && f->size == 4) { float u, v; memcpy(&u, x, 4); memcpy(&v, y, 4); same = u == v; }
            else if (f->kind == 'f') { double u, v; memcpy(&u, x, 8); memcpy(&v, y, 8); same = u == v; }
            else same = memcmp(x, y, (size_t)f->size) == 0;
        }
        if (!same) return 0;
    }
    return 1;
}

static PyObject *ni_record_compare(PyObject *a, PyObject *b, int op) {
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b)) Py_RETURN_NOTIMPLEMENTED;
    int same = ni_record_equal(((NiRecord *)a)->spec, ((NiRecord *)a)->data, ((NiRecord *)b)->data);
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

/* p[i]: as a cffi pointer, an item of the array a function returned a pointer into (unchecked, as in C and
   cffi); an instance or a field holds one record, p[0]. */
static PyObject *ni_record_item(PyObject *self, PyObject *key) {
    NiRecord *record = (NiRecord *)self;
    Py_ssize_t i = PyNumber_AsSsize_t(key, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    int borrowed = record->owner == NULL && record->data != (char *)self + NI_RECORD_INLINE;
    if (i != 0 && !borrowed) {
        PyErr_Format(PyExc_IndexError, "%s instance index out of range (it holds one record)", record->spec->name);
        return NULL;
    }
    return ni_record_view(record->spec, record->data + i * record->spec->size, borrowed ? NULL : self);
}

static int ni_record_buffer(PyObject *self, Py_buffer *view, int flags) {
    NiRecord *record = (NiRecord *)self;
    return PyBuffer_FillInfo(view, self, record->data, record->spec->size, 0, flags);
}

/* pickle: as the cffi binder's instances, by the bytes, through nativeimport._pickling (which refuses a
   borrowed pointer, and a record holding one: they mean nothing in another process) */
static PyObject *ni_record_reduce(PyObject *self, PyObject *unused) {
    NiRecord *record = (NiRecord *)self;
    int borrowed = record->owner == NULL && record->data != (char *)self + NI_RECORD_INLINE;
    PyObject *pickling = PyImport_ImportModule("nativeimport._pickling");
    if (pickling == NULL) return NULL;
    PyObject *made = PyObject_CallMethod(pickling, "reduce_record", "Oiz", self, borrowed,
                                         record->spec->pointer_field);
    Py_DECREF(pickling);
    return made;
}

static PyObject *ni_record_copy_method(PyObject *self, PyObject *unused) {
    return ni_record_copy(((NiRecord *)self)->spec, ((NiRecord *)self)->data);
}

static PyObject *ni_record_deepcopy(PyObject *self, PyObject *memo) { return ni_record_copy_method(self, NULL); }

static PyMethodDef ni_record_methods[] = {
    {"__reduce__", ni_record_reduce, METH_NOARGS, NULL},
    {"__copy__", ni_record_copy_method, METH_NOARGS, "A new instance holding a copy of the bytes."},
    {"__deepcopy__", ni_record_deepcopy, METH_O, "A new instance holding a copy of the bytes."},
    {NULL, NULL, 0, NULL}
};

static int ni_make_record_type(NiRecordSpec *spec, PyObject *module_name) {
    if (*spec->type != NULL) return 0;  /* an earlier bind of this wrapper made it: one type per process */
    PyGetSetDef *getset = PyMem_Calloc((size_t)spec->count + 1, sizeof(PyGetSetDef));
    PyObject *names = PyTuple_New(spec->count);
    PyObject *qualified = PyUnicode_FromFormat("%U.%s", module_name, spec->name);
    const char *text = qualified == NULL ? NULL : PyUnicode_AsUTF8(qualified);
    char *kept = text == NULL ? NULL : PyMem_Malloc(strlen(text) + 1);  /* tp_name points to it for good */
    if (getset == NULL || names == NULL || kept == NULL) goto fail;
    strcpy(kept, text);
    for (int i = 0; i < spec->count; i++) {
        NiField *f = &spec->fields[i];
        PyObject *name = PyUnicode_InternFromString(f->name);
        if (name == NULL) goto fail;
        PyTuple_SET_ITEM(names, i, name);
        getset[i] = (PyGetSetDef){f->name, ni_field_get, ni_field_set, f->what, f};
    }
    PyType_Slot slots[] = {
        {Py_tp_dealloc, ni_record_dealloc}, {Py_tp_repr, ni_record_repr}, {Py_tp_richcompare, ni_record_compare},
        {Py_tp_getset, getset}, {Py_tp_methods, ni_record_methods}, {Py_tp_new, ni_record_new},
        {Py_tp_doc, (void *)spec->doc}, {Py_bf_getbuffer, ni_record_buffer},
        {Py_mp_subscript, ni_record_item}, {0, NULL}};
    PyType_Spec type_spec = {kept, (int)(NI_RECORD_INLINE + spec->size), 0, Py_TPFLAGS_DEFAULT, slots};
    PyObject *type = PyType_FromSpec(&type_spec);
    if (type == NULL) goto fail;
    PyObject *size = PyLong_FromSsize_t(spec->size);  /* what pickling and the cffi binder ask of it */
    int failed = size == NULL || PyObject_SetAttrString(type, "__native_size__", size) < 0
        || PyObject_SetAttrString(type, "__native_fields__", names) < 0;
    Py_XDECREF(size);
    if (failed) {
        Py_DECREF(type);
        goto fail;
    }
    ((PyTypeObject *)type)->tp_vectorcall = spec->call;
    spec->names = names;
    *spec->type = (PyTypeObject *)type;
    Py_DECREF(qualified);
    return 0;
fail:
    PyMem_Free(getset);
    PyMem_Free(kept);
    Py_XDECREF(names);
    Py_XDECREF(qualified);
    return -1;
}

/* Make the record types (once per process) and put each into ``into`` under its name and its typedef
   names; the made-up names of unnamed records stay out, as in the cffi binding. */
NI_HELPER int ni_bind_records(NiRecordSpec **specs, int count, PyObject *module_name, PyObject *into) {
    for (int i = 0; i < count; i++)
        if (ni_make_record_type(specs[i], module_name) < 0) return -1;
    for (int i = 0; i < count; i++) {
        NiRecordSpec *spec = specs[i];
        if (strncmp(spec->name, "_ni_anon_", 9) == 0) continue;
        if (PyDict_SetItemString(into, spec->name, (PyObject *)*spec->type) < 0) return -1;
    }
    for (int i = 0; i < count; i++)  /* after every record's own name, which an alias never hides */
        for (const char **alias = specs[i]->aliases; *alias != NULL; alias++)
            if (PyDict_GetItemString(into, *alias) == NULL
                && PyDict_SetItemString(into, *alias, (PyObject *)*specs[i]->type) < 0) return -1;
    return 0;
}
"""
