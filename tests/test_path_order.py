"""Native sources are found in sys.path order, shadowing and shadowed exactly as a .py file would be."""

from __future__ import annotations

from pathlib import Path

from helpers import Runner

NATIVE = "const char *origin(void) { return \"native\"; }\n"
PYTHON = "def origin():\n    return 'python'\n"


def test_a_source_beside_the_script_shadows_what_comes_later_on_the_path(runner: Runner, tmp_path: Path) -> None:
    later = tmp_path / "later"
    later.mkdir()
    (later / "shadowed.py").write_text(PYTHON)
    (later / "unshadowed.c").write_text(NATIVE)
    runner.write("shadowed.c", NATIVE)
    runner.write("unshadowed.py", PYTHON)
    runner.write("colorsys.c", NATIVE)  # a standard library module, not imported at start-up
    found = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import shadowed, unshadowed, colorsys
        print(json.dumps([shadowed.origin(), unshadowed.origin(), colorsys.origin()]))
    """, env={"PYTHONPATH": str(later)})
    assert found == ["native", "python", "native"]


def test_in_one_directory_python_s_own_file_wins(runner: Runner) -> None:
    runner.write("both.py", PYTHON)
    runner.write("both.c", NATIVE)
    runner.write("onlynative.c", NATIVE)
    found = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import both, onlynative
        print(json.dumps([both.origin(), onlynative.origin()]))
    """)
    assert found == ["python", "native"]


def test_a_package_of_native_sources(runner: Runner) -> None:
    runner.write("geo/__init__.c", "int version(void) { return 3; }\n")
    runner.write("geo/shapes.c", "double area(double w, double h) { return w * h; }\n")
    runner.write("geo/helpers.py", "def twice(x):\n    return 2 * x\n")
    found = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import geo
        import geo.shapes
        from geo import helpers
        print(json.dumps([geo.version(), geo.shapes.area(2.0, 4.5), helpers.twice(5), geo.__path__ != [],
                          geo.__file__.endswith("__init__.c")]))
    """)
    assert found == [3, 9.0, 10, True, True]
