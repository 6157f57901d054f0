"""Rust's opaque-handle pattern: a pointer to a type without #[repr(C)] is a handle, in both binders."""

from __future__ import annotations

import shutil

import pytest
from helpers import Runner

if shutil.which("rustc") is None:
    pytest.skip("rustc is not installed (https://rustup.rs)", allow_module_level=True)

ZIPCODES = r"""
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

/// Rust lays this out as it likes: only its address crosses into C.
pub struct ZipCodeDatabase {
    names: HashMap<u32, CString>,
    lookups: Vec<u64>,
}

pub struct Cursor { position: usize }

#[repr(C)]
pub struct Stats { pub entries: u32, pub lookups: u64 }

#[no_mangle]
pub extern "C" fn zip_code_database_new() -> *mut ZipCodeDatabase {
    Box::into_raw(Box::new(ZipCodeDatabase { names: HashMap::new(), lookups: Vec::new() }))
}

/// Never a database: NULL, which Python sees as None.
#[no_mangle]
pub extern "C" fn zip_code_database_none() -> *mut ZipCodeDatabase { std::ptr::null_mut() }

#[no_mangle]
pub unsafe extern "C" fn zip_code_database_add(db: *mut ZipCodeDatabase, code: u32, name: *const c_char) -> c_int {
    if db.is_null() || name.is_null() { return -1; }
    let db = &mut *db;
    db.names.insert(code, CStr::from_ptr(name).to_owned());
    db.names.len() as c_int
}

#[no_mangle]
pub unsafe extern "C" fn zip_code_database_lookup(db: *mut ZipCodeDatabase, code: u32) -> *const c_char {
    let db = &mut *db;
    db.lookups.push(code as u64);
    db.names.get(&code).map_or(std::ptr::null(), |name| name.as_ptr())
}

#[no_mangle]
pub extern "C" fn zip_code_database_stats(db: Option<&ZipCodeDatabase>) -> Stats {
    db.map_or(Stats { entries: 0, lookups: 0 },
              |db| Stats { entries: db.names.len() as u32, lookups: db.lookups.len() as u64 })
}

#[no_mangle]
pub unsafe extern "C" fn zip_code_database_free(db: *mut ZipCodeDatabase) {
    if !db.is_null() { drop(Box::from_raw(db)); }
}

#[no_mangle]
pub extern "C" fn cursor_new() -> Option<Box<Cursor>> { Some(Box::new(Cursor { position: 7 })) }

#[no_mangle]
pub extern "C" fn cursor_position(cursor: &Cursor) -> usize { cursor.position }

#[no_mangle]
pub extern "C" fn cursor_free(_cursor: Option<Box<Cursor>>) {}
"""

USE = """
import json, warnings, nativeimport
warnings.simplefilter("error")  # nothing is left out
nativeimport.install()
import zipcodes as z
db = z.zip_code_database_new()
added = [z.zip_code_database_add(db, 10115, "Berlin"), z.zip_code_database_add(db, 75001, b"Paris")]
found = [z.zip_code_database_lookup(db, 75001), z.zip_code_database_lookup(db, 1)]
stats = z.zip_code_database_stats(db)
cursor = z.cursor_new()
out = {
    "added": added, "found": found, "stats": [stats.entries, stats.lookups],
    "none_stats": z.zip_code_database_stats(None).entries,
    "null": z.zip_code_database_none(), "add_to_none": z.zip_code_database_add(None, 1, "x"),
    "cursor": z.cursor_position(cursor),
    "doc": z.zip_code_database_new.__doc__.splitlines()[0],
}
errors = []
for call in (lambda: z.zip_code_database_add(cursor, 1, "x"), lambda: z.cursor_position(db),
             lambda: z.zip_code_database_add(3, 1, "x")):
    try:
        call()
        errors.append("no error")
    except TypeError as exc:
        errors.append(str(exc))
out["errors"] = errors
z.cursor_free(cursor)
z.zip_code_database_free(db)
print(json.dumps(out))
"""


@pytest.mark.parametrize("binder", ["auto", "cffi"])
def test_a_pointer_to_a_plain_rust_struct_is_a_handle(runner: Runner, binder: str) -> None:
    runner.write("zipcodes.rs", ZIPCODES)
    out = runner.json(USE, env={"NATIVEIMPORT_BINDER": binder})
    assert out["added"] == [1, 2]
    assert out["found"] == ["Paris", None]
    assert out["stats"] == [2, 2]
    assert out["none_stats"] == 0
    assert out["null"] is None and out["add_to_none"] == -1
    assert out["cursor"] == 7
    assert out["doc"] == "ZipCodeDatabase *zip_code_database_new(void)"
    wrong_handle, wrong_cursor, not_a_handle = out["errors"]
    assert wrong_handle.startswith("zip_code_database_add() argument 'db' (ZipCodeDatabase *): expected a "
                                   "'struct ZipCodeDatabase *' handle")
    assert "struct Cursor *" in wrong_handle
    assert wrong_cursor.startswith("cursor_position() argument 'cursor' (const Cursor *): expected a")
    assert not_a_handle.endswith("not int")


def test_show_lists_handles_as_opaque(runner: Runner) -> None:
    runner.write("zipcodes.rs", ZIPCODES)
    shown = runner.cli("show", "zipcodes.rs").stdout
    assert '"ZipCodeDatabase *zip_code_database_new(void)"' in shown
    assert "NonNull" not in shown and "HashMap" not in shown
    assert "class Stats:" in shown
