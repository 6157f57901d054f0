"""Unit tests for the pure parts of shipping: wheel tags, which files are a package's native modules, versions."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from nativeimport._package import inside_native_project, native_modules, stub_path
from nativeimport._registry import discover_drivers
from nativeimport._shipped import compatible
from nativeimport._wheel import Tags, rewrite_wheel, wheel_tags


def test_a_compressed_tag_set_expands_to_every_combination() -> None:
    tags = Tags.parse("cp311.py3-cp311.none-linux_x86_64")
    assert str(tags) == "cp311.py3-cp311.none-linux_x86_64"
    assert tags.expanded() == ["cp311-cp311-linux_x86_64", "cp311-none-linux_x86_64", "py3-cp311-linux_x86_64",
                               "py3-none-linux_x86_64"]
    assert not tags.pure
    assert wheel_tags("name-1.0-1build-py3-none-any.whl").pure
    assert str(wheel_tags("my_pkg-2.0-py2.py3-none-any.whl")) == "py2.py3-none-any"


def test_rewriting_a_wheel_adds_removes_retags_and_records(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("demo/__init__.py", "")
        archive.writestr("demo/fast.c", "int f(void) { return 1; }\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\n")
        archive.writestr("demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("demo-1.0.dist-info/RECORD", "")
    result = rewrite_wheel(wheel, {"demo/fast.py": b"x = 1\n"}, Tags(["py3"], ["none"], ["linux_x86_64"]),
                           purelib=False, removed=lambda name: name.endswith(".c"))
    assert result.name == "demo-1.0-py3-none-linux_x86_64.whl"
    assert not wheel.exists()
    with zipfile.ZipFile(result) as archive:
        names = archive.namelist()
        assert "demo/fast.c" not in names and "demo/fast.py" in names
        assert archive.read("demo-1.0.dist-info/WHEEL").decode().split("\n")[1:] == [
            "Root-Is-Purelib: false", "Tag: py3-none-linux_x86_64", "", ""]
        record = archive.read("demo-1.0.dist-info/RECORD").decode().splitlines()
        assert sorted(row.split(",")[0] for row in record) == sorted(names)
        assert "demo-1.0.dist-info/RECORD,," in record


def test_a_file_without_a_dist_info_is_not_a_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("x/__init__.py", "")
    with pytest.raises(ValueError, match="not a wheel"):
        rewrite_wheel(wheel, {}, Tags(["py3"], ["none"], ["any"]), purelib=True)


def test_native_modules_follow_the_finders_rules(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "crate" / "src").mkdir(parents=True)
    (package / "crate" / "Cargo.toml").write_text("[package]\nname = 'c'\n")
    (package / "crate" / "src" / "lib.rs").write_text("")
    for name in ("__init__.py", "fast.c", "both.c", "both.py", "multi.c", "multi.rs", "notes.txt", "__init__.c",
                 "bad-name.c"):
        (package / name).write_text("")
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub.c").write_text("")  # Python's regular package wins
    registry = discover_drivers({"cache_dir": str(tmp_path / "cache")})
    found = {m.name: Path(m.source).name for m in native_modules(str(package), registry)}
    assert found == {"crate": "crate", "fast": "fast.c", "multi": "multi.c"}
    assert inside_native_project(str(package / "crate" / "src"), str(tmp_path), registry)
    assert not inside_native_project(str(package), str(tmp_path), registry)


def test_stubs_go_beside_the_source() -> None:
    assert stub_path("/p/pkg/fast.c") == "/p/pkg/fast.pyi"
    assert stub_path(str(Path(__file__).parent)) == str(Path(__file__).parent) + ".pyi"


def test_bindings_need_a_runtime_of_the_same_minor_version() -> None:
    assert compatible("0.1.0", "0.1.7")
    assert not compatible("0.1.0", "0.2.0")
    assert not compatible("1.4.2", "2.4.2")
