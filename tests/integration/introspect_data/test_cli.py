"""``buster-jobs datasources …`` in subprocesses, on a fresh embedded data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.connectors.conftest import PG_ADMIN_USER, PG_HOST, PG_PORT, unique

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
#: the Makefile's `run` target, minus the venv path
MAKE_RUN = ["datasources", "introspect", "sample", "--wait"]


def _cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BUSTER_")}
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        env={**base, "PYTHONPATH": str(ROOT), "BUSTER_DATA_DIR": str(data_dir), **env},
        cwd=data_dir.parent, capture_output=True, text=True, timeout=120,
    )


def test_make_run_introspects_the_sample_on_a_fresh_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    res = _cli(data, *MAKE_RUN)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "data source  sample (duckdb" in out
    assert "4 tables, 1 views, 25 columns" in out
    assert "sample_warehouse.main.orders  [table]" in out
    assert "primary key (order_id, line_number)" in out
    assert "(customer_id) → main.customers(customer_id)" in out
    assert (data / "sample_warehouse.duckdb").exists() and (data / "buster.db").exists()

    shown = _cli(data, "datasources", "show", "sample")
    assert shown.returncode == 0 and "monthly_revenue  [view]" in shown.stdout
    listed = _cli(data, "datasources", "list")
    assert listed.returncode == 0 and "sample" in listed.stdout and "4 tables" in listed.stdout


def test_datasources_commands_never_print_the_secret(tmp_path: Path, pg_db: str) -> None:
    data, name = tmp_path / "d", unique("cli")
    secret = "Cli-Secret-" + unique("x")
    add = _cli(data, "datasources", "add", name, "--type", "postgres", "--host", PG_HOST,
               "--port", str(PG_PORT), "--database", pg_db, "--user", PG_ADMIN_USER,
               "--password-env", "PGPW", PGPW=secret)
    assert add.returncode == 0, add.stderr
    assert '"password": "**********"' in add.stdout
    outputs = [add]
    outputs.append(test := _cli(data, "datasources", "test", name))
    assert test.returncode == 0 and test.stdout.startswith(f"ok: {name} (postgres")
    outputs.append(intro := _cli(data, "datasources", "introspect", name, "--wait",
                                 "--schema", "shop"))
    assert intro.returncode == 0, intro.stderr
    assert "shop.orders  [table]" in intro.stdout
    outputs.append(show := _cli(data, "datasources", "show", name, "--json"))
    assert show.returncode == 0 and '"primary_key"' in show.stdout
    outputs.append(_cli(data, "datasources", "list"))
    outputs.append(_cli(data, "runs", "list"))
    outputs.append(rm := _cli(data, "datasources", "remove", name))
    assert rm.returncode == 0
    outputs.append(gone := _cli(data, "datasources", "show", name))
    assert gone.returncode == 2 and "no data source" in gone.stderr
    for res in outputs:
        assert secret not in res.stdout and secret not in res.stderr


def test_add_reports_connection_and_field_errors_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "d"
    bad = _cli(data, "datasources", "add", "x", "--credentials",
               '{"type": "postgres", "host": "127.0.0.1", "port": 1, "database": "d", '
               '"user": "u", "password": "Hidden-Pw-123"}')
    assert bad.returncode == 2 and "[HOST_UNREACHABLE]" in bad.stderr
    assert "Hidden-Pw-123" not in bad.stderr + bad.stdout
    typo = _cli(data, "datasources", "add", "y", "--credentials",
                '{"type": "postgres", "host": "h", "port": 5432, "database": "d", '
                '"user": "u", "pasword": "Hidden-Pw-123"}')
    assert typo.returncode == 2 and "pasword: unknown field" in typo.stderr
    assert "Hidden-Pw-123" not in typo.stderr + typo.stdout
