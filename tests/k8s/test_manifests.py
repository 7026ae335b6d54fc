"""The Kubernetes manifests, rendered offline: both overlays build, every object validates
against the Kubernetes schemas (KEDA's against their CRDs), and the invariants ops rely on
hold — resources, probes, non-root, a worker Deployment and ScaledObject per queue the code
declares, a grace period that covers the shutdown timeout, no secret value inline."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.machines import PRESETS
from runtime.settings import Settings
from tests.k8s import keda_crd
from tests.k8s.manifests import (
    KEDA_KINDS,
    OVERLAYS,
    ROOT,
    SECRET_KEYS,
    SECRET_NAME,
    by_name,
    container_env,
    ensure_kubernetes_validate,
    flag,
    is_worker,
    of_kind,
    pod_templates,
    quantity,
    render,
    render_text,
    worker_queues,
)

#: seconds a worker needs after its shutdown timeout: the interrupt grace (2 s), Dramatiq's
#: worker stop (2 s), the final flush and presence removal — with room to spare
SHUTDOWN_MARGIN = 15
#: oldest Kubernetes the manifests must be valid for, and the newest schemas we have
K8S_VERSIONS = ("1.31.0", "latest")


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def docs(overlay: str) -> list[dict[str, Any]]:
    return render(overlay)


def _workers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in of_kind(docs, "Deployment") if is_worker(d)]


# ------------------------------------------------------------------------- rendering
def test_overlay_renders_every_component(docs: list[dict[str, Any]]):
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in [
        ("Deployment", "worker-default"),
        ("Deployment", "worker-large"),
        ("Deployment", "scheduler"),
        ("Deployment", "dashboard"),
        ("Service", "dashboard"),
        ("Ingress", "dashboard"),
        ("Job", "buster-jobs-migrate"),
        ("TriggerAuthentication", "buster-jobs-rabbitmq"),
        ("ScaledObject", "worker-default"),
        ("ScaledObject", "worker-large"),
    ]:
        assert expected in names
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces  # everything lands in one place


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    docs: list[dict[str, Any]], version: str
):
    kv = ensure_kubernetes_validate()
    version = kv.latest_version() if version == "latest" else version
    problems = []
    for d in docs:
        if d["kind"] in KEDA_KINDS:
            continue  # CRDs: test_keda_objects_satisfy_their_crds
        try:
            kv.validate(d, version, strict=True)  # strict: unknown fields are errors too
        except kv.ValidationError as exc:
            problems.append(
                f"{d['kind']}/{d['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )
    assert problems == []


def test_the_schema_check_has_teeth():
    kv = ensure_kubernetes_validate()
    dep = copy.deepcopy(by_name(render("prod"), "Deployment", "worker-default"))
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requets"] = {"cpu": "1"}
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, kv.latest_version(), strict=True)


def test_only_keda_kinds_lack_a_kubernetes_schema(docs: list[dict[str, Any]]):
    kv = ensure_kubernetes_validate()
    unknown = set()
    for d in docs:
        try:
            kv.validate(d, kv.latest_version(), strict=True)
        except kv.SchemaNotFoundError:
            unknown.add(d["kind"])
        except kv.ValidationError:
            pass
    assert unknown == KEDA_KINDS


# ------------------------------------------------------------------------------ KEDA
def test_keda_objects_satisfy_their_crds(docs: list[dict[str, Any]]):
    keda = [d for d in docs if d["kind"] in KEDA_KINDS]
    assert len(keda) >= 3
    assert {d["metadata"]["name"]: keda_crd.errors(d) for d in keda} == {
        d["metadata"]["name"]: [] for d in keda
    }


def test_the_crd_check_rejects_what_keda_would():
    so = by_name(render("prod"), "ScaledObject", "worker-default")
    broken = copy.deepcopy(so)
    del broken["spec"]["scaleTargetRef"]
    assert any("scaleTargetRef" in e for e in keda_crd.errors(broken))
    broken = copy.deepcopy(so)
    broken["spec"]["triggers"][0]["metadata"]["value"] = 16  # map[string]string
    assert keda_crd.errors(broken)
    broken = copy.deepcopy(so)
    del broken["spec"]["triggers"][0]["type"]
    assert keda_crd.errors(broken)
    ta = copy.deepcopy(by_name(render("prod"), "TriggerAuthentication", "buster-jobs-rabbitmq"))
    del ta["spec"]["secretTargetRef"][0]["key"]
    assert keda_crd.errors(ta)


def test_scalers_count_unacked_messages_on_the_main_queue(docs: list[dict[str, Any]]):
    auths = {a["metadata"]["name"]: a for a in of_kind(docs, "TriggerAuthentication")}
    for so in of_kind(docs, "ScaledObject"):
        (trigger,) = so["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "rabbitmq"
        assert meta["protocol"] == "http"  # the management API counts unacked messages
        assert meta["mode"] == "QueueLength"
        assert not re.search(r"\.(DQ|XQ)$", meta["queueName"])
        assert not {"host", "hostFromEnv", "username", "password"} & set(meta)
        auth = auths[trigger["authenticationRef"]["name"]]
        params = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
        assert params["host"]["name"] == SECRET_NAME
        assert params["host"]["key"] in SECRET_KEYS
        spec = so["spec"]
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["fallback"]["replicas"] <= spec["maxReplicaCount"]
        assert spec["cooldownPeriod"] >= 60


# -------------------------------------------------------------------- pod invariants
def test_every_container_has_requests_limits_probes_and_runs_unprivileged(
    docs: list[dict[str, Any]],
):
    for workload, pod in pod_templates(docs):
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        psc = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, name
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"] + pod.get("initContainers", []):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), f"{name}: {part}"
            assert quantity(res["limits"]["memory"]) >= quantity(res["requests"]["memory"])
            assert quantity(res["limits"]["cpu"]) >= quantity(res["requests"]["cpu"])
            if workload["kind"] == "Deployment":  # a Job runs to completion: nothing to probe
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    assert probe in c, f"{name}: {probe}"
            sc = {**psc, **c.get("securityContext", {})}
            assert sc.get("runAsNonRoot") is True, name
            assert int(sc.get("runAsUser", 0)) != 0, name
            assert sc.get("readOnlyRootFilesystem") is True, name
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], name
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{name}: /tmp emptyDir"


def _declared(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Queues and tasks the code declares, asked of a fresh interpreter that imports the
    task modules the manifests configure (so test tasks of this session don't leak in)."""
    config = by_name(docs, "ConfigMap", _config_name(docs))["data"]
    code = (
        "import json\n"
        "from runtime.settings import Settings\n"
        "from runtime.task import all_tasks\n"
        "from runtime.worker import import_task_modules\n"
        "s = Settings()\n"
        "import_task_modules(s.task_module_list())\n"
        "tasks = {i: {'queue': t.queue_name(s), 'machine': t.machine}\n"
        "         for i, t in all_tasks().items()}\n"
        "print(json.dumps({'default': s.default_queue, 'large': s.large_queue,\n"
        "                  'tasks': tasks}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSTER_")}
    env["BUSTER_TASK_MODULES"] = config["BUSTER_TASK_MODULES"]
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    return dict(json.loads(res.stdout))


def _config_name(docs: list[dict[str, Any]]) -> str:
    (cm,) = [
        c
        for c in of_kind(docs, "ConfigMap")
        if c["metadata"]["name"].startswith("buster-jobs-config")
    ]
    return str(cm["metadata"]["name"])


def test_every_declared_queue_has_a_worker_deployment_and_a_scaled_object(
    docs: list[dict[str, Any]],
):
    declared = _declared(docs)
    queues = {declared["default"], declared["large"]} | {
        t["queue"] for t in declared["tasks"].values()
    }
    consumers = {
        q: w["metadata"]["name"]
        for w in _workers(docs)
        for q in worker_queues(w["spec"]["template"]["spec"]["containers"][0])
    }
    scaled = {
        so["spec"]["triggers"][0]["metadata"]["queueName"]: so["spec"]["scaleTargetRef"]["name"]
        for so in of_kind(docs, "ScaledObject")
    }
    for q in sorted(queues):
        assert q in consumers, f"no worker Deployment consumes queue {q!r}"
        assert scaled.get(q) == consumers[q], f"queue {q!r} has no ScaledObject on its workers"
    for so in of_kind(docs, "ScaledObject"):
        assert so["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        by_name(docs, "Deployment", so["spec"]["scaleTargetRef"]["name"])


def test_worker_pods_are_sized_from_the_machine_presets(docs: list[dict[str, Any]]):
    declared = _declared(docs)
    settings = Settings()
    # a queue's pods get the largest preset routed to it (tasks may pick any preset)
    routed: dict[str, list[str]] = {}
    for name in PRESETS:
        q = declared["large"] if PRESETS[name].is_large else declared["default"]
        routed.setdefault(q, []).append(name)
    routed[declared["large"]] = ["large-1x"]  # large-2x needs its own queue (README)
    for t in declared["tasks"].values():
        routed.setdefault(t["queue"], []).append(t["machine"])
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in of_kind(docs, "ScaledObject")}
    for w in _workers(docs):
        (c,) = w["spec"]["template"]["spec"]["containers"]
        req, lim = c["resources"]["requests"], c["resources"]["limits"]
        (queue,) = worker_queues(c)
        need = max(
            (PRESETS[m] for m in routed.get(queue, [settings.default_queue])),
            key=lambda m: (m.cpu, m.memory_gb),
        )
        assert quantity(req["cpu"]) == need.cpu and quantity(lim["cpu"]) == need.cpu, queue
        assert quantity(req["memory"]) == need.memory_gb * 2**30 == quantity(lim["memory"])
        procs, threads = int(flag(c["args"], "-p") or 0), int(flag(c["args"], "-t") or 0)
        assert 1 <= procs <= need.cpu and threads >= 1, "-p/-t explicit, -p ≤ the pod's vCPUs"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            cmd = c[probe]["exec"]["command"]
            assert cmd[:4] == ["python", "-m", "runtime.health", "worker"]
            assert flag(cmd, "--processes") == str(procs)
        assert "--require-store" in c["readinessProbe"]["exec"]["command"]
        value = scaled[w["metadata"]["name"]]["spec"]["triggers"][0]["metadata"]["value"]
        assert int(value) == procs * threads  # one pod per p × t messages, ready or running


def test_grace_period_covers_the_shutdown_timeout(docs: list[dict[str, Any]]):
    default = Settings.model_fields["shutdown_timeout_seconds"].default
    for w in _workers(docs):
        pod = w["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        timeout = float(container_env(docs, c).get("BUSTER_SHUTDOWN_TIMEOUT_SECONDS", default))
        name = w["metadata"]["name"]
        assert pod["terminationGracePeriodSeconds"] >= timeout + SHUTDOWN_MARGIN, name


def test_no_secret_value_is_inline(docs: list[dict[str, Any]], overlay: str):
    assert of_kind(docs, "Secret") == []  # Secrets are created out of band (README)
    secretish = re.compile(r"(URL|KEY|PASSWORD|TOKEN|SECRET|DSN|CREDENTIAL)", re.I)
    for workload, pod in pod_templates(docs):
        for c in pod["containers"]:
            for e in c.get("env", []):
                if secretish.search(e["name"]):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    assert ref and ref["name"] == SECRET_NAME and ref["key"] in SECRET_KEYS, (
                        f"{workload['metadata']['name']}: {e['name']} must come from a Secret"
                    )
            for src in c.get("envFrom", []):
                assert "secretRef" not in src or src["secretRef"].get("optional") is True
    for cm in of_kind(docs, "ConfigMap"):
        for key in cm.get("data", {}):
            assert not secretish.search(key.replace("BUSTER_", "").replace("_DIR", "")), key
    text = render_text(overlay)
    assert not re.search(r"://[^/\s:@]+:[^@\s]+@", text), "credentials in a URL"
    assert not re.search(r"(sk-ant-|AKIA[0-9A-Z]{12}|-----BEGIN)", text)


def test_every_process_needs_its_secrets_and_no_process_migrates_on_its_own(
    docs: list[dict[str, Any]],
):
    for _workload, pod in pod_templates(docs):
        (c,) = pod["containers"]
        env = container_env(docs, c)
        assert env.get("BUSTER_DATABASE_URL") == "<secret database-url>"
        # without it a pod would generate a key of its own: data no other pod can read
        assert env.get("BUSTER_ENCRYPTION_KEY") == "<secret encryption-key>"
        if c["args"][0] != "migrate":
            assert env.get("BUSTER_AUTO_MIGRATE") == "false"
            assert env.get("BUSTER_BROKER_URL") == "<secret broker-url>"
            assert env.get("BUSTER_HEALTH_DIR", "").startswith("/tmp/")
    large = by_name(docs, "Deployment", "worker-large")["spec"]["template"]["spec"]
    assert container_env(docs, large["containers"][0])["ANTHROPIC_API_KEY"] == (
        "<secret anthropic-api-key>"
    )


def test_every_process_that_ends_runs_reads_the_optional_secret_of_run_webhooks(
    docs: list[dict[str, Any]],
):
    """A run ended by a process without BUSTER_RUN_WEBHOOKS is never flagged for its
    webhooks: the workers', scheduler's and dashboard's timer loops and cancels all end
    runs, so each takes the Secret that holds it."""
    for workload, pod in pod_templates(docs):
        (c,) = pod["containers"]
        if c["args"][0] == "migrate":
            continue
        refs = [e["secretRef"] for e in c.get("envFrom", []) if "secretRef" in e]
        assert {"name": "buster-jobs-api-keys", "optional": True} in refs, workload


def test_the_migration_job_runs_before_a_rollout(docs: list[dict[str, Any]]):
    job = by_name(docs, "Job", "buster-jobs-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_disruption_budgets_cover_every_deployment(docs: list[dict[str, Any]], overlay: str):
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for dep in of_kind(docs, "Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        covering = [
            p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, dep["metadata"]["name"]
    if overlay == "prod":
        for name in ("scheduler", "dashboard"):
            assert by_name(docs, "Deployment", name)["spec"]["replicas"] >= 2
        assert by_name(docs, "ScaledObject", "worker-default")["spec"]["minReplicaCount"] >= 2
    for dep in _workers(docs):
        assert "replicas" not in dep["spec"]  # KEDA owns it; kubectl apply must not fight


def test_network_policies_select_every_pod(docs: list[dict[str, Any]]):
    policies = of_kind(docs, "NetworkPolicy")
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for workload, _pod in pod_templates(docs):  # the template labels are what they select
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert deny[0]["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


# ------------------------------------------------------------- command lines and image
def _cli_commands() -> set[str]:
    from runtime.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def test_every_command_line_parses_with_the_cli(docs: list[dict[str, Any]]):
    from runtime import health
    from runtime.cli import build_parser

    commands = _cli_commands()
    for _workload, pod in pod_templates(docs):
        (c,) = pod["containers"]
        args = c["args"]
        if args[0] not in commands:
            assert args[0] == "dashboard", f"unknown command {args}"
        else:
            build_parser().parse_args(args)  # SystemExit on a bad flag
        for p in ("livenessProbe", "readinessProbe", "startupProbe"):
            cmd = c[p].get("exec", {}).get("command") if p in c else None
            if cmd:
                assert cmd[:3] == ["python", "-m", "runtime.health"], cmd
                parser = argparse.ArgumentParser()
                health._arguments(parser)
                parser.parse_args(cmd[3:])


def test_dockerfile_is_multistage_non_root_and_runs_buster_jobs():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M)
    assert len(stages) >= 2
    final = text.split(f"AS {stages[-1]}")[1]
    user = re.findall(r"^USER\s+(\S+)", final, re.M)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    assert re.search(r"^ARG EXTRAS=", text, re.M)
    assert '"buster-jobs"]' in re.findall(r"^ENTRYPOINT\s+(.*)$", final, re.M)[0]
    # every path the image copies exists (the build would fail otherwise)
    for src in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, re.M):
        for p in src.split():
            assert (ROOT / p).exists(), p
    assert Path(ROOT / ".dockerignore").exists()
