"""Frozen value classes (nativeimport._frozen): what the Interface model and the driver API's values
promise as the frozen dataclasses they were, dataclasses' own functions included (plugins call them)."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import pytest

from nativeimport._frozen import FrozenInstanceError, frozen, replace
from nativeimport.driver import BuildRequest, BuildSettings, Toolchain
from nativeimport.interface import CType, Function, Interface, Param


@frozen
class Pair:
    """Two values, the second with a default."""

    first: int
    second: str = "b"


def test_construction_by_position_keyword_and_default() -> None:
    assert Pair(1).second == "b"
    assert Pair(1, "x") == Pair(first=1, second="x") == Pair(second="x", first=1)
    assert Pair.__match_args__ == ("first", "second")  # positional patterns of a match statement


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Pair(),  # type: ignore[call-arg]
     "Pair() missing required argument: 'first'"),
    (lambda: Pair(1, "x", 3),  # type: ignore[call-arg]
     "Pair() takes 2 positional arguments but 3 were given"),
    (lambda: Pair(1, third=3),  # type: ignore[call-arg]
     "Pair() got an unexpected keyword argument 'third'"),
    (lambda: Pair(1, first=2),  # type: ignore[misc]
     "Pair() got multiple values for argument 'first'"),
])
def test_wrong_arguments_are_refused_with_the_reason(call: object, message: str) -> None:
    with pytest.raises(TypeError) as error:
        call()  # type: ignore[operator]
    assert str(error.value) == message


def test_equality_hash_and_repr_are_by_fields() -> None:
    assert Pair(1) != Pair(2)
    assert Pair(1) != (1, "b")  # type: ignore[comparison-overlap]  # another class is never equal, as with dataclasses
    assert len({Pair(1), Pair(1), Pair(2)}) == 2
    assert repr(Pair(1, "x")) == "Pair(first=1, second='x')"
    double = CType.floating("double")
    assert repr(double) == repr(dataclasses.replace(double))
    assert "CType(kind='float', name='double'" in repr(double)


def test_fields_cannot_be_assigned_or_deleted() -> None:
    pair = Pair(1)
    with pytest.raises(FrozenInstanceError):
        pair.first = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del pair.second
    assert pair == Pair(1)


def test_post_init_still_checks() -> None:
    with pytest.raises(ValueError, match="unknown type kind 'quaternion'"):
        CType("quaternion")


def test_replace_copies_with_changes() -> None:
    pair = Pair(1)
    assert replace(pair, second="z") == Pair(1, "z")
    assert pair == Pair(1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'third'"):
        replace(pair, third=3)
    if hasattr(copy, "replace"):  # Python 3.13+
        assert copy.replace(pair, first=5) == Pair(5)


def test_dataclasses_functions_accept_them() -> None:
    """Drivers written against the dataclass model keep working (their first use imports dataclasses)."""
    function = Function("f", CType.floating("double"), (Param("x", CType.integer("int32_t")),), doc="d")
    interface = Interface(functions=(function,))
    assert dataclasses.is_dataclass(interface)
    assert dataclasses.replace(interface, functions=()) == Interface()
    assert [f.name for f in dataclasses.fields(Function)] == ["name", "result", "params", "doc", "variadic"]
    assert dataclasses.fields(Function)[3].default == ""
    assert dataclasses.asdict(Param("x", CType.void()))["type"]["kind"] == "void"
    request = BuildRequest(source=Path("a.c"), module_name="a", output_dir=Path("out"),
                           toolchain=Toolchain("gcc", ("gcc",), "12"), scratch_dir=Path("s"))
    assert request.settings == BuildSettings()
    assert dataclasses.replace(request, timeout=5.0).timeout == 5.0


def test_copies_and_pickles_are_equal() -> None:
    function = Function("f", CType.pointer(CType.char(const=True)), (Param("s", CType.integer("uint8_t")),))
    assert copy.copy(function) == function
    assert copy.deepcopy(function) == function
    assert pickle.loads(pickle.dumps(function)) == function
