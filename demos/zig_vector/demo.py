"""Zig demo: `python demos/zig_vector/demo.py` (needs `pip install nativeimport[zig]`)."""

import array
import time

import nativeimport

nativeimport.install()
started = time.perf_counter()
import kernels  # noqa: E402  (kernels.zig beside this script)

print(f"import kernels: {(time.perf_counter() - started) * 1000:.0f} ms (cached after the first run)")
n = 1_000_000
x = array.array("d", (i % 100 for i in range(n)))
y = array.array("d", [1.0]) * n
started = time.perf_counter()
kernels.saxpy(2.0, x, y, n)
print(f"saxpy over {n:,} doubles: {(time.perf_counter() - started) * 1000:.2f} ms, y[:5] = {y[:5].tolist()}")
stats = kernels.describe(y, n)
print(f"describe(y): mean={stats.mean:.2f} min={stats.min} max={stats.max}  (an extern struct returned by value)")
v = array.array("d", [3.0, 4.0])
print(f"normalize([3, 4]) -> old length {kernels.normalize(v, 2)}, now {v.tolist()}")
print(kernels.describe.__doc__)
