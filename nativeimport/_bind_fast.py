"""The fast binder: a generated CPython extension calling the library directly.

For every function whose parameters and result are integers, floats, bools,
enums, ``const char *`` strings or pointers to scalars (taken through the
buffer protocol), it writes C with ``METH_NOARGS`` / ``METH_O`` /
``METH_FASTCALL`` wrappers, compiles it against the running interpreter's
headers and stores it in the cache entry under the interpreter's ABI tag
(``fast.cpython-311-x86_64-linux-gnu.so``). Other interpreters add their own.
Functions it cannot express, and arguments it does not recognise (a cffi
pointer where a buffer was expected), go to the cffi binder's wrapper.

The conversions and errors mirror :mod:`nativeimport._cffi_runtime` so users
see the same rules whichever binder serves a call. The full (not limited) C
API is used: the wrapper is per interpreter anyway, and the full API lets the
common cases skip a function call (``PyFloat_AS_DOUBLE``).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .interface import CType, Function, Interface, python_name

__all__ = ["FastBuild", "PrecompiledHeader", "build_fast", "expressible", "fast_file", "unavailable_marker"]

log = logging.getLogger("nativeimport")


def fast_file(entry: Path) -> Path:
    """Where this interpreter's wrapper lives in an entry (its ABI tag in the name)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    return entry / f"fast{EXTENSION_SUFFIXES[0]}"


def unavailable_marker(wrapper: str) -> str:
    """Where this interpreter notes that it cannot build ``wrapper``.

    Per interpreter, not per ABI tag: two installations share a tag, and one may
    have the headers the other lacks; the wrapper either builds serves both.
    """
    import zlib

    return f"{wrapper}.unavailable-{zlib.crc32(sys.executable.encode()):08x}"


def expressible(function: Function) -> bool:
    """Whether the fast binder can call ``function``."""
    return _result_ok(function.result) and all(_param_kind(p.type) is not None for p in function.params)


def _result_ok(ctype: CType) -> bool:
    return ctype.kind in ("void", "int", "float", "bool", "enum") or ctype.is_string


def _param_kind(ctype: CType) -> str | None:
    if ctype.kind in ("int", "enum"):
        return "int"
    if ctype.kind in ("float", "bool"):
        return ctype.kind
    if ctype.is_string:
        return "string"
    if ctype.kind == "pointer" and ctype.pointee is not None:
        pointee = ctype.pointee
        if pointee.kind in ("void", "char") or pointee.is_scalar:
            return "buffer"
    return None


def build_fast(entry: Path, interface: Interface, module_name: str, timeout: float,
               scratch: Path) -> Path | None:
    """Compile this interpreter's wrapper into ``entry``; None (and a note in the entry) if it cannot be built."""
    header = PrecompiledHeader(scratch)
    built = FastBuild(entry, interface, module_name, header).finish(timeout)
    header.build_in_background()
    return built


_FLAGS = ("-O2", "-fPIC", "-fvisibility=hidden")
_HEADER = "".join(f"{line}\n" for line in ("#define PY_SSIZE_T_CLEAN", "#include <Python.h>", "#include <dlfcn.h>",
                                            "#include <stdint.h>", "#include <string.h>"))


class PrecompiledHeader:
    """``Python.h`` parsed once per interpreter and compiler (GCC's ``.gch``), kept in the cache.

    Parsing ``Python.h`` is half of a wrapper's compile time. The first build
    compiles without it and then leaves the header compiling in the background
    (so that first build waits for nothing); later builds find it. With another
    compiler, or a stale ``.gch``, GCC simply reads the header.
    """

    def __init__(self, scratch: Path) -> None:
        import zlib

        self.compiler = _compiler()
        self.include = sysconfig.get_paths().get("include", "")
        program = os.path.realpath(shutil.which(self.compiler[0]) or self.compiler[0]) if self.compiler else ""
        try:
            stamp = os.stat(program).st_mtime_ns
        except OSError:
            stamp = 0
        parts = [program, *(self.compiler or [])[1:], str(stamp), self.include, fast_file(Path()).name, *_FLAGS]
        self.directory = scratch / f"{zlib.crc32(chr(0).join(parts).encode()):08x}"
        self.header = self.directory / "ni_python.h"
        self.gch = self.directory / "ni_python.h.gch"
        self.is_gcc = "gcc" in os.path.basename(program)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.header.exists():
            _write_atomically(self.header, _HEADER)

    def build_in_background(self) -> None:
        """Start compiling the header if it is missing; the process outlives this one if need be."""
        if self.compiler is None or not self.is_gcc or self.gch.exists():
            return
        temporary = self.directory / f".{os.getpid()}.gch"
        command = [*self.compiler, *_FLAGS, f"-I{self.include}", "-x", "c-header", "-o", str(temporary),
                   str(self.header)]
        log.debug("compiling %s in the background", self.gch)
        helper = subprocess.Popen([sys.executable, "-c", _DETACHED_COMPILE, str(temporary), str(self.gch), *command],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            helper.wait(timeout=30)  # only until it has forked away
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()


# Forks away from its parent (which returns at once), compiles, then renames the result into
# place, so readers never see half a .gch and the importing process never waits for it.
_DETACHED_COMPILE = """
import os, subprocess, sys
if os.fork():
    os._exit(0)
temporary, final, command = sys.argv[1], sys.argv[2], sys.argv[3:]
if subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True).returncode == 0:
    os.replace(temporary, final)
elif os.path.exists(temporary):
    os.unlink(temporary)
"""


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class FastBuild:
    """One wrapper compilation, started at once and finished later.

    A cold import starts it as soon as the interface is known and generates the
    cffi binding while the C compiler runs.
    """

    def __init__(self, directory: Path, interface: Interface, module_name: str,
                 header: PrecompiledHeader) -> None:
        self.target = fast_file(directory)
        self.module_name = module_name
        self.process: subprocess.Popen[bytes] | None = None
        self.problem: str | None = None
        functions = [f for f in interface.functions if expressible(f)]
        if not functions:
            self.problem = "no function it can serve"
            return
        self.problem = _missing_prerequisite()
        if self.problem is not None:
            return
        self.work = Path(tempfile.mkdtemp(dir=directory, prefix=".fast-"))
        c_file = self.work / "fast.c"
        c_file.write_text(generate(functions, module_name), encoding="utf-8")
        self.built = self.work / self.target.name
        compiler = _compiler()
        assert compiler is not None
        self.command = [*compiler, *_FLAGS, "-shared", f"-I{header.directory}", f"-I{sysconfig.get_paths()['include']}",
                        "-o", str(self.built), str(c_file), "-ldl"]
        log.debug("running %s", shlex.join(self.command))
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def cancel(self) -> None:
        """Stop the compiler: the build this wrapper belonged to failed."""
        if self.process is not None:
            self.process.kill()
            self.process.communicate()
            self.process = None
            shutil.rmtree(self.work, ignore_errors=True)

    def finish(self, timeout: float) -> Path | None:
        """Wait for the compiler; the wrapper's path, or None with a note left beside where it would be."""
        if self.process is not None:
            try:
                output, _ = self.process.communicate(timeout=timeout)
                if self.process.returncode == 0:
                    os.replace(self.built, self.target)  # atomic: another process may build the same wrapper
                else:
                    self.problem = f"the C compiler failed: {output.decode(errors='replace').strip()[:2000]}"
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()
                self.problem = f"the C compiler took longer than {timeout:g} s"
            finally:
                shutil.rmtree(self.work, ignore_errors=True)
        if self.problem is None:
            return self.target
        if self.problem != "no function it can serve":
            log.info("fast binder unavailable for %s (%s); using the cffi binder", self.module_name, self.problem)
        try:
            Path(unavailable_marker(str(self.target))).write_text(self.problem, encoding="utf-8")
        except OSError:
            pass
        return None


def _missing_prerequisite() -> str | None:
    include = sysconfig.get_paths().get("include", "")
    if not include or not os.path.isfile(os.path.join(include, "Python.h")):
        return f"no Python headers in {include!r} (Debian/Ubuntu: apt-get install python3-dev)"
    if _compiler() is None:
        return "no C compiler (set CC, or install gcc)"
    return None


def _compiler() -> list[str] | None:
    if os.environ.get("CC", "").strip():  # the user chose a compiler: use it or nothing
        words = shlex.split(os.environ["CC"])
        return words if shutil.which(words[0]) else None
    words = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if words and shutil.which(words[0]):
        return words
    for candidate in ("cc", "gcc", "clang"):
        if shutil.which(candidate):
            return [candidate]
    return None


# -- code generation -----------------------------------------------------------------

_PRELUDE = r"""
#include "ni_python.h"  /* Python.h and friends, precompiled when the compiler can */

static PyObject *ni_fallbacks;  /* the cffi wrappers, by position: for arguments only cffi understands */

static int ni_int_error(PyObject *o, const char *what, const char *ctype) {
    if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_OverflowError, "%s: integer %R does not fit '%s'", what, o, ctype);
    } else if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: an integer is required, not %.200s", what, Py_TYPE(o)->tp_name);
    }
    return -1;
}

static inline int ni_signed(PyObject *o, long long lo, long long hi, long long *out, const char *what,
                            const char *ctype) {
    int overflow = 0;
    long long v;
    if (PyLong_Check(o)) {
        v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) return ni_int_error(o, what, ctype);
    } else {
        PyObject *index = PyNumber_Index(o);
        if (index == NULL) return ni_int_error(o, what, ctype);
        v = PyLong_AsLongLongAndOverflow(index, &overflow);
        Py_DECREF(index);
        if (v == -1 && PyErr_Occurred()) return ni_int_error(o, what, ctype);
    }
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_OverflowError, "%s: integer %R does not fit '%s'", what, o, ctype);
        return -1;
    }
    *out = v;
    return 0;
}

static inline int ni_unsigned(PyObject *o, unsigned long long hi, unsigned long long *out, const char *what,
                              const char *ctype) {
    unsigned long long v;
    if (PyLong_Check(o)) {
        v = PyLong_AsUnsignedLongLong(o);
    } else {
        PyObject *index = PyNumber_Index(o);
        if (index == NULL) return ni_int_error(o, what, ctype);
        v = PyLong_AsUnsignedLongLong(index);
        Py_DECREF(index);
    }
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return ni_int_error(o, what, ctype);
    if (v > hi) {
        PyErr_Format(PyExc_OverflowError, "%s: integer %R does not fit '%s'", what, o, ctype);
        return -1;
    }
    *out = v;
    return 0;
}

static inline int ni_double(PyObject *o, double *out, const char *what) {
    if (PyFloat_CheckExact(o)) { *out = PyFloat_AS_DOUBLE(o); return 0; }
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: must be real number, not %.200s", what, Py_TYPE(o)->tp_name);
        }
        return -1;
    }
    *out = v;
    return 0;
}

static int ni_string(PyObject *o, const char **out, const char *what) {
    Py_ssize_t size;
    if (o == Py_None) { *out = NULL; return 0; }
    if (PyUnicode_Check(o)) {
        *out = PyUnicode_AsUTF8AndSize(o, &size);
        if (*out == NULL) return -1;
    } else if (PyBytes_Check(o)) {
        *out = PyBytes_AS_STRING(o);
        size = PyBytes_GET_SIZE(o);
    } else {
        PyErr_Format(PyExc_TypeError, "%s: expected str or bytes, not %.200s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    if ((Py_ssize_t)strlen(*out) != size) {
        PyErr_Format(PyExc_ValueError, "%s: embedded null character", what);
        return -1;
    }
    return 0;
}

static const char *ni_kind_name(char kind) {
    switch (kind) {
    case 'i': return "signed integers";
    case 'u': return "unsigned integers";
    case 'f': return "floats";
    case 'b': return "bools";
    default: return "items of an unknown kind";
    }
}

static char ni_format_kind(const char *format) {
    if (format == NULL) return 'u';  /* no format means unsigned bytes */
    if (*format == '>' || *format == '!') return '?';
    if (*format == '@' || *format == '=' || *format == '<') format++;
    if (format[0] == '\0' || format[1] != '\0') return '?';
    if (strchr("bhilqn", format[0])) return 'i';
    if (strchr("BHILQN", format[0])) return 'u';
    if (strchr("efd", format[0])) return 'f';
    if (format[0] == '?') return 'b';
    return '?';
}

/* 0: filled *view (or NULL pointer for None); -1: error set. */
static int ni_buffer(PyObject *o, Py_buffer *view, void **out, char kind, Py_ssize_t itemsize, int writable,
                     const char *what) {
    if (o == Py_None) { *out = NULL; view->obj = NULL; return 0; }
    if (PyObject_GetBuffer(o, view, PyBUF_FORMAT | PyBUF_STRIDES) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: expected a buffer (array.array, bytearray, numpy array, ...), not %.200s",
                     what, Py_TYPE(o)->tp_name);
        return -1;
    }
    if (kind) {
        char held = ni_format_kind(view->format);
        if (held != kind || view->itemsize != itemsize) {
            PyErr_Format(PyExc_TypeError, "%s: the buffer holds %zd-byte %s (format '%s'), not %zd-byte %s", what,
                         view->itemsize, ni_kind_name(held), view->format ? view->format : "B", itemsize,
                         ni_kind_name(kind));
            PyBuffer_Release(view);
            return -1;
        }
    }
    if (writable && view->readonly) {
        PyErr_Format(PyExc_TypeError, "%s: the function writes through this pointer; pass a writable buffer, "
                     "not a read-only %.200s", what, Py_TYPE(o)->tp_name);
        PyBuffer_Release(view);
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s: the buffer must be C-contiguous", what);
        PyBuffer_Release(view);
        return -1;
    }
    *out = view->buf;
    return 0;
}

static inline void ni_release(Py_buffer *view) { if (view->obj != NULL) PyBuffer_Release(view); }

static inline int ni_foreign(PyObject *o) { return o != Py_None && !PyObject_CheckBuffer(o); }

static PyObject *ni_string_result(const char *s) {
    if (s == NULL) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

static PyObject *ni_count_error(const char *name, Py_ssize_t expected, Py_ssize_t given) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd positional argument%s but %zd %s given", name, expected,
                 expected == 1 ? "" : "s", given, given == 1 ? "was" : "were");
    return NULL;
}
"""

_INT_LIMITS = {
    "int8_t": ("INT8_MIN", "INT8_MAX"), "int16_t": ("INT16_MIN", "INT16_MAX"),
    "int32_t": ("INT32_MIN", "INT32_MAX"), "int64_t": ("INT64_MIN", "INT64_MAX"),
    "uint8_t": ("0", "UINT8_MAX"), "uint16_t": ("0", "UINT16_MAX"), "uint32_t": ("0", "UINT32_MAX"),
    "uint64_t": ("0", "UINT64_MAX"),
}


def generate(functions: list[Function], module_name: str) -> str:
    """The C source of the wrapper extension for ``functions``."""
    parts = [_PRELUDE]
    for index, function in enumerate(functions):
        parts.append(f"static {_c_result(function.result)} (*ni_f_{index})({_c_params(function)});")
    for index, function in enumerate(functions):
        parts.extend(_wrapper(index, function))
    parts.append(_module(functions))
    return "\n".join(parts) + "\n"


def _c_type(ctype: CType) -> str:
    if ctype.kind == "pointer":
        return "const void *" if ctype.const else "void *"
    if ctype.kind == "enum":
        assert ctype.pointee is not None
        return ctype.pointee.name
    if ctype.kind == "bool":
        return "_Bool"
    return ctype.name


def _c_result(ctype: CType) -> str:
    return "void" if ctype.kind == "void" else ("const char *" if ctype.is_string else _c_type(ctype))


def _c_params(function: Function) -> str:
    return ", ".join(_c_type(p.type) for p in function.params) or "void"


def _c_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid C string literal for what we put in it


def _wrapper(index: int, function: Function) -> Iterator[str]:
    # One wrapper serves both variants: bound with self == NULL it keeps the GIL,
    # with self != NULL it releases it around the call (one predictable branch).
    name = f"ni_w_{index}"
    count = len(function.params)
    if count == 0:
        yield f"static PyObject *{name}(PyObject *self, PyObject *unused) {{"
    elif count == 1:
        yield f"static PyObject *{name}(PyObject *self, PyObject *arg) {{"
        yield "    PyObject *const *args = &arg;"
    else:
        yield f"static PyObject *{name}(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {{"
        yield f"    if (nargs != {count}) return ni_count_error({_c_string(function.name)}, {count}, nargs);"
    buffers = [i for i, p in enumerate(function.params) if _param_kind(p.type) == "buffer"]
    for position in buffers:  # before any goto fail, which releases them
        yield f"    Py_buffer v{position}; v{position}.obj = NULL;"
    for position, param in enumerate(function.params):
        what = _c_string(f"{function.name}() argument {param.name!r} ({param.type.spell()})")
        arg = f"args[{position}]"
        kind = _param_kind(param.type)
        var = f"a{position}"
        ctype = param.type.pointee if param.type.kind == "enum" else param.type
        assert ctype is not None
        if kind == "int":
            low, high = _INT_LIMITS[ctype.name]
            if ctype.name.startswith("u"):
                yield f"    unsigned long long {var};"
                yield f"    if (ni_unsigned({arg}, {high}, &{var}, {what}, \"{ctype.name}\")) goto fail;"
            else:
                yield f"    long long {var};"
                yield f"    if (ni_signed({arg}, {low}, {high}, &{var}, {what}, \"{ctype.name}\")) goto fail;"
        elif kind == "float":
            yield f"    double {var};"
            yield f"    if (ni_double({arg}, &{var}, {what})) goto fail;"
        elif kind == "bool":
            yield f"    int {var} = PyObject_IsTrue({arg});"
            yield f"    if ({var} < 0) goto fail;"
        elif kind == "string":
            yield f"    const char *{var};"
            yield f"    if (ni_string({arg}, &{var}, {what})) goto fail;"
    for position in buffers:
        param = function.params[position]
        pointee = param.type.pointee
        assert pointee is not None
        what = _c_string(f"{function.name}() argument {param.name!r} ({param.type.spell()})")
        kind, size = _buffer_kind(pointee)
        writable = 0 if param.type.const else 1
        yield f"    void *a{position};"
        yield f"    if (ni_foreign(args[{position}])) {{ /* e.g. a cffi pointer: the cffi wrapper knows it */"
        for earlier in buffers[: buffers.index(position)]:
            yield f"        ni_release(&v{earlier});"
        yield (f"        return PyObject_Vectorcall(PyTuple_GET_ITEM(ni_fallbacks, {index}), args, {count}, NULL);")
        yield "    }"
        buffer_args = f"&v{position}, &a{position}, {kind}, {size}, {writable}, {what}"
        yield f"    if (ni_buffer(args[{position}], {buffer_args})) goto fail;"
    call_args = ", ".join(f"({_c_type(p.type)})a{i}" for i, p in enumerate(function.params))
    call = f"ni_f_{index}({call_args})"
    result = function.result
    statement = f"{call};"
    if result.kind != "void":
        yield f"    {_c_result(result)} r;"
        statement = f"r = {call};"
    yield f"    if (self == NULL) {{ {statement} }}"
    yield f"    else {{ Py_BEGIN_ALLOW_THREADS {statement} Py_END_ALLOW_THREADS }}"
    for position in buffers:
        yield f"    ni_release(&v{position});"
    yield f"    {_convert_result(result)}"
    yield "fail:"
    for position in buffers:
        yield f"    if (v{position}.obj != NULL) ni_release(&v{position});"
    yield "    return NULL;"
    yield "}"
    yield ""


def _buffer_kind(pointee: CType) -> tuple[str, int]:
    if pointee.kind in ("void", "char") or (pointee.kind == "int" and pointee.size == 1):
        return "0", 1
    if pointee.kind == "float":
        return "'f'", pointee.size
    if pointee.kind == "bool":
        return "'b'", 1
    representation = pointee.pointee if pointee.kind == "enum" else pointee
    assert representation is not None
    return ("'u'" if representation.name.startswith("u") else "'i'"), pointee.size


def _convert_result(ctype: CType) -> str:
    if ctype.kind == "void":
        return "Py_RETURN_NONE;"
    if ctype.is_string:
        return "return ni_string_result(r);"
    if ctype.kind == "float":
        return "return PyFloat_FromDouble((double)r);"
    if ctype.kind == "bool":
        return "return PyBool_FromLong(r);"
    representation = ctype.pointee if ctype.kind == "enum" else ctype
    assert representation is not None
    if representation.name.startswith("u"):
        return "return PyLong_FromUnsignedLongLong((unsigned long long)r);"
    return "return PyLong_FromLongLong((long long)r);"


def _module(functions: list[Function]) -> str:
    rows = []
    for index, function in enumerate(functions):
        count = len(function.params)
        flags = "METH_NOARGS" if count == 0 else "METH_O" if count == 1 else "METH_FASTCALL"
        params = ", ".join(python_name(p.name) for p in function.params)
        slash = ", /" if function.params else ""
        doc = f"{python_name(function.name)}({params}{slash})\n--\n\n{function.c_signature()}"
        if function.doc:
            doc += f"\n\n{function.doc}"
        rows.append(f"    {{{_c_string(python_name(function.name))}, (PyCFunction)(void (*)(void))ni_w_{index}, "
                    f"{flags}, {_c_string(doc)}}},")
    symbols = ", ".join(_c_string(f.name) for f in functions)
    return f"""
static PyMethodDef ni_methods[] = {{
{chr(10).join(rows)}
    {{NULL, NULL, 0, NULL}}
}};

static const char *ni_symbols[] = {{{symbols}}};
#define NI_COUNT {len(functions)}

/* bind(library_path, module_name, cffi_namespace) -> (functions, functions releasing the GIL) */
static PyObject *ni_bind(PyObject *self, PyObject *args) {{
    const char *path;
    PyObject *module_name, *namespace;
    if (!PyArg_ParseTuple(args, "sUO!", &path, &module_name, &PyDict_Type, &namespace)) return NULL;
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {{
        PyErr_Format(PyExc_OSError, "cannot load %s: %s", path, dlerror());
        return NULL;
    }}
    void **slots[NI_COUNT] = {{{", ".join(f"(void **)&ni_f_{i}" for i in range(len(functions)))}}};
    for (int i = 0; i < NI_COUNT; i++) {{
        *slots[i] = dlsym(library, ni_symbols[i]);
        if (*slots[i] == NULL) {{
            PyErr_Format(PyExc_OSError, "%s does not export %s", path, ni_symbols[i]);
            return NULL;
        }}
    }}
    PyObject *chosen = PyTuple_New(NI_COUNT);
    if (chosen == NULL) return NULL;
    for (int i = 0; i < NI_COUNT; i++) {{
        PyObject *fallback = PyDict_GetItemString(namespace, ni_methods[i].ml_name);
        if (fallback == NULL) {{
            Py_DECREF(chosen);
            PyErr_Format(PyExc_KeyError, "no cffi wrapper for %s", ni_methods[i].ml_name);
            return NULL;
        }}
        Py_INCREF(fallback);
        PyTuple_SET_ITEM(chosen, i, fallback);
    }}
    Py_XDECREF(ni_fallbacks);
    ni_fallbacks = chosen;
    PyObject *kept = PyDict_New(), *released = PyDict_New();
    if (kept == NULL || released == NULL) goto fail;
    for (int i = 0; i < 2 * NI_COUNT; i++) {{
        /* self == NULL keeps the GIL during the call; any other self releases it */
        PyObject *function = PyCFunction_NewEx(&ni_methods[i % NI_COUNT], i < NI_COUNT ? NULL : self,
                                               module_name);
        if (function == NULL) goto fail;
        int failed = PyDict_SetItemString(i < NI_COUNT ? kept : released, ni_methods[i % NI_COUNT].ml_name,
                                          function);
        Py_DECREF(function);
        if (failed) goto fail;
    }}
    return Py_BuildValue("(NN)", kept, released);
fail:
    Py_XDECREF(kept);
    Py_XDECREF(released);
    return NULL;
}}

static PyMethodDef ni_module_methods[] = {{
    {{"bind", ni_bind, METH_VARARGS, "bind(library_path, module_name, cffi_namespace)"}},
    {{NULL, NULL, 0, NULL}}
}};

static struct PyModuleDef ni_module = {{PyModuleDef_HEAD_INIT, "_nativeimport_fast", NULL, -1, ni_module_methods}};

PyMODINIT_FUNC PyInit__nativeimport_fast(void) {{ return PyModule_Create(&ni_module); }}
"""
