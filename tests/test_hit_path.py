"""What an import costs when nativeimport has nothing to do, and what a miss says about itself."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import Runner

UNRELATED = """
    import json, sys, nativeimport
    nativeimport.install()
    try:
        import no_such_module_anywhere
    except ModuleNotFoundError:
        outcome = "ModuleNotFoundError"
    except Exception as exc:
        outcome = type(exc).__name__
    ours = sorted(m for m in sys.modules if m.startswith("nativeimport.compilers") or m.startswith("elftools"))
    print(json.dumps([outcome, ours]))
"""


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_an_unrelated_import_imports_no_driver_and_writes_nothing(runner: Runner) -> None:
    runner.write("mymath.c", "double add(double a, double b) { return a + b; }\n")
    assert not runner.cache.exists()
    assert runner.json(UNRELATED) == ["ModuleNotFoundError", []]
    assert _files(runner.cache) == []  # the first process on this machine: no driver table written either
    # Built by cffi alone: the fast binder would leave its shared parts compiling in the background meanwhile.
    runner.json("import json, nativeimport; nativeimport.install(); import mymath; print(json.dumps(mymath.add(1, 2)))",
                env={"NATIVEIMPORT_BINDER": "cffi"})
    before = _files(runner.cache)
    assert runner.json(UNRELATED) == ["ModuleNotFoundError", []]
    assert _files(runner.cache) == before


def test_a_bad_setting_is_one_clear_error_and_never_breaks_unrelated_imports(runner: Runner) -> None:
    runner.write("mymath.c", "double add(double a, double b) { return a + b; }\n")
    for variable, value, accepted in (("NATIVEIMPORT_BUILD_TIMEOUT", "soon", "positive number of seconds"),
                                      ("NATIVEIMPORT_BINDER", "turbo", "auto, cffi"),
                                      ("NATIVEIMPORT_VERBOSE", "loud", "1/true/yes/on")):
        env = {variable: value}
        assert runner.json(UNRELATED, env=env) == ["ModuleNotFoundError", []]
        message = runner.import_error("mymath", "SettingsError", env=env)
        assert variable in message and repr(value) in message and accepted in message
    found = runner.json("""
        import json, nativeimport
        try:
            nativeimport.install(binder="turbo")
        except nativeimport.SettingsError as exc:
            print(json.dumps(str(exc)))
    """)
    assert "'binder' argument" in found and "auto, cffi" in found


AUDITED_IMPORT = """
    import json, sys
    started = []
    sys.addaudithook(lambda event, args: started.append(event)
                     if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.fork", "os.system") else None)
    import nativeimport
    nativeimport.install()
    import calc
    print(json.dumps([calc.value(), started]))
"""


def test_a_touched_but_identical_source_starts_no_process(runner: Runner) -> None:
    runner.write("calc.h", "#define V 3\n")
    source = runner.write("calc.c", '#include "calc.h"\nint value(void) { return V; }\n')
    value, started = runner.json(AUDITED_IMPORT)
    assert value == 3 and started  # the first build runs the compiler
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    done = runner.run(AUDITED_IMPORT, env={"NATIVEIMPORT_VERBOSE": "1"})
    value, started = [__import__("json").loads(done.stdout.strip().splitlines()[-1])][0]
    assert (value, started) == (3, [])
    assert "calc.c changed" in done.stderr and "matches cached build" in done.stderr


def test_every_build_says_why_it_happened(runner: Runner) -> None:
    runner.write("calc.h", "#define V 3\n")
    runner.write("calc.c", '#include "calc.h"\nint value(void) { return V; }\n')
    code = "import json, nativeimport; nativeimport.install(); import calc; print(json.dumps(calc.value()))"
    verbose = {"NATIVEIMPORT_VERBOSE": "1"}
    first = runner.run(code, env=verbose)
    assert "first build of this source here" in first.stderr
    runner.write("calc.h", "#define V 4\n")
    edited = runner.run(code, env=verbose)
    assert "calc.h changed" in edited.stderr and edited.stdout.strip() == "4"
    flagged = runner.run(code, env={**verbose, "CFLAGS": "-DUNUSED=1"})
    assert "configuration changed" in flagged.stderr
    (entry,) = [e for e in runner.entries() if "UNUSED" in (e / "manifest.json").read_text()]
    (entry / "library.so").write_bytes(b"\x7fELF damaged")
    damaged = runner.run(code, env={**verbose, "CFLAGS": "-DUNUSED=1"})
    assert "looking for a build (its cache entry failed to load" in damaged.stderr
    assert damaged.stdout.strip() == "4"


def test_a_driver_that_decides_its_own_claims_is_asked(runner: Runner, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    info = plugins / "picky_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: picky-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nativeimport.compilers]\npicky = picky_plugin:PickyDriver\n")
    (plugins / "picky_plugin.py").write_text(
        "from pathlib import Path\n"
        "from nativeimport.compilers.c import CDriver\n\n\n"
        "class PickyDriver(CDriver):\n"
        "    name = 'picky'\n"
        "    suffixes = ('.pk',)\n\n"
        "    def claims(self, path: Path) -> bool:\n"
        "        return path.suffix == '.pk' and path.read_text().startswith('// picky')\n")
    runner.write("wanted.pk", "// picky\nint one(void) { return 1; }\n")
    runner.write("unwanted.pk", "int two(void) { return 2; }\n")
    found = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import wanted
        try:
            import unwanted
            outcome = "imported"
        except ModuleNotFoundError:
            outcome = "not found"
        print(json.dumps([wanted.one(), outcome]))
    """, env={"PYTHONPATH": str(plugins), "CFLAGS": "-x c"})  # gcc would take a .pk file for a linker script
    assert found == [1, "not found"]


def test_what_was_left_out_is_one_warning_per_build_never_on_a_hit(runner: Runner) -> None:
    runner.write("partial.c", """
        int ok(void) { return 1; }
        long double wide(long double v) { return v; }
        long double wider(long double v) { return 2 * v; }
    """)
    code = """
        import json, warnings, nativeimport
        nativeimport.install()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import partial
        print(json.dumps([partial.ok(), [[str(w.message), w.filename] for w in caught],
                          sorted(partial.__native_left_out__)]))
    """
    ok, warned, left_out = runner.json(code)
    assert ok == 1 and len(warned) == 1
    message, filename = warned[0]
    assert message.startswith("partial: 2 exports left out (wide, wider); `nativeimport show ")
    assert filename.endswith("_test_script.py")  # points at the import statement, not at nativeimport
    assert left_out == ["wide", "wider"]
    ok, warned, left_out = runner.json(code)
    assert (ok, warned, left_out) == (1, [], ["wide", "wider"])
