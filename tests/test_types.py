"""Every supported C type through the binder, and what cannot be bound faithfully."""

from __future__ import annotations

from helpers import Runner

TYPES_C = r"""
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef double real;
typedef enum { MODE_FAST = 0, MODE_EXACT = 1, MODE_NEG = -5 } Mode;
typedef struct { int32_t id; real pos[3]; } Particle;
typedef struct Inner { float a; } Inner;
typedef struct { Inner inner; uint8_t tag; } Outer;
typedef struct Handle Handle;
struct Handle { int64_t value; };
union Number { int i; float f; };

int8_t   neg_i8(int8_t v)    { return (int8_t)-v; }
uint8_t  inc_u8(uint8_t v)   { return (uint8_t)(v + 1); }
int16_t  neg_i16(int16_t v)  { return (int16_t)-v; }
uint16_t inc_u16(uint16_t v) { return (uint16_t)(v + 1); }
int32_t  neg_i32(int32_t v)  { return -v; }
uint32_t inc_u32(uint32_t v) { return v + 1; }
int64_t  neg_i64(int64_t v)  { return -v; }
uint64_t inc_u64(uint64_t v) { return v + 1; }
long     twice_long(long v)  { return 2 * v; }
unsigned char first_byte(const unsigned char *data) { return data[0]; }
size_t   size_of(size_t v)   { return v; }
bool     invert(bool b)      { return !b; }
float    half(float v)       { return v / 2; }
real     third(real v)       { return v / 3; }
char     next_char(char c)   { return (char)(c + 1); }
Mode     flip(Mode m)        { return m == MODE_FAST ? MODE_EXACT : MODE_FAST; }
int      mode_value(Mode m)  { return (int)m; }
size_t   text_length(const char *s) { return s ? strlen(s) : (size_t)-1; }
const char *greeting(void)   { return "héllo"; }
const char *nothing_here(void) { return NULL; }
void     fill(void *dst, size_t n, int byte) { memset(dst, byte, n); }
uint32_t checksum(const uint8_t *data, size_t n) { uint32_t s = 0; for (size_t i = 0; i < n; i++) s += data[i]; return s; }
int64_t  total_i32(const int32_t *xs, size_t n) { int64_t s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
void     count_up(int64_t *xs, size_t n) { for (size_t i = 0; i < n; i++) xs[i] = (int64_t)i; }
Particle make_particle(int32_t id, real x) { Particle p = {id, {x, x * 2, x * 3}}; return p; }
real     particle_sum(const Particle *p) { return p->pos[0] + p->pos[1] + p->pos[2]; }
float    outer_a(Outer o) { return o.inner.a; }
Handle  *handle_new(int64_t v) { Handle *h = malloc(sizeof *h); h->value = v; return h; }
int64_t  handle_get(const Handle *h) { return h->value; }
void     handle_free(Handle *h) { free(h); }

/* Once left out, now bound: a variadic function, a callback, a union by value. */
int      sum_ints(int n, ...) { va_list ap; va_start(ap, n); int s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, int); va_end(ap); return s; }
int      apply(int (*f)(int), int v) { return f(v); }
int      number_i(union Number n) { return n.i; }
/* Unsupported: each is left out with a warning naming it and why. */
long double precise(long double v) { return v; }
int      vsum(int n, va_list ap) { int s = 0; for (int i = 0; i < n; i++) s += va_arg(ap, int); return s; }
"""


def test_every_supported_type_converts_like_python(runner: Runner) -> None:
    runner.write("types.c", TYPES_C)
    result = runner.json("""
        import array, json, warnings, nativeimport
        nativeimport.install()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import types as _shadow  # the stdlib module wins: Python's finders come first
            import importlib
            t = nativeimport.load("types.c", name="ctypes_demo")
        out = {"warned": [str(w.message) for w in caught]}
        out["stdlib_types_wins"] = hasattr(_shadow, "ModuleType")
        out["ints"] = [t.neg_i8(-128 + 1), t.inc_u8(254), t.neg_i16(300), t.inc_u16(65534), t.neg_i32(-7),
                       t.inc_u32(2**32 - 2), t.neg_i64(-(2**63) + 1), t.inc_u64(2**64 - 2), t.twice_long(-21),
                       t.size_of(2**64 - 1), t.next_char(64)]
        errors = []
        for call in (lambda: t.neg_i8(128), lambda: t.inc_u8(-1), lambda: t.inc_u64(2**64), lambda: t.neg_i32(1.5),
                     lambda: t.neg_i32("1"), lambda: t.half("x"), lambda: t.neg_i32(), lambda: t.neg_i32(1, 2)):
            try:
                call()
                errors.append(None)
            except Exception as exc:
                errors.append([type(exc).__name__, str(exc)])
        out["errors"] = errors
        out["bool"] = [t.invert(True), t.invert(0), t.invert([]), t.invert("x")]
        out["floats"] = [t.half(3), t.third(1.5), t.half(True)]
        out["enum"] = [t.flip(t.MODE_FAST), t.Mode.MODE_EXACT.value, t.mode_value(t.Mode.MODE_NEG), t.MODE_NEG]
        out["strings"] = [t.text_length("héllo"), t.text_length(b"abc"), t.text_length(None), t.greeting(),
                          t.nothing_here()]
        try:
            t.text_length("a\\0b")
        except ValueError as exc:
            out["nul"] = str(exc)
        buf = bytearray(4)
        t.fill(buf, 4, 7)
        out["fill"] = list(buf)
        out["checksum"] = [t.checksum(b"\\x01\\x02\\x03", 3), t.checksum(array.array("d", [0.0]), 8)]
        out["first_byte"] = t.first_byte(b"\\xff")
        out["total"] = t.total_i32(array.array("i", [1, 2, 3]), 3)
        xs = array.array("q", [9, 9, 9])
        t.count_up(xs, 3)
        out["count_up"] = xs.tolist()
        try:
            t.count_up(array.array("Q", [0]), 1)
        except TypeError as exc:
            out["unsigned_for_signed"] = str(exc)
        p = t.make_particle(7, 1.0)
        out["particle"] = [p.id, list(p.pos), t.particle_sum(p), t.particle_sum(t.Particle(id=1, pos=[1, 2, 3]))]
        out["outer"] = t.outer_a(t.Outer(inner={"a": 2.5}, tag=1))
        h = t.handle_new(42)
        out["handle"] = t.handle_get(h)
        t.handle_free(h)
        out["help"] = t.total_i32.__doc__
        out["once_left_out"] = [t.sum_ints(3, 1, 2, 3), t.apply(lambda v: v * 10, 4), t.number_i(t.Number(i=9))]
        print(json.dumps(out))
    """)
    assert result["stdlib_types_wins"] is True
    (warned,) = result["warned"]  # one summary per build
    assert warned.startswith("ctypes_demo: 2 exports left out (precise, vsum); `nativeimport show ")
    assert result["once_left_out"] == [6, 40, 9]
    assert result["ints"] == [127, 255, -300, 65535, 7, 2**32 - 1, 2**63 - 1, 2**64 - 1, -42, 2**64 - 1, 65]
    kinds = [e[0] for e in result["errors"]]
    assert kinds == ["OverflowError", "OverflowError", "OverflowError", "TypeError", "TypeError", "TypeError",
                     "TypeError", "TypeError"]
    assert "neg_i8() argument 'v' (int8_t)" in result["errors"][0][1]
    assert "half() argument 'v' (float)" in result["errors"][5][1]
    assert result["bool"] == [False, True, True, False]
    assert result["floats"] == [1.5, 0.5, 0.5]
    assert result["enum"] == [1, 1, -5, -5]
    assert result["strings"] == [6, 3, 2**64 - 1, "héllo", None]
    assert "embedded null" in result["nul"]
    assert result["fill"] == [7, 7, 7, 7]
    assert result["checksum"] == [6, 0]
    assert result["first_byte"] == 255
    assert result["total"] == 6
    assert result["count_up"] == [0, 1, 2]
    assert "8-byte unsigned integers (format 'Q'), not 8-byte signed integers" in result["unsigned_for_signed"]
    assert result["particle"] == [7, [1.0, 2.0, 3.0], 6.0, 6.0]
    assert result["outer"] == 2.5
    assert result["handle"] == 42
    assert result["help"].startswith("int64_t total_i32(const int32_t *xs, size_t n)")


def test_unsupported_exports_are_named_with_a_reason(runner: Runner) -> None:
    runner.write("types.c", TYPES_C)
    done = runner.cli("show", "types.c")
    assert "def total_i32(xs: Buffer | None, n: int) -> int:" in done.stdout
    assert "def sum_ints(n: int, *args: Any) -> int:" in done.stdout
    assert "def apply(f: Callable[..., Any] | None, v: int) -> int:" in done.stdout
    assert "precise: its result is long double (128-bit)" in done.stdout
    assert "vsum: parameter 'ap' is a va_list" in done.stdout
    assert "def number_i(n: Number) -> int:" in done.stdout
