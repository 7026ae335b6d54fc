"""The container's entrypoints, without Docker: the project installed into a clean venv the
way the Dockerfile's build stage installs it (tests/k8s/image.py), then every process
started with the command line and environment the rendered prod manifests give it —
Secrets resolved to this machine's Postgres and RabbitMQ — and its probes run as the
kubelet would run them. Queue names are made unique per run; nothing else is changed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, wait_for
from tests.k8s.image import build_venv
from tests.k8s.manifests import by_name, container_env, flag, render

pytestmark = pytest.mark.integration

#: a fixed test key; the manifests take theirs from the Secret
ENCRYPTION_KEY = "kCCJ9k0vAO3dFeMj6nCS0jzLCYyoXVmK8o0dyRu1Pzc="


class Stand:
    """Processes started as the manifests start them, in the image's venv."""

    def __init__(self, venv: Path, tmp: Path, secrets: dict[str, str], queues: dict[str, str]):
        self.venv, self.tmp, self.secrets, self.queues = venv, tmp, secrets, queues
        self.docs = render("prod")
        self.procs: list[subprocess.Popen[bytes]] = []

    def container(self, kind: str, name: str) -> dict[str, Any]:
        return dict(by_name(self.docs, kind, name)["spec"]["template"]["spec"]["containers"][0])

    def environ(self, container: dict[str, Any], health: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        env.update(container_env(self.docs, container, self.secrets))
        env.update(
            PATH=f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            HOME=str(self.tmp),
            # /tmp of the pod (an emptyDir) is this test's folder; timings made small
            BUSTER_DATA_DIR=str(self.tmp / "data"),
            BUSTER_HEALTH_DIR=str(self.tmp / f"health-{health}"),
            BUSTER_WORKER_PRESENCE_SECONDS="0.3",
            BUSTER_HEARTBEAT_SECONDS="0.3",
            BUSTER_TIMER_INTERVAL_SECONDS="0.05",
            BUSTER_DEFAULT_QUEUE=self.queues["default"],
            BUSTER_LARGE_QUEUE=self.queues["large"],
        )
        return env

    def args(self, container: dict[str, Any]) -> list[str]:
        # the image's ENTRYPOINT is `tini -- buster-jobs`; tini only forwards signals
        return ["buster-jobs", *[self.queues.get(a, a) for a in container["args"]]]

    def start(self, kind: str, name: str, **replace: str) -> tuple[subprocess.Popen[bytes], Any]:
        c = self.container(kind, name)
        argv = [replace.get(a, a) for a in self.args(c)]
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            argv,
            env=self.environ(c, name),
            cwd=self.tmp,  # the image's WORKDIR: nothing imported from the source tree
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the "container"
        )
        self.procs.append(proc)
        return proc, c

    def run(self, container: dict[str, Any], health: str, *args: str, timeout: float = 60) -> Any:
        return subprocess.run(
            list(args),
            env=self.environ(container, health),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def probe(self, container: dict[str, Any], health: str, which: str) -> Any:
        p = container[which]
        return self.run(container, health, *p["exec"]["command"], timeout=p["timeoutSeconds"])

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


@pytest.fixture(scope="module")
def image_venv() -> Path:
    return build_venv()


@pytest.fixture(scope="module")
def stand(
    image_venv: Path, pg_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stand]:
    tag = uuid.uuid4().hex[:8]
    queues = {"default": f"k8s{tag}-default", "large": f"k8s{tag}-large"}
    secrets = {
        "database-url": pg_url,
        "broker-url": amqp_url,
        "encryption-key": ENCRYPTION_KEY,
        "anthropic-api-key": "not-used-by-these-tests",
        "rabbitmq-management-url": "",
    }
    s = Stand(image_venv, tmp_path_factory.mktemp("pod"), secrets, queues)
    yield s
    s.stop_all()
    _delete_queues(amqp_url, list(queues.values()))


def _delete_queues(url: str, names: list[str]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for q in names:
        for suffix in ("", ".DQ", ".XQ"):
            ch.queue_delete(q + suffix)
    conn.close()


@pytest.fixture(scope="module")
def migrated(stand: Stand) -> Stand:
    job = stand.container("Job", "buster-jobs-migrate")
    res = stand.run(job, "migrate", *stand.args(job), timeout=120)
    assert res.returncode == 0, res.stderr
    assert "latest schema" in res.stdout
    return stand


def _until_probe_passes(stand: Stand, c: dict[str, Any], health: str, proc: Any) -> None:
    def passes() -> bool:
        assert proc.poll() is None, f"{health} exited:\n{stand.log(health)}"
        return bool(stand.probe(c, health, "startupProbe").returncode == 0)

    wait_for(passes, timeout=90, interval=0.5)


def test_installed_image_runs_from_its_venv_not_the_source_tree(stand: Stand):
    c = stand.container("Job", "buster-jobs-migrate")
    res = stand.run(c, "x", "python", "-c", "import runtime, actors; print(runtime.__file__)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(str(stand.venv))


def test_migrate_job_is_idempotent(migrated: Stand):
    job = migrated.container("Job", "buster-jobs-migrate")
    res = migrated.run(job, "migrate", *migrated.args(job), timeout=120)
    assert res.returncode == 0, res.stderr


def test_worker_runs_a_task_and_its_probes_follow_its_life(migrated: Stand):
    s = migrated
    proc, c = s.start("Deployment", "worker-default")
    _until_probe_passes(s, c, "worker-default", proc)
    assert s.probe(c, "worker-default", "livenessProbe").returncode == 0
    ready = s.probe(c, "worker-default", "readinessProbe")
    assert ready.returncode == 0, ready.stderr
    checked = s.run(
        c,
        "worker-default",
        "buster-jobs",
        "healthcheck",
        "worker",
        "--db",
        "--processes",
        flag(c["args"], "-p") or "1",
    )
    assert checked.returncode == 0, checked.stderr  # this pod's rows in the workers table

    res = s.run(
        c,
        "worker-default",
        "buster-jobs",
        "trigger",
        "demo-sum",
        "--payload",
        json.dumps({"numbers": [1, 2, 3.5]}),
        "--wait",
        "--timeout",
        "60",
        timeout=90,
    )
    assert res.returncode == 0, res.stderr + s.log("worker-default")
    assert json.loads(res.stdout.split("\n", 1)[1])["status"] == "COMPLETED"

    # one worker process dies (OOM-killed, say): the pod is no longer live
    beats = sorted((s.tmp / "health-worker-default").glob("worker-*.json"))
    assert len(beats) == int(flag(c["args"], "-p") or 1)
    os.kill(json.loads(beats[0].read_text())["pid"], signal.SIGKILL)
    dead = s.probe(c, "worker-default", "livenessProbe")
    assert dead.returncode != 0 and "process is gone" in dead.stderr
    # the whole container is killed: still not live, and nothing pretends otherwise
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert s.probe(c, "worker-default", "livenessProbe").returncode != 0
    assert s.probe(c, "worker-default", "readinessProbe").returncode != 0


def test_worker_exits_cleanly_on_sigterm_within_its_grace_period(migrated: Stand):
    s = migrated
    proc, c = s.start("Deployment", "worker-large")
    _until_probe_passes(s, c, "worker-large", proc)
    grace = by_name(s.docs, "Deployment", "worker-large")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # what tini passes on from the kubelet
    assert proc.wait(timeout=grace) == 0, s.log("worker-large")
    assert time.monotonic() - started < grace
    assert list((s.tmp / "health-worker-large").glob("worker-*.json")) == []
    assert s.probe(c, "worker-large", "livenessProbe").returncode != 0


def test_scheduler_probes_pass_while_it_runs_and_it_stops_on_sigterm(migrated: Stand):
    s = migrated
    proc, c = s.start("Deployment", "scheduler")
    _until_probe_passes(s, c, "scheduler", proc)
    assert s.probe(c, "scheduler", "livenessProbe").returncode == 0
    assert s.probe(c, "scheduler", "readinessProbe").returncode == 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, s.log("scheduler")
    assert s.probe(c, "scheduler", "livenessProbe").returncode != 0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status), r.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")
    except OSError:
        return 0, ""


def test_dashboard_serves_its_probe_and_metrics_paths(migrated: Stand):
    s = migrated
    c = s.container("Deployment", "dashboard")
    helped = s.run(c, "dashboard", "buster-jobs", "dashboard", "--help")
    assert helped.returncode == 0, helped.stderr
    port = str(free_port())
    proc, c = s.start("Deployment", "dashboard", **{"8000": port, "0.0.0.0": "127.0.0.1"})
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, s.log("dashboard")
        return _get(base + c["startupProbe"]["httpGet"]["path"])[0] == 200

    wait_for(up, timeout=60, interval=0.3)
    for probe in ("livenessProbe", "readinessProbe"):
        assert _get(base + c[probe]["httpGet"]["path"])[0] == 200, probe
    status, body = _get(base + "/metrics")
    assert status == 200 and "buster" in body
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM), s.log("dashboard")
