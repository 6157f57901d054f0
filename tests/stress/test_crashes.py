"""Builds killed at the worst moment leave nothing behind and block nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from stress_helpers import StressRunner, count

SOURCE = "int value(void) { return 7; }\n"
IMPORT = "import json, nativeimport; nativeimport.install(); import victim; print(json.dumps(victim.value()))"


def wait_for(path: os.PathLike[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_sigkill_of_the_importing_process_mid_build(stress: StressRunner) -> None:
    stress.write("victim.c", SOURCE)
    for round_ in range(3):
        started = stress.project / f"started-{round_}"
        victim = subprocess.Popen([sys.executable, "-c", IMPORT], cwd=stress.project,
                                  env={**stress.env, "STRESS_SLEEP": "30", "STRESS_STARTED": str(started)})
        wait_for(started)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert stress.entries() == [], "no partial entry"
        count("importing processes killed mid-build")
    assert stress.json(IMPORT) == 7, "the next import succeeds: no lock left behind"
    assert [p for p in (stress.cache / "tmp").iterdir()] == [], "abandoned build directories are cleaned up"


def test_sigkill_of_the_compiler(stress: StressRunner) -> None:
    stress.write("victim.c", SOURCE)
    message = stress.import_error("victim", "CompileError", env={"STRESS_DIE": "1"})
    assert "killed by SIGKILL" in message
    assert stress.entries() == []
    assert stress.json(IMPORT) == 7
    count("compilers killed mid-build")


def test_a_hanging_compiler_times_out(stress: StressRunner) -> None:
    stress.write("victim.c", SOURCE)
    started = time.monotonic()
    message = stress.import_error("victim", "CompileError", env={"STRESS_SLEEP": "120", "NATIVEIMPORT_BUILD_TIMEOUT": "2"})
    assert time.monotonic() - started < 60
    assert "timed out after 2 s" in message and "NATIVEIMPORT_BUILD_TIMEOUT" in message
    assert stress.entries() == []
    count("hanging compilers stopped by the timeout")
