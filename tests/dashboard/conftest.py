"""A real dashboard process (the ``buster-jobs dashboard`` CLI) and a worker, against real
Postgres and RabbitMQ; an API key; the npm SDK and Chromium set up on first use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Env
from tests.helpers import free_port, wait_for

NODE_DIR = ROOT / ".stands" / "node"
SDK_VERSION = os.environ.get("BUSTER_TEST_TRIGGER_SDK", "4.8.3")
ARTIFACTS = ROOT / "test-artifacts"
TASK_MODULES = ["tests.tasks", "tests.dashboard.dash_tasks"]


@dataclass
class Server:
    url: str
    key: str
    env: Env
    proc: subprocess.Popen[bytes]

    def client(self, key: str | None = "default", **kw: Any) -> httpx.Client:
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.key if key == 'default' else key}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)


def start_worker(env: Env, threads: int = 8) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "runtime.cli",
        "worker",
        "--queues",
        f"{env.queue},{env.large_queue}",
        "-p",
        "1",
        "-t",
        str(threads),
        *TASK_MODULES,
    ]
    log = open(env.tmp / f"worker-{len(env.procs)}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env.environ(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    env.procs.append(proc)
    return proc


def start_dashboard(env: Env, **extra: Any) -> tuple[str, subprocess.Popen[bytes]]:
    # free_port() is a guess: between closing its probe socket and the server's bind, the
    # port can go to someone else (any outgoing connection takes an ephemeral port). A
    # server that lost that race says so in its log; it gets another port, up to 5 times.
    for _ in range(5):
        started = _start_dashboard(env, free_port(), **extra)
        if started is not None:
            return started
    raise AssertionError("dashboard could not bind a free port in 5 attempts")


def _start_dashboard(
    env: Env, port: int, **extra: Any
) -> tuple[str, subprocess.Popen[bytes]] | None:
    log_path = env.tmp / f"dashboard-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "dashboard", "--port", str(port)],
        env=env.environ(**extra),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env.procs.append(proc)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            if "address already in use" in log_path.read_text():
                return True  # lost the port: the caller retries
            raise AssertionError(f"dashboard exited: {log_path.read_text()}")
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, interval=0.1)
    return None if proc.poll() is not None else (url, proc)


@pytest.fixture
def server(pg_env: Env) -> Iterator[Server]:
    from dashboard.auth import create_key
    from runtime import get_runtime

    start_worker(pg_env)
    rt = get_runtime()

    def registered() -> bool:
        ids = {r["id"] for r in rt.store.task_definitions()}
        return {"t-echo", "dash-wait-token", "dash-scheduled"} <= ids

    wait_for(registered, timeout=30)
    _, key = create_key(rt.store, "tests")
    url, proc = start_dashboard(pg_env)
    yield Server(url, key, pg_env, proc)


# ---------------------------------------------------------------------- npm SDK
@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """``@trigger.dev/sdk`` from npm, installed once into ``.stands/node`` (a fresh machine
    installs it here; later runs reuse the cache)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are required (apt-get install nodejs npm, Node ≥ 18)")
    pkg = NODE_DIR / "node_modules" / "@trigger.dev" / "sdk" / "package.json"
    if pkg.exists() and json.loads(pkg.read_text()).get("version") == SDK_VERSION:
        return NODE_DIR
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / "package.json").write_text(
        json.dumps(
            {
                "name": "buster-sdk-stand",
                "private": True,
                "type": "module",
                "dependencies": {"@trigger.dev/sdk": SDK_VERSION},
            }
        )
    )
    res = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if res.returncode != 0:
        pytest.fail(f"npm install @trigger.dev/sdk@{SDK_VERSION} failed:\n{res.stderr[-3000:]}")
    return NODE_DIR


def run_node(node_dir: Path, script: Path, env: dict[str, str], timeout: float = 180) -> Any:
    target = node_dir / script.name  # ESM resolves packages from the script's folder
    shutil.copy(script, target)
    res = subprocess.run(
        ["node", str(target)],
        cwd=node_dir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if res.returncode != 0:
        raise AssertionError(f"node script failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- Chromium
def chromium_path() -> str:
    """Debian's chromium; installed with apt on a fresh machine, or a clear failure."""
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    if shutil.which("apt-get") and os.geteuid() == 0:
        res = subprocess.run(
            ["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900
        )
        if res.returncode == 0 and (path := shutil.which("chromium")):
            return path
        pytest.fail(f"apt-get install chromium failed:\n{res.stderr[-2000:]}")
    pytest.fail("Chromium is required: apt-get install -y chromium (Debian), then re-run")
