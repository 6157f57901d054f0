"""Property-based differential tests: random signatures and values through both binders, against ctypes.

Each function is compiled for real; every call must give what the same library gives through ctypes
(for values C accepts) or the exception Python's own conversions would raise (for values it does not).
"""

from __future__ import annotations

import ctypes
import math
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from stress_helpers import count  # noqa: E402

import nativeimport  # noqa: E402

INTS = {
    "int8_t": (ctypes.c_int8, -(2**7), 2**7 - 1), "uint8_t": (ctypes.c_uint8, 0, 2**8 - 1),
    "int16_t": (ctypes.c_int16, -(2**15), 2**15 - 1), "uint16_t": (ctypes.c_uint16, 0, 2**16 - 1),
    "int32_t": (ctypes.c_int32, -(2**31), 2**31 - 1), "uint32_t": (ctypes.c_uint32, 0, 2**32 - 1),
    "int64_t": (ctypes.c_int64, -(2**63), 2**63 - 1), "uint64_t": (ctypes.c_uint64, 0, 2**64 - 1),
}
FLOATS = {"float": ctypes.c_float, "double": ctypes.c_double}
TYPES = [*INTS, *FLOATS, "bool"]
CTYPES = {**{k: v[0] for k, v in INTS.items()}, **FLOATS, "bool": ctypes.c_bool}
FLOAT32_MAX = 3.4028234663852886e38


def expected_conversion(ctype: str, value: Any) -> Any:
    """What C receives for ``value``, or the exception type Python's conversions raise."""
    if ctype == "bool":
        return bool(value)
    if ctype in INTS:
        if not isinstance(value, int):
            return TypeError
        _, low, high = INTS[ctype]
        return int(value) if low <= value <= high else OverflowError
    if isinstance(value, (str, type(None))):
        return TypeError
    try:
        converted = float(value)
    except OverflowError:
        return OverflowError
    if ctype == "float":
        if abs(converted) > FLOAT32_MAX and math.isfinite(converted):
            return None  # out of float's range: C leaves it undefined, so it is not drawn
        return struct.unpack("f", struct.pack("f", converted))[0]
    return converted


values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**7, 2**8, 2**15, 2**16, 2**31, 2**32, 2**63, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=False, width=64),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
)


def build(tmp: Path, body: str) -> tuple[Any, Any, ctypes.CDLL]:
    source = tmp / f"m{uuid.uuid4().hex[:12]}.c"
    source.write_text("#include <stdint.h>\n#include <stdbool.h>\n" + body)
    cache = tmp / "cache"
    fast = nativeimport.load(source, cache_dir=cache)
    cffi = nativeimport.load(source, name=source.stem + "_cffi", cache_dir=cache, binder="cffi")
    return fast, cffi, ctypes.CDLL(fast.__native_library__)


def call(function: Any, args: list[Any]) -> Any:
    try:
        return function(*args)
    except (TypeError, OverflowError) as exc:
        return type(exc)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return (a == b and type(a) is type(b)) or (isinstance(a, bool) and a == b)


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, ctypes.CDLL]:
    body = "".join(f"{t} id_{t.replace(' ', '_')}({t} v) {{ return v; }}\n" for t in TYPES)
    return build(tmp_path_factory.mktemp("identities"), body)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ctype=st.sampled_from(TYPES), value=values)
def test_every_value_converts_like_python_in_both_binders(identities: Any, ctype: str, value: Any) -> None:
    fast, cffi, library = identities
    expected = expected_conversion(ctype, value)
    if expected is None:
        return
    name = f"id_{ctype}"
    got_fast, got_cffi = call(getattr(fast, name), [value]), call(getattr(cffi, name), [value])
    assert same(got_fast, got_cffi), (ctype, value, got_fast, got_cffi)
    if isinstance(expected, type):
        assert got_fast is expected, (ctype, value, got_fast)
    else:
        native = getattr(library, name)
        native.argtypes, native.restype = [CTYPES[ctype]], CTYPES[ctype]
        assert same(got_fast, native(expected)), (ctype, value, got_fast)
        assert same(got_fast, expected) or ctype == "bool", (ctype, value, got_fast, expected)
    count("value conversions checked against Python and ctypes")


@st.composite
def signatures(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    return draw(st.lists(st.tuples(st.sampled_from(["void", *TYPES]), st.lists(st.sampled_from(TYPES), max_size=5)),
                         min_size=1, max_size=4))


def function_source(index: int, result: str, params: list[str]) -> str:
    declared = ", ".join(f"{t} p{i}" for i, t in enumerate(params)) or "void"
    if result == "void":
        body = ""
    elif result in params:
        body = f"return p{params.index(result)};"
    else:
        body = f"return ({result})7;"
    return f"{result} f{index}({declared}) {{ {body} }}\n"


@settings(max_examples=40, deadline=None)
@given(functions=signatures(), data=st.data())
def test_random_signatures_match_ctypes(tmp_path_factory: pytest.TempPathFactory,
                                        functions: list[tuple[str, list[str]]], data: st.DataObject) -> None:
    body = "".join(function_source(i, result, params) for i, (result, params) in enumerate(functions))
    fast, cffi, library = build(tmp_path_factory.mktemp("signatures"), body)
    for index, (result, params) in enumerate(functions):
        args = [data.draw(values) for _ in params]
        expectations = [expected_conversion(t, v) for t, v in zip(params, args)]
        if any(e is None for e in expectations):
            continue
        got_fast, got_cffi = call(getattr(fast, f"f{index}"), args), call(getattr(cffi, f"f{index}"), args)
        assert same(got_fast, got_cffi), (body, args, got_fast, got_cffi)
        failures = [e for e in expectations if isinstance(e, type)]
        if failures:
            assert got_fast is failures[0], (body, args, got_fast)
            count("random calls refused as Python's conversions would")
            continue
        native = getattr(library, f"f{index}")
        native.argtypes = [CTYPES[t] for t in params]
        native.restype = None if result == "void" else CTYPES[result]
        assert same(got_fast, native(*expectations)), (body, args, got_fast)
        count("random functions called through both binders and ctypes")
    count("random modules compiled", 1)


VALID = "#include <stdint.h>\nint64_t mix(int64_t a, double b) { return a + (int64_t)b; }\nstruct P { int x; };\n"


@settings(max_examples=60, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID)), st.sampled_from(["", "@", "{", ")", ";", "int", "\"", "#"])),
                      min_size=1, max_size=4))
def test_broken_sources_only_raise_compile_errors(tmp_path_factory: pytest.TempPathFactory,
                                                  edits: list[tuple[int, str]]) -> None:
    text = VALID
    for position, insert in edits:
        text = text[:position] + insert + text[position + 1:]
    folder = tmp_path_factory.mktemp("broken")
    source = folder / "broken.c"
    source.write_text(text)
    try:
        nativeimport.load(source, cache_dir=folder / "cache")
        count("mutated sources that still compiled")
    except (nativeimport.CompileError, nativeimport.SourceError):
        count("mutated sources rejected with CompileError")
        assert not (folder / "cache" / "entries").exists() or not any((folder / "cache" / "entries").iterdir())
