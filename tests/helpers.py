"""What the integration tests share: running code in a fresh interpreter with a private cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional


class Runner:
    """Runs Python code in a fresh subprocess, in a project folder, against a private cache."""

    def __init__(self, project: Path, cache: Path) -> None:
        self.project = project
        self.cache = cache
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NATIVEIMPORT_")}
        self.env["NATIVEIMPORT_CACHE_DIR"] = str(cache)
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        # The wrapper compiled before an import returns, so a test sees the binder it asserts on;
        # tests of the background compile set NATIVEIMPORT_WRAPPER=background themselves.
        self.env["NATIVEIMPORT_WRAPPER"] = "wait"

    def write(self, name: str, text: str) -> Path:
        path = self.project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    def run(self, code: str, *, check: bool = True, env: Optional[dict[str, str]] = None,
            cwd: Optional[Path] = None) -> subprocess.CompletedProcess[str]:
        """Run ``code`` (dedented) with the project folder as the script's folder."""
        script = (cwd or self.project) / "_test_script.py"
        script.write_text(textwrap.dedent(code), encoding="utf-8")
        done = subprocess.run([sys.executable, str(script)], cwd=cwd or self.project, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=300, check=False)
        script.unlink()
        if check and done.returncode != 0:
            raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def json(self, code: str, **kwargs: Any) -> Any:
        """Run ``code``, which must print one JSON document as its last line."""
        done = self.run(code, **kwargs)
        return json.loads(done.stdout.strip().splitlines()[-1])

    def import_error(self, module: str, error: str, *, env: Optional[dict[str, str]] = None) -> str:
        """Import ``module`` with the hook installed; the message of the ``nativeimport.<error>`` it must raise."""
        message = self.json(f"""
            import json, nativeimport
            nativeimport.install()
            try:
                import {module}
            except nativeimport.{error} as exc:
                print(json.dumps(str(exc)))
            else:
                print(json.dumps(None))
        """, env=env)
        assert message is not None, f"importing {module} raised no {error}"
        return str(message)

    def cli(self, *args: str, check: bool = True, input: Optional[str] = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "nativeimport", *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True, timeout=300, check=False, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"nativeimport {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def entries(self) -> list[Path]:
        directory = self.cache / "entries"
        return sorted(directory.iterdir()) if directory.is_dir() else []


def make_environment(python: str, target: Path, wheel: Path, extras: str = "") -> Path:
    """A virtual environment of ``python`` at ``target`` with nativeimport's ``wheel`` installed; its interpreter."""
    subprocess.run([python, "-m", "venv", str(target)], check=True, capture_output=True)
    interpreter = target / "bin" / "python"
    subprocess.run([str(interpreter), "-m", "pip", "install", "-q", f"{wheel}{extras}"], check=True,
                   capture_output=True)
    return interpreter
