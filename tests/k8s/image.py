"""The image without Docker: replay the Dockerfile's build stage in a clean venv.

The build stage's COPY lines say which paths go into the image and its RUN lines how they
are installed; ``build_venv`` copies those paths to a scratch folder and runs those lines
with ``/opt/buster`` pointing at a venv under ``.stands/k8s-image/`` (kept between runs,
keyed by the Dockerfile and pyproject.toml; the project itself is reinstalled every time).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.k8s.manifests import ROOT

CACHE = ROOT / ".stands" / "k8s-image"


@dataclass
class BuildStage:
    copies: list[str] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    runs: list[list[list[str]]] = field(default_factory=list)  # RUNs, split on &&


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def build_stage(dockerfile: Path = ROOT / "Dockerfile") -> BuildStage:
    """What the first stage (the one that installs) does."""
    stage, inside = BuildStage(), False
    for word, rest in _instructions(dockerfile.read_text()):
        if word == "FROM":
            if inside:
                break
            inside = True
        elif not inside:
            continue
        elif word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            stage.args[k] = v
        elif word == "ENV":
            for pair in shlex.split(rest):
                k, _, v = pair.partition("=")
                stage.env[k] = v
        elif word == "COPY" and not rest.startswith("--from"):
            stage.copies += rest.split()[:-1]
        elif word == "RUN":
            stage.runs.append([shlex.split(part) for part in rest.split("&&")])
    return stage


def _key(stage: BuildStage) -> str:
    h = hashlib.sha256((ROOT / "Dockerfile").read_bytes())
    h.update((ROOT / "pyproject.toml").read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()[:16]


def build_venv(extras: str | None = None) -> Path:
    """A venv holding the project the way the image does; returns its folder."""
    stage = build_stage()
    extras = extras or stage.args["EXTRAS"]
    venv = CACHE / f"venv-{_key(stage)}-{extras.replace(',', '_')}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        src = Path(scratch) / "src"
        src.mkdir()
        for rel in stage.copies:  # what `COPY ... ./` puts into the build context
            p = ROOT / rel
            if p.is_dir():
                shutil.copytree(p, src / rel, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(p, src / rel)
        fresh = not (venv / ".complete").exists()
        if fresh and venv.exists():
            shutil.rmtree(venv)
        for run in stage.runs:
            for argv in run:
                line = [
                    a.replace("/opt/buster", str(venv)).replace("${EXTRAS}", extras) for a in argv
                ]
                if line[:3] == ["python", "-m", "venv"]:
                    if not fresh:
                        continue
                    line[0] = sys.executable
                env = {**_clean_env(), **stage.env}
                res = subprocess.run(
                    line, cwd=src, env=env, capture_output=True, text=True, timeout=1800
                )
                if res.returncode != 0:
                    raise RuntimeError(f"{shlex.join(line)} failed:\n{res.stdout}\n{res.stderr}")
    (venv / ".complete").write_text(extras)
    return venv


def _clean_env() -> dict[str, str]:
    import os

    drop = ("BUSTER_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}
