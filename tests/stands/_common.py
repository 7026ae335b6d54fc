"""What every stand shares: the cache folder, cached venvs, starting and stopping by PID."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("BUSTER_STANDS_DIR", ROOT / ".stands"))
RUN = CACHE / "run"
HERE = Path(__file__).resolve().parent


class StandError(RuntimeError):
    """A stand could not be installed or started. Tests fail on it; they never skip."""


@dataclass
class Handle:
    name: str
    host: str
    port: int
    pid: int
    extra: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        RUN.mkdir(parents=True, exist_ok=True)
        (RUN / f"{self.name}.json").write_text(json.dumps(asdict(self)))


def run(argv: list[str], **kw: Any) -> None:
    """Run an install step; raise StandError with its output when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise StandError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def ensure_venv(name: str, python: str, requirements: list[str]) -> Path:
    """A venv under .stands/venvs/<name> with ``requirements``; reused while they match."""
    venv = CACHE / "venvs" / name
    marker = venv / ".buster-requirements"
    digest = hashlib.sha256(json.dumps([python, requirements]).encode()).hexdigest()
    if marker.exists() and marker.read_text() == digest:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    run([python, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", *requirements])
    marker.write_text(digest)
    return venv


def base_python() -> str:
    """The interpreter behind the current venv (a venv made from a venv nests badly)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StandError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    _kill(proc.pid)
    raise StandError(f"server did not listen on {port} within {timeout_s}s:\n{_tail(log)}")


def start_process(
    name: str, argv: list[str], port: int, *, env: dict[str, str] | None = None,
    cwd: Path | None = None, timeout_s: float = 60.0, extra: dict[str, Any] | None = None,
) -> Handle:
    """Start a server in its own process group, wait for its port, record its PID."""
    RUN.mkdir(parents=True, exist_ok=True)
    log = RUN / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    wait_port(port, proc, log, timeout_s)
    handle = Handle(name, "127.0.0.1", port, proc.pid, extra or {})
    handle.save()
    return handle


def stop(handle: Handle) -> None:
    """Stop the server by its recorded PID (its process group), never by name."""
    _kill(handle.pid)
    (RUN / f"{handle.name}.json").unlink(missing_ok=True)


def load(name: str) -> Handle | None:
    path = RUN / f"{name}.json"
    if not path.exists():
        return None
    return Handle(**json.loads(path.read_text()))


def _kill(pid: int, grace_s: float = 2.0) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    if pgid != pid:  # not the group leader we started: the PID was reused, leave it alone
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    os.killpg(pgid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another process): fall back to signal 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:] if log.exists() else "(no log)"
