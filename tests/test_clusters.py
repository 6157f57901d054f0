"""Dask (and Ray, when installed) workers use native modules they cannot build.

A real ``distributed.LocalCluster`` of worker processes; then ``dask worker``
processes started with no compiler on ``PATH``, ``CC=/bin/false``, their own
empty cache and no source, which get the modules through
``nativeimport.dask.NativeModules``. Every process has a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Runner
from test_pickling import MYMATH, last_json, no_compiler, run

pytest.importorskip("distributed")

CLUSTER = """
    import json

    if __name__ == "__main__":
        import nativeimport, nativeimport.dask
        nativeimport.install()
        import mymath
        import numpy as np
        import dask.array as da
        from distributed import Client, LocalCluster

        def block_work(block):
            out = np.ascontiguousarray(block, dtype=np.float64).copy()
            mymath.scale(out.reshape(-1), out.size, 2.0)
            return out

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \\
                Client(cluster) as client:
            sums = client.gather(client.map(mymath.add, range(6), range(6)))
            pids = client.run(lambda: __import__("os").getpid())
            client.register_plugin(nativeimport.dask.NativeModules(mymath))
            doubled = da.arange(8, chunks=2, dtype="f8").map_blocks(block_work).compute()
            moved = client.submit(mymath.moved, mymath.point(1.0, 2.0), 0.5).result()
        print(json.dumps([sums, len(pids), doubled.tolist(), [moved.x, moved.y]]))
"""


def test_local_cluster_of_worker_processes(runner: Runner) -> None:
    runner.write("mymath.c", MYMATH)
    result = last_json(run(runner, CLUSTER, cwd=runner.project))
    assert result == [[0, 2, 4, 6, 8, 10], 2, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0], [1.5, 2.0]]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaskProcesses:
    """A ``dask scheduler`` and ``dask worker`` processes, each stopped (by its own pid) at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, arguments: list[str], env: dict[str, str], cwd: Path) -> None:
        log = open(self.tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.processes.append(subprocess.Popen([sys.executable, "-m", *arguments], env=env, cwd=cwd, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))

    def worker(self, name: str) -> None:
        """A worker with no compiler on PATH, CC=/bin/false, an empty cache of its own and no source."""
        home = self.tmp_path / name
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NATIVEIMPORT_")}
        env.update(no_compiler(self.tmp_path, home / "cache"))
        self.start(name, ["distributed.cli.dask_worker", self.address, "--nworkers", "1", "--nthreads", "1",
                          "--name", name, "--no-dashboard"], env, home)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp_path.glob("*.log"))


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[DaskProcesses]:
    processes = DaskProcesses(tmp_path)
    processes.start("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                                  str(processes.port), "--no-dashboard"], dict(os.environ), tmp_path)
    try:
        yield processes
    finally:
        processes.stop()


WORKERS_WITHOUT_COMPILER = """
    import json, os, sys, time

    if __name__ == "__main__":
        import nativeimport, nativeimport.dask
        nativeimport.install()
        import mymath
        import numpy as np
        import dask.array as da
        from distributed import Client

        def block_work(block):
            out = np.ascontiguousarray(block, dtype=np.float64).copy()
            mymath.scale(out.reshape(-1), out.size, 2.0)
            return out

        def echo(point):
            return point

        client = Client({address!r}, timeout=60)
        client.wait_for_workers(2, timeout=60)
        try:
            client.submit(mymath.add, 1, 2, pure=False).result(timeout=60)
            unshipped = None
        except nativeimport.NativeImportError as exc:
            unshipped = str(exc)
        client.register_plugin(nativeimport.dask.NativeModules(mymath))
        sums = client.gather(client.map(mymath.add, range(8), range(8)))
        doubled = da.arange(8, chunks=2, dtype="f8").map_blocks(block_work).compute()
        p = mymath.point(1.0, 2.0)
        moved = client.submit(mymath.moved, p, 0.5, pure=False).result(timeout=60)
        back = client.submit(echo, p, pure=False).result(timeout=60)
        os.write(1, b"ready\\n")
        # A worker joining after the plugin was registered gets it too.
        while len(client.scheduler_info()["workers"]) < 3:
            time.sleep(0.2)
        late = [w for w, info in client.scheduler_info()["workers"].items() if info["name"] == "late"]
        on_late = client.submit(mymath.add, 20, 22, workers=late, pure=False).result(timeout=60)
        print(json.dumps({{"unshipped": unshipped, "sums": sums, "doubled": doubled.tolist(),
                          "moved": [moved.x, moved.y], "back": [back.x, back.y],
                          "back_type": isinstance(back, mymath.point), "late": on_late}}))
        client.close()
"""


def test_dask_workers_without_compiler_or_source_get_modules_through_the_plugin(
        runner: Runner, tmp_path: Path, dask_processes: DaskProcesses) -> None:
    runner.write("mymath.c", MYMATH)
    dask_processes.worker("w1")
    dask_processes.worker("w2")
    script = runner.project / "_client.py"
    import textwrap

    script.write_text(textwrap.dedent(WORKERS_WITHOUT_COMPILER.format(address=dask_processes.address)))
    client = subprocess.Popen([sys.executable, str(script)], cwd=runner.project, env=runner.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert client.stdout is not None
        ready = client.stdout.readline()
        assert ready == b"ready\n", dask_processes.logs() + client.communicate(timeout=30)[1].decode()
        dask_processes.worker("late")
        out, err = client.communicate(timeout=180)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err.decode() + dask_processes.logs()
    result = last_json(subprocess.CompletedProcess([], 0, out.decode(), ""))
    unshipped = str(result.pop("unshipped"))  # type: ignore[union-attr]
    assert "mymath.add is not available" in unshipped and "nativeimport.dask.NativeModules(mymath)" in unshipped
    assert result == {"sums": [0, 2, 4, 6, 8, 10, 12, 14], "doubled": [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0],
                      "moved": [1.5, 2.0], "back": [1.0, 2.0], "back_type": True, "late": 42}
    for worker in ("w1", "w2", "late"):  # nothing was compiled on the workers: they had no compiler
        entries = tmp_path / worker / "cache" / "entries"
        assert len(list(entries.iterdir())) == 1, worker


def test_workers_sharing_a_cache_build_once_and_ask_the_compiler_its_version_once(runner: Runner,
                                                                                  tmp_path: Path) -> None:
    """Workers receiving a pickle carrying the source, with a cache of their own to share, build it once."""
    runner.write("mymath.c", MYMATH)
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "logging-cc"
    wrapper.write_text(f'#!/bin/sh\necho "$$ $*" >> {log}\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    shared = tmp_path / "shared-cache"
    result = last_json(run(runner, f"""
        import json, os

        if __name__ == "__main__":
            import nativeimport
            nativeimport.install()
            import mymath
            from distributed import Client, LocalCluster
            # The workers' own cache and compiler, not the client's
            workers_env = {{"NATIVEIMPORT_CACHE_DIR": {str(shared)!r}, "CC": {str(wrapper)!r}}}
            with LocalCluster(n_workers=4, threads_per_worker=1, processes=True, dashboard_address=None,
                              env=workers_env) as cluster, Client(cluster) as client:
                client.wait_for_workers(4)
                workers = list(client.scheduler_info()["workers"])
                futures = [client.submit(mymath.add, i, i, workers=[w], pure=False) for i, w in enumerate(workers)]
                print(json.dumps(client.gather(futures)))
    """, cwd=runner.project))
    assert result == [0, 2, 4, 6]
    assert len(list((shared / "entries").iterdir())) == 1
    calls = log.read_text().splitlines()
    assert len([c for c in calls if "--version" in c]) == 1, calls
    assert len([c for c in calls if "mymath.c" in c]) == 1, calls


def test_processes_importing_together_build_once_and_ask_the_compiler_once(runner: Runner, tmp_path: Path) -> None:
    """Four processes import the same new module at once from one empty cache (a node's workers starting)."""
    runner.write("mymath.c", MYMATH)
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "logging-cc"
    wrapper.write_text(f'#!/bin/sh\necho "$$ $*" >> {log}\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    code = "import nativeimport; nativeimport.install(); import mymath; print(mymath.add(2, 3))"
    processes = [subprocess.Popen([sys.executable, "-c", code], cwd=runner.project, env={**runner.env, "CC": str(wrapper)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        outputs = [p.communicate(timeout=180) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [out.strip() for out, _ in outputs] == ["5"] * 4, [err for _, err in outputs]
    calls = log.read_text().splitlines()
    assert len([c for c in calls if "--version" in c]) == 1, calls
    assert len([c for c in calls if "mymath.c" in c]) == 1, calls


def test_ray_workers_get_modules_through_the_runtime_env(runner: Runner, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    runner.write("mymath.c", MYMATH)
    worker_cache = tmp_path / "ray-cache"
    started = time.monotonic()
    result = last_json(run(runner, f"""
        import json, os

        if __name__ == "__main__":
            import nativeimport, nativeimport.ray
            nativeimport.install()
            import mymath
            import ray

            env = nativeimport.ray.runtime_env(mymath)
            env["env_vars"].update({{"NATIVEIMPORT_CACHE_DIR": {str(worker_cache)!r}, "CC": "/bin/false"}})
            ray.init(num_cpus=2, runtime_env=env, include_dashboard=False, log_to_driver=False)

            @ray.remote
            def work(i):
                return mymath.add(i, i)

            @ray.remote
            def apply(function, *args):  # ray.remote takes Python functions only, not builtins
                return function(*args)

            moved = ray.get(apply.remote(mymath.moved, mymath.point(1.0, 2.0), 0.5))
            print(json.dumps([ray.get([work.remote(i) for i in range(4)]), ray.get(apply.remote(mymath.add, 20, 22)),
                              [moved.x, moved.y]]))
            ray.shutdown()
    """, cwd=runner.project))
    assert result == [[0, 2, 4, 6], 42, [1.5, 2.0]]
    assert len(list((worker_cache / "entries").iterdir())) == 1
    print(f"ray test: {time.monotonic() - started:.1f} s")
