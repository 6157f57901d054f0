"""A C library's interface read without pyelftools (nativeimport._dwarf_lite) is the one pyelftools reads,
for every DWARF version GCC writes; what the direct reader does not read falls back to pyelftools."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nativeimport import _dwarf_lite, dwarf
from nativeimport.interface import Interface

RICH_C = r"""
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/** A point. */
typedef struct point { double x, y; } Point;
typedef struct { int32_t id; char name[16]; double m[2][3]; } Record;
union value { int64_t i; double d; unsigned char raw[8]; };
struct flags { unsigned ready : 1; unsigned mode : 3; int level : 4; uint8_t tail; };
struct nested { struct { int a, b; } inner; union { float f; uint32_t u; }; Point *where; };
struct node;  /* opaque: only ever behind a pointer */
typedef enum { LOW = -1, MID, HIGH = 1000 } Level;
enum shade { DARK = 0x10, LIGHT = 0x20 };
typedef double (*transform)(double, void *);
struct packed_one { char c; int32_t i; } __attribute__((packed));

/** The length. */
double length(Point p) { return p.x * p.x + p.y * p.y; }
void scale(Point *p, double k) { p->x *= k; p->y *= k; }
Record make(int32_t id) { Record r = {0}; r.id = id; return r; }
int64_t as_int(union value v) { return v.i; }
unsigned mode_of(const struct flags *f) { return f->mode; }
int inner_sum(struct nested n) { return n.inner.a + n.inner.b; }
struct node *node_new(void) { return NULL; }
void node_free(struct node *n) { (void)n; }
Level level_of(enum shade s) { return s == DARK ? LOW : HIGH; }
double apply(transform f, double x, void *data) { return f(x, data); }
int sum_ints(int count, ...) { va_list ap; va_start(ap, count); int s = 0;
    for (int i = 0; i < count; i++) s += va_arg(ap, int); va_end(ap); return s; }
int vsum(int count, va_list ap) { int s = 0; for (int i = 0; i < count; i++) s += va_arg(ap, int); return s; }
const char *greeting(void) { return "hello"; }
char packed_first(struct packed_one p) { return p.c; }
int32_t rows(const double m[][3], size_t n) { return (int32_t)(m[0][0] + n); }
static int hidden(int x) { return x; }
int uses_hidden(int x) { return hidden(x) + 1; }
__attribute__((cold, noinline)) static void complain(int n) { fprintf(stderr, "bad %d\n", n); }
/** Split by GCC into a hot and a cold part (DW_AT_ranges, no DW_AT_low_pc). */
int checked(int n) { if (n < 0) { complain(n); abort(); } return n * 2; }
"""


def _build(tmp_path: Path, *flags: str) -> tuple[Path, Path]:
    source = tmp_path / "rich.c"
    source.write_text(RICH_C, encoding="utf-8")
    library = tmp_path / f"librich{''.join(flags)}.so"
    subprocess.run(["gcc", *flags, "-O2", "-fno-ipa-icf", "-fPIC", "-shared", "-o", str(library), str(source)],
                   check=True)
    return library, source


def _with_pyelftools(library: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Interface:
    def unreadable(path: Path) -> None:
        raise _dwarf_lite.Unreadable("pyelftools asked for")

    with monkeypatch.context() as patch:
        patch.setattr(_dwarf_lite, "Library", unreadable)
        return dwarf.read_interface(library, exported_from=source)


@pytest.mark.parametrize("version", ["-gdwarf-5", "-gdwarf-4", "-gdwarf-3", "-gdwarf-2"])
def test_the_direct_reader_reads_what_pyelftools_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      version: str) -> None:
    library, source = _build(tmp_path, version)
    units = _dwarf_lite.Library(library).dwarf()  # read directly, not fallen back
    assert units.is_c_only()
    direct = dwarf.read_interface(library, exported_from=source)
    assert direct == _with_pyelftools(library, source, monkeypatch)
    names = {f.name for f in direct.functions}
    assert {"length", "make", "mode_of", "apply", "sum_ints", "checked", "rows"} <= names
    assert next(f for f in direct.functions if f.name == "checked").doc.startswith("Split by GCC")
    assert {s.name for s in direct.structs} >= {"point", "flags", "nested", "node"}


@pytest.mark.parametrize("flags", [("-g", "-gz"), ("-gsplit-dwarf",)])
def test_what_it_does_not_read_falls_back_to_pyelftools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      flags: tuple[str, ...]) -> None:
    library, source = _build(tmp_path, *flags)  # compressed sections; a skeleton unit without types
    with pytest.raises(_dwarf_lite.Unreadable):
        _dwarf_lite.Library(library).dwarf()
    if flags == ("-g", "-gz"):
        assert dwarf.read_interface(library, exported_from=source) == _with_pyelftools(library, source, monkeypatch)


def test_a_c_library_is_read_without_importing_pyelftools(tmp_path: Path) -> None:
    library, source = _build(tmp_path, "-g")
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from nativeimport.dwarf import read_interface
        interface = read_interface(Path({str(library)!r}), exported_from=Path({str(source)!r}))
        print(len(interface.functions), sorted(m for m in sys.modules if m.startswith("elftools")))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    count, imported = done.stdout.strip().split(" ", 1)
    assert int(count) > 10 and imported == "[]"
