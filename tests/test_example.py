"""The example of the foundation issue, end to end, with real gcc in a fresh interpreter."""

from __future__ import annotations

from pathlib import Path

from helpers import Runner

MYMATH = Path(__file__).parents[1] / "demos" / "mymath" / "mymath.c"


def test_the_readme_example_behaves_as_documented(runner: Runner) -> None:
    runner.write("mymath.c", MYMATH.read_text())
    result = runner.json("""
        import array, json, pydoc, nativeimport
        nativeimport.install()
        import mymath
        out = {"add": mymath.add(1.5, 2.0)}
        xs = array.array("d", [1, 2, 3])
        out["sum"] = mymath.sum(xs, 3)
        mymath.scale(xs, 3, 2.0)
        out["scaled"] = xs.tolist()
        out["length"] = mymath.length(mymath.Point(x=3.0, y=4.0))
        out["units"] = [mymath.UNIT_KM, int(mymath.Unit.UNIT_KM), type(mymath.Unit.UNIT_KM).__mro__[1].__name__]
        out["unit_name"] = mymath.unit_name(mymath.UNIT_KM)
        out["help"] = pydoc.render_doc(mymath.length, renderer=pydoc.plaintext)
        try:
            mymath.sum(array.array("i", [1, 2]), 2)
        except TypeError as exc:
            out["type_error"] = str(exc)
        out["private"] = hasattr(mymath, "sq")
        out["file"] = mymath.__file__
        print(json.dumps(out))
    """)
    assert result["add"] == 3.5
    assert result["sum"] == 6.0
    assert result["scaled"] == [2.0, 4.0, 6.0]
    assert result["length"] == 5.0
    assert result["units"] == [1000, 1000, "IntEnum"]
    assert result["unit_name"] == "km"
    assert "double length(Point p)" in result["help"]
    assert "Euclidean length of p." in result["help"]
    assert "sum()" in result["type_error"] and "'xs'" in result["type_error"] and "const double *" in result["type_error"]
    assert result["private"] is False
    assert result["file"] == str(runner.project / "mymath.c")


def test_numpy_arrays_are_passed_without_copying(runner: Runner) -> None:
    runner.write("mymath.c", MYMATH.read_text())
    result = runner.json("""
        import json, numpy, nativeimport
        nativeimport.install()
        import mymath
        a = numpy.arange(6, dtype=numpy.float64).reshape(2, 3)
        mymath.scale(a, 6, 10.0)
        out = {"scaled": a.ravel().tolist(), "sum": mymath.sum(a, 6)}
        try:
            mymath.sum(numpy.zeros(3, dtype=numpy.float32), 3)
        except TypeError as exc:
            out["float32"] = str(exc)
        try:
            mymath.sum(a[:, ::2], 2)
        except ValueError as exc:
            out["strided"] = str(exc)
        frozen = numpy.ones(3)
        frozen.flags.writeable = False
        out["readonly_const"] = mymath.sum(frozen, 3)
        try:
            mymath.scale(frozen, 3, 2.0)
        except TypeError as exc:
            out["readonly"] = str(exc)
        print(json.dumps(out))
    """)
    assert result["scaled"] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert result["sum"] == 150.0
    assert "holds 4-byte floats (format 'f'), not 8-byte floats" in result["float32"]
    assert "C-contiguous" in result["strided"]
    assert result["readonly_const"] == 3.0
    assert "writable" in result["readonly"]


def test_structs_by_pointer_show_writes(runner: Runner) -> None:
    runner.write("mymath.c", MYMATH.read_text())
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import mymath
        p = mymath.Point(1.0, 2.0)
        mymath.translate(p, 0.5, -1.0)
        out = {"moved": [p.x, p.y], "isinstance": isinstance(p, mymath.Point)}
        try:
            mymath.Point(z=1.0)
        except TypeError as exc:
            out["bad_field"] = str(exc)
        try:
            mymath.length(3.0)
        except TypeError as exc:
            out["not_a_point"] = str(exc)
        print(json.dumps(out))
    """)
    assert result["moved"] == [1.5, 1.0]
    assert result["isinstance"] is True
    assert "no field 'z'" in result["bad_field"]
    assert "expected Point" in result["not_a_point"]
