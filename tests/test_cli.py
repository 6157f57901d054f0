"""The nativeimport command, run as a user would."""

from __future__ import annotations

import json

from helpers import Runner


def test_cache_dir_build_list_show_and_clear(runner: Runner) -> None:
    good = runner.write("good.c", "/* Add one. */\nint inc(int v) { return v + 1; }\n")
    runner.write("bad.c", "int broken(void) { return nope; }\n")

    assert runner.cli("cache", "dir").stdout.strip() == str(runner.cache)
    assert runner.cli("cache", "list").stdout.strip() == "the cache is empty"

    built = runner.cli("build", "good.c")
    assert "built good.c: 1 function(s)" in built.stdout

    failed = runner.cli("build", "bad.c", check=False)
    assert failed.returncode == 1
    assert "bad.c:1:" in failed.stderr

    rows = json.loads(runner.cli("cache", "list", "--json").stdout)
    assert [(r["module"], r["language"], r["source"]) for r in rows] == [("good", "c", str(good))]
    assert rows[0]["size"] > 0
    assert "good" in runner.cli("cache", "list").stdout

    shown = runner.cli("show", "good.c").stdout
    assert "def inc(v: int) -> int:" in shown
    assert "Add one." in shown

    refused = runner.cli("cache", "clear", check=False)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert len(runner.entries()) == 1
    assert "removed 1" in runner.cli("cache", "clear", "--yes", "good.c").stdout
    assert runner.entries() == []


def test_doctor_reports_the_c_toolchain(runner: Runner) -> None:
    report = json.loads(runner.cli("doctor", "--json").stdout)
    c = next(d for d in report["drivers"] if d["name"] == "c")
    assert c["found"] is True
    assert c["suffixes"] == [".c"]
    assert "gcc" in c["version"] or "clang" in c["version"]
    text = runner.cli("doctor").stdout
    assert any(line.split()[:3] == ["c", ".c", "ok"] for line in text.splitlines())
