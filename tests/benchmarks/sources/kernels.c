/* The functions every tool binds, in plain C. */
#include <stddef.h>
#include <stdint.h>

double add(double a, double b) { return a + b; }
int64_t add3(int64_t a, int64_t b, int64_t c) { return a + b + c; }
void nothing(void) { }
double sum(const double *xs, size_t n) { double s = 0; for (size_t i = 0; i < n; i++) s += xs[i]; return s; }
