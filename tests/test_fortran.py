"""Fortran through the Fortran driver: bind(C) procedures over arrays, derived types and scalars."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers import Runner

if shutil.which("gfortran") is None:
    pytest.skip("gfortran is not installed (Debian: apt-get install gfortran)", allow_module_level=True)

BINDERS = [pytest.param({}, id="default"), pytest.param({"NATIVEIMPORT_BINDER": "cffi"}, id="cffi")]

STEP_INC = "  real(c_double), parameter :: STEP = 1.0d0\n"
STATS_F90 = """
module stats
  use iso_c_binding
  implicit none
  include 'step.inc'

  type, bind(C) :: vec2
    real(c_double) :: x, y
  end type vec2

contains
  ! Sum of the first n values.
  function total(xs, n) bind(C) result(s)
    real(c_double), intent(in) :: xs(*)
    integer(c_int), value :: n
    real(c_double) :: s
    s = sum(xs(1:n))
  end function total

  ! Adds STEP to each of the n values, in place.
  subroutine step_all(xs, n) bind(C, name="step_them")
    integer(c_int), value :: n
    real(c_double), intent(inout) :: xs(n)
    xs = xs + STEP
  end subroutine step_all

  ! Column sums of an n-by-k matrix (Fortran order).
  subroutine column_sums(m, n, k, sums) bind(C)
    integer(c_int), value :: n, k
    real(c_double), intent(in) :: m(n, k)
    real(c_double), intent(out) :: sums(k)
    sums = sum(m, dim=1)
  end subroutine column_sums

  function len2(v) bind(C)
    type(vec2), value :: v
    real(c_double) :: len2
    len2 = v%x**2 + v%y**2
  end function len2

  subroutine stretch(v, k) bind(C)
    type(vec2), intent(inout) :: v
    real(c_double), intent(in) :: k
    v%x = v%x * k
    v%y = v%y * k
  end subroutine stretch

  function positive(x) bind(C)
    real(c_double), value :: x
    logical(c_bool) :: positive
    positive = x > 0
  end function positive

  ! An intent(in) scalar without value is passed by reference: C sees const int *.
  function doubled(i) bind(C)
    integer(c_int), intent(in) :: i
    integer(c_int) :: doubled
    doubled = 2 * i
  end function doubled

  ! An optional one stays a pointer, so that it can be absent.
  function times(x, n) &
      bind(C)
    real(c_double), value :: x
    integer(c_int), intent(in), &
        optional :: n  ! how many times
    real(c_double) :: times
    times = x
    if (present(n)) times = x * n
  end function times

  subroutine accumulate(a, b) bind(C)
    integer(c_int), intent(inout) :: a
    integer(c_int), value :: b
    a = a + b
  end subroutine accumulate

  ! A dummy may be named like a C keyword.
  function half(double) bind(C)
    real(c_double), intent(in) :: double
    real(c_double) :: half
    half = double / 2
  end function half

  function mean(xs) bind(C)
    real(c_double), intent(in) :: xs(:)
    real(c_double) :: mean
    mean = sum(xs) / size(xs)
  end function mean

  function hidden(x) result(y)
    real :: x, y
    y = x
  end function hidden
end module stats
"""

CALLS = """
    import array, json, warnings, nativeimport
    nativeimport.install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import stats
    out = {}
    xs = array.array("d", [1.0, 2.0, 3.5])
    out["total"] = stats.total(xs, 3)
    stats.step_them(xs, 2)
    out["stepped"] = xs.tolist()
    v = stats.vec2(x=3.0, y=4.0)
    out["len2"] = stats.len2(v)
    stats.stretch(v, 2.0)
    out["stretched"] = [v.x, v.y]
    out["positive"] = [stats.positive(1.5), stats.positive(-1.0)]
    out["doubled"] = stats.doubled(21)
    out["times"] = [stats.times(2.0, None), stats.times(2.0, array.array("i", [3]))]
    acc = array.array("i", [10])
    stats.accumulate(acc, 5)
    out["accumulated"] = acc[0]
    try:
        stats.accumulate(10, 5)
    except TypeError as exc:
        out["inout_number"] = "TypeError"
    out["doc"] = stats.total.__doc__
    out["half"] = stats.half(5.0)
    out["signatures"] = [f.__doc__.splitlines()[0] for f in (stats.doubled, stats.stretch, stats.times, stats.half)]
    out["missing"] = [name for name in ("mean", "hidden", "step_all") if hasattr(stats, name)]
    out["warnings"] = [f"stats.{n} was left out: {r}" for n, r in sorted(stats.__native_left_out__.items())]
    print(json.dumps(out))
"""


def _write(runner: Runner) -> None:
    runner.write("stats.f90", STATS_F90)
    runner.write("step.inc", STEP_INC)


def _check(result: dict[str, object]) -> None:
    assert result["total"] == 6.5
    assert result["stepped"] == [2.0, 3.0, 3.5]
    assert result["len2"] == 25.0
    assert result["stretched"] == [6.0, 8.0]
    assert result["positive"] == [True, False]
    assert result["doubled"] == 42
    assert result["times"] == [2.0, 6.0]
    assert result["accumulated"] == 15
    assert result["inout_number"] == "TypeError"
    assert result["half"] == 2.5
    assert result["signatures"] == ["int doubled(int i)", "void stretch(vec2 *v, double k)",
                                    "double times(double x, const int *n)", "double half(double double_)"]
    assert result["doc"] == "double total(const double *xs, int n)\n\nSum of the first n values."
    assert result["missing"] == []
    assert result["warnings"] == [
        "stats.hidden was left out: module procedure stats::hidden is not bind(C), so it has no C interface "
        "(Fortran passes its arguments its own way); add bind(C) to export it",
        "stats.mean was left out: argument 'xs' is passed by descriptor (CFI_cdesc_t: assumed-shape, allocatable, "
        "pointer or character(len=*)), which has no binding; declare it assumed-size (x(*)) or explicit-shape (x(n))",
    ]


@pytest.mark.parametrize("binder", BINDERS)
def test_bind_c_procedures_through_each_binder(runner: Runner, binder: dict[str, str]) -> None:
    _write(runner)
    _check(runner.json(CALLS, env=binder))
    # Module files never land beside the source, and the scratch directory for them is emptied.
    assert sorted(p.name for p in runner.project.iterdir()) == ["stats.f90", "step.inc"]
    assert list((runner.cache / "scratch" / "fortran" / "modules").iterdir()) == []


@pytest.mark.parametrize("binder", BINDERS)
def test_numpy_arrays_zero_copy(runner: Runner, binder: dict[str, str]) -> None:
    pytest.importorskip("numpy")
    _write(runner)
    result = runner.json("""
        import json, warnings, nativeimport
        import numpy as np
        nativeimport.install()
        warnings.simplefilter("ignore")
        import stats
        out = {}
        xs = np.array([1.0, 2.0, 3.0])
        out["total"] = stats.total(xs, 3)
        stats.step_them(xs, 3)  # writes land in the numpy array itself
        out["stepped"] = xs.tolist()
        m = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], order="F")
        sums = np.zeros(3)
        # A Fortran-ordered matrix is refused as such (the binders take C-contiguous buffers);
        # its transpose is a C-contiguous view of the same memory, in the order Fortran wants.
        try:
            stats.column_sums(m, 2, 3, sums)
        except ValueError as exc:
            out["fortran_order"] = str(exc)
        stats.column_sums(m.T, 2, 3, sums)
        out["column_sums"] = sums.tolist()
        # A C-ordered matrix is taken as is: Fortran reads its memory column-major, i.e. its transpose.
        stats.column_sums(np.ascontiguousarray(m), 2, 3, sums)
        out["c_order"] = sums.tolist()
        try:
            stats.total(np.zeros(6)[::2], 3)
        except ValueError as exc:
            out["strided"] = str(exc)
        try:
            stats.total(np.zeros(3, dtype=np.float32), 3)
        except TypeError as exc:
            out["float32"] = str(exc)
        print(json.dumps(out))
    """, env=binder)
    assert result["total"] == 6.0
    assert result["stepped"] == [2.0, 3.0, 4.0]
    assert result["fortran_order"] == "column_sums() argument 'm' (const double *): the buffer must be C-contiguous"
    assert result["column_sums"] == [5.0, 7.0, 9.0]
    assert result["c_order"] == [3.0, 7.0, 11.0]
    assert "C-contiguous" in result["strided"]
    assert "4-byte floats" in result["float32"]


def test_an_included_file_is_tracked(runner: Runner) -> None:
    _write(runner)
    code = """
        import array, json, warnings, nativeimport
        nativeimport.install()
        warnings.simplefilter("ignore")
        import stats
        xs = array.array("d", [1.0])
        stats.step_them(xs, 1)
        print(json.dumps(xs[0]))
    """
    assert runner.json(code) == 2.0
    runner.write("step.inc", "  real(c_double), parameter :: STEP = 10.0d0\n")
    assert runner.json(code) == 11.0


def test_a_module_used_from_beside_the_source_is_tracked(runner: Runner) -> None:
    # A module compiled by the user beside the source (its .mod file theirs, not ours) is a dependency.
    runner.write("consts.f90", "module consts\n  implicit none\n  integer, parameter :: OFFSET = 100\nend module\n")
    subprocess.run(["gfortran", "-c", "consts.f90", "-o", "consts.o"], cwd=runner.project, check=True)
    runner.write("user.f90", """
        function shifted(x) bind(C)
          use iso_c_binding
          use consts
          integer(c_int), value :: x
          integer(c_int) :: shifted
          shifted = x + OFFSET
        end function
    """)
    code = """
        import json, nativeimport
        nativeimport.install()
        import user
        print(json.dumps(user.shifted(1)))
    """
    assert runner.json(code) == 101
    runner.write("consts.f90", "module consts\n  implicit none\n  integer, parameter :: OFFSET = 200\nend module\n")
    subprocess.run(["gfortran", "-c", "consts.f90", "-o", "consts.o"], cwd=runner.project, check=True)
    assert runner.json(code) == 201


def test_a_compile_error_shows_file_and_line(runner: Runner) -> None:
    runner.write("broken.f90", """
        function f() bind(C)
          use iso_c_binding
          implicit none
          integer(c_int) :: f
          f = missing_name
        end function
    """)
    message = runner.import_error("broken", "CompileError")
    assert "broken.f90:5:" in message
    assert "Error: Symbol" in message and "missing_name" in message
    assert runner.entries() == []


def test_a_missing_compiler_says_what_to_install(runner: Runner) -> None:
    runner.write("tiny.f08", "function one() bind(C)\n  use iso_c_binding\n  integer(c_int) :: one\n  one = 1\nend function\n")
    message = runner.import_error("tiny", "ToolchainNotFound", env={"FC": "/nonexistent/gfortran"})
    assert "FC='/nonexistent/gfortran'" in message and "apt-get install gfortran" in message
    if shutil.which("gcc"):
        message = runner.import_error("tiny", "ToolchainNotFound", env={"FC": "gcc"})
        assert "is not gfortran" in message
    assert runner.json("import json, nativeimport; nativeimport.install(); import tiny; print(json.dumps(tiny.one()))") == 1


def test_doctor_lists_fortran(runner: Runner) -> None:
    report = json.loads(runner.cli("doctor", "--json").stdout)
    fortran = next(d for d in report["drivers"] if d["name"] == "fortran")
    assert fortran["found"] and fortran["suffixes"] == [".f90", ".f95", ".f03", ".f08"]
    assert fortran["entry_point"] == "nativeimport.compilers.fortran:FortranDriver"
    assert "GNU Fortran" in fortran["version"]


def test_cpython_and_pypy_share_the_build(runner: Runner, pypy: Path) -> None:
    _write(runner)
    on_cpython = runner.json(CALLS)
    _check(on_cpython)
    script = runner.project / "_on_pypy.py"
    script.write_text(textwrap.dedent(CALLS))
    done = subprocess.run([str(pypy), str(script)], cwd=runner.project, env=runner.env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == on_cpython
    assert len(runner.entries()) == 1


def test_without_debug_info_the_build_says_so(runner: Runner) -> None:
    # The DWARF tells a descriptor argument from a plain pointer: a library without it is not bound.
    runner.write("nodebug.f90", "function one() bind(C)\n  use iso_c_binding\n  integer(c_int) :: one\n  one = 1\nend function\n")
    message = runner.import_error("nodebug", "InterfaceError", env={"FFLAGS": "-g0"})
    assert "built without debug info" in message and "-g0" in message


def test_settings_in_a_fortran_comment(runner: Runner) -> None:
    runner.write("scaled.f90", """
        ! nativeimport:
        ! flags = ["-cpp"]
        ! define = ["FACTOR=3.0d0"]
        function scaled(x) bind(C, name="scaled") result(y)
          use iso_c_binding
          real(c_double), value :: x
          real(c_double) :: y
          y = x * FACTOR
        end function scaled
    """)
    found = runner.json("import json, nativeimport; nativeimport.install(); import scaled; "
                        "print(json.dumps(scaled.scaled(2.0)))")
    assert found == 6.0
