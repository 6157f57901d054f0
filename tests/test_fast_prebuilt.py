"""The fast binder's prebuilt parts never cost a module its wrapper: a failure with them builds once more without."""

from __future__ import annotations

import shutil
import textwrap

import pytest
from helpers import Runner

# GCC refuses, now and then, a precompiled header it cannot map at its address ("sorry, unimplemented:
# PCH allocation failure"). This compiler refuses every wrapper compiled where the .gch is in reach, as
# GCC does when that happens, and is gcc otherwise.
REFUSING_GCC = r"""
    #!/bin/sh
    for a in "$@"; do
      case "$a" in
        */fast.c) [ -f "$(dirname "$a")/ni_python.h" ] && exec gcc "$@"
          for b in "$@"; do
            case "$b" in -I*) if [ -f "${b#-I}/ni_python.h.gch" ]; then
              echo "fast.c:1: sorry, unimplemented: PCH allocation failure" >&2; exit 1; fi;; esac
          done;;
      esac
    done
    exec gcc "$@"
"""


def test_a_wrapper_the_precompiled_header_fails_is_built_without_it(runner: Runner) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: the precompiled header is GCC's")
    compiler = runner.project / "bin" / "refusing-gcc"
    compiler.parent.mkdir()
    compiler.write_text(textwrap.dedent(REFUSING_GCC).lstrip())
    compiler.chmod(0o755)
    runner.write("first.c", "double one(double x) { return x; }\n")
    runner.write("second.c", "double two(double x) { return 2 * x; }\n")
    env = {"CC": str(compiler)}
    runner.run("import nativeimport\nnativeimport.build('first.c')\n", env=env)
    # The prebuilt parts compile in the background after the first build: wait for the header.
    runner.run("""
        import glob, time
        deadline = time.monotonic() + 60
        while not glob.glob(r"CACHE/scratch/fast-pch/*/ni_python.h.gch") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert glob.glob(r"CACHE/scratch/fast-pch/*/ni_python.h.gch"), "the precompiled header was never built"
    """.replace("CACHE", str(runner.cache)))
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import second
        print(json.dumps([second.two(4.0), type(second.two).__name__]))
    """, env=env)
    assert result == [8.0, "builtin_function_or_method"], "served by the fast wrapper"
    assert not [p for e in runner.entries() for p in e.glob("*.unavailable-*")], "no entry gave up its wrapper"
