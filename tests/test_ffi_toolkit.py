"""``mod.__ffi__``, the documented toolkit for what stays C-shaped: out-parameters, char * results, NULL, casts."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Runner

THINGS = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct thing thing;
struct thing { int value; char name[16]; };
typedef int64_t thing_id;

/* Opens a thing named `name` into *out; -1 when out is NULL. */
int open_thing(const char *name, thing **out) {
    if (out == NULL) return -1;
    thing *t = calloc(1, sizeof *t);
    strncpy(t->name, name, sizeof t->name - 1);
    t->value = (int)strlen(name);
    *out = t;
    return 0;
}
int thing_value(thing *t) { return t ? t->value : -1; }
char *thing_name(thing *t) { return t->name; }
void close_thing(thing *t) { free(t); }
int next_id(thing_id *id) { *id += 1; return (int)*id; }
void *maybe_alloc(int yes) { return yes ? malloc(1) : NULL; }
void release(void *p) { free(p); }

int twice(int v) { return 2 * v; }
double half(double v) { return v / 2; }
int64_t isum(const int32_t *xs, int n) { int64_t s = 0; for (int i = 0; i < n; i++) s += xs[i]; return s; }
size_t text_length(const char *text) { return text ? strlen(text) : 0; }
void fill(double *out, int n, double v) { for (int i = 0; i < n; i++) out[i] = v; }
"""

USE = """
import json, nativeimport
nativeimport.install()
import things
ffi = things.__ffi__
out = ffi.new("thing **")
status = things.open_thing("gizmo", out)
handle = out[0]
ident = ffi.new("thing_id *", 41)
block = things.maybe_alloc(1)
things.release(block)
doubles = ffi.new("double[3]")
things.fill(doubles, 3, 2.5)
result = {
    "open": [status, things.thing_value(handle), ffi.string(things.thing_name(handle)).decode()],
    "null_out": things.open_thing("x", None),
    "null_result": things.maybe_alloc(0),
    "block": block is not None,
    "next_id": [things.next_id(ident), ident[0]],
    "cdata_args": [things.twice(ffi.cast("int", 21)), things.half(ffi.cast("double", 5)),
                   things.isum(ffi.new("int32_t[]", [1, 2, 3]), 3), things.text_length(ffi.new("char[]", b"four")),
                   list(doubles), things.isum(ffi.NULL, 0), things.text_length(ffi.NULL)],
    "sizeof": ffi.sizeof("thing") == ffi.sizeof("struct thing"),
    "served": type(things.twice).__name__,
}
things.close_thing(handle)
try:
    things.open_thing("x", 5)
except TypeError as exc:
    result["wrong"] = str(exc)
print(json.dumps(result))
"""


@pytest.mark.parametrize("binder", ["auto", "cffi"])
def test_out_parameters_char_results_and_null_through_ffi(runner: Runner, binder: str) -> None:
    runner.write("things.c", THINGS)
    result = runner.json(USE, env={"NATIVEIMPORT_BINDER": binder})
    assert result["open"] == [0, len("gizmo"), "gizmo"]
    assert result["null_out"] == -1
    assert result["null_result"] is None
    assert result["block"] is True
    assert result["next_id"] == [42, 42]
    assert result["cdata_args"] == [42, 2.5, 6, 4, [2.5, 2.5, 2.5], 0, 0]
    assert result["sizeof"] is True
    assert result["wrong"].startswith("open_thing() argument 'out' (thing **):")
    assert result["served"] == ("function" if binder == "cffi" else "builtin_function_or_method")


DB = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DB_OK 0
#define DB_ERROR 1

typedef struct db_conn db_conn;
struct db_conn { char name[64]; int limit; };

int db_open(const char *path, db_conn **out) {
    if (out == NULL) return DB_ERROR;
    db_conn *conn = calloc(1, sizeof *conn);
    strncpy(conn->name, path, sizeof conn->name - 1);
    *out = conn;
    return DB_OK;
}
char *db_name(db_conn *conn) { return conn->name; }
void db_set_limit(db_conn *conn, int limit) { conn->limit = limit; }
int db_limit(const db_conn *conn) { return conn->limit; }
void db_close(db_conn *conn) { free(conn); }
"""


def readme_ffi_example() -> str:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### What stays C-shaped: `mod.__ffi__`", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("binder", ["auto", "cffi"])
def test_the_readme_ffi_example_runs_as_shown(runner: Runner, binder: str) -> None:
    runner.write("db.c", DB)
    example = readme_ffi_example().replace("db.db_close(conn)", "limit = db.db_limit(conn)\ndb.db_close(conn)")
    result = runner.json("import json, nativeimport\nnativeimport.install()\n" + example
                         + "\nprint(json.dumps([name.decode(), limit, len(ffi.buffer(ids))]))",
                         env={"NATIVEIMPORT_BINDER": binder})
    assert result == ["file.db", 7, 16 * 8]
