"""BigQuery stand: local-bigquery 0.3.2 (Python 3.13, DuckDB 1.5.5) in its own venv.

The emulator downloads DuckDB extensions at start, which fails offline; the extensions come
instead from the ``duckdb-extension-*`` wheels on PyPI and are registered once, under a
private HOME that the server then uses. Connect with ``AnonymousCredentials`` and
``api_endpoint="http://127.0.0.1:PORT"``, project ``test-project``.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers import free_port
from tests.stands._common import (
    CACHE,
    Handle,
    StandError,
    ensure_venv,
    run,
    start_process,
    stop,
)

NAME = "bigquery"
DUCKDB = "1.5.5"
EXTENSIONS = ["icu", "ducklake", "spatial"]
REQUIREMENTS = ["local-bigquery==0.3.2", f"duckdb=={DUCKDB}"] + [
    f"duckdb-extension-{e}=={DUCKDB}" for e in EXTENSIONS
]
PROJECT = "test-project"
HOME = CACHE / NAME / "home"

__all__ = ["ensure_installed", "start", "stop"]


def python313() -> str:
    """Python 3.13 from pyenv (on the image) or the PATH."""
    candidates = []
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(glob.glob(f"{root}/versions/3.13*/bin/python3.13"), reverse=True)
    except OSError:
        pass
    candidates += [p for p in [shutil.which("python3.13")] if p]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    raise StandError("the BigQuery stand needs Python 3.13 (pyenv install 3.13)")


def ensure_installed() -> Path:
    venv = ensure_venv(NAME, python313(), REQUIREMENTS)
    marker = HOME / ".extensions-registered"
    if not marker.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        paths = glob.glob(str(venv / "lib" / "python3.13" / "site-packages" /
                              "duckdb_extension_*" / "extensions" / "*" / "*.duckdb_extension"))
        if len(paths) != len(EXTENSIONS):
            raise StandError(f"expected {len(EXTENSIONS)} DuckDB extension files, found {paths}")
        script = "import duckdb, sys\nc = duckdb.connect()\n" + "".join(
            f"c.execute(\"INSTALL '{p}'\")\n" for p in paths
        )
        run([str(venv / "bin" / "python"), "-c", script], env={**os.environ, "HOME": str(HOME)})
        marker.write_text("ok")
    return venv


def start(port: int | None = None) -> Handle:
    venv = ensure_installed()
    port = port or free_port()
    grpc_port = free_port()
    data = CACHE / NAME / "data"
    shutil.rmtree(data, ignore_errors=True)  # every start begins with an empty project
    data.mkdir(parents=True)
    argv = [str(venv / "bin" / "local-bigquery"), "serve", "--host", "127.0.0.1",
            "--port", str(port), "--grpc-port", str(grpc_port), "--project", PROJECT,
            "--data-dir", str(data)]
    return start_process(NAME, argv, port, env={"HOME": str(HOME)},
                         extra={"project": PROJECT, "grpc_port": grpc_port})
