"""What a run ran on: the installed packages (and whether they are the locked ones) and the machine facts that change
float results. Both go to every stage's MLflow run, so a reviewer can say which library versions trained a model
and `rlaif reproduce` can tell a changed package from a changed input.

The lock is requirements/test.txt or requirements/run.txt (`make lock`); an install matches a lock when every
package that lock names is installed at its version (the project itself, installed editable, is not in a lock).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import re
from pathlib import Path

LOCKS = (Path("requirements/run.txt"), Path("requirements/test.txt"))
# the libraries whose versions decide what a stage computes: shown as parameters and in the lineage
KEY_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "safetensors",
                "sentence-transformers", "numpy", "great-expectations", "mlflow", "prefect", "dvc", "pydantic")
# CPU features that pick different numeric kernels in torch's BLAS and oneDNN
KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "f16c")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS")
LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
SELF = "rlaif-pipeline"


def canonical(name: str) -> str:
    """PEP 503's normal form, so that `Great_Expectations` in metadata and `great-expectations` in a lock meet."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """name -> version of every distribution in this interpreter's environment, sorted by name."""
    return dict(_installed_packages())


# Reading some 300 METADATA files costs about a second, and every stage records them: read once per process (the
# warm server reads them before it forks, so its children inherit them). A process does not install packages.
@functools.cache
def _installed_packages() -> tuple[tuple[str, str], ...]:
    found = {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}
    return tuple(sorted(found.items()))


def read_lock(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line of a compiled lock."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = LOCK_LINE.match(line)
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


def lock_drift(pins: dict[str, str], installed: dict[str, str]) -> dict[str, str]:
    """package -> 'locked X, installed Y' (or 'not installed') for each pin the environment does not hold."""
    return {name: f"locked {want}, installed {installed.get(name, 'nothing')}"
            for name, want in pins.items() if installed.get(name) != want}


def packages_digest(installed: dict[str, str]) -> str:
    """One digest of the whole package set (the project itself left out: its code is in the commit)."""
    text = "".join(f"{n}=={v}\n" for n, v in installed.items() if n != SELF)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def lock_record(installed: dict[str, str], locks: tuple[Path, ...] = LOCKS) -> dict[str, str]:
    """Which lock this environment matches (the largest one it holds whole), with that lock's digest; or the
    drift from the smallest lock when it matches none."""
    present = [p for p in locks if p.exists()]
    if not present:
        return {"lock": "none", "lock_matches": "unknown"}
    record: dict[str, str] = {}
    for path in sorted(present, key=lambda p: len(read_lock(p))):
        drift = lock_drift(read_lock(path), installed)
        if drift and record:
            break
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        record = {"lock": str(path), "lock_sha256": digest, "lock_matches": str(not drift).lower()}
        if drift:
            record["lock_drift"] = "; ".join(f"{n} {d}" for n, d in sorted(drift.items())[:8])
            break
    return record


def cpu_facts() -> dict[str, str]:
    """The CPU model and the kernel-choosing flags it has (Linux /proc/cpuinfo; the platform's name elsewhere)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text(encoding="utf-8", errors="replace") if info.exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    have = set(flags[1].split()) if flags else set()
    return {"cpu": model[1].strip() if model else (platform.processor() or platform.machine()),
            "cpu_flags": ",".join(f for f in KERNEL_FLAGS if f in have) or "unknown",
            "cpu_count": str(os.cpu_count())}


def torch_facts() -> dict[str, str]:
    """torch's thread pools and the math libraries it was built with: a different count or BLAS changes the order
    of float sums, so bitwise reproducibility holds only where these are equal."""
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", config)
    return {"torch_threads": str(torch.get_num_threads()), "torch_interop_threads": str(torch.get_num_interop_threads()),
            "torch_blas": blas[1] if blas else "unknown", "torch_mkldnn": str(torch.backends.mkldnn.is_available()).lower(),
            "torch_deterministic": str(torch.are_deterministic_algorithms_enabled()).lower(),
            "torch_config_sha256": hashlib.sha256(config.encode()).hexdigest()[:16]}


def machine_facts() -> dict[str, str]:
    facts = {"python": platform.python_version(), "platform": platform.platform(), **cpu_facts(), **torch_facts()}
    facts.update({k.lower(): os.environ[k] for k in THREAD_ENV if k in os.environ})
    return facts


def environment_record() -> dict:
    """Everything above, as logged on each stage run: `params` (MLflow parameters, short values) and the full
    package list (an artifact)."""
    installed = installed_packages()
    params = {f"env.{k}": v for k, v in machine_facts().items()}
    params.update({f"env.{k}": v for k, v in lock_record(installed).items()})
    params["env.packages_sha256"] = packages_digest(installed)
    params.update({f"pkg.{n}": installed[n] for n in KEY_PACKAGES if n in installed})
    return {"params": params, "packages": installed}
