"""A new source's compiler started before the build's modules are imported (_early): adopted when the build
runs the very same command, never the source of a stale build. Real gcc, fresh interpreters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Runner

SOURCE = "int answer(void) {{ return {value}; }}\n"
LOAD = "import json, nativeimport; m = nativeimport.load({path!r}); print(json.dumps(m.answer()))"


def test_a_new_source_beside_a_built_one_is_compiled_by_the_compiler_started_early(runner: Runner) -> None:
    first, second = runner.project / "first.c", runner.project / "second.c"
    first.write_text(SOURCE.format(value=1))
    assert runner.json(LOAD.format(path=str(first))) == 1  # leaves the folder's recipe
    second.write_text(SOURCE.format(value=2))
    done = runner.run(LOAD.format(path=str(second)), env={"NATIVEIMPORT_VERBOSE": "1"})
    assert done.stdout.split()[-1] == "2"
    assert f"adopted the compiler started early for {second}" in done.stderr
    assert not list((runner.cache / "tmp").glob("*early*"))  # its directory is gone


def test_a_source_edited_after_the_early_compiler_read_it_is_built_again(runner: Runner) -> None:
    """The early compiler reads revision 1 and ends; the source becomes revision 2 before the build
    looks at it. Revision 1's library must not be filed under revision 2's content."""
    first, second = runner.project / "first.c", runner.project / "second.c"
    first.write_text(SOURCE.format(value=1))
    assert runner.json(LOAD.format(path=str(first))) == 1
    second.write_text(SOURCE.format(value=10))
    code = f"""
        import json, nativeimport
        from nativeimport import _early
        from nativeimport._root import cache_root
        from nativeimport.settings import Settings

        source = {str(second)!r}
        _early.start(cache_root(Settings.from_env().cache_dir), "c", source, "second")
        assert _early._pending[source].process.wait() == 0  # revision 1 compiled
        with open(source, "w") as stream:
            stream.write({SOURCE.format(value=20)!r})
        print(json.dumps(nativeimport.load(source).answer()))
    """
    assert runner.json(code) == 20
    assert runner.json(LOAD.format(path=str(second))) == 20  # what the cache holds for it, in a new process


def test_an_early_compile_of_another_command_is_discarded(runner: Runner) -> None:
    """CFLAGS changed since the folder's recipe was written: the early compile is not the build's."""
    first, second = runner.project / "first.c", runner.project / "second.c"
    first.write_text(SOURCE.format(value=1))
    assert runner.json(LOAD.format(path=str(first))) == 1
    second.write_text("#ifndef ANSWER\n#define ANSWER 1\n#endif\nint answer(void) { return ANSWER; }\n")
    done = runner.run(LOAD.format(path=str(second)), env={"NATIVEIMPORT_VERBOSE": "1", "CFLAGS": "-DANSWER=42"})
    assert done.stdout.split()[-1] == "42"
    assert "adopted the compiler started early" not in done.stderr
    assert not list((runner.cache / "tmp").glob("*early*"))


def test_cache_clear_forgets_the_recipes_and_the_contents_built(runner: Runner) -> None:
    source = runner.project / "first.c"
    source.write_text(SOURCE.format(value=1))
    assert runner.json(LOAD.format(path=str(source))) == 1
    early = runner.cache / "scratch" / "early"
    assert any(early.iterdir())  # the folder's recipe, the content's mark
    done = runner.run("import sys\nfrom nativeimport._cli import main\nsys.exit(main(['cache', 'clear', '-y']))")
    assert done.returncode == 0, done.stderr
    assert not early.exists()


def test_a_source_saved_just_before_its_import_is_compiled_once(runner: Runner) -> None:
    """Saved and imported at once (a script generating its source, %%native): the source's ctime is the
    clock mark's tick, which the race check cannot tell from an edit during the compile. The build waits
    for the next tick instead of compiling twice; both with a compiler started early and without."""
    code = f"""
        import json, nativeimport
        values = []
        for value in range(1, 7):
            path = {str(runner.project)!r} + f"/saved_{{value % 2}}.c"  # two names: the second builds with the folder's recipe
            with open(path, "w") as stream:
                stream.write("int answer(void) {{ return %d; }}\\n" % value)
            values.append(nativeimport.load(path).answer())
        print(json.dumps(values))
    """
    done = runner.run(code, env={"NATIVEIMPORT_VERBOSE": "1"})
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [1, 2, 3, 4, 5, 6]
    assert "adopted the compiler started early" in done.stderr
    assert "was compiled (attempt" not in done.stderr  # never a second compile of what was saved before


def test_a_new_module_is_built_without_importing_what_only_annotations_and_debugging_need(runner: Runner) -> None:
    """dataclasses (with inspect, ast, dis), typing and logging cost a new module's import ~15 ms, more
    than half of what it adds to gcc's time: a build of a C source imports none of them. (A cache's first
    import finds the installed drivers through importlib.metadata, which imports typing: the cache is in use.)"""
    first, source = runner.project / "first.c", runner.project / "plain.c"
    first.write_text(SOURCE.format(value=1))
    assert runner.json(LOAD.format(path=str(first))) == 1
    source.write_text(SOURCE.format(value=7))
    code = f"""
        import json, sys, nativeimport
        print(nativeimport.load({str(source)!r}).answer(), file=sys.stderr)
        print(json.dumps(sorted({{"dataclasses", "inspect", "typing", "logging"}} & set(sys.modules))))
    """
    assert runner.json(code) == []


def test_the_early_compiler_starts_before_subprocess_is_imported_and_writes_private_files(runner: Runner) -> None:
    """The compiler a new source's import starts first does not wait for subprocess and what it imports
    (~5 ms; posix_spawn through setpriv instead, where there is one): an audit hook sees the process start
    with subprocess not imported. posix_spawn cannot set a umask: under umask 0 the library and the
    dependency file are still private once in the cache."""
    second = _new_source_beside_a_built_one(runner, "second.c", 2)
    code = f"""
        import json, os, stat, sys
        os.umask(0)
        started = []
        sys.addaudithook(lambda event, args: event == "os.posix_spawn" and started.append("subprocess" in sys.modules))
        import nativeimport
        module = nativeimport.load({str(second)!r})
        answer = module.answer()
        nativeimport.wait_for_wrapper(module)  # its files too, once written
        shared = []
        for folder, _, files in os.walk({str(runner.cache)!r}):
            for name in files:
                try:
                    if os.lstat(os.path.join(folder, name)).st_mode & 0o077:
                        shared.append(name)
                except FileNotFoundError:  # a temporary file renamed meanwhile
                    pass
        print(json.dumps([answer, started[:1], shared]))
    """
    done = runner.run(code, env={"NATIVEIMPORT_VERBOSE": "1"})
    assert f"adopted the compiler started early for {second}" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, [False], []]


def test_a_new_module_compiled_early_imports_no_process_or_file_utilities(runner: Runner) -> None:
    """Where the compiler started early (setpriv and posix_spawn), a new C module's import, with its wrapper
    compile started in the background, imports none of subprocess (with threading, signal, locale,
    selectors), shutil or tempfile: ~5 ms of a ~12 ms overhead over gcc at the time. (What the interpreter
    loaded before nativeimport does not count: an editable install's site hook imports some of them; nor
    does threading on CPython 3.12+, whose sysconfig, which the C driver reads, imports it.)"""
    source = _new_source_beside_a_built_one(runner, "plain.c", 8)
    code = f"""
        import json, sys
        before = set(sys.modules)
        import nativeimport
        module = nativeimport.load({str(source)!r})
        answer = module.answer()
        loaded = set(sys.modules) - before
        nativeimport.wait_for_wrapper(module)
        unwanted = {{"subprocess", "shutil", "tempfile"}} | ({{"threading"}} if sys.version_info < (3, 12) else set())
        print(json.dumps([answer, sorted(unwanted & loaded)]))
    """
    done = runner.run(code, env={"NATIVEIMPORT_WRAPPER": "background"})
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [8, []], done.stderr


def _new_source_beside_a_built_one(runner: Runner, name: str, value: int) -> Path:
    """A source of ``answer() == value`` in a folder whose recipe a first build left, where the early compiler
    starts without subprocess (skipped elsewhere)."""
    from nativeimport._child import _find_setpriv

    if _find_setpriv() is None:
        pytest.skip("no setpriv that takes --pdeathsig: the early compiler starts through subprocess")
    first, source = runner.project / "first.c", runner.project / name
    first.write_text(SOURCE.format(value=1))
    assert runner.json(LOAD.format(path=str(first))) == 1
    source.write_text(SOURCE.format(value=value))
    return source
