/* Records, handles, callbacks and strings: what real C APIs pass, bound by every tool in bench.py.
   Valid C and C++ alike (records_pb.cpp includes it), so every tool calls the same code. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct { double x, y; } Vec2;

double vlen(Vec2 v) { return sqrt(v.x * v.x + v.y * v.y); }

void vnorm(Vec2 *v) {
    double n = sqrt(v->x * v->x + v->y * v->y);
    if (n > 0) { v->x /= n; v->y /= n; }
}

Vec2 vadd(Vec2 a, Vec2 b) { Vec2 r = {a.x + b.x, a.y + b.y}; return r; }

/* An opaque handle: Counter is only declared, its state lives behind the pointer. */
typedef struct Counter Counter;
struct counter_state { int64_t total; };

Counter *counter_new(void) { return (Counter *)calloc(1, sizeof(struct counter_state)); }
void counter_add(Counter *c, int64_t k) { ((struct counter_state *)c)->total += k; }
int64_t counter_get(const Counter *c) { return ((const struct counter_state *)c)->total; }
void counter_free(Counter *c) { free(c); }

/* Calls back n times: the cost per call is the binder's trampoline plus the Python function. */
double sum_calls(double (*f)(double), int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += f((double)i);
    return s;
}

/* The same, for the binders to call with the GIL released (each callback takes it back), as C that may
   call back from threads of its own needs. */
double sum_calls_released(double (*f)(double), int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += f((double)i);
    return s;
}

/* str in, str out: a static buffer, as C APIs returning names do. */
const char *greet(const char *name) {
    static char buffer[256];
    snprintf(buffer, sizeof buffer, "Hello, %s!", name);
    return buffer;
}
