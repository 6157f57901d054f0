"""The fast binder's structs and unions: extension types holding the C struct, served by value and by pointer.

Every scenario runs in fresh interpreters with private caches (tests/helpers.py Runner); the cffi binder
(NATIVEIMPORT_BINDER=cffi) runs the same calls where both must agree.
"""

from __future__ import annotations

import pytest
from helpers import Runner

GEOM = r"""
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { RED = 1, GREEN = 2 } Color;
typedef struct { double x, y; } Vec2;
typedef struct { Vec2 pos; Vec2 vel; int32_t id; } Body;
typedef struct { int8_t a; uint16_t b; int32_t c; uint64_t d; float f; bool flag; Color col; } Mixed;
typedef union { int32_t i; float f; } Num;
typedef struct { int32_t tag; union { int32_t i; double d; }; } Tagged;
typedef struct { const char *name; int32_t n; } Named;  /* a pointer field: served, as cffi reads it */
typedef struct { uint32_t low : 4, high : 4; } Nibbles;  /* a bit-field: stays on cffi */

double vlen(Vec2 v) { return sqrt(v.x * v.x + v.y * v.y); }
void vnorm(Vec2 *v) { double l = vlen(*v); if (l > 0) { v->x /= l; v->y /= l; } }
Vec2 vadd(Vec2 a, Vec2 b) { Vec2 r = {a.x + b.x, a.y + b.y}; return r; }
double vdot(const Vec2 *a, const Vec2 *b) { return a && b ? a->x * b->x + a->y * b->y : -1.0; }
static Body world = {{1, 2}, {3, 4}, 7};
static Vec2 corners[3] = {{0, 0}, {1, 0}, {1, 1}};
Vec2 *the_corners(void) { return corners; }
Body *the_body(void) { return &world; }
Body *no_body(void) { return 0; }
void step(Body *b, double dt) { b->pos.x += b->vel.x * dt; b->pos.y += b->vel.y * dt; }
Mixed mixed(int8_t a) { Mixed m = {a, 65535, -5, 1ull << 63, 1.5f, true, GREEN}; return m; }
int64_t mixsum(Mixed m) { return m.a + m.b + m.c + (int64_t)m.flag + m.col; }
float num_f(Num n) { return n.f; }
Num num_i(int32_t i) { Num n; n.i = i; return n; }
double tagged(Tagged t) { return t.tag ? t.d : t.i; }
int32_t named_n(Named n) { return n.n; }
int32_t nibbles_low(const Nibbles *n) { return n->low; }
double vapply(Vec2 v, double (*f)(double)) { return f(v.x) + f(v.y); }  /* a record and a callback */
typedef struct { int32_t n; double xs[4]; uint8_t flags[3]; } Poly;
double poly_sum(const Poly *p) { double s = 0; for (int i = 0; i < p->n; i++) s += p->xs[i]; return s + p->flags[0]; }
Poly poly3(void) { Poly p = {3, {1, 2, 3, 0}, {7, 8, 9}}; return p; }
/* variadic: served by cffi, taking a Vec2 by pointer */
double vsum(const Vec2 *v, int count, ...) {
    va_list ap; va_start(ap, count); double s = v->x + v->y;
    for (int i = 0; i < count; i++) s += va_arg(ap, double);
    va_end(ap); return s;
}
"""

# The calls both binders must answer alike; each result as plain data (a record as its fields).
CALLS = r"""
import json
import geom as g

NAMES = ("x", "y", "pos", "vel", "id", "a", "b", "c", "d", "f", "flag", "col", "i", "tag")

def plain(value):
    if isinstance(value, (int, float, str, type(None))):
        return value
    if isinstance(value, list):
        return [plain(item) for item in value]
    return {n: plain(getattr(value, n)) for n in NAMES if hasattr(value, n)}

def attempt(make):
    try:
        return ["ok", plain(make())]
    except Exception as exc:
        return ["raised", type(exc).__name__, str(exc)]

v, w = g.Vec2(3.0, 4.0), g.Vec2(x=1.0, y=2.0)
results = {
    "vlen": attempt(lambda: g.vlen(v)),
    "vlen dict": attempt(lambda: g.vlen({"x": 6.0, "y": 8.0})),
    "vlen tuple": attempt(lambda: g.vlen((6.0, 8.0))),
    "vlen wrong": attempt(lambda: g.vlen(3)),
    "vadd": attempt(lambda: g.vadd(v, w)),
    "vdot": attempt(lambda: g.vdot(v, w)),
    "vdot None": attempt(lambda: g.vdot(None, w)),
    "zeroed": attempt(lambda: g.Vec2()),
    "positional": attempt(lambda: g.Vec2(1.5)),
    "too many": attempt(lambda: g.Vec2(1, 2, 3)),
    "twice": attempt(lambda: g.Vec2(1, x=2)),
    "unknown": attempt(lambda: g.Vec2(z=1)),
    "mixed": attempt(lambda: g.mixed(-3)),
    "mixsum": attempt(lambda: g.mixsum(g.mixed(-3))),
    "num": attempt(lambda: g.num_f(g.num_i(0x3F800000))),
    "num fields": attempt(lambda: g.num_i(0x3F800000).f),
    "tagged": attempt(lambda: g.tagged(g.Tagged(tag=1, d=2.5))),
    "tagged i": attempt(lambda: g.tagged(g.Tagged(0, 9))),
    "named": attempt(lambda: g.named_n(g.Named(n=4))),
    "nested": attempt(lambda: g.Body(pos=(1.0, 2.0), vel={"x": 3.0}, id=5)),
    "vsum": attempt(lambda: g.vsum(g.Vec2(1.0, 2.0), 2, 3.0, 4.0)),
    "vapply": attempt(lambda: g.vapply(g.Vec2(1.0, 2.0), lambda x: x * 10)),
    "no body": attempt(lambda: g.no_body()),
    "corners": attempt(lambda: [g.the_corners()[2].x, g.the_corners()[2].y, g.the_corners()[0].x]),
    "poly": attempt(lambda: [list(g.poly3().xs), list(g.poly3().flags), g.poly_sum(g.poly3())]),
    "poly made": attempt(lambda: g.poly_sum(g.Poly(n=2, xs=[1.5, 2.5], flags=(1,)))),
    "poly too long": attempt(lambda: g.Poly(xs=[1.0] * 5))[:2],
}
p = g.poly3()
p.xs[3] = 10.0
p.n = 4
results["poly written"] = g.poly_sum(p)
b = g.the_body()
g.step(b, 1.0)
b.vel.y = 10.0  # through two views into the library's static
g.step(g.the_body(), 1.0)
results["stepped"] = plain(g.the_body())
n = g.Vec2(3.0, 4.0)
g.vnorm(n)
results["normalised"] = plain(n)
print(json.dumps(results))
"""


@pytest.fixture
def geom(runner: Runner) -> Runner:
    runner.write("geom.c", GEOM)
    return runner


def _calls(runner: Runner, binder: str, calls: str = CALLS) -> dict[str, object]:
    """What the script ``calls`` prints with the hook installed and ``binder`` chosen."""
    found: dict[str, object] = runner.json("import nativeimport\nnativeimport.install()\n" + calls,
                                           env={"NATIVEIMPORT_BINDER": binder})
    return found


def test_both_binders_give_the_same_results(geom: Runner) -> None:
    fast, cffi = _calls(geom, "auto"), _calls(geom, "cffi")
    assert fast == cffi
    assert fast["vlen"] == ["ok", 5.0] and fast["vlen dict"] == ["ok", 10.0] and fast["vlen tuple"] == ["ok", 10.0]
    assert fast["vadd"] == ["ok", {"x": 4.0, "y": 6.0}] and fast["vdot"] == ["ok", 11.0]
    assert fast["vdot None"] == ["ok", -1.0] and fast["zeroed"] == ["ok", {"x": 0.0, "y": 0.0}]
    assert fast["positional"] == ["ok", {"x": 1.5, "y": 0.0}]
    assert fast["too many"] == ["raised", "TypeError", "Vec2() takes at most 2 positional arguments (3 given)"]
    assert fast["twice"] == ["raised", "TypeError", "Vec2() got field 'x' twice"]
    assert fast["unknown"] == ["raised", "TypeError", "Vec2() has no field 'z'; its fields are x, y"]
    assert fast["vlen wrong"][:2] == ["raised", "TypeError"]
    assert fast["mixed"] == ["ok", {"a": -3, "b": 65535, "c": -5, "d": 2**63, "f": 1.5, "flag": True, "col": 2}]
    assert fast["mixsum"] == ["ok", -3 + 65535 - 5 + 1 + 2]
    assert fast["num"] == ["ok", 1.0] and fast["num fields"] == ["ok", 1.0]
    assert fast["tagged"] == ["ok", 2.5] and fast["tagged i"] == ["ok", 9.0] and fast["named"] == ["ok", 4]
    assert fast["nested"] == ["ok", {"pos": {"x": 1.0, "y": 2.0}, "vel": {"x": 3.0, "y": 0.0}, "id": 5}]
    assert fast["vsum"] == ["ok", 10.0] and fast["no body"] == ["ok", None] and fast["vapply"] == ["ok", 30.0]
    assert fast["corners"] == ["ok", [1.0, 1.0, 0.0]]  # a pointer into an array indexes as in cffi
    assert fast["poly"] == ["ok", [[1.0, 2.0, 3.0, 0.0], [7, 8, 9], 13.0]] and fast["poly made"] == ["ok", 5.0]
    assert fast["poly too long"] == ["raised", "IndexError"] and fast["poly written"] == 23.0
    assert fast["stepped"] == {"pos": {"x": 7.0, "y": 16.0}, "vel": {"x": 3.0, "y": 10.0}, "id": 7}
    assert fast["normalised"] == {"x": 0.6, "y": 0.8}


def test_the_wrapper_serves_records_and_leaves_bit_fields_to_cffi(geom: Runner) -> None:
    served = geom.json("""
        import json, nativeimport
        nativeimport.install()
        import geom as g
        builtin = type(len)
        print(json.dumps({
            "functions": sorted(n for n in ("vlen", "vnorm", "vadd", "vdot", "the_body", "mixsum", "num_i", "tagged",
                                            "named_n", "vsum", "vapply", "nibbles_low") if type(getattr(g, n)) is builtin),
            "types": sorted(n for n in ("Vec2", "Body", "Mixed", "Num", "Tagged", "Named", "Poly", "Nibbles")
                            if isinstance(getattr(g, n), type)),
            "isinstance": [isinstance(g.Vec2(), g.Vec2), isinstance(g.vadd(g.Vec2(), g.Vec2()), g.Vec2),
                           isinstance(g.the_body(), g.Body), isinstance(g.Vec2(), g.Body)],
            "module": g.Vec2.__module__ == "geom" or g.Vec2.__module__.startswith("nativeimport._pickling.k"),
            "doc": g.Body.__doc__,
            "released": [nativeimport.release_gil(g, "vadd", "vnorm"), repr(g.vadd(g.Vec2(1.0, 2.0), g.Vec2(3.0, 4.0))),
                         type(g.vadd) is builtin],
        }))
    """)
    assert served["functions"] == ["mixsum", "named_n", "num_i", "tagged", "the_body", "vadd", "vapply", "vdot", "vlen",
                                   "vnorm"]
    assert served["types"] == ["Body", "Mixed", "Named", "Num", "Poly", "Tagged", "Vec2"]  # Nibbles: cffi's
    assert served["isinstance"] == [True, True, True, False]
    assert served["released"] == [None, "Vec2(x=4.0, y=6.0)", True]
    assert served["module"] and served["doc"] == "struct Body { Vec2 pos; Vec2 vel; int32_t id; }"


def test_fields_convert_as_arguments_do(geom: Runner) -> None:
    errors = geom.json("""
        import json, nativeimport
        nativeimport.install()
        import geom as g
        m = g.Mixed()
        out = []
        for field, value in (("a", 127), ("a", 128), ("b", -1), ("c", 2**31), ("d", 2**64), ("f", "x"), ("a", 1.5),
                             ("flag", []), ("col", 2), ("b", True)):
            try:
                setattr(m, field, value)
                out.append(["ok", getattr(m, field)])
            except Exception as exc:
                out.append([type(exc).__name__, str(exc)])
        try:
            del m.a
        except Exception as exc:
            out.append([type(exc).__name__])
        try:
            g.Body(pos=3)
        except Exception as exc:
            out.append([type(exc).__name__, str(exc)])
        print(json.dumps(out))
    """)
    assert errors == [
        ["ok", 127],
        ["OverflowError", "Mixed.a (int8_t): integer 128 does not fit 'int8_t'"],
        ["OverflowError", "Mixed.b (uint16_t): integer -1 does not fit 'uint16_t'"],
        ["OverflowError", "Mixed.c (int32_t): integer 2147483648 does not fit 'int32_t'"],
        ["OverflowError", "Mixed.d (uint64_t): integer 18446744073709551616 does not fit 'uint64_t'"],
        ["TypeError", "Mixed.f (float): must be real number, not str"],
        ["TypeError", "Mixed.a (int8_t): an integer is required, not float"],
        ["ok", False],
        ["ok", 2],
        ["ok", 1],
        ["AttributeError"],
        ["TypeError", "Body.pos (Vec2): expected Vec2, not int"],
    ]


def test_views_write_through_and_keep_their_owner(geom: Runner) -> None:
    found = geom.json("""
        import gc, json, nativeimport
        nativeimport.install()
        import geom as g
        body = g.Body(pos=g.Vec2(1.0, 2.0))
        body_again = g.Body()
        pos = body.pos
        pos.x = 5.0
        body.vel.y = 6.0
        outer = body.pos
        del body
        gc.collect()
        junk = [g.Body(id=i) for i in range(1000)]  # would reuse freed memory
        poly = g.Poly(n=1, xs=[2.0])
        xs = poly.xs
        del poly
        gc.collect()
        junk = [g.Poly(n=i) for i in range(1000)]
        xs[1] = 3.0
        corner = g.the_corners()[1]
        corner.y = 5.0
        items = [g.the_corners()[1].y, g.Vec2(1.0)[0].x]
        for bad in (lambda: g.Vec2()[1], lambda: list(g.Vec2()), lambda: body_again.pos[1]):
            try:
                bad()
            except (IndexError, TypeError) as exc:
                items.append(type(exc).__name__)
        print(json.dumps([pos.x, outer.x, outer.y, repr(g.Body(id=3).vel), repr(g.num_i(0)), xs.tolist(), items,
                          repr(g.poly3()), g.Poly(xs=[1.0]) == g.Poly(xs=(1.0, 0.0)), g.Poly(xs=[1.0]) == g.Poly()]))
    """)
    assert found == [5.0, 5.0, 2.0, "Vec2(x=0.0, y=0.0)", "Num(i=0, f=0.0)", [2.0, 3.0, 0.0, 0.0],
                     [5.0, 1.0, "IndexError", "TypeError", "IndexError"],
                     "Poly(n=3, xs=[1.0, 2.0, 3.0, 0.0], flags=[7, 8, 9])", True, False]


def test_equality_copy_and_buffer(geom: Runner) -> None:
    found = geom.json("""
        import copy, json, nativeimport
        nativeimport.install()
        import geom as g
        a, b = g.Vec2(1.0, -0.0), g.Vec2(1.0, 0.0)
        c = copy.copy(a)
        c.x = 2.0
        view = memoryview(g.Body(id=1)).cast("B")
        v = g.Vec2(5.0, 6.0)
        memoryview(v).cast("d")[1] = 9.0
        try:
            hash(a)
            hashable = True
        except TypeError:
            hashable = False
        print(json.dumps([a == b, a != b, a == c, a == (1.0, 0.0), g.Num(i=1) == g.Num(i=1), a.x, c.x,
                          view.nbytes, view.readonly, bytes(memoryview(g.Vec2(1.0, 2.0))).hex(), v.y,
                          copy.deepcopy(g.the_body()) == g.the_body(), hashable]))
    """)
    assert found == [True, False, False, False, True, 1.0, 2.0, 40, False, "000000000000f03f0000000000000040", 9.0,
                     True, False]


def test_numpy_reads_an_instance(geom: Runner) -> None:
    pytest.importorskip("numpy")
    found = geom.json("""
        import json, numpy, nativeimport
        nativeimport.install()
        import geom as g
        v = g.Vec2(1.5, 2.5)
        array = numpy.frombuffer(v, dtype=numpy.float64)  # read-only, no copy
        before = array.tolist()
        shared = numpy.asarray(memoryview(v)).view(numpy.float64)  # writable, no copy
        shared[0] = 7.0
        print(json.dumps([before, v.x, array.tolist()]))
    """)
    assert found == [[1.5, 2.5], 7.0, [7.0, 2.5]]


def test_binders_take_each_others_objects(geom: Runner) -> None:
    found = geom.json("""
        import json, nativeimport
        nativeimport.install()
        import geom as g
        ffi = g.__ffi__
        by_pointer = ffi.new("Vec2 *", [3.0, 4.0])
        out = [g.vlen(by_pointer[0]), g.vlen(by_pointer), g.vdot(by_pointer, g.Vec2(1.0, 1.0))]
        g.vnorm(by_pointer)  # cffi serves the call for its own pointer: the write shows
        out.append([by_pointer.x, by_pointer.y])
        out.append(g.vsum(g.Vec2(1.0, 2.0), 1, 5.0))  # variadic, so cffi's: it takes the fast instance
        try:
            g.vlen(ffi.new("Body *"))
        except TypeError as exc:
            out.append(str(exc))
        print(json.dumps(out))
    """)
    assert found[:5] == [5.0, 5.0, 7.0, [0.6, 0.8], 8.0]
    assert "expected Vec2" in found[5]


def test_pickled_instances_cross_processes(geom: Runner) -> None:
    geom.run("""
        import pickle, nativeimport
        nativeimport.install()
        import geom as g
        with open("records.pickle", "wb") as stream:
            pickle.dump([g.Vec2(1.5, 2.5), g.Body(pos=g.Vec2(1.0, 2.0), id=9), g.Num(i=5), g.Vec2, g.the_body().pos],
                        stream)
        cdata = g.__ffi__.new("Vec2 *", [4.0, 5.0])  # cffi's own instance of a record the wrapper serves
        with open("cdata.pickle", "wb") as stream:
            pickle.dump([cdata, cdata[0]], stream)
        try:
            pickle.dumps(g.the_body())
        except TypeError as exc:
            print(exc)
        else:
            raise SystemExit("a borrowed pointer was pickled")
    """)
    elsewhere = geom.project.parent / "elsewhere"
    elsewhere.mkdir()
    for name in ("records.pickle", "cdata.pickle"):
        (elsewhere / name).write_bytes((geom.project / name).read_bytes())
    found = geom.json("""
        import json, pickle, sys
        with open("records.pickle", "rb") as stream:
            vec, body, num, kind, pos = pickle.load(stream)
        with open("cdata.pickle", "rb") as stream:
            cdata = pickle.load(stream)
        print(json.dumps([repr(vec), repr(body), num.i, isinstance(vec, kind), kind.__name__, repr(pos),
                          "cffi" in sys.modules, [repr(c) for c in cdata]]))
    """, cwd=elsewhere)
    assert found == ["Vec2(x=1.5, y=2.5)", "Body(pos=Vec2(x=1.0, y=2.0), vel=Vec2(x=0.0, y=0.0), id=9)", 5, True,
                     "Vec2", "Vec2(x=1.0, y=2.0)", False, ["Vec2(x=4.0, y=5.0)", "Vec2(x=4.0, y=5.0)"]]


def test_a_warm_import_leaves_cffi_out(runner: Runner) -> None:
    runner.write("shapes.c", """
        #include <stdint.h>
        typedef enum { SQUARE = 1, CIRCLE = 2 } Kind;
        typedef struct { double w, h; Kind kind; } Shape;
        double area(const Shape *s) { return s->kind == SQUARE ? s->w * s->h : 3.0 * s->w * s->w; }
        Shape square(double side) { Shape s = {side, side, SQUARE}; return s; }
    """)
    code = """
        import json, sys, nativeimport
        nativeimport.install()
        import shapes
        s = shapes.square(2.0)
        print(json.dumps([shapes.area(s), shapes.area(shapes.Shape(1.0, 0.0, shapes.CIRCLE)), s.kind == shapes.SQUARE,
                          sorted(m for m in sys.modules if "cffi" in m and m != "nativeimport._cffi_runtime")]))
    """
    runner.run(code)  # builds
    assert runner.json(code) == [4.0, 3.0, True, []]


# Records holding pointers: a linked list, a name, a data pointer, a handle, z_stream's shape.
LISTS = r"""
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>

struct node { int32_t value; struct node *next; };
struct hidden;  /* never defined: pointers to it are handles */
typedef struct { const char *name; int32_t id; void *data; } Item;
typedef struct { int32_t count; Item first; } Bag;
/* z_stream's shape: buffers as a pointer and a size each way, a message, an opaque state */
typedef struct {
    const uint8_t *next_in; uint32_t avail_in; uint64_t total_in;
    uint8_t *next_out; uint32_t avail_out; uint64_t total_out;
    const char *msg; struct hidden *state;
} Stream;

struct node *node_push(struct node *head, int32_t value) {
    struct node *n = malloc(sizeof *n);
    n->value = value;
    n->next = head;
    return n;
}
int32_t node_sum(const struct node *n) { int32_t s = 0; for (; n; n = n->next) s += n->value; return s; }
void node_free(struct node *n) { while (n) { struct node *next = n->next; free(n); n = next; } }

static const char *NAMES[] = {"zero", "one", "two"};
Item item_named(int32_t id) { Item it = {id >= 0 ? NAMES[id % 3] : 0, id, 0}; return it; }
const char *item_label(const Item *it) { return it->name; }
int32_t item_peek(const Item *it) { return it->data ? *(const int32_t *)it->data : -1; }
void item_point(Item *it, int32_t *target) { it->data = target; }
int32_t bag_id(Bag b) { return b.first.id + b.count; }

struct hidden *hidden_make(int32_t v) { int32_t *p = malloc(sizeof *p); *p = v; return (struct hidden *)p; }
int32_t hidden_get(const struct hidden *h) { return h ? *(const int32_t *)h : -1; }

int32_t stream_upper(Stream *s) {
    if (!s->next_in || !s->next_out) { s->msg = "missing buffer"; return -2; }
    uint32_t n = s->avail_in < s->avail_out ? s->avail_in : s->avail_out;
    for (uint32_t i = 0; i < n; i++) s->next_out[i] = (uint8_t)toupper(s->next_in[i]);
    s->next_in += n; s->avail_in -= n; s->total_in += n;
    s->next_out += n; s->avail_out -= n; s->total_out += n;
    s->msg = s->avail_in ? "output full" : 0;
    return s->avail_in ? 1 : 0;
}
int32_t stream_state(const Stream *s) { return hidden_get(s->state); }
uint32_t stream_avail(const Stream *s) { return s->avail_in + s->avail_out; }
"""

LIST_CALLS = r"""
import array, json, pickle
import lists as g

ffi = g.__ffi__

def pointer(p):
    return [ffi.typeof(p).cname, p == ffi.NULL]

def walk(p):  # from Python: a node (an instance, or the cdata a field holds) and those after it
    values = []
    while p:
        values.append(p.value)
        p = p.next
    return values

def attempt(make):
    try:
        return ["ok", make()]
    except Exception as exc:
        return ["raised", type(exc).__name__, str(exc)]

out = {}
head = None
for value in (1, 2, 3, 4):
    head = g.node_push(head, value)  # built by C
out["c list"] = [g.node_sum(head), walk(head), g.node_sum(head.next), pointer(head.next),
                 pointer(head.next.next.next.next), head.next.next.value]
a, b, c = g.node(1), g.node(2), g.node(3)  # built by Python
a.next = b
b.next = c
out["python list"] = [g.node_sum(a), walk(a), pointer(c.next), pointer(a.next), a.next.value, a.next.next.value]
c.next = head  # the C list after the Python one
out["joined"] = [g.node_sum(a), walk(a)]
c.next = ffi.NULL
b.next = ffi.cast("struct node *", 0)
out["cut"] = [g.node_sum(a), walk(a), g.node_sum(g.node(7, head.next))]
out["node errors"] = [attempt(lambda: setattr(a, "next", value)) for value in (None, 0, b"x", ffi.new("int *"))]
out["node wrong record"] = attempt(lambda: setattr(a, "next", g.Item()))[:2]
g.node_free(head)

item = g.item_named(1)  # its name set by C
out["item"] = [ffi.string(item.name).decode(), g.item_label(item), item.id, pointer(item.name), pointer(item.data),
               g.item_peek(item)]
label = ffi.new("char[]", b"custom")
item.name = label
box = ffi.new("int32_t *", 42)
item.data = box
out["item set"] = [g.item_label(item), ffi.string(item.name).decode(), g.item_peek(item),
                   ffi.cast("int32_t *", item.data)[0], item.data == box]
target = array.array("i", [7])
g.item_point(item, target)  # C stores a pointer to the array's memory
out["item from C"] = [g.item_peek(item), ffi.cast("int32_t *", item.data)[0], pointer(item.data)]
keep = g.node(9)
item.data = keep  # a record instance in a void *: its address
out["item record"] = [ffi.cast("struct node *", item.data).value]
item.data = ffi.NULL
item.name = ffi.NULL
out["item cleared"] = [g.item_peek(item), g.item_label(item), pointer(item.name), g.item_label(g.item_named(-1))]
out["item made"] = [g.item_label(g.Item(label, 5)), g.item_label(g.Item(name=label, id=5, data=box)),
                    g.item_peek(g.Item(data=box))]
out["item errors"] = [attempt(lambda: setattr(item, field, value))
                      for field, value in (("name", b"text"), ("name", "text"), ("name", None), ("data", None),
                                           ("data", bytearray(4)), ("name", box))]
out["item made errors"] = [attempt(lambda: g.Item(name=b"text")), attempt(lambda: g.Item(data=None))]

bag = g.Bag(count=2, first=g.item_named(2))
out["bag"] = [ffi.string(bag.first.name).decode(), g.bag_id(bag), g.bag_id({"count": 1, "first": {"id": 5}}),
              g.item_label(bag.first)]
bag.first.name = label  # through the nested record
out["bag set"] = [g.item_label(bag.first), ffi.string(bag.first.name).decode()]

source, first, second = b"hello, world", bytearray(5), bytearray(16)
stream = g.Stream()
incoming = ffi.from_buffer("uint8_t[]", source)
stream.next_in, stream.avail_in = incoming, len(source)
stream.next_out, stream.avail_out = ffi.from_buffer("uint8_t[]", first), len(first)
stream.state = g.hidden_make(11)
done = g.stream_upper(stream)
out["stream"] = [done, bytes(first).decode(), stream.avail_in, stream.total_in, stream.total_out,
                 ffi.string(stream.msg).decode(), stream.next_in - incoming, g.stream_state(stream),
                 g.hidden_get(stream.state), g.stream_avail(stream)]
stream.next_out, stream.avail_out = ffi.from_buffer("uint8_t[]", second), len(second)
done = g.stream_upper(stream)
out["stream again"] = [done, bytes(second[:7]).decode(), stream.total_in, stream.total_out, pointer(stream.msg),
                       stream.next_in - incoming]
empty = g.Stream()
out["stream empty"] = [g.stream_upper(empty), ffi.string(empty.msg).decode(), pointer(empty.next_in),
                       pointer(empty.state), g.stream_state(empty)]

out["pickle"] = [attempt(lambda: pickle.dumps(value)) for value in (g.node(1), item, bag, stream)]
print(json.dumps(out))
"""


@pytest.fixture
def lists(runner: Runner) -> Runner:
    runner.write("lists.c", LISTS)
    return runner


def test_pointer_fields_read_and_write_as_in_the_cffi_binder(lists: Runner) -> None:
    fast, cffi = _calls(lists, "auto", LIST_CALLS), _calls(lists, "cffi", LIST_CALLS)
    # Errors name the field in the fast binder, before cffi's own words: the rest must be the same.
    for key in ("node errors", "item errors", "item made errors"):
        fast_errors, cffi_errors = fast.pop(key), cffi.pop(key)
        assert isinstance(fast_errors, list) and isinstance(cffi_errors, list)
        for mine, theirs in zip(fast_errors, cffi_errors):
            assert mine[:2] == theirs[:2] == ["raised", "TypeError"] and mine[2].endswith(": " + theirs[2])
        assert fast_errors[0][2] == ("node.next (node *): initializer for ctype 'struct node *' must be a cdata "
                                     "pointer, not NoneType") if key == "node errors" else True
    assert fast == cffi
    assert fast["c list"] == [10, [4, 3, 2, 1], 6, ["struct node *", False], ["struct node *", True], 2]
    assert fast["python list"] == [6, [1, 2, 3], ["struct node *", True], ["struct node *", False], 2, 3]
    assert fast["joined"] == [16, [1, 2, 3, 4, 3, 2, 1]] and fast["cut"] == [3, [1, 2], 13]
    assert fast["node wrong record"] == ["raised", "TypeError"]
    assert fast["item"] == ["one", "one", 1, ["char *", False], ["void *", True], -1]
    assert fast["item set"] == ["custom", "custom", 42, 42, True]
    assert fast["item from C"] == [7, 7, ["void *", False]] and fast["item record"] == [9]
    assert fast["item cleared"] == [-1, None, ["char *", True], None]
    assert fast["item made"] == ["custom", "custom", 42]
    assert fast["bag"] == ["two", 4, 6, "two"] and fast["bag set"] == ["custom", "custom"]
    assert fast["stream"] == [1, "HELLO", 7, 5, 5, "output full", 5, 11, 11, 7]
    assert fast["stream again"] == [0, ", WORLD", 12, 12, ["char *", True], 12]
    assert fast["stream empty"] == [-2, "missing buffer", ["uint8_t *", True], ["struct hidden *", True], -1]
    refused = "cannot pickle a struct {}: its field {!r} is a pointer, which means nothing in another process; " \
              "send the data it points to instead"
    assert fast["pickle"] == [["raised", "TypeError", refused.format(name, field)]
                              for name, field in (("node", "next"), ("Item", "name"), ("Bag", "first.name"),
                                                  ("Stream", "next_in"))]


def test_the_wrapper_serves_records_holding_pointers(lists: Runner) -> None:
    served = lists.json("""
        import json, nativeimport
        nativeimport.install()
        import lists as g
        builtin = type(len)
        functions = ("node_push", "node_sum", "node_free", "item_named", "item_label", "item_peek", "item_point",
                     "bag_id", "hidden_make", "hidden_get", "stream_upper", "stream_state", "stream_avail")
        print(json.dumps([sorted(n for n in functions if type(getattr(g, n)) is not builtin),
                          sorted(n for n in ("node", "Item", "Bag", "Stream") if not isinstance(getattr(g, n), type)),
                          isinstance(g.node_push(None, 1), g.node), g.Stream.__doc__.splitlines()[0]]))
    """)
    assert served == [[], [], True, "struct Stream { const uint8_t *next_in; uint32_t avail_in; uint64_t total_in; "
                      "uint8_t *next_out; uint32_t avail_out; uint64_t total_out; const char *msg; struct hidden *state; }"]


def test_pointer_fields_load_cffi_only_when_used(runner: Runner) -> None:
    runner.write("chain.c", """
        #include <stdint.h>
        #include <stdlib.h>
        struct link { int32_t value; struct link *next; const char *tag; };
        struct link *link_push(struct link *head, int32_t value) {
            struct link *n = calloc(1, sizeof *n);
            n->value = value;
            n->next = head;
            n->tag = value % 2 ? "odd" : "even";
            return n;
        }
        int32_t link_sum(const struct link *n) { int32_t s = 0; for (; n; n = n->next) s += n->value; return s; }
    """)
    code = """
        import copy, importlib, json, pickle, sys, nativeimport
        nativeimport.install()
        import chain
        head = chain.link_push(chain.link_push(None, 1), 2)
        local = chain.link(5)
        before = [chain.link_sum(head), head.value, local.value, local == chain.link(5), "_cffi_backend" in sys.modules]
        tail = head.next  # the first pointer field read loads the cffi binding
        ffi = chain.__ffi__
        same = copy.copy(local)
        local.next = tail
        after = [tail.value, ffi.string(head.tag).decode(), ffi.typeof(tail) is ffi.typeof("struct link *"),
                 repr(chain.link(3)), repr(head).startswith("link(value=2, next=<cdata 'struct link *' 0x"),
                 local == same, same == chain.link(5), copy.copy(local) == local, chain.link_sum(local)]
        try:
            pickle.dumps(ffi.new("struct link *"))  # cffi's own instance of a record the wrapper serves
        except TypeError as exc:
            after.append(str(exc))
        importlib.reload(chain)  # a new cffi binding: fields now read as its types
        again = chain.__ffi__
        after += [again.typeof("struct link *") is not ffi.typeof("struct link *"),
                  again.typeof(head.next) is again.typeof("struct link *"), chain.link_sum(head)]
        print(json.dumps([before, after]))
    """
    runner.run(code)  # builds (which imports cffi)
    before, after = runner.json(code)
    assert before == [3, 2, 5, True, False]
    assert after == [1, "even", True, "link(value=3, next=<cdata 'struct link *' NULL>, tag=<cdata 'char *' NULL>)",
                     True, False, True, True, 6,
                     "cannot pickle a struct link: its field 'next' is a pointer, which means nothing in another "
                     "process; send the data it points to instead", True, True, 3]
