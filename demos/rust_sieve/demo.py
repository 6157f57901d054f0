"""Rust demo: `python demos/rust_sieve/demo.py` (needs rustc: https://rustup.rs)."""

import time

import nativeimport

nativeimport.install()
started = time.perf_counter()
import sieve  # noqa: E402  (sieve.rs beside this script)

print(f"import sieve: {(time.perf_counter() - started) * 1000:.0f} ms (cached after the first run)")
n = 10_000_000
flags = bytearray(n)
started = time.perf_counter()
count = sieve.sieve(flags, n)
rust_ms = (time.perf_counter() - started) * 1000
print(f"primes below {n:,}: {count:,} in {rust_ms:.1f} ms (Rust, writing into a bytearray, no copy)")
print("first primes:", [i for i in range(60) if flags[i]])
print("the 1,000,000th prime:", sieve.nth_prime(999_999, 16_000_000))



def python_sieve(flags: bytearray, n: int) -> int:
    """The same algorithm in pure Python, for comparison."""
    flags[:] = b"\1" * n
    flags[0:2] = b"\0\0"
    i = 2
    while i * i < n:
        if flags[i]:
            for j in range(i * i, n, i):
                flags[j] = 0
        i += 1
    return sum(flags)


m = 1_000_000
started = time.perf_counter()
python_count = python_sieve(bytearray(m), m)
python_ms = (time.perf_counter() - started) * 1000
started = time.perf_counter()
rust_count = sieve.sieve(bytearray(m), m)
rust_ms = (time.perf_counter() - started) * 1000
print(f"primes below {m:,}: Python {python_count:,} in {python_ms:.0f} ms, Rust {rust_count:,} in {rust_ms:.1f} ms")
print()
print(sieve.sieve.__doc__)
