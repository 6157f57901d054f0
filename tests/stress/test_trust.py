"""Issue 16: a cache that never serves a stale build, never deletes what it did not make, and lets no one else in.

Each test plays what an adversarial user (or an unlucky one) did, with real
processes and real gcc, and prints what it counted.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from stress_helpers import StressRunner, count

from nativeimport._entry import FRESH_KIND
from nativeimport._records import read_lines, snapshot, write_lines

VALUE = """
import json, nativeimport
nativeimport.install()
import {module}
print(json.dumps({module}.value()))
"""
WARNED = """
    import json, warnings, nativeimport
    nativeimport.install()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import {module}
    print(json.dumps([{module}.value(), [str(w.message) for w in caught]]))
"""


def value(stress: StressRunner, module: str, env: dict[str, str] | None = None) -> Any:
    return stress.json(VALUE.format(module=module), env=env)


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


# -- 1. inputs edited while the compiler works --------------------------------------------------------------

# A compiler whose library builds stop twice, so the test edits files at the worst moments without timing
# guesses: before gcc reads its inputs ("started", until "go") and after it wrote the library ("compiled",
# until "go2"). Each wait is bounded, so a broken test cannot hang.
PAUSING_CC = """#!/bin/sh
pause() {{ touch "{tools}/$1"; n=0; while [ ! -e "{tools}/$2" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; }}
case " $* " in *" -MD "*) echo $$ >> "{tools}/builds"; pause started go;; esac
gcc "$@"; status=$?
case " $* " in *" -MD "*) pause compiled go2;; esac
exit $status
"""


def pausing_import(stress: StressRunner, tmp_path: Path, module: str) -> tuple[subprocess.Popen[str], Path]:
    tools = tmp_path / "pausing"
    tools.mkdir()
    cc = executable(tools / "cc", PAUSING_CC.format(tools=tools))
    code = VALUE.format(module=module)
    process = subprocess.Popen([sys.executable, "-c", code], cwd=stress.project, env={**stress.env, "CC": str(cc)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, tools


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return out.strip().splitlines()[-1]


def test_a_header_saved_during_the_build_is_never_filed_under_its_new_content(stress: StressRunner,
                                                                             tmp_path: Path) -> None:
    stress.write("cfg.h", "#define V 1\n")
    stress.write("racy.c", '#include "cfg.h"\nint value(void) { return V; }\n')
    process, tools = pausing_import(stress, tmp_path, "racy")
    (tools / "go").touch()  # gcc reads cfg.h at once
    wait_for(tools / "compiled")
    stress.write("cfg.h", "#define V 2\n")  # saved while the compiler is still busy
    (tools / "go2").touch()
    assert finish(process) == "2", "the import that saw the edit built again"
    assert len((tools / "builds").read_text().split()) == 2
    assert value(stress, "racy") == 2, "the next process gets the new value"
    shutil.rmtree(stress.cache / "fresh")
    assert value(stress, "racy") == 2, "and so does one that looks the build up by content alone"
    count("header edits during a build, rebuilt")


def test_a_source_edited_a_b_a_during_the_build_never_files_b_under_a(stress: StressRunner, tmp_path: Path) -> None:
    source = stress.write("aba.c", "int value(void) { return 1; }\n")
    process, tools = pausing_import(stress, tmp_path, "aba")
    wait_for(tools / "started")  # nativeimport has read A; gcc has not
    source.write_text("int value(void) { return 2; }\n")  # B, which gcc compiles
    (tools / "go").touch()
    wait_for(tools / "compiled")
    source.write_text("int value(void) { return 1; }\n")  # A again, before nativeimport looks
    (tools / "go2").touch()
    assert finish(process) == "1"
    assert value(stress, "aba") == 1
    shutil.rmtree(stress.cache / "fresh")
    assert value(stress, "aba") == 1, "A's key holds A's library"
    count("A -> B -> A source edits during a build, rebuilt")


# -- 2. stats that lie ------------------------------------------------------------------------------------


def test_a_same_size_edit_with_its_mtime_restored_is_seen(stress: StressRunner) -> None:
    header = stress.write("cfg.h", "#define V 1\n")
    stress.write("touched.c", '#include "cfg.h"\nint value(void) { return V; }\n')
    assert value(stress, "touched") == 1
    before = header.stat()
    header.write_text("#define V 2\n")
    os.utime(header, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r: same size, same mtime
    assert (header.stat().st_mtime_ns, header.stat().st_size) == (before.st_mtime_ns, before.st_size)
    assert value(stress, "touched") == 2
    count("same-size edits with the mtime restored, seen")


def test_a_symlink_switched_between_same_size_twins_is_seen(stress: StressRunner) -> None:
    one = stress.write("one.h", "#define V 1\n")
    two = stress.write("two.h", "#define V 2\n")
    stamp = one.stat().st_mtime_ns
    for twin in (one, two):
        os.utime(twin, ns=(stamp, stamp))
    link = stress.project / "cfg.h"
    link.symlink_to("one.h")
    stress.write("linked.c", '#include "cfg.h"\nint value(void) { return V; }\n')
    assert value(stress, "linked") == 1
    (stress.project / "new.h").symlink_to("two.h")
    os.replace(stress.project / "new.h", link)
    assert value(stress, "linked") == 2
    count("symlinks switched between same-size twins, seen")


def test_verify_checks_content_where_stats_cannot_see_an_edit(stress: StressRunner) -> None:
    header = stress.write("cfg.h", "#define V 1\n")
    stress.write("checked.c", '#include "cfg.h"\nint value(void) { return V; }\n')
    assert value(stress, "checked") == 1
    header.write_text("#define V 2\n")
    # A file system whose timestamps cannot show the edit (one-second mtimes, no ctime): the record's stats
    # are made the header's new ones, as such a file system would have reported them.
    (record,) = (stress.cache / "fresh").iterdir()
    rows = read_lines(record, FRESH_KIND)
    assert rows is not None
    current = snapshot([header])[0]
    rows = [[row[0], *map(str, current[1:]), *row[5:]] if row[-1] == str(header) else row for row in rows]
    write_lines(record, FRESH_KIND, rows)
    assert value(stress, "checked") == 1, "stats alone are fooled"
    done = stress.run(VALUE.format(module="checked"), env={"NATIVEIMPORT_VERIFY": "1", "NATIVEIMPORT_VERBOSE": "1"})
    assert done.stdout.strip() == "2", "the content was checked"
    assert "content changed though its stats did not" in done.stderr
    assert value(stress, "checked") == 2
    message = stress.import_error("checked", "SettingsError", env={"NATIVEIMPORT_VERIFY": "sometimes"})
    assert "NATIVEIMPORT_VERIFY" in message
    count("edits only content verification sees, seen")


# -- 3. where the compiler searched -----------------------------------------------------------------------


def test_cpath_is_in_the_key(stress: StressRunner) -> None:
    for name, number in (("a", 1), ("b", 2)):
        stress.write(f"{name}/cfg.h", f"#define V {number}\n")
    stress.write("searched.c", "#include <cfg.h>\nint value(void) { return V; }\n")
    assert value(stress, "searched", {"CPATH": str(stress.project / "a")}) == 1
    assert value(stress, "searched", {"CPATH": str(stress.project / "b")}) == 2, "another conda environment"
    shutil.rmtree(stress.cache / "fresh")
    assert value(stress, "searched", {"CPATH": str(stress.project / "a")}) == 1
    assert stress.compiles() == 2, "each setting keeps its own build"
    count("search path switches, rebuilt")


def test_a_header_that_appears_beside_the_source_and_shadows_one_found_through_minus_i(stress: StressRunner) -> None:
    stress.write("include/cfg.h", "#define V 1\n")
    stress.write("src/shadowed.c", '#include "cfg.h"\nint value(void) { return V; }\n')
    env = {"CFLAGS": f"-I{stress.project / 'include'}"}
    code = VALUE.format(module="shadowed").replace(
        "nativeimport.install()", f"nativeimport.install(); import sys; sys.path.insert(0, {str(stress.project / 'src')!r})")
    assert stress.json(code, env=env) == 1
    stress.write("src/cfg.h", "#define V 2\n")  # "cfg.h" is looked for beside the source first
    assert stress.json(code, env=env) == 2
    count("shadowing headers, seen")


# -- 4. what is not ours ----------------------------------------------------------------------------------


def test_a_users_numbered_folder_in_tmp_survives(stress: StressRunner, tmp_path: Path) -> None:
    """With NATIVEIMPORT_CACHE_DIR=/scratch/$USER: that folder's tmp/ is the user's."""
    assert not _alive(48213), "the issue's pid must not be running"
    precious = stress.cache / "tmp" / "48213-simulation-output"
    precious.mkdir(parents=True)
    (precious / "results.csv").write_text("1,2,3\n")
    stress.write("guest.c", "int value(void) { return 3; }\n")
    result, messages = stress.json(WARNED.format(module="guest"), env={"TMPDIR": str(tmp_path)})
    assert result == 3
    assert any("is not empty (tmp) and has no CACHEDIR.TAG" in m for m in messages), messages
    assert (precious / "results.csv").read_text() == "1,2,3\n"
    assert sorted(p.name for p in stress.cache.iterdir()) == ["tmp"]
    count("user folders in tmp/ kept")


def test_a_cache_from_before_the_mark_is_adopted_and_its_user_folders_kept(stress: StressRunner) -> None:
    stress.write("guest.c", "int value(void) { return 3; }\n")
    assert value(stress, "guest") == 3
    (stress.cache / "CACHEDIR.TAG").unlink()  # as an older nativeimport left it
    precious = stress.cache / "tmp" / "48213-simulation-output"
    precious.mkdir(parents=True)
    stress.write("other.c", "int value(void) { return 4; }\n")
    assert stress.json(WARNED.format(module="other")) == [4, []]
    assert "nativeimport" in (stress.cache / "CACHEDIR.TAG").read_text()
    assert precious.is_dir(), "only nativeimport's own staging names are swept"
    count("unmarked caches of nativeimport adopted")


def test_a_folder_holding_someone_elses_files_is_not_used(stress: StressRunner, tmp_path: Path) -> None:
    stress.cache.mkdir()
    (stress.cache / "thesis.tex").write_text("\\documentclass{article}\n")
    stress.write("guest.c", "int value(void) { return 3; }\n")
    result, messages = stress.json(WARNED.format(module="guest"), env={"TMPDIR": str(tmp_path)})
    assert result == 3
    assert any("holds files nativeimport did not make (thesis.tex)" in m for m in messages), messages
    assert sorted(p.name for p in stress.cache.iterdir()) == ["thesis.tex"], "nothing written there"
    assert (tmp_path / f"nativeimport-{os.getuid()}" / "CACHEDIR.TAG").read_text().startswith(
        "Signature: 8a477f597d28d172789f06886806bc55")
    count("foreign folders refused")


def test_prune_removes_only_what_nativeimport_made(stress: StressRunner) -> None:
    stress.write("guest.c", "int value(void) { return 3; }\n")
    assert value(stress, "guest") == 3
    notes = stress.cache / "entries" / "my-notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me\n")
    stress.cli("cache", "prune", "--max-size", "0", "--yes")
    assert (notes / "todo.txt").read_text() == "keep me\n"
    assert [p.name for p in stress.entries()] == ["my-notes"], "its own entry was pruned"
    count("foreign entries kept by prune")


# -- 5. other users ---------------------------------------------------------------------------------------


@pytest.fixture
def other_user() -> tuple[int, int]:
    """A second local account (created with useradd: CI runs as root)."""
    if os.getuid() != 0:
        pytest.skip("the other-user cases need root to create a second user and hand it a folder")
    name = "nativeimport-other"
    try:
        pwd.getpwnam(name)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("useradd is not installed")
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True,
                       capture_output=True, timeout=60)
    record = pwd.getpwnam(name)
    return record.pw_uid, record.pw_gid


def test_everything_is_private_under_umask_0(stress: StressRunner) -> None:
    stress.cache.mkdir(mode=0o755)
    os.chmod(stress.cache, 0o755)  # an existing root readable by others
    stress.write("guest.c", "int value(void) { return 3; }\n")
    stress.write("other.c", "double value(void) { return 4.5; }\n")
    code = "import os; os.umask(0)\n" + VALUE.format(module="guest") + "import other\n"
    assert stress.json(code) == 3
    shared = []
    for directory, folders, files in os.walk(stress.cache):
        for name in [*folders, *files]:
            path = Path(directory, name)
            try:
                info = path.lstat()
            except FileNotFoundError:  # a background compile renamed it meanwhile
                continue
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
                shared.append(f"{path.relative_to(stress.cache)} {oct(info.st_mode & 0o777)}")
    assert shared == []
    count("files and folders checked private under umask 0")


def test_a_root_inside_a_folder_others_can_write_is_refused(stress: StressRunner, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # not sticky: anyone may rename what it holds
    cache = shared / "cache"
    stress.write("guest.c", "int value(void) { return 3; }\n")
    result, messages = stress.json(WARNED.format(module="guest"),
                                   env={"NATIVEIMPORT_CACHE_DIR": str(cache), "TMPDIR": str(tmp_path)})
    assert result == 3
    assert any(f"inside {shared}, which others can write" in m for m in messages), messages
    assert not (cache / "entries").exists()
    count("roots under replaceable folders refused")


def test_a_root_inside_another_users_folder_is_refused(stress: StressRunner, tmp_path: Path,
                                                      other_user: tuple[int, int]) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, *other_user)
    cache = theirs / "cache"
    cache.mkdir(mode=0o700)  # ours, and private: but they may rename it and put their own in its place
    stress.write("guest.c", "int value(void) { return 3; }\n")
    result, messages = stress.json(WARNED.format(module="guest"),
                                   env={"NATIVEIMPORT_CACHE_DIR": str(cache), "TMPDIR": str(tmp_path)})
    assert result == 3
    assert any(f"owned by another user (uid {other_user[0]})" in m for m in messages), messages
    assert list(cache.iterdir()) == []
    count("roots under replaceable folders refused")


def test_a_symlinked_root_is_refused(stress: StressRunner, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    stress.cache.symlink_to(elsewhere)
    stress.write("guest.c", "int value(void) { return 3; }\n")
    result, messages = stress.json(WARNED.format(module="guest"), env={"TMPDIR": str(tmp_path)})
    assert result == 3
    assert any("is a symbolic link" in m for m in messages), messages
    assert list(elsewhere.iterdir()) == []
    count("symlinked roots refused")


def test_a_fallback_made_first_by_another_user_is_not_used(stress: StressRunner, tmp_path: Path,
                                                          other_user: tuple[int, int]) -> None:
    squatted = tmp_path / f"nativeimport-{os.getuid()}"
    squatted.mkdir()
    os.chown(squatted, *other_user)
    os.chmod(squatted, 0o777)
    stress.cache.mkdir()
    os.chmod(stress.cache, 0o777)  # unsafe: the fallback is needed
    stress.write("guest.c", "int value(void) { return 3; }\n")
    result, messages = stress.json(WARNED.format(module="guest"), env={"TMPDIR": str(tmp_path)})
    assert result == 3
    assert list(squatted.iterdir()) == [], "nothing in the squatter's folder"
    assert any("for this process" in m for m in messages), messages
    count("squatted fallbacks avoided")


# -- 6. compilers die with the importing process -----------------------------------------------------------


def test_the_compiler_dies_with_the_importing_process(stress: StressRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "compiler.pid"
    cc = executable(tmp_path / "slowcc", f"""#!/bin/sh
case " $* " in *" -MD "*) echo $$ > "{pid_file}"; exec sleep 300;; esac
exec gcc "$@"
""")
    stress.write("orphan.c", "int value(void) { return 3; }\n")
    importer = subprocess.Popen([sys.executable, "-c", VALUE.format(module="orphan")], cwd=stress.project,
                                env={**stress.env, "CC": str(cc)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_for(pid_file)
        compiler = int(pid_file.read_text())
        importer.send_signal(signal.SIGKILL)
        importer.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _alive(compiler) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(compiler), "the compiler outlived the process that started it"
    finally:
        importer.kill()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    count("compilers gone with their importer")


# -- 7. a failed fast wrapper is tried again -------------------------------------------------------------

FLAKY_CC = """#!/bin/sh
# The fast wrapper's compile fails while {flag} exists (as when the kernel kills it for memory).
case " $* " in *"/fast.c "*)
    echo $$ >> "{log}"
    if [ -e "{flag}" ]; then echo "cc1: out of memory" >&2; exit 1; fi;;
esac
exec gcc "$@"
"""
SERVED = """
    import json, nativeimport
    nativeimport.install()
    import flaky
    print(json.dumps([flaky.value(), type(flaky.value).__name__]))
"""


def test_a_failed_fast_wrapper_is_tried_again_when_the_compiler_changes(stress: StressRunner, tmp_path: Path) -> None:
    flag = tmp_path / "failing"
    flag.touch()
    attempts = tmp_path / "wrapper-compiles"
    attempts.touch()
    cc = executable(tmp_path / "flakycc", FLAKY_CC.format(flag=flag, log=attempts))
    env = {"CC": str(cc)}
    stress.write("flaky.c", "int value(void) { return 3; }\n")
    assert stress.json(SERVED, env=env) == [3, "function"], "cffi serves while the wrapper cannot be built"
    assert stress.json(SERVED, env=env) == [3, "function"]
    assert len(attempts.read_text().split()) == 1, "not retried while nothing changed"
    flag.unlink()
    os.utime(cc, ns=(time.time_ns(), time.time_ns()))  # a new compiler
    assert stress.json(SERVED, env=env) == [3, "builtin_function_or_method"], "retried, and it worked"
    assert len(attempts.read_text().split()) == 2
    count("failed fast wrappers retried")


def test_a_wrapper_that_keeps_failing_is_given_up_after_three_attempts(stress: StressRunner, tmp_path: Path) -> None:
    flag = tmp_path / "failing"
    flag.touch()
    attempts = tmp_path / "wrapper-compiles"
    attempts.touch()
    cc = executable(tmp_path / "flakycc", FLAKY_CC.format(flag=flag, log=attempts))
    stress.write("flaky.c", "int value(void) { return 3; }\n")
    for round_ in range(5):
        os.utime(cc, ns=(time.time_ns() + round_, time.time_ns() + round_))  # changed each time
        assert stress.json(SERVED, env={"CC": str(cc)}) == [3, "function"]
    assert len(attempts.read_text().split()) == 3
    count("failing fast wrappers given up after 3 attempts")


def _alive(pid: int) -> bool:
    """Running (not a zombie nobody reaped: this container's init may not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
