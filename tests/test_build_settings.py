"""Per-source build settings: the `nativeimport:` comment, nativeimport.toml, several files, libraries."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import Runner

IMPORT = "import json, nativeimport; nativeimport.install(); import {0}; print(json.dumps({1}))"


def _value(runner: Runner, module: str, expression: str, **kwargs: object) -> object:
    return runner.json(IMPORT.format(module, expression), **kwargs)  # type: ignore[arg-type]


def test_a_module_built_from_three_files_with_a_define_and_an_include_dir(runner: Runner) -> None:
    runner.write("include/scale.h", "#define SCALE 10\n")
    runner.write("parts/twice.c", "int twice(int v) { return 2 * v; }\n")
    runner.write("parts/offset.c", '#include "scale.h"\nint offset(void) { return SCALE + EXTRA; }\n')
    runner.write("combo.c", """
        /* nativeimport:
        sources = ["parts/twice.c", "parts/offset.c"]
        include-dirs = ["include"]
        define = ["EXTRA=5"]
        */
        int twice(int v);
        int offset(void);
        int combined(int v) { return twice(v) + offset(); }
    """)
    assert _value(runner, "combo", "[combo.combined(1), combo.twice(4), combo.offset()]") == [17, 8, 15]
    # An edit to an extra source, or to a header it includes, rebuilds.
    runner.write("parts/twice.c", "int twice(int v) { return 3 * v; }\n")
    assert _value(runner, "combo", "combo.combined(1)") == 18
    runner.write("include/scale.h", "#define SCALE 20\n")
    assert _value(runner, "combo", "combo.combined(1)") == 28


def test_a_define_changes_the_result_and_the_key(runner: Runner) -> None:
    body = "int level(void) { return LEVEL; }\n"
    runner.write("lvl.c", '/* nativeimport:\ndefine = ["LEVEL=3"]\n*/\n' + body)
    assert _value(runner, "lvl", "lvl.level()") == 3
    runner.write("lvl.c", '/* nativeimport:\ndefine = ["LEVEL=4"]\n*/\n' + body)
    assert _value(runner, "lvl", "lvl.level()") == 4
    assert len(runner.entries()) == 2


def test_zlib_through_libraries_and_through_pkg_config(runner: Runner) -> None:
    if shutil.which("pkg-config") is None:
        pytest.skip("pkg-config is not installed (apt-get install pkg-config)")
    body = """
        #include <string.h>
        #include <zlib.h>
        unsigned long checksum(const char *text) { return crc32(0L, (const Bytef *)text, (uInt)strlen(text)); }
    """
    runner.write("zlinked.c", '/* nativeimport:\nlibraries = ["z"]\n*/\n' + body)
    runner.write("zconfigured.c", '// nativeimport:\n// pkg-config = ["zlib"]\n' + body)
    expected = __import__("zlib").crc32(b"nativeimport")
    assert _value(runner, "zlinked", "zlinked.checksum('nativeimport')") == expected
    assert _value(runner, "zconfigured", "zconfigured.checksum('nativeimport')") == expected
    manifests = [json.loads((e / "manifest.json").read_text()) for e in runner.entries()]
    assert any("z" in m["settings"][1]["libraries"] for m in manifests if isinstance(m["settings"], list))


def test_an_openmp_loop(runner: Runner) -> None:
    runner.write("omp.c", """
        /* nativeimport:
        flags = ["-fopenmp"]
        link-flags = ["-fopenmp"]
        */
        #include <omp.h>
        double harmonic(long n) {
            double total = 0.0;
            #pragma omp parallel for reduction(+:total)
            for (long i = 1; i <= n; i++) total += 1.0 / (double)i;
            return total;
        }
        int threads(void) { int n = 0;
            #pragma omp parallel
            {
                #pragma omp atomic
                n++;
            }
            return n; }
    """)
    total, threads = _value(runner, "omp", "[omp.harmonic(1000000), omp.threads()]", env={"OMP_NUM_THREADS": "2"})
    assert abs(total - sum(1.0 / i for i in range(1, 1000001))) < 1e-9
    assert threads == 2


def test_a_module_nativeimport_toml_defines_from_several_files(runner: Runner) -> None:
    runner.write("lib/a.c", "int from_a(void) { return 1; }\n")
    runner.write("lib/b.c", "int from_b(void) { return 2; }\n")
    runner.write("lib/own.c", "int own(void) { return OWN; }\n")
    runner.write("lib/nativeimport.toml", """
        [both]
        sources = ["a.c", "b.c"]

        [own]
        define = ["OWN=7"]
    """)
    code = """
        import json, sys, nativeimport
        nativeimport.install()
        sys.path.insert(0, "lib")
        import both, own
        print(json.dumps([both.from_a(), both.from_b(), own.own(), sorted(both.__all__)]))
    """
    assert runner.json(code) == [1, 2, 7, ["from_a", "from_b"]]
    entries = runner.entries()
    # Editing one module's table rebuilds that module only.
    runner.write("lib/nativeimport.toml", """
        [both]
        sources = ["a.c", "b.c"]

        [own]
        define = ["OWN=8"]
    """)
    assert runner.json(code) == [1, 2, 8, ["from_a", "from_b"]]
    assert len(runner.entries()) == len(entries) + 1


def test_an_undefined_symbol_is_named_once_with_the_file_that_defines_it(runner: Runner) -> None:
    runner.write("helper.c", "int helper(int v) { return v + 1; }\n")
    runner.write("user.c", "int helper(int v);\nint use(int v) { return helper(v) * 2; }\n")
    found = runner.json("""
        import json, sys, nativeimport
        links = []
        sys.addaudithook(lambda event, args: links.append(1)
                         if event == "subprocess.Popen" and "-Wl,--no-undefined" in list(args[1]) else None)
        nativeimport.install()
        try:
            import user
        except nativeimport.CompileError as exc:
            print(json.dumps([str(exc), len(links)]))
    """)
    message, links = found
    assert "undefined symbol when linking" in message and "helper (defined in helper.c" in message
    assert links == 1
    assert runner.entries() == []


@pytest.mark.parametrize(("settings", "expected"), [
    ('/* nativeimport:\nsources = ["x.c"]\nlibrarys = ["z"]\n*/\n', "bad.c:3: unknown nativeimport setting 'librarys'"),
    ('/* nativeimport:\ndefine = 3\n*/\n', "bad.c:2: nativeimport setting 'define' must be a list of strings"),
    ('// nativeimport:\n// flags = [\n', "bad.c:2: nativeimport settings are not valid TOML"),
])
def test_bad_settings_name_the_file_and_line(runner: Runner, settings: str, expected: str) -> None:
    runner.write("bad.c", settings + "int one(void) { return 1; }\n")
    assert expected in runner.import_error("bad", "SourceError")


def test_rust_and_zig_link_a_library_and_zig_compiles_a_c_source(runner: Runner) -> None:
    expected = __import__("zlib").crc32(b"abc")
    runner.write("zrust.rs", """
        /* nativeimport:
        libraries = ["z"]
        */
        extern "C" { fn crc32(crc: u64, buf: *const u8, len: u32) -> u64; }
        #[no_mangle]
        pub extern "C" fn checksum_abc() -> u64 { unsafe { crc32(0, b"abc".as_ptr(), 3) } }
    """)
    assert _value(runner, "zrust", "zrust.checksum_abc()") == expected
    if __import__("nativeimport.driver", fromlist=["x"]).ziglang_executable() is None:
        pytest.skip("the ziglang wheel is not installed (pip install nativeimport[zig])")
    runner.write("csrc/half.c", "double half(double v) { return v / FACTOR; }\n")
    runner.write("zmixed.zig", """
        // nativeimport:
        // sources = ["csrc/half.c"]
        // define = ["FACTOR=2.0"]
        // libraries = ["z"]
        extern fn half(v: f64) f64;
        extern fn crc32(crc: c_ulong, buf: [*]const u8, len: c_uint) c_ulong;
        export fn quarter(v: f64) f64 { return half(half(v)); }
        export fn checksum_abc() u64 { return crc32(0, "abc", 3); }
    """)
    assert _value(runner, "zmixed", "[zmixed.quarter(10.0), zmixed.checksum_abc()]") == [2.5, expected]
    runner.write("csrc/half.c", "double half(double v) { return v / (2 * FACTOR); }\n")
    assert _value(runner, "zmixed", "zmixed.quarter(16.0)") == 1.0


SLOW_CC = """#!/bin/sh
case "$*" in *slow.c*) sleep 2 ;; esac
exec gcc "$@"
"""


def _run_on_terminal(runner: Runner, code: str, env: dict[str, str]) -> str:
    """Run ``code`` with its stderr on a pseudo-terminal; what it wrote there."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    script = runner.project / "_on_terminal.py"
    script.write_text(code)
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, str(script)], cwd=runner.project, env={**runner.env, **env},
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the other side closed: the process ended
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=60) == 0, output.decode(errors="replace")
    finally:
        process.kill()
        os.close(controller)
    return output.decode(errors="replace")


def test_a_long_build_says_so_on_a_terminal_and_not_elsewhere(runner: Runner) -> None:
    compiler = runner.write("slowcc", SLOW_CC)
    compiler.chmod(0o755)
    runner.write("slow.c", "int slow(void) { return 5; }\n")
    code = "import nativeimport\nnativeimport.install()\nimport slow\nassert slow.slow() == 5\n"
    shown = _run_on_terminal(runner, code, {"CC": str(compiler)})
    assert "nativeimport: building slow.c with slowcc ..." in shown
    assert "nativeimport: built slow.c with slowcc in " in shown
    runner.write("slow.c", "int slow(void) { return 5; } /* edited */\n")
    quiet = runner.run(code, env={"CC": str(compiler)})
    assert "building" not in quiet.stderr and quiet.stderr == ""
    runner.write("slow.c", "int slow(void) { return 5; } /* edited again */\n")
    forced = runner.run(code, env={"CC": str(compiler), "NATIVEIMPORT_PROGRESS": "on"})
    assert "nativeimport: building slow.c with slowcc ...\n" in forced.stderr


def test_ctrl_c_stops_a_long_build_at_once_and_leaves_nothing(runner: Runner) -> None:
    import signal
    import subprocess
    import sys
    import time

    compiler = runner.write("slowcc", SLOW_CC.replace("sleep 2", "sleep 59.123"))
    compiler.chmod(0o755)
    runner.write("slow.c", "int slow(void) { return 5; }\n")
    script = runner.write("_interrupted.py", "import nativeimport\nnativeimport.install()\nimport slow\n")
    process = subprocess.Popen([sys.executable, str(script)], cwd=runner.project, stderr=subprocess.PIPE, text=True,
                               env={**runner.env, "CC": str(compiler), "NATIVEIMPORT_PROGRESS": "on"})
    assert process.stderr is not None
    try:
        assert "building slow.c" in process.stderr.readline()  # the build is under way
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=30)[1]
        took = time.monotonic() - interrupted
    finally:
        process.kill()
    assert process.returncode != 0 and "KeyboardInterrupt" in rest
    assert took < 20  # not the 60 s the compiler would have slept
    assert runner.entries() == []
    assert list((runner.cache / "tmp").iterdir()) == []
    leftover = subprocess.run(["pgrep", "-f", "sleep 59.123"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
