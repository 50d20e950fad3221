"""Shared fixtures. Telemetry is off and hubs are offline in every test; end-to-end tests run the real
CLI in a fresh copy of the project (its own git repo, DVC cache, MLflow SQLite file and Prefect home)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

for key, value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)


JUDGE_ARGS = ["--candidates", "artifacts/generate/candidates.jsonl", "--constitution",
              "data/constitution/constitution.yaml", "--templates", "data/constitution/judge_templates.yaml",
              "--gold", "data/gold/pairs.jsonl", "--out", "artifacts/judge", "--metrics", "metrics/judge.json"]


def generate_args(policy: Path) -> list[str]:
    """`rlaif exec generate` as dvc.yaml runs it, with the policy at `policy`."""
    return ["exec", "generate", "--policy", str(policy), "--prompts", "data/prompts/train.jsonl",
            "--out", "artifacts/generate"]


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files: what a clean clone of this working tree holds."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    # dvc.lock of a local run is not part of a clean clone
    return [Path(p) for p in out.splitlines() if (ROOT / p).is_file() and p != "dvc.lock"]


def make_project_copy(target: Path) -> Path:
    for rel in project_files():
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@example.com", "-c", "user.name=test", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=target, check=True)
    return target


def cli_env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    # MLflow calls made inside a test export MLFLOW_* variables (tracking URI, experiment, run):
    # a project's CLI must use its own file and experiment
    for key in [k for k in env if k.startswith("MLFLOW_") and k != "MLFLOW_DISABLE_TELEMETRY"]:
        del env[key]
    env["PREFECT_HOME"] = str(project / ".prefect")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def rlaif(project: Path, *args: str, timeout: int = 900, tracking_uri: str | None = None) -> subprocess.CompletedProcess:
    env = cli_env(project)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run([str(Path(sys.executable).parent / "rlaif"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout)


def save_tiny_llama(texts: list[str], path: Path, vocab_size: int, **sizes) -> Path:
    """A tokenizer trained on `texts` and a tiny Llama from a config, saved where loaders can find them."""
    from rlaif.models import build_tiny_llama, build_tokenizer

    tokenizer = build_tokenizer(texts, vocab_size=vocab_size)
    build_tiny_llama(tokenizer, **sizes).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def isolate_mlflow_environment():
    """A stage run in-process sets MLflow's tracking URI and experiment for the whole process: undo it."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")
