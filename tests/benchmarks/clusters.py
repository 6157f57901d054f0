"""Dask workers and native functions: first and second ``map`` time, and builds per worker.

Run: ``python tests/benchmarks/clusters.py`` (needs ``dask[distributed]``; not a test, no assertion).

For 1, 2 and 4 worker processes of a ``LocalCluster`` sharing one cache (the
client has its own), it maps a native function over 200 items twice:

- cold: the workers' cache is empty, so the first map has the workers build
  the source the pickle carries (one build per machine: the others wait for it);
- warm: a new cluster on the same cache, so workers find the entry by key;

and, for scale, the same map of ``operator.add`` (what Dask itself costs on the machine).

Builds are counted from a logging ``CC`` wrapper: each compiler run of the
module's source, by the worker process that started it. ``--version`` runs
are counted too (the toolchain is fingerprinted once per cache).
"""

from __future__ import annotations

import collections
import operator
import os
import sys
import tempfile
import time
from pathlib import Path

SOURCE = """
#include <stdint.h>
int64_t add(int64_t a, int64_t b) { return a + b; }
int64_t mul(int64_t a, int64_t b) { return a * b; }
"""


def main() -> int:
    from distributed import Client, LocalCluster

    import nativeimport

    work = Path(tempfile.mkdtemp(prefix="nativeimport-clusters-"))
    (work / "benchmod.c").write_text(SOURCE)
    log = work / "cc.log"
    wrapper = work / "logging-cc"
    wrapper.write_text(f'#!/bin/sh\necho "$PPID $*" >> {log}\nexec cc "$@"\n')
    wrapper.chmod(0o755)
    nativeimport.install(cache_dir=work / "client-cache")
    sys.path.insert(0, str(work))
    import benchmod  # type: ignore[import-not-found]

    print(f"{'workers':>7} {'cache':>5} {'first map':>10} {'second map':>11} {'operator.add map':>17} "
          f"{'builds per worker':>18} {'--version runs':>15}")
    for count in (1, 2, 4):
        shared = work / f"workers-{count}"
        for state in ("cold", "warm"):
            log.write_text("")
            env = {"NATIVEIMPORT_CACHE_DIR": str(shared), "CC": str(wrapper)}
            with LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None,
                              env=env) as cluster, Client(cluster) as client:
                client.wait_for_workers(count)
                pids = client.run(os.getpid)
                started = time.perf_counter()
                client.gather(client.map(benchmod.add, range(200), range(200), pure=False))
                first = time.perf_counter() - started
                started = time.perf_counter()
                client.gather(client.map(benchmod.add, range(200), range(1, 201), pure=False))
                second = time.perf_counter() - started
                started = time.perf_counter()  # the same map of a Python builtin: what Dask itself costs here
                client.gather(client.map(operator.add, range(200), range(1, 201), pure=False))
                baseline = time.perf_counter() - started
            lines = [line.split(" ", 1) for line in log.read_text().splitlines() if " " in line]
            builds = collections.Counter(int(ppid) for ppid, args in lines if "benchmod.c" in args)
            per_worker = [builds.get(pid, 0) for pid in pids.values()]
            versions = sum(1 for _, args in lines if "--version" in args)
            print(f"{count:>7} {state:>5} {first * 1e3:>7.0f} ms {second * 1e3:>8.0f} ms {baseline * 1e3:>14.0f} ms "
                  f"{' '.join(map(str, per_worker)):>18} {versions:>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
