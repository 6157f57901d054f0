/* mymath: plain C, no binding code. `import mymath` compiles, caches and binds it. */
#include <stddef.h>

typedef struct { double x, y; } Point;
enum Unit { UNIT_M = 1, UNIT_KM = 1000 };

static double sq(double v) { return v * v; }          /* private: not exported */

/* Euclidean length of p. */
double length(Point p) { return __builtin_sqrt(sq(p.x) + sq(p.y)); }

/* Sum of two numbers. */
double add(double a, double b) { return a + b; }

/* Sum of the first n values of xs. */
double sum(const double *xs, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += xs[i];
    return s;
}

/* Multiply the first n values of xs by k, in place. */
void scale(double *xs, size_t n, double k) {
    for (size_t i = 0; i < n; i++) xs[i] *= k;
}

/* The unit's short name. */
const char *unit_name(enum Unit u) { return u == UNIT_KM ? "km" : "m"; }

/* Move p by (dx, dy), through the pointer. */
void translate(Point *p, double dx, double dy) { p->x += dx; p->y += dy; }
