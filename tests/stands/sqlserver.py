"""SQL Server stand: pysqlbridge 2.1.3 (SQL Server's wire protocol over CSV files), reached
with pyodbc through FreeTDS.

pysqlbridge is read-only: the tables are CSV files written here at start (``TABLES``). It
has no ``?`` parameters (no sp_prepexec), no primary/foreign keys, no views, no comments, no
sys.partitions; see README.md.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.helpers import free_port
from tests.stands._common import (
    CACHE,
    Handle,
    StandError,
    base_python,
    ensure_venv,
    run,
    start_process,
    stop,
)

NAME = "sqlserver"
REQUIREMENTS = ["pysqlbridge==2.1.3"]
APT_PACKAGES = ["unixodbc", "unixodbc-dev", "tdsodbc", "freetds-bin"]
USER, PASSWORD = "buster", "bridge-pass-91f2"
DRIVER = "FreeTDS"
TABLES = {
    "customers": "id,name,signup,score,active\n"
                 "1,Ada,2024-01-02,99.5,true\n2,Grace,2024-02-03,87.25,false\n"
                 "3,Edsger,2024-03-04,,true\n",
    "orders": "id,customer_id,amount,note\n1,1,10.5,first\n2,1,200,second\n3,2,5,\n"
              "4,3,42,fourth\n5,3,7.25,fifth\n",
}

__all__ = ["ensure_installed", "start", "stop"]


def ensure_driver() -> None:
    """FreeTDS's ODBC driver, registered under the name ``FreeTDS``."""
    if not _driver_registered():
        if shutil.which("apt-get") is None:
            raise StandError("FreeTDS ODBC driver missing and apt-get unavailable")
        try:
            run(["apt-get", "install", "-y", "-q", *APT_PACKAGES])
        except StandError:
            run(["apt-get", "update", "-q"])
            run(["apt-get", "install", "-y", "-q", *APT_PACKAGES])
    if not _driver_registered():
        ini = "[FreeTDS]\nDescription=FreeTDS\nDriver=libtdsodbc.so\n"
        with open("/etc/odbcinst.ini", "a") as f:
            f.write(ini)


def _driver_registered() -> bool:
    if shutil.which("odbcinst") is None:
        return False
    proc = subprocess.run(["odbcinst", "-q", "-d", "-n", DRIVER], capture_output=True)
    return proc.returncode == 0


def ensure_installed() -> None:
    ensure_driver()
    ensure_venv(NAME, base_python(), REQUIREMENTS)


def start(port: int | None = None) -> Handle:
    ensure_driver()
    venv = ensure_venv(NAME, base_python(), REQUIREMENTS)
    port = port or free_port()
    data = CACHE / NAME / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    for name, text in TABLES.items():
        (data / f"{name}.csv").write_text(text)
    config = {"logins": [{"user": USER, "password": PASSWORD}],
              "tables": [{"name": n, "csv": f"{n}.csv"} for n in TABLES]}
    (data / "bridge.json").write_text(json.dumps(config))
    argv = [str(venv / "bin" / "pysqlbridge"), "--config", str(data / "bridge.json"),
            "--host", "127.0.0.1", "--port", str(port)]
    return start_process(NAME, argv, port, cwd=data, env={"HOME": str(data)},
                         extra={"user": USER, "password": PASSWORD, "driver": DRIVER})
