"""The team stack in infra/: what can run here runs for real, the rest is checked statically.

Real, on 127.0.0.1 (each under a minute on two cores):
- PostgreSQL from the machine's packages, a throwaway cluster set up by infra/postgres/init-databases.sh
  (the script the compose postgres service runs);
- the MLflow server started with the compose service's own command line (PostgreSQL backend store,
  artifacts proxied to an S3 bucket), used through MlflowClient and through the pipeline's own
  rlaif.lifecycle.tracking with nothing but MLFLOW_TRACKING_URI;
- the Prefect server started with the compose service's command and database URL, a flow run made
  with nothing but PREFECT_API_URL, both work pools created (the GPU pool with its base job
  template, which the server validates), and the compose worker's command picking up a deployment run;
- DVC push and pull to a local remote and to an S3 remote (moto's S3 server standing in for MinIO),
  the latter configured the way the containers do it (infra/docker-entrypoint.sh + AWS_* variables).

Static (Docker and Kubernetes cannot run here): the compose file (services, pinned images, every
${VAR} in .env.example, wiring, healthchecks, telemetry), the Dockerfiles, the MinIO bootstrap script
(run against a stand-in `mc`), the Kubernetes manifests (`kubectl kustomize`), the Helm values and the
GPU base job template, rendered into the Job a flow run would get by prefect-kubernetes' own code.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import BIN, MLFLOW_SERVER_ARGS, MLFLOW_SERVER_ENV, ROOT, Service, free_port

from rlaif.lifecycle.tracking import TELEMETRY_OFF

INFRA = ROOT / "infra"
COMPOSE_FILE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
K8S = INFRA / "k8s"
JOB_TEMPLATE = K8S / "gpu-base-job-template.json"
HELM_VALUES = K8S / "values-gpu-worker.yaml"

CPU_POOL, GPU_POOL = "rlaif-cpu", "rlaif-gpu"  # the work pools prefect.yaml's deployments use
SERVICES = {"postgres", "minio", "minio-init", "prefect-server", "mlflow", "worker"}
ONE_SHOT = {"minio-init"}
BUCKETS = {"mlflow", "dvc"}
# the port each service listens on inside the compose network
SERVICE_PORTS = {"postgres": 5432, "minio": 9000, "prefect-server": 4200, "mlflow": 5000}


# ----------------------------------------------------------------------------- compose helpers

class MissingVariable(KeyError):
    pass


_TOKEN = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}."""

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg")
        value = env.get(name)
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if op and op.endswith("-"):
            return arg if missing else value
        if op and op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _TOKEN.sub(substitute, text)


def compose_variables(node) -> set[str]:
    """The variables compose interpolates: those in values (not in comments or keys)."""
    if isinstance(node, str):
        return {m.group("braced") or m.group("named") for m in _TOKEN.finditer(node) if not m.group("escaped")}
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return set().union(*(compose_variables(child) for child in children))


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _interpolate_tree(node, env):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def load_compose(env: dict[str, str] | None = None) -> dict:
    """The compose file as `docker compose config` would see it with infra/.env = .env.example."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return _interpolate_tree(raw, read_env_file(ENV_EXAMPLE) if env is None else env)


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def as_list(command) -> list[str]:
    return command if isinstance(command, list) else command.split()


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def localize(value: str, ports: dict[str, int]) -> str:
    """Point a compose value at the stand-ins on 127.0.0.1: `host:port` of a service -> 127.0.0.1:its local port."""
    for service, port in SERVICE_PORTS.items():
        if service in ports:
            value = re.sub(rf"(?<=[/@]){re.escape(service)}:{port}\b", f"127.0.0.1:{ports[service]}", value)
    return value


def local_command(command: list[str], port: int) -> list[str]:
    """A compose service's command run here: the venv's executable, bound to 127.0.0.1 on a free port."""
    command = list(command)
    command[0] = str(BIN / command[0])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    return command


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


# ----------------------------------------------------------------------------- static: compose

def test_compose_parses_and_has_every_service(compose):
    services = compose["services"]
    assert SERVICES <= set(services), f"missing services: {SERVICES - set(services)}"
    known_keys = {"image", "build", "command", "entrypoint", "environment", "depends_on", "ports", "volumes",
                  "healthcheck", "restart", "logging", "shm_size", "working_dir", "user", "deploy", "init"}
    for name, service in services.items():
        assert set(service) <= known_keys, f"{name}: unknown keys {set(service) - known_keys}"
        assert "image" in service or "build" in service, name
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (INFRA / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: named volume {source} is not declared"


def test_compose_images_are_pinned(compose):
    def pinned(image: str) -> bool:
        if "@sha256:" in image:
            return True
        name, _, tag = image.rpartition(":")
        versioned = re.search(r"\d+\.\d+|\d{4}-\d\d-\d\d", tag) is not None  # 15.18-bookworm, RELEASE.2025-04-22...
        return bool(name) and "/" not in tag and tag != "latest" and versioned

    for name, service in compose["services"].items():
        if "image" in service:
            assert pinned(service["image"]), f"{name}: image {service['image']!r} is not pinned to a version"
        if "build" in service:
            build = service["build"]
            dockerfile = INFRA / build["context"] / build.get("dockerfile", "Dockerfile")
            assert dockerfile.exists(), f"{name}: {dockerfile} missing"
            text = dockerfile.read_text()
            args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, flags=re.M))
            bases = [re.sub(r"\$\{?(\w+)\}?", lambda m, args=args: args.get(m.group(1), m.group(0)), base)
                     for base in re.findall(r"^FROM (\S+)", text, flags=re.M)]
            assert bases and all(pinned(base) for base in bases), f"{name}: base images {bases} not pinned"


def test_every_compose_variable_has_an_env_example_entry(env_example):
    used = compose_variables(yaml.safe_load(COMPOSE_FILE.read_text()))
    assert used, "the compose file reads no variables?"
    assert used <= set(env_example), f"not in infra/.env.example: {sorted(used - set(env_example))}"
    assert set(env_example) <= used, f"in .env.example but unused: {sorted(set(env_example) - used)}"
    # no real secrets in the example: every password and secret is an obvious placeholder
    for key, value in env_example.items():
        if re.search(r"PASSWORD|SECRET", key):
            assert value.startswith("change-me"), f"{key} should be a change-me placeholder"
    # passwords are required: without infra/.env, compose stops and names the variable
    with pytest.raises(MissingVariable, match="PASSWORD"):
        load_compose(env={})


def test_compose_urls_name_real_services_and_ports(compose):
    services = compose["services"]
    assert int(option(as_list(services["prefect-server"]["command"]), "--port")) == SERVICE_PORTS["prefect-server"]
    assert int(option(as_list(services["mlflow"]["command"]), "--port")) == SERVICE_PORTS["mlflow"]
    seen = 0
    for name, service in services.items():
        values = [*service_env(service).values(), *as_list(service.get("command", []))]
        for value in values:
            for host, port in re.findall(r"[/@]([a-z][a-z0-9-]*):(\d+)", value):
                if host in services:
                    seen += 1
                    assert int(port) == SERVICE_PORTS[host], \
                        f"{name}: {value} (service {host} listens on {SERVICE_PORTS[host]})"
                    assert host == name or host in service.get("depends_on", {}) or \
                        any(host in services[d].get("depends_on", {}) for d in service.get("depends_on", {})), \
                        f"{name} reaches {host} without depending on it"
    assert seen >= 8


def test_compose_servers_worker_and_databases_are_wired(compose):
    services = compose["services"]
    postgres = services["postgres"]
    assert any(v.endswith(":/docker-entrypoint-initdb.d/10-init-databases.sh:ro") for v in postgres["volumes"])

    prefect = services["prefect-server"]
    assert as_list(prefect["command"])[:3] == ["prefect", "server", "start"]
    assert option(as_list(prefect["command"]), "--host") == "0.0.0.0"
    assert re.fullmatch(r"postgresql\+asyncpg://prefect:[^@]+@postgres:5432/prefect",
                        service_env(prefect)["PREFECT_API_DATABASE_CONNECTION_URL"])

    mlflow = as_list(services["mlflow"]["command"])
    assert mlflow[:2] == ["mlflow", "server"] and "--serve-artifacts" in mlflow
    assert re.fullmatch(r"postgresql(\+psycopg2)?://mlflow:[^@]+@postgres:5432/mlflow",
                        option(mlflow, "--backend-store-uri"))
    assert option(mlflow, "--artifacts-destination") == "s3://mlflow"
    assert option(mlflow, "--host") == "0.0.0.0"
    assert service_env(services["mlflow"])["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert service_env(services["mlflow"])["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"

    worker = services["worker"]
    command = as_list(worker["command"])
    assert command[:3] == ["prefect", "worker", "start"]
    assert option(command, "--pool") == CPU_POOL and option(command, "--type") == "process"
    env = service_env(worker)
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["DVC_REMOTE_URL"].startswith("s3://dvc/") and env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert worker["build"]["context"] == ".."
    assert (INFRA / ".." / worker["build"]["dockerfile"]).resolve() == INFRA / "Dockerfile"


def test_compose_healthchecks_and_start_order(compose):
    services = compose["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            test = service.get("healthcheck", {}).get("test")
            assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
            assert service.get("restart") == "unless-stopped", name
    conditions = {name: {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
                  for name, service in services.items()}
    assert conditions["prefect-server"] == {"postgres": "service_healthy"}
    assert conditions["mlflow"] == {"postgres": "service_healthy", "minio-init": "service_completed_successfully"}
    assert conditions["minio-init"] == {"minio": "service_healthy"}
    assert conditions["worker"]["prefect-server"] == "service_healthy"
    assert conditions["worker"]["mlflow"] == "service_healthy"
    # the postgres check must not pass while the image's first-boot server (socket only) runs the init script
    assert "-h 127.0.0.1" in services["postgres"]["healthcheck"]["test"][1]


def test_compose_telemetry_is_off(compose):
    for name in ("prefect-server", "mlflow", "worker"):
        env = service_env(compose["services"][name])
        for key in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", "DVC_NO_ANALYTICS"):
            assert env.get(key) == TELEMETRY_OFF[key], f"{name}: {key}"


def test_mlflow_server_answers_the_worker_host_name(compose):
    """MLflow rejects Host headers it does not know (DNS-rebinding protection): `mlflow:5000`, the
    name the worker uses, must be allowed, by the server's own matching rule."""
    from mlflow.server.security_utils import is_allowed_host_header

    allowed = [h.strip() for h in service_env(compose["services"]["mlflow"])["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")]
    worker_host = service_env(compose["services"]["worker"])["MLFLOW_TRACKING_URI"].split("//")[1]
    for host in (worker_host, "localhost:5000", "127.0.0.1:5000"):
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


def dockerfile_env(path: Path) -> dict[str, str]:
    """The variables a Dockerfile's ENV instructions set."""
    env = {}
    for line in re.sub(r"\\\n", " ", path.read_text()).splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line[4:]))
    return env


def test_pipeline_image_dockerfile():
    text = (INFRA / "Dockerfile").read_text()
    env = dockerfile_env(INFRA / "Dockerfile")
    assert env["RLAIF_PROJECT_DIR"] == "/opt/rlaif" and re.search(r"^WORKDIR /opt/rlaif$", text, flags=re.M)
    for key in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", "DVC_NO_ANALYTICS"):
        assert env[key] == TELEMETRY_OFF[key], key
    assert re.search(r'^ENTRYPOINT \[.*"/opt/rlaif/infra/docker-entrypoint.sh"\]', text, flags=re.M)
    assert "pip install -e ." in text and "dvc-s3" in text
    assert re.search(r"^USER rlaif", text, flags=re.M)
    cmd = json.loads(re.search(r"^CMD (\[.*\])", text, flags=re.M).group(1))
    assert option(cmd, "--pool") == CPU_POOL
    ignored = [line.strip() for line in (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert ".venv/" in ignored and "/infra/.env" in ignored and not any(p.strip("/") == ".git" for p in ignored)
    mlflow_image = (INFRA / "mlflow.Dockerfile").read_text()
    assert re.search(r"mlflow==\d", mlflow_image) and "psycopg2-binary==" in mlflow_image and "boto3==" in mlflow_image
    for script in ("docker-entrypoint.sh", "minio/create-buckets.sh"):
        subprocess.run(["sh", "-n", str(INFRA / script)], check=True)
    assert os.access(INFRA / "docker-entrypoint.sh", os.X_OK)  # the image's ENTRYPOINT executes it
    assert os.access(INFRA / "postgres" / "init-databases.sh", os.X_OK)  # the postgres image executes it
    subprocess.run(["bash", "-n", str(INFRA / "postgres" / "init-databases.sh")], check=True)


def test_minio_bootstrap_creates_the_buckets_and_a_scoped_user(tmp_path, env_example):
    """create-buckets.sh run against a stand-in `mc` that records its calls."""
    stub = tmp_path / "bin" / "mc"
    stub.parent.mkdir()
    stub.write_text('#!/bin/sh\necho "$*" >> "$MC_LOG"\n')
    stub.chmod(0o755)
    log = tmp_path / "mc.log"
    env = {"PATH": f"{stub.parent}{os.pathsep}{os.environ['PATH']}", "MC_LOG": str(log),
           **{k: v for k, v in service_env(load_compose()["services"]["minio-init"]).items()}}
    subprocess.run(["sh", str(INFRA / "minio" / "create-buckets.sh")], env=env, check=True, capture_output=True)
    calls = log.read_text().splitlines()
    root = f"{env_example['MINIO_ROOT_USER']} {env_example['MINIO_ROOT_PASSWORD']}"
    assert calls[0] == f"alias set rlaif http://minio:9000 {root}"
    assert {c.split()[-1] for c in calls if c.startswith("mb --ignore-existing")} == {f"rlaif/{b}" for b in BUCKETS}
    policy_call = next(c for c in calls if c.startswith("admin policy create"))
    assert Path(policy_call.split()[-1]).name == "rlaif-policy.json"
    assert f"admin user add rlaif {env_example['RLAIF_S3_ACCESS_KEY']} {env_example['RLAIF_S3_SECRET_KEY']}" in calls
    assert any(c.startswith("admin policy attach rlaif rlaif-pipeline --user") for c in calls)
    policy = json.loads((INFRA / "minio" / "rlaif-policy.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert {r.split(":::")[1].split("/")[0] for r in resources} == BUCKETS


def test_prefect_yaml_uses_the_pools_the_infra_serves():
    path = ROOT / "prefect.yaml"
    config = yaml.safe_load(path.read_text())
    deployments = config.get("deployments") or []
    pools = {d["work_pool"]["name"] for d in deployments if (d.get("work_pool") or {}).get("name")}
    assert pools and pools <= {CPU_POOL, GPU_POOL}, pools
    # variables its pull steps read at run time ({{ $VAR }}) are set in the pipeline image
    pull = json.dumps([config.get("pull") or [], *[d.get("pull") or [] for d in deployments]])
    image_env = dockerfile_env(INFRA / "Dockerfile")
    assert set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", pull)) <= set(image_env), (pull, image_env)


# ----------------------------------------------------------------------------- static: Kubernetes

def k8s_documents() -> dict[str, list[dict]]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        docs[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def test_k8s_manifests_parse_and_live_in_one_namespace():
    docs = k8s_documents()
    assert {"values-gpu-worker.yaml", "kustomization.yaml", "rlaif-config.yaml"} <= set(docs)
    not_objects = ("values-gpu-worker.yaml", "kustomization.yaml")
    objects = [d for name, ds in docs.items() if name not in not_objects for d in ds]
    kinds = {d["kind"] for d in objects}
    assert {"Namespace", "ConfigMap", "Secret"} <= kinds
    for d in objects:
        assert d["apiVersion"] and d["metadata"]["name"], d
        assert d["kind"] == "Namespace" or d["metadata"]["namespace"] == "rlaif", d["metadata"]
    config = next(d for d in objects if d["kind"] == "ConfigMap")["data"]
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "DVC_REMOTE_URL", "AWS_ENDPOINT_URL_S3"):
        assert config[key], key
    assert config["PREFECT_API_URL"].endswith("/api")
    for key in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED", "DVC_NO_ANALYTICS"):
        assert config[key] == TELEMETRY_OFF[key], key
    secret = next(d for d in objects if d["kind"] == "Secret")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secret["stringData"])


def test_kustomize_builds_the_manifests():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    built = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout)}
    template = built[("ConfigMap", "rlaif-gpu-base-job-template")]["data"]["baseJobTemplate.json"]
    assert json.loads(template) == json.loads(JOB_TEMPLATE.read_text())
    assert ("Secret", "rlaif-secrets") not in built  # made by hand from real values, never from the example


def test_helm_values_run_a_kubernetes_worker_on_the_gpu_pool(compose):
    values = yaml.safe_load(HELM_VALUES.read_text())
    worker = values["worker"]
    assert worker["config"]["workPool"] == GPU_POOL and worker["config"]["type"] == "kubernetes"
    assert worker["apiConfig"] == "server" and worker["serverApiConfig"]["apiUrl"].endswith("/api")
    tag = worker["image"]["prefectTag"]
    assert tag != "latest" and "kubernetes" in tag
    # the worker speaks the same Prefect release as the compose server
    server_version = compose["services"]["prefect-server"]["image"].split(":")[1].split("-")[0]
    assert tag.startswith(server_version + "-"), (tag, server_version)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    generated = {g["name"] for g in kustomization["configMapGenerator"]}
    assert worker["config"]["baseJobTemplate"]["existingConfigMapName"] in generated
    files = [f for g in kustomization["configMapGenerator"] for f in g["files"]]
    assert f"baseJobTemplate.json={JOB_TEMPLATE.name}" in files


def job_template_defaults(template: dict) -> dict:
    return {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}


def test_gpu_job_template_requests_gpus_on_gpu_nodes():
    from prefect.server.schemas.actions import validate_base_job_template
    from prefect.utilities.templating import apply_values

    template = json.loads(JOB_TEMPLATE.read_text())
    validate_base_job_template(template)  # what the Prefect server checks when the pool is created
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"

    defaults = job_template_defaults(template)
    assert defaults["gpu_count"] >= 1 and defaults["namespace"] == "rlaif"
    assert ":" in defaults["image"] and not defaults["image"].endswith(":latest")
    rendered = apply_values(template["job_configuration"], {**defaults, "gpu_count": 2})
    pod = rendered["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    sources = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    docs = k8s_documents()
    assert sources["configMapRef"] == docs["rlaif-config.yaml"][0]["metadata"]["name"]
    assert sources["secretRef"] == docs["rlaif-secrets.example.yaml"][0]["metadata"]["name"]
    assert any(v["name"] == "dshm" and v["emptyDir"]["medium"] == "Memory" for v in pod["volumes"])


def _dropped_paths(original, roundtrip, path=""):
    """Paths in `original` that a typed Kubernetes model did not keep (unknown or misplaced fields)."""
    if isinstance(original, dict):
        roundtrip = roundtrip if isinstance(roundtrip, dict) else {}
        dropped = []
        for key, value in original.items():
            if value is not None:
                dropped += ([f"{path}/{key}"] if key not in roundtrip
                            else _dropped_paths(value, roundtrip[key], f"{path}/{key}"))
        return dropped
    if isinstance(original, list):
        return [p for i, value in enumerate(original) for p in _dropped_paths(value, roundtrip[i], f"{path}/{i}")]
    return []


def test_gpu_job_template_renders_a_valid_job_for_a_flow_run():
    """prefect-kubernetes' own job configuration (what the rlaif-gpu worker runs) turns the template
    and a flow run into a Job; Kubernetes' typed models keep every field of it."""
    import asyncio

    from kubernetes_asyncio.client import ApiClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.utilities.templating import apply_values
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = json.loads(JOB_TEMPLATE.read_text())
    values = {**job_template_defaults(template), "env": {"RLAIF_PROFILE": "gpu-1x"}}
    configuration = KubernetesWorkerJobConfiguration(**apply_values(template["job_configuration"], values))
    flow_run = FlowRun(flow_id=uuid.uuid4(), name="gentle-otter")
    configuration.prepare_for_flow_run(flow_run)
    job = configuration.job_manifest
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["args"] == ["prefect", "flow-run", "execute"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PREFECT__FLOW_RUN_ID"] == str(flow_run.id) and env["RLAIF_PROFILE"] == "gpu-1x"
    assert job["metadata"]["namespace"] == "rlaif" and job["metadata"]["generateName"] == "gentle-otter-"

    async def roundtrip(manifest):
        async with ApiClient() as api:
            return api.sanitize_for_serialization(api._ApiClient__deserialize(manifest, "V1Job"))

    dropped = _dropped_paths(job, asyncio.run(roundtrip(job)))
    # Prefect's own default template carries these two on the pod spec, and its validator requires them there
    assert set(dropped) <= {"/spec/template/spec/completions", "/spec/template/spec/parallelism"}, dropped


# ----------------------------------------------------------------------------- processes on 127.0.0.1

def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any pointer to a tracking server, API or S3 endpoint."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_", "DVC_", "PG"))}
    env.update(TELEMETRY_OFF)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return candidates[-1].parent if candidates else None


@pytest.fixture(scope="module")
def postgres(env_example):
    """A throwaway PostgreSQL cluster on 127.0.0.1, set up by infra/postgres/init-databases.sh with the
    .env.example passwords, as the compose postgres service does on its first start."""
    bindir = postgres_bin()
    search = f"{bindir}{os.pathsep}{os.environ['PATH']}"
    if bindir is None or not (bindir / "pg_ctl").exists() or not shutil.which("psql", path=search):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) are not installed")
    as_user = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the packages' `postgres` account
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` account to run the server as")
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    base = Path(tempfile.mkdtemp(prefix="rlaif-pg-"))  # not under pytest's tmp: `postgres` must reach it
    superuser, password = env_example["POSTGRES_USER"], env_example["POSTGRES_PASSWORD"]
    (base / "pwfile").write_text(password + "\n")
    if as_user:
        for path in (base, base / "pwfile"):
            os.chown(path, as_user["user"], as_user["group"])
    port = free_port()
    data, log = base / "data", base / "server.log"

    def run(tool: str, *args: str) -> None:
        out = subprocess.run([str(bindir / tool), *args], capture_output=True, text=True, timeout=120,
                             env=clean_env(), cwd=base, **as_user)
        server_log = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        assert out.returncode == 0, f"{tool} failed:\n{out.stdout}\n{out.stderr}\n{server_log}"

    try:
        run("initdb", "-D", str(data), "-U", superuser, f"--pwfile={base / 'pwfile'}", "--auth=scram-sha-256",
            "--encoding=UTF8", "--no-locale", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off", "start")
        admin = clean_env(PATH=f"{bindir}{os.pathsep}{BIN}{os.pathsep}{os.environ['PATH']}", PGHOST="127.0.0.1",
                          PGPORT=str(port), PGPASSWORD=password, POSTGRES_USER=superuser, POSTGRES_DB="postgres",
                          PREFECT_DB_PASSWORD=env_example["PREFECT_DB_PASSWORD"],
                          MLFLOW_DB_PASSWORD=env_example["MLFLOW_DB_PASSWORD"])
        for _ in range(2):  # the script is safe to run again
            init = subprocess.run(["bash", str(INFRA / "postgres" / "init-databases.sh")], env=admin,
                                  capture_output=True, text=True, timeout=60)
            assert init.returncode == 0, init.stdout + init.stderr
        yield {"port": port, "bindir": bindir, "admin_env": admin}
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True,
                           timeout=60, cwd=base, env=clean_env(), **as_user)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def s3(tmp_path_factory, env_example):
    """An S3 API on 127.0.0.1 standing in for MinIO (moto's server), with the buckets minio-init creates."""
    import boto3
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    server = Service("moto S3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     clean_env(), log)
    try:
        server.wait_for(f"http://127.0.0.1:{port}/moto-api/", timeout=30)
        url = f"http://127.0.0.1:{port}"
        creds = {"aws_access_key_id": env_example["RLAIF_S3_ACCESS_KEY"],
                 "aws_secret_access_key": env_example["RLAIF_S3_SECRET_KEY"], "region_name": "us-east-1"}
        client = boto3.client("s3", endpoint_url=url, **creds)
        for bucket in sorted(BUCKETS):
            client.create_bucket(Bucket=bucket)
        yield {"port": port, "url": url, "client": client}
    finally:
        server.stop()


def test_postgres_init_script_gives_each_service_its_own_database(postgres, env_example):
    psql = str(postgres["bindir"] / "psql")
    base = clean_env(PGHOST="127.0.0.1", PGPORT=str(postgres["port"]))

    def query(user: str, password: str, database: str, sql: str) -> subprocess.CompletedProcess:
        return subprocess.run([psql, "-U", user, "-d", database, "-tAc", sql], env={**base, "PGPASSWORD": password},
                              capture_output=True, text=True, timeout=30)

    prefect = query("prefect", env_example["PREFECT_DB_PASSWORD"], "prefect",
                    "SELECT current_user, (SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm')")
    assert prefect.stdout.strip() == "prefect|1", prefect.stderr
    assert query("mlflow", env_example["MLFLOW_DB_PASSWORD"], "mlflow", "SELECT 1").stdout.strip() == "1"
    denied = query("mlflow", env_example["MLFLOW_DB_PASSWORD"], "prefect", "SELECT 1")
    assert denied.returncode != 0 and "permission denied" in denied.stderr


def run_dvc(repo: Path, *args: str, env: dict[str, str], entrypoint: bool = False) -> str:
    command = [str(BIN / "dvc"), *args]
    if entrypoint:  # as the containers run it
        command = ["sh", str(INFRA / "docker-entrypoint.sh"), *command]
    out = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def dvc_repo(path: Path, env: dict[str, str]) -> tuple[Path, bytes]:
    path.mkdir()
    for command in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(command, cwd=path, env=env, check=True, capture_output=True, timeout=60)
    payload = os.urandom(256 * 1024) + b"constitution v2\n"
    (path / "data").mkdir()
    (path / "data" / "labels.bin").write_bytes(payload)
    (path / "data" / "notes.txt").write_text("judge: embedding\n")
    run_dvc(path, "add", "-q", "data", env=env)
    return path, payload


def forget_and_pull(repo: Path, payload: bytes, env: dict[str, str], **kwargs) -> None:
    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    run_dvc(repo, "pull", env=env, **kwargs)
    assert (repo / "data" / "labels.bin").read_bytes() == payload
    assert (repo / "data" / "notes.txt").read_text() == "judge: embedding\n"


def test_dvc_push_and_pull_through_a_local_remote(tmp_path):
    env = clean_env()
    repo, payload = dvc_repo(tmp_path / "repo", env)
    remote = tmp_path / "remote"
    run_dvc(repo, "remote", "add", "-d", "team", str(remote), env=env)
    assert "3 files pushed" in run_dvc(repo, "push", env=env)
    assert sum(1 for p in remote.rglob("*") if p.is_file()) == 3  # two files and the directory listing
    forget_and_pull(repo, payload, env)


@pytest.mark.slow
def test_dvc_push_and_pull_through_an_s3_remote_configured_like_the_containers(tmp_path, s3, compose):
    """The worker's settings (DVC_REMOTE_URL, AWS_ENDPOINT_URL_S3, AWS credentials) with the endpoint
    pointed at the S3 stand-in; infra/docker-entrypoint.sh adds the remote, as in the containers."""
    worker = {k: localize(v, {"minio": s3["port"]}) for k, v in service_env(compose["services"]["worker"]).items()}
    env = clean_env(**{k: worker[k] for k in ("DVC_REMOTE_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                                             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    repo, payload = dvc_repo(tmp_path / "repo", clean_env())
    env["RLAIF_PROJECT_DIR"] = str(repo)
    assert "3 files pushed" in run_dvc(repo, "push", env=env, entrypoint=True)
    assert "url = s3://dvc/" in (repo / ".dvc" / "config.local").read_text()
    assert not (repo / ".dvc" / "config").read_text().count("s3://")  # the committed config is untouched
    prefix = worker["DVC_REMOTE_URL"].removeprefix("s3://dvc/")
    keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket="dvc", Prefix=prefix).get("Contents", [])]
    assert len(keys) == 3, keys  # two files and the directory listing
    forget_and_pull(repo, payload, env, entrypoint=True)


@pytest.mark.slow
def test_mlflow_server_on_postgresql_with_artifacts_in_s3(postgres, s3, compose, tmp_path):
    """The compose mlflow service's command line, pointed at 127.0.0.1: runs, metrics, params, the
    registry in PostgreSQL; artifacts proxied by the server into the `mlflow` bucket."""
    from mlflow import MlflowClient

    service = compose["services"]["mlflow"]
    port = free_port()
    ports = {"postgres": postgres["port"], "minio": s3["port"]}
    command = [localize(arg, ports) for arg in local_command(as_list(service["command"]), port)]
    command += MLFLOW_SERVER_ARGS  # two cores here; the compose default (4 workers) serves a team
    env = clean_env(**{**{k: localize(v, ports) for k, v in service_env(service).items()}, **MLFLOW_SERVER_ENV})
    server = Service("mlflow server", command, env, tmp_path / "mlflow.log", cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        server.wait_for(f"{url}/health", timeout=90)
        client = MlflowClient(tracking_uri=url)
        experiment = client.create_experiment("rlaif-infra-check")
        run = client.create_run(experiment, run_name="judge")
        run_id = run.info.run_id
        client.log_param(run_id, "judge.backend", "embedding")
        for step, value in enumerate([0.61, 0.74, 0.8]):
            client.log_metric(run_id, "gold_agreement", value, step=step)
        report = tmp_path / "report.md"
        report.write_text("# judge report\nagreement 80%\n")
        client.log_artifact(run_id, str(report), artifact_path="reports")
        client.set_terminated(run_id)

        stored = client.get_run(run_id)
        assert stored.info.status == "FINISHED" and stored.data.params["judge.backend"] == "embedding"
        assert [m.value for m in client.get_metric_history(run_id, "gold_agreement")] == [0.61, 0.74, 0.8]
        assert stored.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied: clients need no S3 access
        downloaded = client.download_artifacts(run_id, "reports/report.md", str(tmp_path / "down"))
        assert Path(downloaded).read_text() == report.read_text()
        keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket="mlflow").get("Contents", [])]
        assert any(key.endswith(f"{run_id}/artifacts/reports/report.md") for key in keys), keys

        client.create_registered_model("rlaif-infra-check")
        version = client.create_model_version("rlaif-infra-check", f"runs:/{run_id}/reports", run_id=run_id)
        client.set_registered_model_alias("rlaif-infra-check", "champion", version.version)
        assert client.get_model_version_by_alias("rlaif-infra-check", "champion").run_id == run_id

        # the pipeline's own tracking code, pointed at the server by configuration alone
        script = ("from rlaif.lifecycle.tracking import setup, log_params\n"
                  "mlflow = setup('rlaif-infra-pipeline')\n"
                  "with mlflow.start_run(run_name='pipeline') as run:\n"
                  "    log_params({'judge': {'backend': 'embedding', 'note': 'x' * 300}})\n"
                  "    mlflow.log_metric('evaluate/win_rate', 0.7)\n"
                  "    mlflow.log_dict({'seed': 0}, 'params/effective.json')\n"
                  "    print('RUN_ID=' + run.info.run_id)\n")
        out = subprocess.run([sys.executable, "-c", script], env=clean_env(MLFLOW_TRACKING_URI=url), cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        pipeline_run = client.get_run(re.search(r"RUN_ID=(\w+)", out.stdout).group(1))
        assert pipeline_run.data.metrics["evaluate/win_rate"] == 0.7
        # cut to MLflow's limit; the whole value is kept as an artifact
        assert len(pipeline_run.data.params["judge.note"]) == 250
        names = {f.path for f in client.list_artifacts(pipeline_run.info.run_id, "params")}
        assert names == {"params/effective.json", "params/full.json"}

        # the Host header the compose worker sends is accepted; an unknown one is refused
        def status(host: str) -> int:
            request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1",
                                             headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status
            except urllib.error.HTTPError as error:
                return error.code

        assert status("mlflow:5000") == 200
        assert status("attacker.example") in (400, 403)
    finally:
        server.stop()


FLOW_FILE = '''
from pathlib import Path

from prefect import flow, task
from prefect.runtime import flow_run


@task
def add(a: int, b: int) -> int:
    return a + b


@flow(name="rlaif-infra-check")
def check(x: int = 1) -> dict:
    total = add(x, 41)
    Path(f"ran-{x}.txt").write_text(str(total))  # in the deployment's working directory
    return {"total": total, "flow_run_id": flow_run.id}
'''

CLIENT_SCRIPT = '''
import asyncio, json, sys

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate

from check_flow import check

template, cpu_pool, gpu_pool = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]


async def main():
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=cpu_pool, type="process"), overwrite=True)
        await client.create_work_pool(WorkPoolCreate(name=gpu_pool, type="kubernetes", base_job_template=template),
                                      overwrite=True)
        flow_id = await client.create_flow_from_name("rlaif-infra-check")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="default", work_pool_name=cpu_pool, entrypoint="check_flow.py:check",
            # resolved where the run starts: the pipeline image sets RLAIF_PROJECT_DIR (infra/Dockerfile)
            pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $RLAIF_PROJECT_DIR }}"}}])
        scheduled = await client.create_flow_run_from_deployment(deployment_id, parameters={"x": 2})
        return str(scheduled.id)


direct = check(1)  # a flow run made by calling the flow, as `rlaif run` does
print(json.dumps({"direct": str(direct["flow_run_id"]), "total": direct["total"], "scheduled": asyncio.run(main())}))
'''


@pytest.mark.slow
def test_prefect_server_on_postgresql_runs_flows_and_serves_both_pools(postgres, compose, tmp_path):
    """The compose prefect-server command and database URL, pointed at 127.0.0.1; then the pipeline's
    side, configured by PREFECT_API_URL alone, and the compose worker's command, once."""
    import httpx

    service = compose["services"]["prefect-server"]
    port = free_port()
    env = clean_env(**{k: localize(v, {"postgres": postgres["port"]}) for k, v in service_env(service).items()},
                    PREFECT_HOME=str(tmp_path / "server-home"), PREFECT_UI_ENABLED="false")
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://prefect:")
    server = Service("prefect server", local_command(as_list(service["command"]), port), env,
                     tmp_path / "prefect.log", cwd=tmp_path)
    try:
        api = f"http://127.0.0.1:{port}/api"
        server.wait_for(f"{api}/health", timeout=90)
        assert httpx.get(f"{api}/health", timeout=10).json() is True

        project = tmp_path / "project"
        project.mkdir()
        (project / "check_flow.py").write_text(FLOW_FILE)
        (project / "client.py").write_text(CLIENT_SCRIPT)
        client_env = clean_env(PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "client-home"))
        out = subprocess.run([sys.executable, "client.py", str(JOB_TEMPLATE), CPU_POOL, GPU_POOL],
                             cwd=project, env=client_env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        ids = json.loads(out.stdout.strip().splitlines()[-1])
        assert ids["total"] == 42

        def flow_run(run_id: str) -> dict:
            return httpx.get(f"{api}/flow_runs/{run_id}", timeout=10).json()

        assert flow_run(ids["direct"])["state_type"] == "COMPLETED"
        gpu_pool = httpx.get(f"{api}/work_pools/{GPU_POOL}", timeout=10).json()
        assert gpu_pool["type"] == "kubernetes"
        limits = gpu_pool["base_job_template"]["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
            "containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "{{ gpu_count }}"

        # the compose worker's command, once, from another directory: it must find the scheduled run and
        # run it in $RLAIF_PROJECT_DIR
        worker = compose["services"]["worker"]
        worker_env = clean_env(PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "worker-home"),
                               PREFECT_WORKER_WEBSERVER_PORT=str(free_port()), RLAIF_PROJECT_DIR=str(project))
        command = [str(BIN / "prefect"), *as_list(worker["command"])[1:], "--run-once"]
        (tmp_path / "elsewhere").mkdir()
        ran = subprocess.run(command, cwd=tmp_path / "elsewhere", env=worker_env, capture_output=True, text=True,
                             timeout=150)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        scheduled = flow_run(ids["scheduled"])
        assert scheduled["state_type"] == "COMPLETED", (scheduled["state"], ran.stdout[-3000:], ran.stderr[-3000:])
        assert (project / "ran-2.txt").read_text() == "43"
    finally:
        server.stop()
