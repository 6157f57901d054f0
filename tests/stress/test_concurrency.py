"""Many processes and threads importing one never-built module: all succeed, one compile."""

from __future__ import annotations

import subprocess
import sys
import time

from stress_helpers import StressRunner, count

SOURCE = "/* Slowish to build. */\nint answer(void) { return 42; }\n"


def test_sixteen_processes_build_once(stress: StressRunner) -> None:
    stress.write("shared.c", SOURCE)
    go = stress.project / "go"
    script = stress.script("importer.py", f"""
        import os, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        import nativeimport
        nativeimport.install()
        import shared
        print(shared.answer())
    """)
    env = {**stress.env, "STRESS_SLEEP": "1", "NATIVEIMPORT_VERBOSE": "1"}
    processes = [subprocess.Popen([sys.executable, str(script)], cwd=stress.project, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(16)]
    time.sleep(0.5)
    go.touch()
    results = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0] * 16, [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["42"] * 16
    assert stress.compiles() == 1
    waited = sum("waiting for another process building shared" in err for _, err in results)
    assert waited >= 1, "a waiting process says what it waits for"
    assert len(stress.entries()) == 1
    count("concurrent processes that imported one unbuilt module", 16)
    count("compiles for those 16 imports", stress.compiles())
    count("processes that logged waiting", waited)


def test_threads_in_one_process_build_once(stress: StressRunner) -> None:
    stress.write("threaded.c", SOURCE)
    result = stress.json("""
        import json, threading, nativeimport
        results, errors = [], []
        def work():
            try:
                results.append(nativeimport.load("threaded.c").answer())
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(json.dumps([results, errors]))
    """, env={"STRESS_SLEEP": "1"})
    assert result == [[42] * 8, []]
    assert stress.compiles() == 1
    count("threads that loaded one unbuilt module", 8)


def test_a_lock_wait_times_out_naming_the_lock(stress: StressRunner) -> None:
    stress.write("slow.c", SOURCE)
    started = stress.project / "started"
    holder = subprocess.Popen([sys.executable, "-c", "import nativeimport; nativeimport.install(); import slow"],
                              cwd=stress.project, env={**stress.env, "STRESS_SLEEP": "60",
                                                       "STRESS_STARTED": str(started)})
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        message = stress.import_error("slow", "LockTimeout", env={"NATIVEIMPORT_LOCK_TIMEOUT": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert "gave up after 1 s waiting for another process building slow" in message
    assert ".lock" in message and "NATIVEIMPORT_LOCK_TIMEOUT" in message
    count("lock waits that timed out with a message", 1)
