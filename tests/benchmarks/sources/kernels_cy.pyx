# cython: language_level=3, boundscheck=False, wraparound=False
from libc.stdint cimport int64_t

def add(double a, double b):
    return a + b

def add3(int64_t a, int64_t b, int64_t c):
    return a + b + c

def nothing():
    pass

def sum(const double[::1] xs, size_t n):
    cdef double s = 0
    cdef size_t i
    for i in range(n):
        s += xs[i]
    return s
