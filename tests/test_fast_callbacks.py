"""Functions taking callbacks, served by the fast wrapper's trampolines (and the same calls through cffi).

Each scenario runs in both binders: the default, where the fast wrapper serves
the functions (checked: they are builtin functions, and cffi is not even
imported until something needs it), and cffi alone; the answers must agree.
"""

from __future__ import annotations

import pytest
from helpers import Runner

BINDERS = [pytest.param({"NATIVEIMPORT_BINDER": "cffi"}, id="cffi"), pytest.param({}, id="auto")]

EVENTS_C = r"""
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { RED = 1, GREEN = 2 } color;
typedef int32_t (*compare_fn)(int32_t, int32_t);

/* Sort in place with the caller's comparison, as qsort would (by value: qsort's void pointers are cffi's). */
void sort_ints(int32_t *xs, int n, compare_fn cmp) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && cmp(xs[j - 1], xs[j]) > 0; j--) { int32_t t = xs[j]; xs[j] = xs[j - 1]; xs[j - 1] = t; }
}
double integrate(double (*f)(double), double a, double b, int n) {
    double h = (b - a) / n, s = 0;
    for (int i = 0; i < n; i++) s += f(a + (i + 0.5) * h);
    return s * h;
}
static int32_t (*stored)(int32_t);
void on_event(int32_t (*f)(int32_t)) { stored = f; }  /* kept: called later by fire() */
int32_t fire(int32_t v) { return stored ? stored(v) : -1; }
int32_t fire_with(int32_t (*f)(int32_t), int32_t v) { return f(v) + (stored ? stored(v) : 0); }
int describe(void (*f)(const char *, color, bool), const char *name) { f(name, GREEN, true); f(NULL, RED, false); return 2; }
int32_t twice(int32_t (*f)(int32_t), int32_t v) { return f(f(v)); }
int32_t negate(int32_t v) { return -v; }
uint64_t widest(uint64_t (*f)(uint64_t)) { return f(UINT64_MAX); }
bool all_of(bool (*f)(int32_t), int32_t n) { for (int32_t i = 0; i < n; i++) if (!f(i)) return false; return true; }
static int32_t (*job_f)(int32_t);
static int32_t job_v, job_r;
static void *run_job(void *unused) { (void)unused; job_r = job_f(job_v); return NULL; }
/* Calls back from a thread of its own, waiting for it: hangs if the call holds the GIL. */
int32_t in_thread(int32_t (*f)(int32_t), int32_t v) {
    pthread_t thread;
    job_f = f; job_v = v; job_r = 0;
    if (pthread_create(&thread, NULL, run_job, NULL) != 0) return -1;
    pthread_join(thread, NULL);
    return job_r;
}
"""

PEER_C = r"""
#include <stdint.h>
int32_t add_one(int32_t v) { return v + 1; }
double halve(double v) { return v / 2; }
"""

CALLS = """
    import array, gc, json, math, sys, weakref, nativeimport
    nativeimport.install()
    import events as e, peer
    out = {"served_by": sorted({type(getattr(e, name)).__name__ for name in ("sort_ints", "integrate", "on_event",
                                                                          "describe", "twice", "widest")})}
    xs = array.array("i", [5, -2, 9, 0, 3])
    e.sort_ints(xs, len(xs), lambda a, b: (a > b) - (a < b))
    out["sorted"] = list(xs)
    e.sort_ints(xs, len(xs), lambda a, b: b - a)
    out["reversed"] = list(xs)
    out["integral"] = [round(e.integrate(lambda x: x * x, 0.0, 3.0, 1000), 4), e.integrate(math.sqrt, 0.0, 2.0, 1)]
    seen = []
    out["describe"] = [e.describe(lambda *args: seen.append(args), "éa"), seen]
    out["widest"] = e.widest(lambda v: v - 1)
    out["bools"] = [e.all_of(lambda i: i < 5, 5), e.all_of(lambda i: i < 5, 6), e.all_of(lambda i: [i], 3)]

    def times_ten(v):
        return v * 10
    e.on_event(times_ten)
    out["fired"] = [e.fire(4), e.fire(-1)]
    out["cffi_imported_early"] = "_cffi_backend" in sys.modules

    # Exceptions: raised again when the call that took the callback returns; later ones are reported.
    def bad(v):
        raise KeyError(f"bad {v}")
    try:
        e.twice(bad, 1)
    except KeyError as exc:
        out["raised_again"] = str(exc)
    try:
        e.twice(lambda v: None, 1)
    except TypeError as exc:
        out["bad_result"] = "integer" in str(exc)
    # Fired outside any call taking a callback: nobody to raise it to, reported, C gets 0.
    e.on_event(bad)
    out["fired_bad"] = e.fire(7)
    sys.stderr.flush()
    if type(e.fire).__name__ == "builtin_function_or_method":  # with cffi, C would call a freed closure
        # Its function gone: ReferenceError, reported the same way, never a crash.
        gone = weakref.ref(bad)
        del bad
        gc.collect()
        out["dead"] = [gone() is None, e.fire(8)]
    e.on_event(None)
    out["none"] = e.fire(1)

    # Native functions: this module's own (its C address, no cffi), another module's (through cffi), a wrong type.
    out["native"] = [e.twice(e.negate, 5)]
    out["cffi_imported_early"] = out["cffi_imported_early"] or "_cffi_backend" in sys.modules
    out["native"].append(e.twice(peer.add_one, 5))
    for wrong in (peer.halve, 5):
        try:
            e.twice(wrong, 1)
        except TypeError as exc:
            out.setdefault("wrong", []).append(str(exc).split(": ", 1)[1])

    class Fixed:  # no weak references: a slot for the call only
        __slots__ = ("by",)
        def __init__(self, by):
            self.by = by
        def __call__(self, v):
            return v + self.by
    out["strong"] = [e.twice(Fixed(by), 0) for by in range(40)][-3:]

    # More live functions than the pool has trampolines: the rest through cffi, all answers right.
    e.on_event(times_ten)
    live = [(lambda k: lambda v: v * k)(k) for k in range(40)]
    out["many"] = [e.twice(f, 1) for f in live] == [k * k for k in range(40)]
    out["fired_after"] = e.fire(6)
    # A callback cffi made (the pool was full) raising during a call the fast wrapper serves: raised again.
    def worse(v):
        raise LookupError(f"worse {v}")
    e.on_event(worse)
    try:
        e.fire_with(live[0], 3)
    except LookupError as exc:
        out["across_binders"] = str(exc)
    out["temporaries"] = sum(e.twice(lambda v, k=k: v + k, 0) for k in range(100))
    print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_callbacks_convert_keep_raise_and_fall_back_like_cffi(runner: Runner, binder: dict[str, str]) -> None:
    runner.write("events.c", EVENTS_C)
    runner.write("peer.c", PEER_C)
    runner.run("import nativeimport; nativeimport.install(); import events, peer", env=binder)  # built: a hit below
    done = runner.run(CALLS, env=binder)
    out = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    fast = not binder
    assert out["served_by"] == (["builtin_function_or_method"] if fast else ["function"])
    assert out["sorted"] == [-2, 0, 3, 5, 9]
    assert out["reversed"] == [9, 5, 3, 0, -2]
    assert out["integral"] == [9.0, 2.0]  # the midpoint rule: 8.99999775; a builtin function is a Python callable
    assert out["describe"] == [2, [["éa", 2, True], [None, 1, False]]]
    assert out["widest"] == 2**64 - 2
    assert out["bools"] == [True, False, True]
    assert out["fired"] == [40, -10]
    assert out["raised_again"] == "'bad 1'"  # the first one raised, the second (C went on with 0) reported
    assert "KeyError: 'bad 0'" in done.stderr and "an earlier one is raised" in done.stderr
    assert out["bad_result"] is True
    assert out["fired_bad"] == 0
    assert "KeyError: 'bad 7'" in done.stderr
    if fast:
        assert out["dead"] == [True, 0]
        assert "ReferenceError: the Python function behind this C callback no longer exists" in done.stderr
    assert out["none"] == -1
    assert out["native"] == [5, 7]
    assert out["wrong"] == ["expected a function 'int32_t(*)(int32_t)', not one of type 'double(*)(double)'",
                            "expected a function (native or Python), not int"]
    assert out["strong"] == [74, 76, 78]
    assert out["many"] is True
    assert out["fired_after"] == 60  # the stored callback kept its slot while the pool filled
    assert out["across_binders"] == "worse 3"
    assert out["temporaries"] == sum(2 * k for k in range(100))
    if fast:  # the fast wrapper served all of it up to the full pool without cffi
        assert out["cffi_imported_early"] is False


THREADS = """
    import json, threading, nativeimport
    nativeimport.install()
    import events as e
    out = {"served_by": type(e.in_thread).__name__}
    out["thread_default"] = e.in_thread(lambda v: v * 2, 21)  # without release_gil: the call released it
    nativeimport.release_gil(e, "integrate", "in_thread", "twice")
    out["integral"] = round(e.integrate(lambda x: 2 * x, 0.0, 1.0, 100), 6)
    nativeimport.keep_gil(e, "integrate", "negate")  # a callback from this thread only: cheaper with the GIL kept
    out["kept"] = [e.integrate is e.__native_keep_gil__.get("integrate"), "negate" in e.__native_keep_gil__,
                   round(e.integrate(lambda x: 2 * x, 0.0, 1.0, 100), 6)]
    out["thread"] = e.in_thread(lambda v: v * 3, 14)  # called back from C's own thread
    def bad(v):
        raise ValueError(f"thread {v}")
    out["thread_bad"] = e.in_thread(bad, 5)  # no call in progress on that thread: reported
    try:
        e.twice(bad, 1)
    except ValueError as exc:
        out["raised_again"] = str(exc)
    results, errors = {}, {}
    def work(k):  # threads at once, each its callbacks and its exceptions
        results[k] = [e.twice(lambda v: v + k, 0) for _ in range(300)][-1]
        try:
            e.twice(lambda v: 1 // (v - v), k)
        except ZeroDivisionError:
            errors[k] = True
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    out["threads"] = [results, errors]
    print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", BINDERS)
def test_callbacks_with_the_gil_released_and_from_a_thread_of_c(runner: Runner, binder: dict[str, str]) -> None:
    runner.write("events.c", EVENTS_C)
    done = runner.run(THREADS, env=binder)
    out = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert out["served_by"] == ("function" if binder else "builtin_function_or_method")
    assert out["integral"] == 1.0
    assert out["kept"] == [not binder, False, 1.0]  # only functions taking callbacks have the variant
    assert out["thread"] == 42 and out["thread_default"] == 42
    assert out["thread_bad"] == 0 and "ValueError: thread 5" in done.stderr
    assert out["raised_again"] == "thread 1"
    assert out["threads"] == [{str(k): 2 * k for k in range(4)}, {str(k): True for k in range(4)}]


POINTERS_C = r"""
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct point { int32_t x, y; };

/* inih's handler: called per "name=value" line; zero stops the parse at that line. */
typedef int (*ini_handler)(void *user, const char *section, const char *name, const char *value);

/* "[section]" and "name=value" lines from a string; 0, or the number of the line the handler refused.
   A line without '=' is passed with a NULL value. */
int ini_parse_string(const char *text, ini_handler handler, void *user) {
    char line[128], section[32] = "";
    int number = 0;
    while (*text) {
        size_t n = strcspn(text, "\n");
        size_t kept = n < sizeof line - 1 ? n : sizeof line - 1;
        memcpy(line, text, kept);
        line[kept] = 0;
        text += n + (text[n] == '\n');
        number++;
        if (line[0] == '[') {
            line[strcspn(line, "]")] = 0;
            strncpy(section, line + 1, sizeof section - 1);
            continue;
        }
        char *equals = strchr(line, '=');
        if (equals != NULL) *equals = 0;
        if (!handler(user, section, line, equals ? equals + 1 : NULL)) return number;
    }
    return 0;
}

/* libc's qsort with the caller's comparator, and one of this module's own. */
void sort_with(int32_t *xs, size_t n, int (*compare)(const void *, const void *)) { qsort(xs, n, sizeof *xs, compare); }
int compare_ints(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* sqlite3_exec's callback: a row's values (NULL for SQL NULL) and its column names; non-zero aborts. */
typedef int (*row_fn)(void *user, int columns, char **values, char **names);
int each_row(row_fn callback, void *user) {
    static char *names[] = {"id", "name", "note"};
    static char *rows[2][3] = {{"1", "ada", NULL}, {"2", "bob", "hi"}};
    for (int i = 0; i < 2; i++)
        if (callback(user, 3, rows[i], names)) return 4;  /* SQLITE_ABORT */
    return 0;
}
int no_rows(row_fn callback) { return callback(NULL, 0, NULL, NULL); }

/* The caller's allocator gives the memory C fills; a NULL result is refused. */
int32_t fill_squares(void *(*allocate)(void *context, size_t size), void *context, int32_t n) {
    int32_t *xs = allocate(context, n * sizeof *xs);
    if (xs == NULL) return -1;
    int32_t sum = 0;
    for (int32_t i = 0; i < n; i++) sum += xs[i] = i * i;
    return sum;
}
static void *(*job_allocate)(void *, size_t);
static int32_t job_sum;
static void *run_fill(void *unused) { (void)unused; job_sum = fill_squares(job_allocate, NULL, 3); return NULL; }
/* The same from a thread of C's own, waited for. */
int32_t fill_in_thread(void *(*allocate)(void *context, size_t size)) {
    pthread_t thread;
    job_allocate = allocate;
    if (pthread_create(&thread, NULL, run_fill, NULL) != 0) return -2;
    pthread_join(thread, NULL);
    return job_sum;
}
int32_t point_sum(struct point *(*find)(int32_t), int32_t key) {
    struct point *p = find(key);
    return p == NULL ? -1 : p->x + p->y;
}
int32_t name_length(const char *(*name)(int32_t), int32_t key) {
    const char *text = name(key);
    return text == NULL ? -1 : (int32_t)strlen(text);
}
/* A pointer to C's own struct, which the callback moves. */
int32_t moved(void (*move)(struct point *, int32_t), int32_t by) {
    struct point p = {1, 2};
    move(&p, by);
    return 100 * p.x + p.y;
}
int32_t plain(int32_t v) { return v + 1; }
"""

POINTER_CALLS = """
    import array, json, sys, nativeimport
    nativeimport.install()
    import pointers as p
    functions = ("ini_parse_string", "sort_with", "each_row", "no_rows", "fill_squares", "fill_in_thread",
                 "point_sum", "name_length", "moved")
    out = {"served_by": sorted({type(getattr(p, name)).__name__ for name in functions})}
    out["plain"] = p.plain(1)
    out["cffi_before_a_pointer_callback"] = "_cffi_backend" in sys.modules
    via = []  # per callback: called from cffi's callback machinery (else straight from the fast wrapper's C)

    def called(result):
        caller = sys._getframe(1).f_back  # the callback's caller; none when C calls from a thread of its own
        via.append(caller is not None and caller.f_code.co_filename.endswith("_cffi_callbacks.py"))
        return result

    ffi = p.__ffi__

    def kind(value):  # a cdata's type as cffi spells it
        return ffi.getctype(ffi.typeof(value))

    def cdata(value):  # how a value reached the callback, comparable across binders
        return None if value is None else [kind(value), int(ffi.cast("uintptr_t", value))]

    # inih: a void *user the handler writes through (a bytearray's memory), None when NULL
    text = "top=1\\n[server]\\nhost=example.org\\nport = 80\\nflag\\n[empty]\\nlast=\\n"
    seen, counts = [], bytearray(1)
    def handler(user, section, name, value):
        seen.append([cdata(user), section, name, value])
        if user is not None:
            ffi.cast("uint8_t *", user)[0] += 1
        return called(name != "stop")
    out["ini"] = [p.ini_parse_string(text, handler, counts), counts[0], p.ini_parse_string("a=1\\nstop\\nb=2", handler, None)]
    address = int(ffi.cast("uintptr_t", ffi.from_buffer(counts)))
    out["ini_seen"] = [[None if user is None else [user[0], user[1] == address], *rest] for user, *rest in seen]

    # qsort: the comparator reads through its const void * arguments
    xs = array.array("i", [5, -2, 9, 0, 3, 9, -7])
    types = set()
    def compare(a, b):
        types.update([kind(a), kind(b)])
        x, y = ffi.cast("int32_t *", a)[0], ffi.cast("int32_t *", b)[0]
        return called((x > y) - (x < y))
    p.sort_with(xs, len(xs), compare)
    out["sorted"] = [list(xs), sorted(types)]
    ys = array.array("i", [3, 1, 2])
    p.sort_with(ys, len(ys), p.compare_ints)  # this module's own comparator: its C address, no Python
    out["sorted_natively"] = list(ys)

    # sqlite3_exec: char ** rows with NULL values; NULL arrays reach Python as None
    rows = []
    def row(user, columns, values, names):
        rows.append([cdata(user), columns, [None if values[i] == ffi.NULL else ffi.string(values[i]).decode()
                                            for i in range(columns)],
                     [ffi.string(names[i]).decode() for i in range(columns)], kind(values)])
        return called(0)
    out["rows"] = [p.each_row(row, None), rows]
    out["rows_abort"] = p.each_row(lambda user, columns, values, names: called(1), None)
    out["no_rows"] = p.no_rows(lambda user, columns, values, names: called([user, columns, values, names] != [None, 0, None, None]))

    # Pointer results: cffi's own rules, None (and ffi.NULL) as NULL, errors raised after the call
    memory = ffi.new("int32_t[]", 4)
    point = ffi.new("struct point *", {"x": 3, "y": 4})
    out["allocate"] = [p.fill_squares(lambda context, size: called(memory), None, 4), list(memory)]
    out["allocate_null"] = [p.fill_squares(lambda context, size: called(None), None, 4),
                            p.fill_squares(lambda context, size: called(ffi.NULL), None, 4)]
    other = ffi.new("int32_t[]", 3)
    out["allocate_in_thread"] = [p.fill_in_thread(lambda context, size: called(other)), list(other)]
    out["allocate_any_pointer"] = [p.fill_squares(lambda context, size: called(point), None, 2), point.x, point.y]
    out["point"] = [p.point_sum(lambda key: called(point), 1), p.point_sum(lambda key: called(None), 1),
                    p.point_sum(lambda key: called(ffi.cast("void *", point)), 1)]
    keep = ffi.new("char[]", b"four")
    out["name"] = [p.name_length(lambda key: called(keep), 1), p.name_length(lambda key: called(ffi.NULL), 1)]
    errors = []
    for function, result in ((p.fill_squares, 5), (p.fill_squares, b"bytes"), (p.point_sum, memory),
                             (p.name_length, "text"), (p.name_length, None)):
        arguments = (lambda *a: called(result), None, 4) if function is p.fill_squares else (lambda k: called(result), 1)
        try:
            function(*arguments)
        except TypeError as exc:
            errors.append(str(exc))
    out["result_errors"] = errors

    # A pointer into C's stack: the callback writes through the struct point * cdata
    def move(q, by):
        types.add(kind(q))
        q.x += by
        q.y *= by
        called(None)
    out["moved"] = [p.moved(move, 5), kind(point) in types]

    # Reloaded: another cffi binding, whose types the callbacks' cdata have from then on
    import importlib
    before = ffi.typeof("struct point *")
    importlib.reload(p)
    now = p.__ffi__.typeof("struct point *")
    reloaded = []
    p.moved(lambda q, by: reloaded.append(p.__ffi__.typeof(q) is now) or called(None), 1)
    out["reloaded"] = [now is not before, reloaded]
    out["via_cffi"] = sorted(set(via))
    print(json.dumps(out))
"""


def _same_through_both_binders(runner: Runner, module: str, source: str, calls: str, lazy: str) -> dict[str, object]:
    """Build ``module`` from ``source``, run ``calls`` with each binder, and check the fast binder served it
    all (its own functions; the callables called from its trampolines, not cffi's; cffi not loaded before
    the moment ``lazy`` names) and gave the same results, to the error messages; the cffi binder's output."""
    runner.write(f"{module}.c", source)
    runner.run(f"import nativeimport; nativeimport.install(); import {module}")  # built: a hit below
    cffi, fast = (runner.json(calls, env=binder) for binder in ({"NATIVEIMPORT_BINDER": "cffi"}, {}))
    assert cffi["served_by"] == ["function"] and cffi["via_cffi"] == [True]
    assert fast["served_by"] == ["builtin_function_or_method"] and fast["via_cffi"] == [False]
    assert fast[lazy] is False
    for out in (cffi, fast):
        del out["served_by"], out["via_cffi"], out[lazy]
    assert fast == cffi
    return cffi


def test_pointer_callbacks_get_and_give_what_cffi_callbacks_do(runner: Runner) -> None:
    cffi = _same_through_both_binders(runner, "pointers", POINTERS_C, POINTER_CALLS, "cffi_before_a_pointer_callback")
    assert cffi["ini"] == [0, 5, 2]
    assert cffi["ini_seen"] == [
        [["void *", True], "", "top", "1"], [["void *", True], "server", "host", "example.org"],
        [["void *", True], "server", "port ", " 80"], [["void *", True], "server", "flag", None],
        [["void *", True], "empty", "last", ""], [None, "", "a", "1"], [None, "", "stop", None]]
    assert cffi["sorted"] == [[-7, -2, 0, 3, 5, 9, 9], ["void *"]]
    assert cffi["sorted_natively"] == [1, 2, 3]
    assert cffi["rows"] == [0, [[None, 3, ["1", "ada", None], ["id", "name", "note"], "char * *"],
                                [None, 3, ["2", "bob", "hi"], ["id", "name", "note"], "char * *"]]]
    assert cffi["rows_abort"] == 4 and cffi["no_rows"] == 0
    assert cffi["allocate"] == [14, [0, 1, 4, 9]]
    assert cffi["allocate_null"] == [-1, -1]
    assert cffi["allocate_in_thread"] == [5, [0, 1, 4]]
    assert cffi["allocate_any_pointer"] == [1, 0, 1]
    assert cffi["point"] == [1, -1, 1]  # 3 + 4 at first; the struct is the allocator's then (0, 1)
    assert cffi["name"] == [4, -1]
    assert cffi["result_errors"] == [
        "initializer for ctype 'void *' must be a cdata pointer, not int",
        "initializer for ctype 'void *' must be a cdata pointer, not bytes",
        "initializer for ctype 'struct point *' must be a pointer to same type, not cdata 'int32_t[]'",
        "initializer for ctype 'char *' must be a cdata pointer, not str",
        "initializer for ctype 'char *' must be a cdata pointer, not NoneType"]  # cffi's: a string's None too
    assert cffi["moved"] == [600 + 10, True]
    assert cffi["reloaded"] == [True, [True]]


def test_which_callback_types_the_trampolines_serve() -> None:
    from nativeimport._fast_callbacks import POOL, callback_ok, pool_size
    from nativeimport.interface import CType

    i32, f64, text = CType.integer("int32_t"), CType.floating("double"), CType.pointer(CType.char(), const=True)
    color = CType.enum("color", i32)

    def callback(result: CType, *params: CType, variadic: bool = False) -> CType:
        return CType.pointer(CType.function(result, params, variadic))

    assert callback_ok(callback(CType.void(), text, color, CType.boolean()))
    assert callback_ok(callback(f64, f64)) and callback_ok(callback(CType.boolean())) and callback_ok(callback(color))
    # pointers in and out: a void * context, char **, a pointer to a record, a string or pointer result
    point = CType.struct("point")
    assert callback_ok(callback(i32, CType.pointer(CType.void()), i32, CType.pointer(CType.pointer(CType.char()))))
    assert callback_ok(callback(text, i32)) and callback_ok(callback(CType.pointer(point), CType.pointer(point)))
    # records by value and variadics stay on cffi
    assert not callback_ok(callback(i32, point)) and not callback_ok(callback(point, i32))
    assert not callback_ok(callback(i32, i32, variadic=True))
    assert not callback_ok(CType.pointer(i32))
    # many callback types share a bounded number of trampolines, never fewer than 8 a type
    assert pool_size(1) == POOL and pool_size(16) == POOL and pool_size(32) == 16 and pool_size(1000) == 8


CDATA_C = r"""
#include <stddef.h>

/* inih's and sqlite3_exec's shape: C hands the caller's context back to each callback. */
int visit(int (*cb)(void *user, int), void *user, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) total += cb(user, i);
    return total;
}
double total(const double *xs, int n) { double s = 0; for (int i = 0; i < n; i++) s += xs[i]; return s; }
void scale(double *xs, int n, double by) { for (int i = 0; i < n; i++) xs[i] *= by; }
int is_null(void *p) { return p == NULL; }
void add_into(double *out, const double *xs, int n) { for (int i = 0; i < n; i++) out[i] += xs[i]; }
size_t length(const char *text) { size_t n = 0; while (text[n]) n++; return n; }
"""

CDATA_CALLS = """
    import array, gc, json, sys, nativeimport
    nativeimport.install()
    import cdata_args as m
    out = {"served_by": sorted({type(getattr(m, name)).__name__ for name in ("visit", "total", "scale", "is_null")})}
    xs = array.array("d", [1.5, 2.5])
    out["buffers"] = [m.total(xs, 2), m.is_null(None), m.length("four")]
    out["cffi_before_a_cdata"] = "_cffi_backend" in sys.modules  # (a void * callback would load it)
    ffi = m.__ffi__
    via = []  # per callback: called from cffi's callback machinery (else straight from the fast wrapper's C)

    class State:
        def __init__(self):
            self.seen = []

    def callback(user, i):
        caller = sys._getframe(1)
        via.append(caller.f_code.co_filename.endswith("_cffi_callbacks.py"))
        state = ffi.from_handle(user)
        state.seen.append(i)
        return i * i

    state = State()
    out["handle"] = [m.visit(callback, ffi.new_handle(state), 5), list(state.seen)]
    ys = ffi.new("double[]", [1.0, 2.0, 4.0])
    m.scale(ys, 3, 0.5)
    out["doubles"] = [m.total(ys, 3), list(ys), m.total(ffi.cast("double *", ys), 3)]
    sums = array.array("d", [10.0, 20.0, 30.0])
    m.add_into(sums, ys, 3)  # a buffer, then a cdata
    m.add_into(ys, sums, 3)  # a cdata, then a buffer
    out["mixed"] = [list(sums), list(ys)]
    out["null"] = [m.is_null(ffi.NULL), m.is_null(ffi.new("int *")), m.length(ffi.new("char[]", b"four"))]
    errors = []
    for function, arguments in ((m.total, (ffi.new("int *"), 1)), (m.scale, (ffi.new("float[]", 2), 2, 1.0)),
                                (m.total, (ffi.cast("int", 3), 1)), (m.length, (ffi.new("int[]", 2),)),
                                (m.add_into, (sums, ffi.new("int[]", 3), 3))):  # the buffer given back
        try:
            function(*arguments)
        except TypeError as exc:
            errors.append(str(exc))
    gc.collect()  # cffi's from_buffer (the refused call's fallback) keeps the buffer until then: a cycle
    sums.append(0.0)  # a BufferError if the fast wrapper kept it, refusing the call
    out["errors"] = errors
    # Reloaded: another cffi binding, whose types the cdata arguments are converted with from then on
    import importlib
    importlib.reload(m)
    zs = m.__ffi__.new("double[]", [1.0, 2.0])
    out["reloaded"] = [m.total(zs, 2), m.total(ys, 3), m.visit(callback, m.__ffi__.new_handle(state), 2)]
    out["via_cffi"] = sorted(set(via))
    print(json.dumps(out))
"""


def test_cdata_arguments_for_data_pointers_are_converted_as_cffi_does(runner: Runner) -> None:
    # The fast wrapper's functions take the cdata themselves, so the callbacks run from its trampolines.
    cffi = _same_through_both_binders(runner, "cdata_args", CDATA_C, CDATA_CALLS, "cffi_before_a_cdata")
    assert cffi["buffers"] == [4.0, 1, 4]
    assert cffi["handle"] == [0 + 1 + 4 + 9 + 16, [0, 1, 2, 3, 4]]
    assert cffi["doubles"] == [3.5, [0.5, 1.0, 2.0], 3.5]
    assert cffi["null"] == [1, 0, 4]
    assert cffi["errors"] == [
        "initializer for ctype 'double *' must be a pointer to same type, not cdata 'int *'",
        "initializer for ctype 'double *' must be a pointer to same type, not cdata 'float[]'",
        "initializer for ctype 'double *' must be a pointer or array, not cdata 'int'",
        "implicit cast to 'char *' from a different pointer type.(check that the types are as you expect; use an "
        "explicit ffi.cast() if they are correct)",
        "initializer for ctype 'double *' must be a pointer to same type, not cdata 'int[]'"]
    assert cffi["mixed"] == [[10.5, 21.0, 32.0], [11.0, 22.0, 34.0]]
    assert cffi["reloaded"] == [3.0, 67.0, 1]
