"""A new module binds through cffi at once while its fast wrapper compiles in a detached process
(NATIVEIMPORT_WRAPPER=background, the default); the next import or a reload binds through the wrapper."""

from __future__ import annotations

from helpers import Runner

SOURCE = r"""
#include <stdint.h>
double scale(double x, double k) { return x * k; }
int64_t add(int64_t a, int64_t b) { return a + b; }
"""

BACKGROUND = {"NATIVEIMPORT_WRAPPER": "background"}


def test_a_new_module_binds_through_cffi_then_the_wrapper_serves_the_reload_and_the_next_import(
        runner: Runner) -> None:
    runner.write("bgmod.c", SOURCE)
    first = runner.json("""
        import importlib, json, os, nativeimport
        nativeimport.install()
        import bgmod
        before = [type(bgmod.add).__name__, bgmod.add(2, 3), bgmod.scale(1.5, 2.0)]
        entry = os.path.dirname(bgmod.__native_library__)
        ready = nativeimport.wait_for_wrapper(bgmod, timeout=240)
        # once there, the wrapper is complete: nothing half-written is ever in its place
        leftovers = sorted(n for n in os.listdir(entry) if n.startswith(".fast-"))
        importlib.reload(bgmod)
        print(json.dumps([before, ready, leftovers, type(bgmod.add).__name__, bgmod.add(2, 3)]))
    """, env=BACKGROUND)
    assert first == [["function", 5, 3.0], True, [], "builtin_function_or_method", 5]
    again = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import bgmod
        print(json.dumps([type(bgmod.add).__name__, bgmod.scale(2.0, 4.0)]))
    """, env=BACKGROUND)
    assert again == ["builtin_function_or_method", 8.0]


def test_a_background_compile_that_cannot_run_leaves_the_note_and_is_not_started_again(runner: Runner) -> None:
    runner.write("bgfail.c", SOURCE)
    code = """
        import json, os, nativeimport
        nativeimport.install()
        import bgfail
        entry = os.path.dirname(bgfail.__native_library__)
        ready = nativeimport.wait_for_wrapper(bgfail, timeout=240)
        notes = sorted(n.split(".")[-1].split("-")[0] for n in os.listdir(entry) if ".unavailable-" in n)
        print(json.dumps([type(bgfail.add).__name__, bgfail.add(1, 2), ready, notes]))
    """
    # A compiler that builds the library but fails on the wrapper's source (the C driver and the fast
    # binder both follow CC), so the failure happens in the detached process.
    compiler = runner.write("refusing-cc", """
        #!/bin/sh
        for arg in "$@"; do
            case "$arg" in */fast.c) echo "refusing to compile the wrapper" >&2; exit 1;; esac
        done
        exec gcc "$@"
    """)
    compiler.chmod(0o755)
    env = {**BACKGROUND, "CC": str(compiler)}
    assert runner.json(code, env=env) == ["function", 3, False, ["unavailable"]]
    (entry,) = runner.entries()
    note = next(entry.glob("fast*.unavailable-*"))
    written = note.stat().st_mtime_ns
    assert runner.json(code, env=env) == ["function", 3, False, ["unavailable"]]
    assert note.stat().st_mtime_ns == written  # the retry policy holds: no second attempt right away


def test_wait_compiles_the_wrapper_before_the_import_returns(runner: Runner) -> None:
    runner.write("waitmod.c", SOURCE)
    result = runner.json("""
        import json, nativeimport
        nativeimport.install()
        import waitmod
        print(json.dumps([type(waitmod.add).__name__, waitmod.add(1, 1)]))
    """, env={"NATIVEIMPORT_WRAPPER": "wait"})
    assert result == ["builtin_function_or_method", 2]


def test_a_bad_wrapper_setting_is_a_clear_error(runner: Runner) -> None:
    runner.write("badset.c", SOURCE)
    message = runner.import_error("badset", "SettingsError", env={"NATIVEIMPORT_WRAPPER": "later"})
    assert "NATIVEIMPORT_WRAPPER" in message and "background, wait" in message


def test_the_module_switches_to_the_wrapper_in_the_same_process_once_it_is_built(runner: Runner) -> None:
    runner.write("switching.c", SOURCE + "typedef struct { double x, y; } Pair;\n"
                                         "double first(Pair p) { return p.x; }\n")
    result = runner.json("""
        import json, time, nativeimport
        nativeimport.install()
        import switching
        held = switching.add  # fetched before the switch: stays the cffi function, and works
        pair = switching.Pair(x=1.5, y=2.0)  # made before the switch: accepted after it
        before = type(switching.add).__name__
        ready = nativeimport.wait_for_wrapper(switching, timeout=240)
        deadline = time.monotonic() + 60
        while type(switching.add).__name__ != "builtin_function_or_method" and time.monotonic() < deadline:
            time.sleep(0.01)
        print(json.dumps([before, ready, type(switching.add).__name__, switching.add(2, 3), held(4, 5),
                          switching.first(pair), switching.scale(2.0, 0.5)]))
    """, env=BACKGROUND)
    assert result == ["function", True, "builtin_function_or_method", 5, 9, 1.5, 1.0]
