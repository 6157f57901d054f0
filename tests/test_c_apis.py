"""C as real libraries write it: handles, callbacks, unions, bit-fields, variadics, FILE *, split functions.

Every test runs in both binders (cffi alone, and the default where the fast
wrapper serves what it can and hands the rest to cffi); the last runs the
same calls under PyPy when it is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import Runner
from test_interpreters import run_with

BINDERS = [pytest.param({"NATIVEIMPORT_BINDER": "cffi"}, id="cffi"), pytest.param({}, id="auto")]

MINIDB_C = r"""
/* A tiny database in the style of SQLite's open/prepare/step/finalize/close API. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define MINIDB_OK 0
#define MINIDB_ROW 100
#define MINIDB_DONE 101

typedef struct minidb minidb;          /* opaque: defined only as struct minidb_impl below */
typedef struct minidb_stmt minidb_stmt;
typedef int (*minidb_row_fn)(void *context, int ncolumns, const char *first_value);

struct minidb_impl { char name[32]; int rows; char last_error[64]; };
struct minidb_stmt_impl { struct minidb_impl *db; int at; char text[32]; };

/* Open a database; NULL if the name is empty. */
minidb *minidb_open(const char *name) {
    if (name == NULL || !*name) return NULL;
    struct minidb_impl *db = calloc(1, sizeof *db);
    snprintf(db->name, sizeof db->name, "%s", name);
    db->rows = 3;
    return (minidb *)db;
}
int minidb_prepare(minidb *db, const char *sql, minidb_stmt **out) {
    struct minidb_impl *d = (struct minidb_impl *)db;
    if (strncmp(sql, "SELECT", 6) != 0) { snprintf(d->last_error, sizeof d->last_error, "syntax error near %.10s", sql); *out = NULL; return 1; }
    struct minidb_stmt_impl *s = calloc(1, sizeof *s);
    s->db = d;
    *out = (minidb_stmt *)s;
    return MINIDB_OK;
}
minidb_stmt *minidb_query(minidb *db, const char *sql) { minidb_stmt *s; return minidb_prepare(db, sql, &s) == MINIDB_OK ? s : NULL; }
int minidb_step(minidb_stmt *stmt) {
    struct minidb_stmt_impl *s = (struct minidb_stmt_impl *)stmt;
    if (s->at >= s->db->rows) return MINIDB_DONE;
    s->at++;
    snprintf(s->text, sizeof s->text, "row %d of %s", s->at, s->db->name);
    return MINIDB_ROW;
}
const char *minidb_column_text(minidb_stmt *stmt) { return ((struct minidb_stmt_impl *)stmt)->text; }
int minidb_column_int(minidb_stmt *stmt) { return ((struct minidb_stmt_impl *)stmt)->at; }
int minidb_finalize(minidb_stmt *stmt) { free(stmt); return MINIDB_OK; }
const char *minidb_errmsg(minidb *db) { return ((struct minidb_impl *)db)->last_error; }
int minidb_close(minidb *db) { free(db); return MINIDB_OK; }
int minidb_is_null(minidb *db) { return db == NULL; }
int pointer_is_null(const void *p) { return p == NULL; }  /* the fast binder's: a handle goes to cffi's */
/* Run a query, calling back once per row; a non-zero return from the callback stops it. */
int minidb_exec(minidb *db, const char *sql, minidb_row_fn callback, void *context) {
    minidb_stmt *stmt = minidb_query(db, sql);
    if (stmt == NULL) return 1;
    int rc = MINIDB_OK;
    while (minidb_step(stmt) == MINIDB_ROW)
        if (callback != NULL && callback(context, minidb_column_int(stmt), minidb_column_text(stmt)) != 0) { rc = 4; break; }
    minidb_finalize(stmt);
    return rc;
}
"""

PEER_C = r"""
#include <stdio.h>
typedef struct minidb minidb;  /* the same opaque type as minidb.c's, in another module */
int peer_has(const minidb *db) { return db != NULL; }
"""

TOKENS_C = r"""
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
typedef enum { TOKEN_WORD = 1, TOKEN_NUMBER = 2, TOKEN_PUNCT = 3 } token_kind;
typedef bool (*token_fn)(const char *text, token_kind kind, double position);
/* Split text into words, numbers and punctuation; call on_token for each, stop when it returns false. */
int tokenize(const char *text, token_fn on_token) {
    char buf[64]; int count = 0; size_t i = 0, n = strlen(text);
    while (i < n) {
        if (isspace((unsigned char)text[i])) { i++; continue; }
        size_t start = i; token_kind kind;
        if (isalpha((unsigned char)text[i])) { kind = TOKEN_WORD; while (i < n && isalpha((unsigned char)text[i])) i++; }
        else if (isdigit((unsigned char)text[i])) { kind = TOKEN_NUMBER; while (i < n && isdigit((unsigned char)text[i])) i++; }
        else { kind = TOKEN_PUNCT; i++; }
        size_t len = i - start < sizeof buf - 1 ? i - start : sizeof buf - 1;
        memcpy(buf, text + start, len); buf[len] = 0;
        count++;
        if (!on_token(buf, kind, (double)start)) break;
    }
    return count;
}
int apply_twice(int (*f)(int), int v) { return f(f(v)); }
static int negate(int v) { return -v; }
typedef int (*unary)(int);
unary pick(int which) { return which ? negate : NULL; }  /* returns a callback */
int (*pick_raw(void))(int) { return negate; }
"""

COUNTER_C = r"""
#include <stdbool.h>
static int seen;
typedef enum { TOKEN_WORD = 1, TOKEN_NUMBER = 2, TOKEN_PUNCT = 3 } token_kind;
bool count_token(const char *text, token_kind kind, double position) { (void)text; (void)position; seen += kind == TOKEN_WORD; return true; }
int words_seen(void) { return seen; }
int triple(int v) { return 3 * v; }
double halve(double v) { return v / 2; }
"""

SHAPES_C = r"""
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

union number { int32_t i; float f; uint8_t bytes[4]; };
struct flags { unsigned ready : 1; int level : 4; unsigned mode : 3; uint16_t count; };
struct tagged { int kind; union { int32_t i; double d; }; struct { int16_t x, y; }; struct { float w, h; } size; };
struct grid { int32_t cells[2][3]; char name[8]; };
typedef struct grid grid_t;  /* the typedef name is the same type on the module */
struct blob { uint32_t n; uint8_t data[]; };
struct __attribute__((packed)) wire { uint8_t tag; uint32_t value; uint16_t crc; };
struct ops { int (*apply)(int, int); int bias; };
struct __attribute__((aligned(16))) wide { int32_t x; };
typedef struct weird { long double x; int y; } weird;

float number_as_float(union number n) { return n.f; }
union number number_from_int(int32_t i) { union number n; n.i = i; return n; }
int flags_level(const struct flags *f) { return f->level; }
struct flags make_flags(unsigned ready, int level, unsigned mode) { struct flags f = {ready, level, mode, 7}; return f; }
double tagged_value(struct tagged t) { return t.kind ? t.d : t.i; }
int32_t grid_sum(const grid_t *g) { int32_t s = 0; for (int r = 0; r < 2; r++) for (int c = 0; c < 3; c++) s += g->cells[r][c]; return s; }
struct blob *blob_new(uint32_t n) { struct blob *b = malloc(sizeof *b + n); b->n = n; for (uint32_t i = 0; i < n; i++) b->data[i] = (uint8_t)(i * 3); return b; }
uint32_t blob_sum(const struct blob *b) { uint32_t s = 0; for (uint32_t i = 0; i < b->n; i++) s += b->data[i]; return s; }
void blob_free(struct blob *b) { free(b); }
uint32_t wire_value(struct wire w) { return w.value + w.crc; }
uint32_t wire_value_at(const struct wire *w) { return w->value + w->crc; }
int run_ops(const struct ops *o, int a, int b) { return o->apply(a, b) + o->bias; }
struct wide *wide_new(int32_t x) { struct wide *w = aligned_alloc(16, sizeof *w); w->x = x; return w; }
int32_t wide_x_at(const struct wide *w) { return w->x; }
int32_t wide_x(struct wide w) { return w.x; }
int add(int a, int b) { return a + b; }
weird *weird_new(int y) { weird *w = malloc(sizeof *w); w->y = y; w->x = 1.0L; return w; }
int weird_y(const weird *w) { return w->y; }
long double weird_x(weird w) { return w.x; }
int sum_ints(int n, ...) { va_list ap; va_start(ap, n); int s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, int); va_end(ap); return s; }
int vsum(int n, va_list ap) { int s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, int); return s; }
int format(char *buf, size_t n, const char *fmt, ...) { va_list ap; va_start(ap, fmt); int r = vsnprintf(buf, n, fmt, ap); va_end(ap); return r; }
FILE *log_open(const char *path) { return fopen(path, "w"); }
int log_line(FILE *f, const char *line) { return fprintf(f, "%s\n", line); }
int log_close(FILE *f) { return fclose(f); }
__attribute__((noinline, cold)) void report(const char *m, int v) { fprintf(stderr, "%s %d\n", m, v); }
int checked_div(int a, int b) { if (b == 0) { report("division by zero", a); report("divisor", b); return -1; } return a / b; }
int __name__(void) { return 1; }
int ffi(int x) { return x + 1; }  /* a name the generated binding module uses itself */
"""

DATABASE_CALLS = """
    import json, warnings, nativeimport
    nativeimport.install()
    warnings.simplefilter("error")  # nothing in minidb is left out
    import minidb as m
    out = {}
    db = m.minidb_open("main")
    out["null"] = [m.minidb_open(""), m.minidb_is_null(None), m.minidb_is_null(db), m.pointer_is_null(db),
                   m.pointer_is_null(None)]
    stmt = m.minidb_query(db, "SELECT *")
    rows = []
    while m.minidb_step(stmt) == 100:
        rows.append([m.minidb_column_int(stmt), m.minidb_column_text(stmt)])
    out["rows"] = rows
    out["finalize"] = m.minidb_finalize(stmt)
    slot = m.__ffi__.new("struct minidb_stmt **")  # an out-parameter
    out["prepare"] = [m.minidb_prepare(db, "DROP it", slot), slot[0] == m.__ffi__.NULL, m.minidb_errmsg(db)]
    out["prepared"] = m.minidb_prepare(db, "SELECT 1", slot)
    out["step_out_param"] = m.minidb_step(slot[0])
    m.minidb_finalize(slot[0])
    listed = [m.__ffi__.NULL]  # a list: cffi makes a temporary array of it (the call goes to cffi)
    out["prepared_into_list"] = [m.minidb_prepare(db, "SELECT 2", listed), listed[0] == m.__ffi__.NULL]
    for wrong in (m.__ffi__.new("struct minidb **"), 7):
        try:
            m.minidb_prepare(db, "SELECT 3", wrong)
        except TypeError as exc:
            out.setdefault("wrong_out_param", []).append(str(exc))
    try:
        m.minidb_step(db)
    except TypeError as exc:
        out["wrong_handle"] = str(exc)
    try:
        m.minidb_step(42)
    except TypeError as exc:
        out["not_a_handle"] = str(exc)
    seen = []
    out["exec"] = m.minidb_exec(db, "SELECT", lambda context, n, text: seen.append([context, n, text]) or 0, None)
    out["seen"] = seen
    out["exec_stops"] = m.minidb_exec(db, "SELECT", lambda context, n, text: n == 2, None)
    def fails(context, n, text):
        raise KeyError(f"row {n}")
    try:
        m.minidb_exec(db, "SELECT", fails, None)
    except KeyError as exc:
        out["raised_again"] = str(exc)
    import peer
    out["other_module"] = [peer.peer_has(db), peer.peer_has(None)]
    out["close"] = m.minidb_close(db)
    out["served_by"] = [type(m.minidb_step).__name__, type(m.minidb_exec).__name__,
                        type(m.minidb_prepare).__name__]
    print(json.dumps(out))
"""


def check_database(out: dict[str, object]) -> None:
    assert out["null"] == [None, 1, 0, 0, 1]
    assert out["rows"] == [[1, "row 1 of main"], [2, "row 2 of main"], [3, "row 3 of main"]]
    assert out["finalize"] == 0
    assert out["prepare"] == [1, True, "syntax error near DROP it"]
    assert out["prepared"] == 0 and out["step_out_param"] == 100
    assert out["prepared_into_list"] == [0, True]  # the temporary array got the pointer, not the list
    # cffi's words (PyPy's cffi says "a compatible pointer" where CPython's says "a pointer to same type")
    prefix = "minidb_prepare() argument 'out' (minidb_stmt **): initializer for ctype 'struct minidb_stmt * *' must be "
    wrong_type, not_a_pointer = out["wrong_out_param"]  # type: ignore[misc]
    assert wrong_type.startswith(prefix) and wrong_type.endswith(", not cdata 'struct minidb * *'")
    assert not_a_pointer == prefix + "a cdata pointer, not int"
    assert "minidb_step() argument 'stmt' (minidb_stmt *): expected a 'struct minidb_stmt *' handle" in str(
        out["wrong_handle"])
    assert "<cdata 'struct minidb *'>" in str(out["wrong_handle"])
    assert "not int" in str(out["not_a_handle"])
    assert out["exec"] == 0
    assert out["seen"] == [[None, 1, "row 1 of main"], [None, 2, "row 2 of main"], [None, 3, "row 3 of main"]]
    assert out["exec_stops"] == 4
    assert out["raised_again"] == "'row 1'"
    assert out["other_module"] == [1, 0]
    assert out["close"] == 0


@pytest.mark.parametrize("binder", BINDERS)
def test_a_database_style_handle_api(runner: Runner, binder: dict[str, str]) -> None:
    runner.write("minidb.c", MINIDB_C)
    runner.write("peer.c", PEER_C)
    done = runner.run(DATABASE_CALLS, env=binder)
    out = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    check_database(out)
    # By default the fast wrapper serves the handle functions (taking and returning cffi's own pointer
    # objects), the one taking a callback with a void * context (cffi's cdata too, None here) and the one
    # with an out-parameter (struct minidb_stmt **: a cdata converted as cffi converts it).
    assert out["served_by"] == (["function"] * 3 if binder else ["builtin_function_or_method"] * 3)
    # The callback's later exceptions (rows 2 and 3) were reported, not lost.
    assert "KeyError: 'row 2'" in done.stderr and "KeyError: 'row 3'" in done.stderr


PARSER_CALLS = """
    import json, nativeimport
    nativeimport.install()
    import tokens, counter
    out = {}
    found = []
    out["count"] = tokens.tokenize("hello, world 42!", lambda text, kind, at: found.append([text, kind, at]) or True)
    out["tokens"] = found
    out["stops"] = tokens.tokenize("a b c d", lambda text, kind, at: text != "b")
    out["native"] = [tokens.tokenize("one two 3 four", counter.count_token), counter.words_seen()]
    out["twice"] = [tokens.apply_twice(counter.triple, 2), tokens.apply_twice(lambda v: v + 1, 2)]
    keep = lambda v: v - 1  # held by the caller: its callback is made once and reused
    out["held"] = [tokens.apply_twice(keep, 10), tokens.apply_twice(keep, 20)]
    out["returned"] = [tokens.pick(1)(5), tokens.pick(0), tokens.apply_twice(tokens.pick_raw(), 3)]
    import gc, weakref
    gone = weakref.ref(keep)
    del keep
    gc.collect()
    out["released"] = gone() is None  # its callback does not keep the function alive
    for bad in (counter.halve, 5):
        try:
            tokens.apply_twice(bad, 2)
        except TypeError as exc:
            out.setdefault("errors", []).append(str(exc))
    def no_words(text, kind, at):
        if kind == tokens.TOKEN_WORD:
            raise ValueError(f"a word: {text}")
        return True
    try:
        tokens.tokenize("1 + x", no_words)
    except ValueError as exc:
        out["raised_again"] = str(exc)
    print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_a_callback_driven_parser(runner: Runner, binder: dict[str, str]) -> None:
    runner.write("tokens.c", TOKENS_C)
    runner.write("counter.c", COUNTER_C)
    out = runner.json(PARSER_CALLS, env=binder)
    assert out["count"] == 5
    assert out["tokens"] == [["hello", 1, 0.0], [",", 3, 5.0], ["world", 1, 7.0], ["42", 2, 13.0], ["!", 3, 15.0]]
    assert out["stops"] == 2
    assert out["native"] == [4, 3]  # counter's C function called by tokens' C code, no Python between
    assert out["twice"] == [18, 4]
    assert out["held"] == [8, 18]
    assert out["returned"] == [-5, None, 3]
    assert out["released"] is True  # a returned function pointer is callable, and passed back as is
    assert "expected a function 'int32_t(*)(int32_t)', not one of type 'double(*)(double)'" in out["errors"][0]
    assert "expected a function (native or Python), not int" in out["errors"][1]
    assert out["raised_again"] == "a word: x"


SHAPES_CALLS = """
    import json, warnings, nativeimport
    nativeimport.install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import shapes as s
    out = {"left_out": sorted(f"shapes.{name}" for name in s.__native_left_out__),
           "warned": [str(w.message).split(";")[0] for w in caught]}
    n = s.number_from_int(0x3F800000)
    out["union"] = [n.f, list(n.bytes), s.number_as_float(s.number(f=2.5)), s.number_as_float(n)]
    f = s.make_flags(1, -3, 5)
    out["bitfields"] = [f.ready, f.level, f.mode, f.count, s.flags_level(s.flags(level=-8)), s.flags_level(f)]
    t = s.tagged(kind=1, d=2.5)
    out["anonymous"] = [t.d, s.tagged_value(t), s.tagged_value(s.tagged(kind=0, i=4)), s.tagged(x=1, y=-2).y,
                        s.tagged(size={"w": 1.5}).size.w, hasattr(s, "_ni_anon_tagged_size")]
    g = s.grid(cells=[[1, 2, 3], [4, 5, 6]], name=b"hi")
    out["arrays"] = [s.grid_sum(g), list(g.cells[1]), bytes(g.name).rstrip(bytes(1)).decode(), s.grid_t is s.grid]
    b = s.blob_new(4)
    out["flexible"] = [b.n, s.blob_sum(b), [b.data[i] for i in range(4)]]
    s.blob_free(b)
    out["packed"] = [s.wire_value_at(s.wire(tag=1, value=1000, crc=2)), s.__ffi__.sizeof("struct wire")]
    w = s.wide_new(7)
    out["wide"] = [s.wide_x_at(w), s.wide_x_at(None) if False else None]
    native = s.ops(apply=s.add, bias=100)
    python = s.ops(apply=lambda a, b: a * b)
    out["fields"] = [s.run_ops(native, 2, 3), s.run_ops(python, 2, 3), native.apply(20, 22)]
    minus = s.__ffi__.callback("int32_t(int32_t, int32_t)", lambda a, b: a - b)  # held while C may call it
    python.apply = minus
    out["set_field"] = s.run_ops(python, 10, 3)
    out["help"] = s.tagged.__doc__
    print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_unions_bitfields_anonymous_members_arrays_and_function_pointer_fields(runner: Runner,
                                                                               binder: dict[str, str]) -> None:
    runner.write("shapes.c", SHAPES_C)
    out = runner.json(SHAPES_CALLS, env=binder)
    assert out["left_out"] == ["shapes.__name__", "shapes.vsum", "shapes.weird_x", "shapes.wide_x",
                               "shapes.wire_value"]
    assert out["warned"] == ["shapes: 5 exports left out (__name__, vsum, weird_x, wide_x and 1 more)"]
    assert out["union"] == [1.0, [0, 0, 128, 63], 2.5, 1.0]
    assert out["bitfields"] == [1, -3, 5, 7, -8, -3]
    assert out["anonymous"] == [2.5, 2.5, 4.0, -2, 1.5, False]
    assert out["arrays"] == [21, [4, 5, 6], "hi", True]
    assert out["flexible"] == [4, 18, [0, 3, 6, 9]]
    assert out["packed"] == [1002, 7]
    assert out["wide"][0] == 7
    assert out["fields"] == [105, 6, 42]
    assert out["set_field"] == 7
    assert out["help"].startswith("struct tagged { int kind; union { int32_t i; double d; }; struct {")
    assert out["help"].endswith("struct {...} size; }")


def test_each_left_out_export_says_why(runner: Runner) -> None:
    runner.write("shapes.c", SHAPES_C)
    shown = runner.cli("show", "shapes.c").stdout
    assert "vsum: parameter 'ap' is a va_list, which Python cannot build" in shown
    assert "__name__: its name would replace the module's own attribute __name__" in shown
    assert "wire_value: parameter 'w' is the packed struct wire by value, which libffi cannot pass" in shown
    assert "wide_x: parameter 'w' uses struct wide by value, which is opaque (cffi lays it out unlike the " \
           "compiler (cffi's size is 4 bytes, the compiler's 16))" in shown
    assert "weird_x: its result is long double (128-bit)" in shown
    assert "def weird_y(w: weird | None) -> int:" in shown  # a pointer to what cannot be described: a handle
    out = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import shapes
        w = shapes.weird_new(5)
        print(json.dumps([shapes.__name__, shapes.weird_y(w), repr(w).startswith("<cdata 'struct weird *'"),
                          shapes.ffi(1), shapes.add(2, 3)]))
    """)
    assert out == ["shapes", 5, True, 2, 5]


VARIADIC_AND_FILE_CALLS = """
    import json, nativeimport
    nativeimport.install()
    import shapes as s
    out = {}
    buf = bytearray(80)
    def fmt(text, *args):
        size = s.format(buf, len(buf), text, *args)
        return bytes(buf[:size]).decode()
    out["sum"] = [s.sum_ints(3, 1, 2, 3), s.sum_ints(0)]
    out["format"] = [fmt("%s=%d %.2f", "x", -5, 2.5), fmt("%s|%s", b"raw", "h\\u00e9"), fmt("%p", None),
                     fmt("%lld", 2**40), fmt("%lld", s.__ffi__.cast("long long", -(2**40)))]
    try:
        s.format(buf, 80, "%d", [1])
    except TypeError as exc:
        out["bad"] = str(exc)
    path = PATH
    log = s.log_open(path)
    out["file"] = [s.log_line(log, "first"), s.log_line(log, "second"), s.log_close(log), open(path).read()]
    out["no_file"] = s.log_open("/nonexistent/folder/x.log")
    print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_variadic_calls_and_a_file_pointer(runner: Runner, binder: dict[str, str], tmp_path: Path) -> None:
    runner.write("shapes.c", SHAPES_C)
    out = runner.json(VARIADIC_AND_FILE_CALLS.replace("PATH", repr(str(tmp_path / "out.log"))), env=binder)
    assert out["sum"] == [6, 0]
    assert out["format"] == ["x=-5 2.50", "raw|h\u00e9", "(nil)", str(2**40), str(-(2**40))]
    assert "format() argument 4 (variadic): cannot pass list through '...'" in out["bad"]
    assert "__ffi__.cast('long', x)" in out["bad"]
    assert out["file"] == [6, 7, 0, "first\nsecond\n"]
    assert out["no_file"] is None


@pytest.mark.parametrize("binder", BINDERS)
def test_a_function_split_into_hot_and_cold_parts_binds(runner: Runner, binder: dict[str, str]) -> None:
    runner.write("shapes.c", SHAPES_C)
    out = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import shapes
        from elftools.elf.elffile import ELFFile
        with open(shapes.__native_library__, "rb") as stream:
            dwarf = ELFFile(stream).get_dwarf_info()
            split = [sorted(die.attributes) for cu in dwarf.iter_CUs() for die in cu.iter_DIEs()
                     if die.tag == "DW_TAG_subprogram" and die.attributes.get("DW_AT_name")
                     and die.attributes["DW_AT_name"].value == b"checked_div"]
        print(json.dumps([split, shapes.checked_div(7, 2), shapes.checked_div(1, 0)]))
    """, env=binder)
    (attributes,), halved, failed = out
    assert "DW_AT_ranges" in attributes and "DW_AT_low_pc" not in attributes  # really split by gcc -O2
    assert [halved, failed] == [3, -1]


def test_the_same_calls_under_pypy(runner: Runner, pypy: Path) -> None:
    """PyPy's built-in cffi (1.15 on Debian) runs the same bindings: the entry CPython built serves it."""
    runner.write("minidb.c", MINIDB_C)
    runner.write("peer.c", PEER_C)
    runner.write("tokens.c", TOKENS_C)
    runner.write("counter.c", COUNTER_C)
    runner.write("shapes.c", SHAPES_C)
    out, _ = run_with(runner, pypy, DATABASE_CALLS)
    assert isinstance(out, dict)
    check_database(out)
    parsed, _ = run_with(runner, pypy, PARSER_CALLS)
    assert isinstance(parsed, dict) and parsed["native"] == [4, 3] and parsed["raised_again"] == "a word: x"
    shaped, _ = run_with(runner, pypy, SHAPES_CALLS)
    assert isinstance(shaped, dict)
    assert shaped["union"] == [1.0, [0, 0, 128, 63], 2.5, 1.0] and shaped["fields"] == [105, 6, 42]
    assert shaped["bitfields"] == [1, -3, 5, 7, -8, -3] and shaped["flexible"] == [4, 18, [0, 3, 6, 9]]
    called, _ = run_with(runner, pypy, VARIADIC_AND_FILE_CALLS.replace("PATH", repr(str(runner.project / "p.log"))))
    assert isinstance(called, dict)
    assert called["format"] == ["x=-5 2.50", "raw|h\u00e9", "(nil)", str(2**40), str(-(2**40))]
    assert called["file"] == [6, 7, 0, "first\nsecond\n"] and called["no_file"] is None


ZIPS_RS = """
use std::collections::HashMap;
/// Not #[repr(C)]: C (and Python) only ever hold a pointer to it.
pub struct ZipCodeDatabase { codes: HashMap<u32, String>, lookups: Vec<u32> }

#[unsafe(no_mangle)]
pub extern "C" fn zip_new() -> *mut ZipCodeDatabase {
    let mut codes = HashMap::new();
    codes.insert(10001, "New York".to_string());
    Box::into_raw(Box::new(ZipCodeDatabase { codes, lookups: Vec::new() }))
}
#[unsafe(no_mangle)]
pub extern "C" fn zip_known(db: *mut ZipCodeDatabase, code: u32) -> bool {
    if db.is_null() { return false; }
    let db = unsafe { &mut *db };
    db.lookups.push(code);
    db.codes.contains_key(&code)
}
#[unsafe(no_mangle)]
pub extern "C" fn zip_lookups(db: *const ZipCodeDatabase) -> u32 {
    if db.is_null() { 0 } else { unsafe { (*db).lookups.len() as u32 } }
}
#[unsafe(no_mangle)]
pub extern "C" fn zip_free(db: *mut ZipCodeDatabase) {
    if !db.is_null() { unsafe { drop(Box::from_raw(db)); } }
}
"""


@pytest.mark.skipif(shutil.which("rustc") is None, reason="rustc is not installed (https://rustup.rs)")
@pytest.mark.parametrize("binder", BINDERS)
def test_a_pointer_to_a_rust_type_that_is_not_repr_c_is_a_handle(runner: Runner, binder: dict[str, str]) -> None:
    runner.write("zips.rs", ZIPS_RS)
    out = runner.json("""
        import json, warnings, nativeimport
        nativeimport.install()
        warnings.simplefilter("error")
        import zips
        db = zips.zip_new()
        out = [zips.zip_known(db, 10001), zips.zip_known(db, 99999), zips.zip_lookups(db), zips.zip_lookups(None)]
        zips.zip_free(db)
        print(json.dumps(out))
    """, env=binder)
    assert out == [True, False, 2, 0]


POINTER_RESULTS_C = """
#include <stddef.h>
static const double table[3] = {1.5, 2.5, 3.5};
static char *words[] = {"alpha", "beta", NULL};
static int counter = 41;
void *counter_address(void) { return &counter; }
const double *table_at(int i) { return i < 0 ? NULL : table + i; }
char **word_list(void) { return words; }
void *nothing(void) { return NULL; }
char *mutable_word(int i) { return words[i]; }
"""

POINTER_RESULTS_CALLS = """
    import json, sys, nativeimport
    nativeimport.install()
    import results as r
    out = {"null": [r.nothing(), r.table_at(-1)], "cffi_after_nulls": "_cffi_backend" in sys.modules}
    ffi = r.__ffi__
    def shown(p):
        return [ffi.typeof(p).cname, p == ffi.NULL]
    c, t, w, m = r.counter_address(), r.table_at(1), r.word_list(), r.mutable_word(1)
    out["types"] = [shown(p) for p in (c, t, w, m)]
    out["values"] = [ffi.cast("int *", c)[0], t[0], t[1], ffi.string(w[0]).decode(), w[2] == ffi.NULL,
                     ffi.string(m).decode()]
    out["served_by"] = sorted({type(getattr(r, n)).__name__ for n in ("counter_address", "table_at", "word_list",
                                                                        "nothing", "mutable_word")})
    print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_pointer_results_are_cdata_of_their_type(runner: Runner, binder: dict[str, str]) -> None:
    """void *, const double *, char **: a cdata of the cffi binding's type, None for NULL, from either binder;
    the fast wrapper loads cffi for the first non-NULL one only."""
    runner.write("results.c", POINTER_RESULTS_C)
    runner.run("import nativeimport; nativeimport.install(); import results")  # built: the calls below hit
    out = runner.json(POINTER_RESULTS_CALLS, env=binder)
    assert out["null"] == [None, None]
    assert out["types"] == [["void *", False], ["double *", False], ["char * *", False], ["char *", False]]
    assert out["values"] == [41, 2.5, 3.5, "alpha", True, "beta"]
    assert out["served_by"] == (["function"] if binder else ["builtin_function_or_method"])
    assert out["cffi_after_nulls"] is bool(binder)


def test_a_module_of_handles_imports_without_cffi_until_a_handle_crosses(runner: Runner, tmp_path: Path) -> None:
    """Handles are cffi's pointer objects, but their type is fetched from the cffi binding only when the first
    one crosses: the import and a NULL result (None) load no cffi; the first real handle does."""
    runner.write("logfile.c", """
        #include <stdio.h>
        FILE *log_open(const char *path) { return fopen(path, "w"); }
        int log_line(FILE *f, const char *line) { return fprintf(f, "%s\\n", line); }
        int log_close(FILE *f) { return fclose(f); }
    """)
    runner.run("import nativeimport; nativeimport.install(); import logfile")  # built: a hit below
    target = tmp_path / "log.txt"
    out = runner.json(f"""
        import json, sys, nativeimport
        nativeimport.install()
        import logfile
        loaded = ["_cffi_backend" in sys.modules]
        missing = logfile.log_open({str(tmp_path / "no" / "such" / "dir")!r})
        loaded.append("_cffi_backend" in sys.modules)
        f = logfile.log_open({str(target)!r})
        loaded.append("_cffi_backend" in sys.modules)
        print(json.dumps([loaded, missing, type(logfile.log_line).__name__, logfile.__ffi__.typeof(f).cname,
                          logfile.log_line(f, "hello"), logfile.log_close(f)]))
    """)
    assert out == [[False, False, True], None, "builtin_function_or_method", "FILE *", 6, 0]
    assert target.read_text() == "hello\n"
