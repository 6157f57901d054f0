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
typedef struct { const char *name; int32_t n; } Named;  /* a pointer field: stays on cffi */

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


def _calls(runner: Runner, binder: str) -> dict[str, object]:
    found: dict[str, object] = runner.json("import nativeimport\nnativeimport.install()\n" + CALLS,
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


def test_the_wrapper_serves_records_and_leaves_pointer_fields_to_cffi(geom: Runner) -> None:
    served = geom.json("""
        import json, nativeimport
        nativeimport.install()
        import geom as g
        builtin = type(len)
        print(json.dumps({
            "functions": sorted(n for n in ("vlen", "vnorm", "vadd", "vdot", "the_body", "mixsum", "num_i", "tagged",
                                            "named_n", "vsum", "vapply") if type(getattr(g, n)) is builtin),
            "types": sorted(n for n in ("Vec2", "Body", "Mixed", "Num", "Tagged", "Named", "Poly")
                            if isinstance(getattr(g, n), type)),
            "isinstance": [isinstance(g.Vec2(), g.Vec2), isinstance(g.vadd(g.Vec2(), g.Vec2()), g.Vec2),
                           isinstance(g.the_body(), g.Body), isinstance(g.Vec2(), g.Body)],
            "module": g.Vec2.__module__ == "geom" or g.Vec2.__module__.startswith("nativeimport._pickling.k"),
            "doc": g.Body.__doc__,
            "released": [nativeimport.release_gil(g, "vadd", "vnorm"), repr(g.vadd(g.Vec2(1.0, 2.0), g.Vec2(3.0, 4.0))),
                         type(g.vadd) is builtin],
        }))
    """)
    assert served["functions"] == ["mixsum", "num_i", "tagged", "the_body", "vadd", "vapply", "vdot", "vlen", "vnorm"]
    assert served["types"] == ["Body", "Mixed", "Num", "Poly", "Tagged", "Vec2"]  # Named holds a pointer: cffi's
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
