"""Binary data through byte pointers: any bytes-like object as it is, NULs included, in both binders."""

from __future__ import annotations

import pytest
from helpers import Runner

# A run-length codec shaped like LZ4's API: (const char *src, char *dst, int srcSize, int dstCapacity).
CODEC = r"""
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Pairs of (count, byte); returns the bytes written, or -1 if dst is too small. */
int compress(const char *src, char *dst, int srcSize, int dstCapacity) {
    int out = 0;
    for (int i = 0; i < srcSize;) {
        int run = 1;
        while (i + run < srcSize && run < 255 && src[i + run] == src[i]) run++;
        if (out + 2 > dstCapacity) return -1;
        dst[out++] = (char)run;
        dst[out++] = src[i];
        i += run;
    }
    return out;
}

int decompress(const char *src, char *dst, int srcSize, int dstCapacity) {
    int out = 0;
    for (int i = 0; i + 1 < srcSize; i += 2) {
        int run = (unsigned char)src[i];
        if (out + run > dstCapacity) return -1;
        memset(dst + out, src[i + 1], (size_t)run);
        out += run;
    }
    return out;
}

uint32_t checksum(const unsigned char *data, size_t n) {
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i++) sum = sum * 31 + data[i];
    return sum;
}

size_t first_nul(const void *data, size_t n) {
    const void *hit = memchr(data, 0, n);
    return hit ? (size_t)((const char *)hit - (const char *)data) : n;
}

size_t text_length(const char *text) { return text ? strlen(text) : (size_t)-1; }

uintptr_t address_of(const uint8_t *data) { return (uintptr_t)data; }
"""

ROUND_TRIP = """
import array, json, os, nativeimport
try:
    import numpy as np
except ImportError:  # PyPy's environment has none
    np = None
m = nativeimport.load("codec.c", binder=BINDER)
data = bytes(range(256)) * 3 + b"\\0" * 700 + os.urandom(64) + b"tail\\0\\0"

def round_trip(source, size):
    packed = bytearray(2 * size + 16)
    n = m.compress(source, packed, size, len(packed))
    restored = bytearray(size)
    got = m.decompress(memoryview(packed)[:n], restored, n, size)
    return got == size and bytes(restored) == bytes(source)

out = {
    "bytes": round_trip(data, len(data)),
    "bytearray": round_trip(bytearray(data), len(data)),
    "memoryview": round_trip(memoryview(data), len(data)),
    "array": round_trip(array.array("B", data), len(data)),
    "numpy": np and round_trip(np.frombuffer(data, dtype=np.uint8), len(data)),
    "numpy_int32": np and round_trip(np.arange(10, dtype=np.int32), 40),
    "checksum_same": len({m.checksum(x, len(data)) for x in (data, bytearray(data), memoryview(data),
                                                               array.array("B", data))}) == 1,
    "first_nul": m.first_nul(b"ab\\0cd", 5),
    "str": [m.text_length("héllo"), m.checksum("é", 2) == m.checksum("é".encode(), 2), m.text_length(None)],
    "zero_copy": np and [m.address_of(a) == a.ctypes.data for a in (np.zeros(8, np.uint8),)]
                 + [m.address_of(b) == np.frombuffer(b, np.uint8).ctypes.data for b in (bytearray(8),)],
    "zero_copy_array": [m.address_of(a) == a.buffer_info()[0] for a in (array.array("B", b"xyz"),)],
    "ffi": m.text_length(m.__ffi__.new("char[]", b"four")),
}
errors = []
for call in (lambda: m.text_length("a\\0b"), lambda: m.compress(data, b"read-only", 4, 9),
             lambda: m.checksum(3, 1), lambda: m.checksum(memoryview(b"abcdefgh")[::2], 4),
             lambda: m.compress("text", "text", 4, 4)):
    try:
        call()
        errors.append("no error")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
out["errors"] = errors
print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", ["auto", "cffi"])
def test_binary_data_round_trips_through_const_char_pointers(runner: Runner, binder: str) -> None:
    runner.write("codec.c", CODEC)
    out = runner.json(f"BINDER = {binder!r}\n" + ROUND_TRIP)
    for kind in ("bytes", "bytearray", "memoryview", "array", "numpy", "numpy_int32", "checksum_same"):
        assert out[kind] is True, kind
    assert out["first_nul"] == 2
    assert out["str"] == [len("héllo".encode()), True, 2**64 - 1]
    assert out["zero_copy"] == [True, True] and out["zero_copy_array"] == [True]
    assert out["ffi"] == 4
    nul, readonly, not_bytes, strided, str_dst = out["errors"]
    assert nul.startswith("ValueError: text_length() argument 'text' (const char *): embedded null character")
    assert readonly.startswith("TypeError: compress() argument 'dst' (char *): the function writes through")
    assert not_bytes == ("TypeError: checksum() argument 'data' (const unsigned char *): expected str or a "
                         "bytes-like object (bytes, bytearray, memoryview, array.array, numpy array, ...), not int")
    assert strided == "ValueError: checksum() argument 'data' (const unsigned char *): the buffer must be C-contiguous"
    assert str_dst.startswith("TypeError: compress() argument 'dst' (char *): expected a buffer")


def test_both_binders_give_the_same_errors(runner: Runner) -> None:
    runner.write("codec.c", CODEC)
    fast = runner.json("BINDER = 'auto'\n" + ROUND_TRIP)
    cffi = runner.json("BINDER = 'cffi'\n" + ROUND_TRIP)
    assert fast == cffi
    served = runner.json("""
        import json, nativeimport
        m = nativeimport.load("codec.c")
        print(json.dumps([type(m.compress).__name__, type(m.checksum).__name__]))
    """)
    assert served == ["builtin_function_or_method"] * 2  # the fast binder serves byte pointers itself
