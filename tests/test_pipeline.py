"""The import pipeline: finder, cache keys, rebuilds, reuse, errors. Real gcc, fresh interpreters."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from helpers import Runner

HEADER_C = """
#include "scale.h"
/* Scaled by the factor from the header. */
double scaled(double v) { return v * FACTOR; }
"""

IMPORT_SCALED = """
    import json, nativeimport
    nativeimport.install()
    import calc
    print(json.dumps(calc.scaled(1.0)))
"""


def test_a_header_edit_triggers_a_rebuild(runner: Runner) -> None:
    runner.write("scale.h", "#define FACTOR 2.0\n")
    runner.write("calc.c", HEADER_C)
    assert runner.json(IMPORT_SCALED) == 2.0
    assert runner.json(IMPORT_SCALED) == 2.0
    assert len(runner.entries()) == 1
    runner.write("scale.h", "#define FACTOR 3.0\n")
    assert runner.json(IMPORT_SCALED) == 3.0
    assert len(runner.entries()) == 2
    manifest = json.loads((runner.entries()[0] / "manifest.json").read_text())
    assert "scale.h" in manifest["dependencies"]


def test_a_copied_project_reuses_the_build(runner: Runner) -> None:
    runner.write("scale.h", "#define FACTOR 5.0\n")
    runner.write("calc.c", HEADER_C)
    assert runner.json(IMPORT_SCALED) == 5.0
    copy = runner.project.parent / "copy of project"
    shutil.copytree(runner.project, copy)
    done = runner.run(IMPORT_SCALED, cwd=copy, env={"NATIVEIMPORT_VERBOSE": "1"})
    assert json.loads(done.stdout) == 5.0
    assert "matches cached build" in done.stderr
    assert "built calc" not in done.stderr
    assert len(runner.entries()) == 1
    # The copy has its own header: changing it must not reuse the original's build.
    (copy / "scale.h").write_text("#define FACTOR 7.0\n")
    assert json.loads(runner.run(IMPORT_SCALED, cwd=copy).stdout) == 7.0


def test_an_unchanged_source_is_not_hashed_or_rebuilt(runner: Runner) -> None:
    runner.write("scale.h", "#define FACTOR 2.0\n")
    runner.write("calc.c", HEADER_C)
    runner.json(IMPORT_SCALED)
    done = runner.run("""
        import sys, nativeimport
        nativeimport.install()
        import calc
        heavy = ["pycparser", "setuptools", "elftools", "cffi.recompiler", "hashlib", "nativeimport._build",
                 "nativeimport._cache", "nativeimport.compilers.c", "subprocess"]
        print([m for m in heavy if m in sys.modules])
    """, env={"NATIVEIMPORT_VERBOSE": "1"})
    assert done.stdout.strip() == "[]"
    assert done.stderr == ""


def test_cflags_are_part_of_the_key(runner: Runner) -> None:
    runner.write("flag.c", """
        #ifndef ANSWER
        #define ANSWER 1
        #endif
        int answer(void) { return ANSWER; }
    """)
    code = "import nativeimport, json; nativeimport.install(); import flag; print(json.dumps(flag.answer()))"
    assert runner.json(code) == 1
    assert runner.json(code, env={"CFLAGS": "-DANSWER=42"}) == 42
    assert runner.json(code) == 1
    assert len(runner.entries()) == 2


def test_a_compile_error_shows_diagnostics_and_caches_nothing(runner: Runner) -> None:
    source = runner.write("broken.c", "int ok(void) { return 1; }\nint bad(void) { return missing; }\n")
    result = runner.json(f"""
        import json, pathlib, nativeimport
        nativeimport.install()
        out = {{}}
        try:
            import broken
        except nativeimport.CompileError as exc:
            out.update(message=str(exc), name=exc.name, path=exc.path, returncode=exc.returncode,
                       command=list(exc.command), is_import_error=isinstance(exc, ImportError))
        pathlib.Path({str(source)!r}).write_text("int ok(void) {{ return 1; }}\\nint bad(void) {{ return 2; }}\\n")
        import broken
        out["fixed"] = broken.bad()
        print(json.dumps(out))
    """)
    assert "broken.c:2:" in result["message"]
    assert "missing" in result["message"] and "undeclared" in result["message"]
    assert result["name"] == "broken"
    assert result["path"] == str(source)
    assert result["returncode"] == 1
    assert result["is_import_error"] is True
    assert result["fixed"] == 2
    assert len(runner.entries()) == 1
    assert list((runner.cache / "tmp").iterdir()) == []


def test_a_missing_compiler_says_what_to_install(runner: Runner) -> None:
    runner.write("tiny.c", "int one(void) { return 1; }\n")
    result = runner.import_error("tiny", "ToolchainNotFound", env={"CC": "/nonexistent/cc"})
    assert "CC='/nonexistent/cc'" in result
    assert "apt-get install gcc" in result


def test_limited_debug_info_is_refused(runner: Runner) -> None:
    runner.write("tiny.c", "int one(void) { return 1; }\n")
    result = runner.import_error("tiny", "InterfaceError", env={"CFLAGS": "-g1"})
    assert "limited debug info" in result


def test_reload_after_an_edit_gives_the_new_code_and_old_functions_keep_working(runner: Runner) -> None:
    source = runner.write("live.c", "int version(void) { return 1; }\nint gone(void) { return 0; }\n")
    result = runner.json(f"""
        import importlib, json, os, pathlib, nativeimport
        nativeimport.install()
        import live
        old = live.version
        path = pathlib.Path({str(source)!r})
        path.write_text("int version(void) {{ return 2; }}\\n")
        same = importlib.reload(live)
        print(json.dumps([same is live, live.version(), old(), hasattr(live, "gone")]))
    """)
    assert result == [True, 2, 1, False]


def test_packages_load_and_auto_install(runner: Runner) -> None:
    runner.write("pkg/__init__.py", "")
    runner.write("pkg/fast.c", "int twice(int v) { return 2 * v; }\n")
    runner.write("elsewhere/lone.c", "int three(void) { return 3; }\n")
    result = runner.json("""
        import importlib.util, json, os, sys
        import nativeimport.auto
        import nativeimport
        spec = importlib.util.find_spec("pkg.fast")
        built_by_find = os.path.isdir(os.path.join(os.environ["NATIVEIMPORT_CACHE_DIR"], "entries"))
        import pkg.fast
        lone = nativeimport.load("elsewhere/lone.c")
        finders = [type(f).__name__ for f in sys.meta_path].count("NativeFinder")
        nativeimport.install()
        again = [type(f).__name__ for f in sys.meta_path].count("NativeFinder")
        nativeimport.uninstall()
        gone = [type(f).__name__ for f in sys.meta_path].count("NativeFinder")
        print(json.dumps([built_by_find, pkg.fast.twice(21), pkg.fast.__name__, lone.three(), "lone" in sys.modules,
                          finders, again, gone, "elsewhere" in sys.path]))
    """)
    assert result == [False, 42, "pkg.fast", 3, False, 1, 1, 0, False]


def test_the_path_hook_is_python_s_finder_plus_project_directories(runner: Runner) -> None:
    # Installing replaces Python's finder for sys.path directories by a subclass (once, however often
    # install() runs); modules, packages, namespace packages and pkgutil behave as before; uninstall()
    # puts Python's back.
    runner.write("plain.py", "VALUE = 1\n")
    runner.write("regular/__init__.py", "VALUE = 2\n")
    runner.write("spaced/inner.py", "VALUE = 3\n")
    result = runner.json("""
        import json, pkgutil, sys
        from importlib.machinery import FileFinder
        import nativeimport
        def kinds():
            return sorted({type(f).__name__ for f in sys.path_importer_cache.values() if isinstance(f, FileFinder)})
        nativeimport.install()
        nativeimport.install()
        import plain, regular, spaced.inner
        hooks = sum(getattr(h, "__name__", "") == "project_finder_hook" for h in sys.path_hooks)
        listed = {m.name for m in pkgutil.iter_modules() if m.name in ("plain", "regular", "spaced")}
        installed = kinds()
        nativeimport.uninstall()
        import colorsys  # a directory looked up again: Python's own finder serves it
        print(json.dumps([hooks, installed, sorted(listed), plain.VALUE, regular.VALUE, spaced.inner.VALUE,
                          spaced.__file__, kinds(), len(sys.path_hooks)]))
    """)
    hooks, installed, listed, *values, after, hook_count = result
    assert hooks == 1 and installed == ["ProjectFinder"]
    assert listed == ["plain", "regular"]  # pkgutil lists no namespace packages, with or without the hook
    assert values == [1, 2, 3, None]
    assert after == ["FileFinder"] and hook_count == 2


def test_installing_keeps_python_s_listings_and_a_miss_asks_the_system_nothing_more(runner: Runner) -> None:
    # install() hands each directory's listing to the finder that replaces Python's, so no directory is
    # listed twice; NativeFinder takes each directory's mtime from Python's finder, so an import nobody
    # serves costs Python's own system calls and not one stat or listdir more.
    runner.write("lib/first.py", "")
    runner.write("lib/second.py", "")
    runner.write("lib/native_one.c", "int one(void) { return 1; }\n")
    time.sleep(2.2)  # a directory changed in the last two seconds is deliberately stat'ed file by file
    result = runner.json("""
        import json, os, posix, sys
        sys.path[0] = os.path.abspath("lib")  # in place of the script's folder, which writing the script just changed
        import first  # Python's finder lists lib/
        import nativeimport
        nativeimport.install()
        calls = []
        def spy(module, name):
            real = getattr(module, name)
            def call(path=".", *args, **kwargs):
                calls.append([module.__name__, name, os.fspath(path)])
                return real(path, *args, **kwargs)
            setattr(module, name, call)
        spy(posix, "listdir")  # Python's FileFinder lists through posix
        spy(os, "stat")  # nativeimport stats through os
        import second
        listed_again = [path for _, _, path in calls]
        import native_one
        try:
            import no_such_module_anywhere
        except ImportError:
            pass
        del calls[:]
        try:
            import no_such_module_either
        except ImportError:
            pass
        print(json.dumps([listed_again, native_one.one(), calls]))
    """)
    listed_again, one, miss_calls = result
    assert listed_again == []
    assert one == 1
    assert miss_calls == []


def test_a_source_written_in_the_same_clock_tick_as_a_listing_is_found(runner: Runner) -> None:
    # Python's FileFinder lists a directory again only when its mtime changes, so a file created in the
    # same clock tick as its listing stays invisible to it. NativeFinder never trusts a listing read so
    # close to a change: the source is found once the directory has been quiet for two seconds.
    found = runner.json("""
        import json, os, sys, time
        lib = os.path.abspath("quiet")
        os.makedirs(lib)
        sys.path[0] = lib
        import nativeimport
        nativeimport.install()
        tick = time.time()
        os.utime(lib, (tick, tick))
        try:
            import not_there_yet  # both finders look at the directory now
        except ImportError:
            pass
        with open(os.path.join(lib, "late.c"), "w") as source:
            source.write("int late(void) { return 7; }\\n")
        os.utime(lib, (tick, tick))  # as if written in the clock tick of that look
        time.sleep(2.2)
        import late
        print(json.dumps(late.late()))
    """)
    assert found == 7


def test_a_driver_that_fails_to_load_is_not_remembered_as_missing(runner: Runner, tmp_path: Path) -> None:
    # The driver table is kept between runs; a plugin that failed to import must be tried again once fixed,
    # even though no sys.path directory changed (the fix is inside a package folder).
    plugins = tmp_path / "plugins"
    (plugins / "late_plugin-1.0.dist-info").mkdir(parents=True)
    (plugins / "late_plugin-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: late-plugin\n"
                                                                   "Version: 1.0\n")
    (plugins / "late_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[nativeimport.compilers]\nlate = late_plugin.driver:LateDriver\n")
    (plugins / "late_plugin").mkdir()
    (plugins / "late_plugin" / "__init__.py").write_text("")
    driver = plugins / "late_plugin" / "driver.py"
    driver.write_text("raise RuntimeError('not ready yet')\n")
    code = """
        import json, warnings
        from nativeimport._registry import discover_drivers
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = [d.name for d in discover_drivers({}).drivers]
        print(json.dumps([names, [str(w.message) for w in caught]]))
    """
    env = {"PYTHONPATH": str(plugins)}
    names, warned = runner.json(code, env=env)
    assert "late" not in names and "c" in names
    assert any("'late'" in message and "not ready yet" in message for message in warned)
    driver.write_text("from nativeimport.compilers.c import CDriver\n\n\n"
                      "class LateDriver(CDriver):\n    name = 'late'\n    suffixes = ('.late',)\n")
    names, warned = runner.json(code, env=env)
    assert "late" in names and warned == []


def test_a_damaged_library_is_evicted_and_rebuilt_once(runner: Runner) -> None:
    runner.write("tiny.c", "int one(void) { return 1; }\n")
    code = "import json, nativeimport; nativeimport.install(); import tiny; print(json.dumps(tiny.one()))"
    assert runner.json(code) == 1
    (entry,) = runner.entries()
    library = entry / "library.so"
    library.write_bytes(library.read_bytes()[:100])
    done = runner.run(code)
    assert json.loads(done.stdout) == 1
    assert "failed to load" in done.stderr and "rebuilding" in done.stderr
    assert json.loads(runner.run(code).stdout) == 1


def test_a_source_saved_in_a_folder_on_sys_path_does_not_rescan_the_drivers(runner: Runner, tmp_path: Path) -> None:
    # The driver table is kept while no sys.path folder changes; a folder that changed only in files that
    # are no distribution's (a source saved in a project folder) keeps it too, one that gained one does not.
    folder = tmp_path / "on_path"
    folder.mkdir()
    code = """
        import json, sys
        from nativeimport._registry import discover_drivers
        names = sorted(d.name for d in discover_drivers({}).drivers)
        print(json.dumps([names, "importlib.metadata" in sys.modules]))
    """
    env = {"PYTHONPATH": str(folder)}
    names, scanned = runner.json(code, env=env)
    assert "c" in names and scanned
    assert runner.json(code, env=env) == [names, False]  # the table, unchanged
    (folder / "notes.c").write_text("int edited(void) { return 1; }\n")  # the folder's mtime moves
    assert runner.json(code, env=env) == [names, False]
    assert runner.json(code, env=env) == [names, False]  # and its new mtime was remembered
    info = folder / "late_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nativeimport.compilers]\nlate = late_plugin:LateDriver\n")
    (folder / "late_plugin.py").write_text("from nativeimport.compilers.c import CDriver\n\n\n"
                                           "class LateDriver(CDriver):\n    name = 'late'\n    suffixes = ('.late',)\n")
    later, scanned = runner.json(code, env=env)
    assert scanned and later == sorted([*names, "late"])
