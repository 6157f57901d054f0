"""Pure parts: dependency files, doc comments, the Interface model, the import direction."""

from __future__ import annotations

import ast
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from nativeimport.driver import doc_comment_above, parse_depfile
from nativeimport.interface import CType, Field, Function, Interface, Param, Struct
from nativeimport.settings import Settings

ROOT = Path(__file__).parents[1]


def test_parse_depfile_handles_continuations_and_escaped_spaces() -> None:
    text = "out.so: a.c /usr/include/stdio.h \\\n  my\\ dir/x.h \\\n b.h\nb.h:\n"
    assert parse_depfile(text) == ["a.c", "/usr/include/stdio.h", "my dir/x.h", "b.h"]


def test_doc_comments_of_every_style(tmp_path: Path) -> None:
    source = tmp_path / "s.c"
    source.write_text(
        "/* Block\n * comment. */\nint a(void);\n"
        "// line one\n// line two\nint b(void);\n"
        "/// Rust doc.\n#[no_mangle]\nfn c() {}\n"
        "int x; /* trailing */\nint d(void);\n"
    )
    assert doc_comment_above(source, 3) == "Block\ncomment."
    assert doc_comment_above(source, 6) == "line one\nline two"
    assert doc_comment_above(source, 9) == "Rust doc."
    assert doc_comment_above(source, 11) == ""


def test_interface_renders_cdef_and_signatures_and_round_trips() -> None:
    double = CType.floating("double")
    size = CType.integer("uint64_t", "size_t")
    interface = Interface(
        functions=(
            Function("sum", double, (Param("xs", CType.pointer(double, const=True)), Param("n", size)), "Sum."),
            Function("name", CType.pointer(CType.char(), const=True)),
        ),
        structs=(Struct("Point", (Field("x", double), Field("y", double)), 16),),
    )
    assert interface.functions[0].c_signature() == "double sum(const double *xs, size_t n)"
    assert interface.functions[0].cdef() == "double sum(const double *xs, uint64_t n);"
    assert interface.functions[1].c_signature() == "const char *name(void)"
    assert "struct Point { double x; double y; };" in interface.cdef()
    assert Interface.from_json(interface.to_json()) == interface
    assert CType.pointer(CType.pointer(CType.char()), const=True).cdecl("argv") == "char *const *argv"


def test_settings_read_the_environment_and_arguments_win() -> None:
    settings = Settings.from_env({"NATIVEIMPORT_CACHE_DIR": "/x", "NATIVEIMPORT_VERBOSE": "1",
                                  "NATIVEIMPORT_BUILD_TIMEOUT": "5"}, build_timeout=7)
    assert (str(settings.cache_dir), settings.verbose, settings.build_timeout) == ("/x", True, 7.0)


def _imports(path: Path, package: str = "nativeimport") -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = f"{package}." + (node.module or "") if node.level else node.module or ""
            names.add(base.rstrip("."))
            names.update(f"{base.rstrip('.')}.{alias.name}" for alias in node.names)
    return names


def test_the_direction_of_imports_holds() -> None:
    core = list((ROOT / "nativeimport").glob("*.py"))
    for path in core:
        assert not any("compilers" in name for name in _imports(path)), f"{path.name} imports a compiler by name"
        if path.name not in ("_cli.py", "ipython.py", "__main__.py", "__init__.py"):
            assert not {"nativeimport._cli", "nativeimport.ipython"} & _imports(path), path.name
    # __init__ may only forward IPython's extension hook, lazily.
    assert not {"nativeimport._cli"} & _imports(ROOT / "nativeimport" / "__init__.py")
    allowed = {"nativeimport.driver", "nativeimport.interface", "nativeimport.dwarf", "nativeimport.errors"}
    for path in (ROOT / "compilers").glob("*.py"):
        # Drivers may share code with each other, but reach the core only through the public API.
        imported = _imports(path, package="nativeimport.compilers")
        used = {n for n in imported if n.startswith("nativeimport") and not n.startswith("nativeimport.compilers")}
        assert {n.rsplit(".", 1)[0] if n.rsplit(".", 1)[0] in allowed else n for n in used} <= allowed, path.name


def test_a_file_changed_in_the_tick_the_record_was_written_is_checked_by_content(tmp_path: Path) -> None:
    """Racily clean, as git: stats that could still change unseen make the next import hash."""
    import time

    from nativeimport._entry import fresh_key, remember_fresh
    from nativeimport._records import snapshot

    root = str(tmp_path / "cache")
    source = tmp_path / "m.c"
    source.write_text("int f(void) { return 1; }\n")
    (tmp_path / "cache" / "entries" / "k").mkdir(parents=True)
    time.sleep(0.05)  # past the file system clock's tick (a few ms) in which the source was written
    stats = snapshot([source])
    remember_fresh(root, str(source), "token", stats, "k")
    assert fresh_key(root, str(source), "token") == "k", "written well after the file changed: trusted"
    stats[0][4] += 10**12  # as if the file's ctime were the record's own tick (or later)
    remember_fresh(root, str(source), "token", stats, "k")
    assert fresh_key(root, str(source), "token") is None
    # A file system with one-second timestamps: a ctime of a whole second, within the last two, may hide a
    # change made after it was read, whatever the time on the cache's file system.
    real = snapshot([source])
    stats = snapshot([source])
    stats[0][4] = (time.time_ns() // 10**9 - 1) * 10**9
    remember_fresh(root, str(source), "token", stats, "k")
    rows = (tmp_path / "cache" / "fresh").iterdir().__next__().read_text().splitlines()
    assert rows[-1].startswith("racy "), rows
    stats[0][4] = real[0][4]
    remember_fresh(root, str(source), "token", stats, "k")
    assert fresh_key(root, str(source), "token") == "k"


def test_stats_compare_inode_and_ctime_and_a_recorded_absence(tmp_path: Path) -> None:
    import os

    from nativeimport._records import first_changed, snapshot

    path = tmp_path / "h.h"
    path.write_text("1\n")
    missing = tmp_path / "shadow.h"
    recorded = snapshot([path, missing])
    assert first_changed(recorded) is None, "a file recorded missing matches while it stays missing"
    before = path.stat()
    path.write_text("2\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert first_changed(recorded) == str(path), "same size and mtime, but the ctime moved"
    assert first_changed([row[:3] for row in recorded]) == str(path), "an older record's rows never match"
    recorded = snapshot([path, missing])
    missing.write_text("")
    assert first_changed(recorded) == str(missing)


def test_directories_are_made_private_whatever_the_umask(tmp_path: Path) -> None:
    import os
    import stat

    from nativeimport._entry import is_key
    from nativeimport._records import make_private_dirs

    old = os.umask(0)
    try:
        make_private_dirs(str(tmp_path / "a" / "b" / "c"))
    finally:
        os.umask(old)
    for folder in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE((tmp_path / folder).stat().st_mode) == 0o700
    assert is_key("0" * 64) and not is_key("my-notes") and not is_key("A" * 64)


def test_a_compiler_started_by_a_build_is_set_to_die_with_it() -> None:
    """child_setup asks the kernel (prctl PR_SET_PDEATHSIG, found through cffi's backend) for SIGKILL when
    we die: the child reads its own setting back (PR_GET_PDEATHSIG), and its umask."""
    import signal
    import subprocess
    import sys

    import pytest

    from nativeimport._child import child_setup

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    code = ("import ctypes, os; value = ctypes.c_int(); "
            "ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0); "
            "print(value.value, oct(os.umask(0)))")
    done = subprocess.run([sys.executable, "-c", code], preexec_fn=child_setup(), capture_output=True,
                          text=True, check=True, timeout=60)
    assert done.stdout.split() == [str(int(signal.SIGKILL)), "0o77"]


def test_a_compiler_is_started_to_die_with_us_without_a_fork_where_setpriv_can() -> None:
    """how_to_start: through util-linux's setpriv (vfork, no Python in the child) where it takes --pdeathsig,
    else child_setup; either way the child has the parent-death signal and a private umask. A program
    that is not there raises FileNotFoundError, as Popen would."""
    import os
    import signal
    import subprocess
    import sys

    import pytest

    from nativeimport._child import _find_setpriv, how_to_start

    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    code = ("import ctypes, os; value = ctypes.c_int(); "
            "ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0); "
            "print(value.value, oct(os.umask(0)))")
    command, options = how_to_start([sys.executable, "-c", code])
    setpriv = _find_setpriv()
    assert (command[0] == setpriv and options == {"umask": 0o077}) if setpriv else "preexec_fn" in options
    old_umask = os.umask(0o022)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, **options)
    finally:
        os.umask(old_umask)
    assert done.stdout.split() == [str(int(signal.SIGKILL)), "0o77"]
    if setpriv:  # (without it, Popen raises the same itself)
        with pytest.raises(FileNotFoundError):
            how_to_start(["no-such-compiler-here", "--version"], env={"PATH": "/nonexistent"})
        with pytest.raises(FileNotFoundError):
            how_to_start(["./no-such-compiler-here"], cwd="/")


SPAWNED_REPORT = """
import ctypes, json, os, sys
value = ctypes.c_int()
ctypes.CDLL(None).prctl(2, ctypes.byref(value), 0, 0, 0)
print("to stderr", file=sys.stderr, flush=True)
print(json.dumps({"pdeathsig": value.value, "session leader": os.getsid(0) == os.getpid(),
                  "stdin": sys.stdin.read(), "cwd": os.getcwd(),
                  "open": sorted(int(fd) for fd in os.listdir("/proc/self/fd"))}))
"""


def _spawn_or_skip(command: list[str], cwd: str) -> Any:
    import sys

    import pytest

    from nativeimport._child import _find_setpriv, spawn

    if not sys.platform.startswith("linux") or _find_setpriv() is None:
        pytest.skip("spawn needs Linux and a setpriv that takes --pdeathsig")
    process = spawn(command, cwd)
    assert process is not None
    return process


@pytest.mark.parametrize("where", ["this process's directory", "another directory"])
def test_a_spawned_compiler_is_started_as_run_tool_starts_one(tmp_path: Path, where: str) -> None:
    """spawn (no subprocess import): the child has the parent-death signal, its own session, /dev/null for
    stdin, the directory asked for (through /bin/sh where it is not ours), none of our descriptors, not
    even inheritable ones, and SIGPIPE and SIGXFSZ back to their defaults (Python ignores them, and an
    ignored signal stays ignored through exec: read from a program that does not change them, grep);
    stdout and stderr arrive in one pipe."""
    import json
    import sys

    cwd = os.getcwd() if where == "this process's directory" else str(tmp_path)
    leaked_reader, leaked_writer = os.pipe()
    os.set_inheritable(leaked_writer, True)  # what subprocess's close_fds keeps from a compiler
    try:
        process = _spawn_or_skip([sys.executable, "-c", SPAWNED_REPORT], cwd)
        output, _ = process.communicate(timeout=60)
    finally:
        os.close(leaked_reader)
        os.close(leaked_writer)
    assert process.returncode == 0 and process.wait() == 0
    lines = output.decode().splitlines()
    assert lines[0] == "to stderr"
    report = json.loads(lines[1])
    assert report["pdeathsig"] == int(signal.SIGKILL)
    assert report["session leader"]
    assert report["stdin"] == "" and os.path.samefile(report["cwd"], cwd)
    assert leaked_writer not in report["open"] and report["open"][:3] == [0, 1, 2]
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # ours, which the child must not keep
    grep = _spawn_or_skip(["grep", "^SigIgn:", "/proc/self/status"], cwd)
    ignored = int(grep.communicate(timeout=60)[0].split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1))


def test_a_spawned_process_reports_its_end_and_its_timeout_as_popen_does(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pytest

    from nativeimport._child import spawn

    exits = _spawn_or_skip([sys.executable, "-c", "import sys; print('bye'); sys.exit(3)"], str(tmp_path))
    assert exits.communicate(timeout=60) == (b"bye\n", None) and exits.returncode == 3
    sleeper = _spawn_or_skip([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
                             str(tmp_path))
    with pytest.raises(subprocess.TimeoutExpired):
        sleeper.communicate(timeout=0.5)
    with pytest.raises(subprocess.TimeoutExpired):
        sleeper.wait(timeout=0.1)
    sleeper.kill()
    output, _ = sleeper.communicate(timeout=60)
    assert output == b"started\n" and sleeper.returncode == -signal.SIGKILL
    assert spawn(["no-such-compiler-here"], str(tmp_path)) is None  # the caller's Popen raises then
    assert spawn([sys.executable, "-c", "pass"], str(tmp_path / "missing")) is None



def test_a_spawned_process_reaped_by_someone_else_ends_as_popen_says(tmp_path: Path) -> None:
    """With SIGCHLD ignored the kernel reaps children itself: waiting fails (ECHILD), and Popen then
    reports 0; so does Spawned, rather than raising out of a build. In a process of its own."""
    import subprocess
    import sys

    _spawn_or_skip([sys.executable, "-c", "pass"], str(tmp_path))  # skips where spawn cannot
    code = ("import signal, subprocess, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
            "from nativeimport._child import spawn\n"
            "process = spawn([sys.executable, '-c', 'import sys; sys.exit(3)'], '.')\n"
            "popen = subprocess.Popen([sys.executable, '-c', 'import sys; sys.exit(3)'])\n"
            "print(process.communicate(timeout=60)[1], process.returncode, popen.wait(timeout=60))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.stdout.split() == ["None", "0", "0"], done.stderr


def test_the_package_logger_imports_logging_only_when_a_message_can_go_somewhere() -> None:
    """Debug and info messages before anything imported logging are dropped without importing it (nothing
    could have set a handler or level); a warning goes through logging's last resort; once logging is
    configured, debug messages arrive, naming our caller."""
    import subprocess
    import sys

    code = ("import sys; from nativeimport._log import QuietLogger; log = QuietLogger('nativeimport'); "
            "log.debug('unseen %s', 1); log.info('unseen'); print('logging' in sys.modules); "
            "log.warning('a warning %s', 2); print('logging' in sys.modules); "
            "import logging; logging.basicConfig(level=logging.DEBUG, format='%(funcName)s %(message)s'); "
            "\ndef caller():\n    log.debug('seen %s', 3)\ncaller()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split() == ["False", "True"]
    assert done.stderr.splitlines() == ["a warning 2", "caller seen 3"]


def test_int_enum_makes_the_class_the_functional_api_makes() -> None:
    """The hit path's enums (enum._simple_enum where it exists) equal IntEnum(name, members) in all a user sees."""
    import enum
    import pickle

    from nativeimport._fast_runtime import int_enum

    cases = [
        ("Shape", (("SHAPE_POINT", 0), ("SHAPE_SEGMENT", 1), ("SHAPE_BOX", 2), ("SHAPE_LAST", 2), ("NEG", -5)), ""),
        ("Unit", (("METRE", 1), ("KILOMETRE", 1000)), "Units of length."),
        ("Odd", (("name", 1), ("_hidden", 2), ("value", 3)), ""),  # names the functional API's rules decide
        ("Empty", (), ""),
    ]
    for name, members, doc in cases:
        made = int_enum(name, members, __name__, doc)
        expected = enum.IntEnum(name, list(members), module=__name__)  # type: ignore[misc]
        if doc:
            expected.__doc__ = doc
        assert issubclass(made, enum.IntEnum) and made is not expected
        assert made.__doc__ == expected.__doc__ and made.__module__ == __name__ and made.__qualname__ == name
        assert [(m.name, m.value) for m in made] == [(m.name, m.value) for m in expected]
        assert {k: (v.name, v.value) for k, v in made.__members__.items()} == \
            {k: (v.name, v.value) for k, v in expected.__members__.items()}
        assert sorted(vars(made)) == sorted(vars(expected))
        globals()[name] = made  # so pickle finds the class by its module and name
        for member_name, value in members:
            member = made[member_name]
            assert made(value).name == expected(value).name  # an alias: the first member of its value
            assert getattr(made, member_name) is member and member == value
            assert repr(member) == repr(expected[member_name]) and str(member) == str(expected[member_name])
            assert pickle.loads(pickle.dumps(member)) is member
        outcomes = []
        for kind in (made, expected):
            try:
                kind(12345)
            except (ValueError, TypeError) as error:  # no such member; TypeError: an enum without members
                outcomes.append((type(error), str(error).replace(repr(kind), name)))
        assert len(outcomes) == 2 and outcomes[0] == outcomes[1]
