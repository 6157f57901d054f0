#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
typedef struct { double x, y; } Point;
enum Unit { UNIT_M = 1, UNIT_KM = 1000 };
static double sq(double v) { return v * v; }          /* private: not exported */

/* Euclidean length of p. */
double length(Point p) { return __builtin_sqrt(sq(p.x) + sq(p.y)); }
double add(double a, double b) { return a + b; }
double sum(const double *xs, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
void scale(double *xs, size_t n, double k) { for (size_t i = 0; i < n; i++) xs[i] *= k; }
const char *unit_name(enum Unit u) { return u == UNIT_KM ? "km" : "m"; }
int64_t add3(int64_t a, int64_t b, int64_t c) { return a+b+c; }
bool neg(bool b) { return !b; }
void nothing(void) {}
int counter = 3;
