"""The nativeimport demo: `python demos/mymath/demo.py` imports mymath.c beside it."""

import array
import time

t0 = time.perf_counter()
import nativeimport  # noqa: E402

nativeimport.install()
import mymath  # noqa: E402  (mymath.c beside this script: compiled on first import, cached after)

print(f"import mymath took {(time.perf_counter() - t0) * 1000:.1f} ms "
      "(run again: the second time is a cache hit)")
print("mymath.add(1.5, 2.0)                      =", mymath.add(1.5, 2.0))
xs = array.array("d", [1, 2, 3])
print("mymath.sum(xs, 3)                         =", mymath.sum(xs, 3), "  (zero copy)")
mymath.scale(xs, 3, 2.0)
print("after mymath.scale(xs, 3, 2.0), xs        =", xs.tolist())
p = mymath.Point(x=3.0, y=4.0)
print("mymath.length(mymath.Point(x=3.0, y=4.0)) =", mymath.length(p))
mymath.translate(p, 1.0, 1.0)
print("after mymath.translate(p, 1.0, 1.0), p    =", (p.x, p.y))
print("mymath.UNIT_KM, mymath.Unit.UNIT_KM       =", mymath.UNIT_KM, repr(mymath.Unit.UNIT_KM))
print("mymath.unit_name(mymath.UNIT_KM)          =", repr(mymath.unit_name(mymath.UNIT_KM)))
print("mymath.length.__doc__                     =", repr(mymath.length.__doc__))
try:
    mymath.sum(array.array("i", [1, 2]), 2)
except TypeError as exc:
    print("mymath.sum(array('i', ...), 2)            -> TypeError:", exc)
