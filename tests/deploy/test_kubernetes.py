"""deploy/kubernetes: every manifest and every kustomize build is valid for a pinned Kubernetes
version (strict schemas), and each mlwatch container runs a real command with real options,
listens where its Service and probes look, reads only configuration the project knows, runs
unprivileged, and agrees with docker-compose.yml.

Builds use ``kubectl kustomize`` (or ``kustomize build``) where one is installed; elsewhere
``build`` merges the overlays' patches itself, and a test checks that both give the same
objects wherever the real tool is there to compare with.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import kubernetes_validate
import pytest
import yaml
from sqlalchemy import make_url

from monitor.cli import main
from monitor.config import Settings
from monitor.settings import load_settings
from tests.conftest import free_port, stop_process, wait_http
from tests.test_compose import COMPOSE, OURS, command_of

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy/kubernetes"
BASE = KUBE / "base"
OVERLAYS = sorted(p.parent for p in (KUBE / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSION = "1.31.0"  # the oldest minor the main managed offerings still support
SECRET = yaml.safe_load((KUBE / "secret.example.yaml").read_text())
COMPOSE_NAME = {
    "mlwatch-server": "server",
    "mlwatch-worker": "worker",
    "mlwatch-dashboard": "dashboard",
    "mlwatch-migrate": "migrate",
    "mlwatch-agent": "agent",
}
WORKLOADS = {"Deployment", "DaemonSet", "Job", "StatefulSet"}
CLUSTER_SCOPED = {"Namespace"}
# Variables mlwatch passes on to a library or the platform rather than reading itself.
READ_ELSEWHERE = {
    "PGPASSWORD": "libpq, under both mlwatch and MLflow",
    "NVIDIA_VISIBLE_DEVICES": "the NVIDIA container runtime",
    "NVIDIA_DRIVER_CAPABILITIES": "the NVIDIA container runtime",
}
MLWATCH_NOT_SETTINGS = {"MLWATCH_URL", "MLWATCH_TOKEN", "MLWATCH_CONFIG"}  # collectors' and the CLI's


# --- building: the real tool, or a small strategic merge ---------------------------------


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def merge(target: Any, patch: Any) -> Any:
    """A strategic merge patch as kustomize applies ours: maps merge, lists of named items merge by name."""
    if isinstance(target, dict) and isinstance(patch, dict):
        out = dict(target)
        for key, value in patch.items():
            out[key] = merge(target[key], value) if key in target else copy.deepcopy(value)
        return out
    if isinstance(target, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        out_list, added = list(target), []
        for item in patch:
            at = next((i for i, old in enumerate(out_list) if old.get("name") == item["name"]), None)
            if at is None:
                added.append(copy.deepcopy(item))
            else:
                out_list[at] = merge(out_list[at], item)
        return added + out_list  # kustomize puts the patch's new items first
    return copy.deepcopy(patch)


def merged_build(directory: Path) -> list[dict[str, Any]]:
    """The objects of a kustomization: resources (files or kustomizations), patches, namespace."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - {"apiVersion", "kind", "namespace", "resources", "patches"}
    assert not unknown, f"{directory}: merged_build does not understand {sorted(unknown)}; extend it or use kustomize"
    objects: list[dict[str, Any]] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        objects.extend(merged_build(path) if path.is_dir() else documents(path))
    for entry in spec.get("patches", []):
        (patch,) = documents(directory / entry["path"])
        at = next(i for i, obj in enumerate(objects) if _key(obj) == _key(patch))
        objects[at] = merge(objects[at], patch)
    for obj in objects:
        if "namespace" in spec and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = spec["namespace"]
    return objects


def kustomize_argv(directory: Path) -> list[str] | None:
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize", str(directory)]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build", str(directory)]
    return None


def build(directory: Path) -> list[dict[str, Any]]:
    argv = kustomize_argv(directory)
    if argv is None:
        return merged_build(directory)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


BUILDS = {d.relative_to(KUBE).as_posix(): build(d) for d in [BASE, *OVERLAYS]}
OBJECTS = {_key(obj): obj for obj in BUILDS["base"]}


def by_kind(kind: str, objects: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [obj for obj in objects or BUILDS["base"] if obj["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(objects: list[dict[str, Any]] | None = None) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) of every container, init containers included."""
    for obj in objects or BUILDS["base"]:
        if obj["kind"] in WORKLOADS:
            pod = pod_spec(obj)
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                yield obj["metadata"]["name"], pod, container


def environment(container: dict[str, Any], objects: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The container's variables as the kubelet sets them, Secret values from secret.example.yaml."""
    env: dict[str, str] = {}
    found = {_key(o): o for o in objects or BUILDS["base"]}
    for source in container.get("envFrom", []):
        env.update(found["ConfigMap", source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        ref = var.get("valueFrom", {})
        if "secretKeyRef" in ref:
            env[var["name"]] = SECRET["stringData"][ref["secretKeyRef"]["key"]]
        elif "fieldRef" in ref:
            env[var["name"]] = {"spec.nodeName": "node-1"}[ref["fieldRef"]["fieldPath"]]
        else:
            env[var["name"]] = var["value"]
    return env


def args_of(container: dict[str, Any]) -> list[str]:
    """The container's args with ``$(VAR)`` expanded, as the kubelet does."""
    env = environment(container)
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], a) for a in container["args"]]


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


MLWATCH = [(name, c) for name, _, c in containers() if c["image"].startswith("mlwatch:") and "args" in c]


# --- the schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(KUBE).as_posix() for p in [*BASE.glob("*.yaml"), KUBE / "secret.example.yaml"])
)
def test_every_manifest_file_is_valid_for_the_pinned_kubernetes(path: str) -> None:
    if path.endswith("kustomization.yaml"):
        assert yaml.safe_load((KUBE / path).read_text())["kind"] == "Kustomization"
        return
    for doc in documents(KUBE / path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_every_kustomize_build_is_valid_for_the_pinned_kubernetes(name: str) -> None:
    assert BUILDS[name], name
    for obj in BUILDS[name]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        assert obj["kind"] in CLUSTER_SCOPED or obj["metadata"]["namespace"] == "mlwatch", _key(obj)


def test_strict_validation_refuses_a_misspelt_field() -> None:
    server = copy.deepcopy(OBJECTS["Deployment", "mlwatch-server"])
    pod_spec(server)["containers"][0]["readinessProbes"] = pod_spec(server)["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbes"):
        kubernetes_validate.validate(server, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(not kustomize_argv(BASE), reason="needs kubectl or kustomize to compare with")
@pytest.mark.parametrize("name", sorted(BUILDS))
def test_the_fallback_build_gives_what_kustomize_gives(name: str) -> None:
    ours = {_key(o): o for o in merged_build(KUBE / name)}
    assert ours == {_key(o): o for o in BUILDS[name]}


def test_the_overlays_change_only_the_agent() -> None:
    base = {_key(o): o for o in BUILDS["base"]}
    for name in BUILDS:
        changed = {key for key, obj in ((_key(o), o) for o in BUILDS[name]) if base.get(key) != obj}
        assert changed <= {("DaemonSet", "mlwatch-agent")}, (name, changed)
        assert {_key(o) for o in BUILDS[name]} == set(base), name


# --- commands, images, ports and probes against the CLI and docker-compose.yml --------------


@pytest.mark.parametrize("name", sorted(name for name, _ in MLWATCH))
def test_every_mlwatch_container_runs_a_real_command_and_options(name: str) -> None:
    (container,) = [c for n, c in MLWATCH if n == name]
    assert "command" not in container, "the image's entrypoint is `mlwatch`; args pick the command"
    args = args_of(container)
    ctx = main.make_context("mlwatch", list(args))
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group):
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"{name}: unknown command {rest[0]!r}"
        ctx = sub.make_context(rest[0], rest[1:], parent=ctx)  # raises on an unknown option or bad value
        command, rest = sub, ctx.protected_args + ctx.args if isinstance(sub, click.Group) else []


def test_every_mlwatch_workload_runs_the_image_and_command_of_compose() -> None:
    assert {name for name, _ in MLWATCH} == set(COMPOSE_NAME)
    for name, container in MLWATCH:
        compose = OURS[COMPOSE_NAME[name]]
        assert container["image"] == compose["image"], name
        args, expected = container["args"], command_of(compose)
        if name == "mlwatch-agent":  # one agent per node, named after the node, not compose's one host
            assert option(args, "--host-name") == "$(NODE_NAME)"
            args = [a for a in args if a != "$(NODE_NAME)"]
            expected = [a for a in expected if a != option(expected, "--host-name")]
        assert args == expected, name


def _pod_labels(name: str) -> dict[str, str]:
    workload = next(o for o in BUILDS["base"] if o["kind"] in WORKLOADS and o["metadata"]["name"] == name)
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


@pytest.mark.parametrize("service", ["mlwatch-server", "mlwatch-dashboard"])
def test_services_and_probes_reach_the_port_the_command_listens_on(service: str) -> None:
    svc = OBJECTS["Service", service]
    assert svc["spec"]["selector"] == _pod_labels(service)
    (container,) = pod_spec(OBJECTS["Deployment", service])["containers"]
    listens = int(option(container["args"], "--port") or 0)
    assert [_container_port(container, p["targetPort"]) for p in svc["spec"]["ports"]] == [listens]
    compose = OURS[COMPOSE_NAME[service]]
    assert str(compose["ports"][0]).rsplit(":", 1)[1] == str(listens)
    probes = [container[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert {_container_port(container, p["httpGet"]["port"]) for p in probes} == {listens}
    compose_path = re.search(r"http://127\.0\.0\.1:\d+(/[^']*)", " ".join(compose["healthcheck"]["test"]))
    assert compose_path and {p["httpGet"]["path"] for p in probes} == {compose_path[1]}


def test_collectors_reach_the_server_through_its_service() -> None:
    url = httpx.URL(OBJECTS["ConfigMap", "mlwatch-env"]["data"]["MLWATCH_URL"])
    svc = OBJECTS["Service", str(url.host)]
    assert url.port in [p["port"] for p in svc["spec"]["ports"]]
    assert OBJECTS["HorizontalPodAutoscaler", "mlwatch-server"]["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "mlwatch-server",
    }
    assert "replicas" not in OBJECTS["Deployment", "mlwatch-server"]["spec"]  # the autoscaler owns it


def test_worker_probe_is_the_health_check_of_compose() -> None:
    (container,) = pod_spec(OBJECTS["Deployment", "mlwatch-worker"])["containers"]
    assert ["CMD", *container["livenessProbe"]["exec"]["command"]] == OURS["worker"]["healthcheck"]["test"]


def _run_until_probed(name: str, tmp_path: Path, path: str) -> None:
    """Run the container's args here (loopback, a free port) and GET its probe path."""
    (container,) = pod_spec(OBJECTS["Deployment", name])["containers"]
    port = free_port()
    args = [a.replace("0.0.0.0", "127.0.0.1") for a in args_of(container)]
    args[args.index("--port") + 1] = str(port)
    env = {**os.environ, **environment(container), "MLWATCH_STORE_URL": f"sqlite:///{tmp_path / 'mlwatch.db'}"}
    env.pop("MLWATCH_CONFIG")  # /etc/mlwatch is the ConfigMap's mount; the file itself is tested below
    subprocess.run([sys.executable, "-m", "monitor", "db", "upgrade"], env=env, cwd=tmp_path, check=True, timeout=120)
    argv = [sys.executable, "-m", "monitor", *args]
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}{path}", timeout=120, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).status_code == 200
    finally:
        stop_process(proc)


@pytest.mark.parametrize("name", ["mlwatch-server", "mlwatch-dashboard"])
def test_probe_paths_answer_200_from_the_container_command_run_here(name: str, tmp_path: Path) -> None:
    (container,) = pod_spec(OBJECTS["Deployment", name])["containers"]
    (path,) = {container[k]["httpGet"]["path"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    _run_until_probed(name, tmp_path, path)


# --- configuration and secrets -------------------------------------------------------------


def _reads(name: str) -> bool:
    source = "\n".join(p.read_text() for p in (ROOT / "monitor").rglob("*.py"))
    return f'"{name}"' in source


@pytest.mark.parametrize("build_name", sorted(BUILDS))
def test_every_variable_is_one_the_project_or_its_platform_reads(build_name: str) -> None:
    objects = BUILDS[build_name]
    for workload, _, container in containers(objects):
        env = environment(container, objects)
        for key in env:
            if key in MLWATCH_NOT_SETTINGS or key in READ_ELSEWHERE:
                assert key in READ_ELSEWHERE or _reads(key), key
            elif key.startswith("MLWATCH_"):
                assert key.removeprefix("MLWATCH_").lower() in Settings.model_fields, (workload, key)
            else:
                used_in_args = any(f"$({key})" in a for a in container.get("args", []))
                assert used_in_args or _reads(key), (workload, key)


def test_configuration_of_each_process_loads_as_mlwatch_settings(tmp_path: Path) -> None:
    config = OBJECTS["ConfigMap", "mlwatch-config"]
    (tmp_path / "mlwatch.yaml").write_text(config["data"]["mlwatch.yaml"])
    for workload, pod, container in containers():
        if workload == "mlwatch-agent":
            continue  # a collector: MLWATCH_URL and MLWATCH_TOKEN only
        env = environment(container)
        volume = next(m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/etc/mlwatch")
        assert next(v for v in pod["volumes"] if v["name"] == volume)["configMap"]["name"] == "mlwatch-config"
        assert env["MLWATCH_CONFIG"] == "/etc/mlwatch/mlwatch.yaml"
        settings = load_settings(environ={**env, "MLWATCH_CONFIG": str(tmp_path / "mlwatch.yaml")})
        assert settings.store_url == SECRET["stringData"]["store-url"], workload
        assert settings.mlflow_tracking_uri == COMPOSE["x-mlwatch"]["environment"]["MLFLOW_TRACKING_URI"]
        assert make_url(settings.store_url).password is None  # PGPASSWORD: no escaping, never in a URL


def test_secrets_come_only_from_the_secret_and_none_is_in_the_build() -> None:
    assert not by_kind("Secret")
    keys = set(SECRET["stringData"])
    used: set[str] = set()
    for workload, _, container in containers():
        for var in container.get("env", []):
            if re.search(r"TOKEN|PASSWORD|SECRET|STORE_URL", var["name"]):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                assert ref and ref["name"] == SECRET["metadata"]["name"], (workload, var["name"])
                assert ref["key"] in keys, (workload, ref["key"])
                used.add(ref["key"])
    assert used == keys  # the example names no key that nothing reads
    server = environment(pod_spec(OBJECTS["Deployment", "mlwatch-server"])["containers"][0])
    assert _settings(server).bootstrap_token == SECRET["stringData"]["bootstrap-token"]
    dashboard = environment(pod_spec(OBJECTS["Deployment", "mlwatch-dashboard"])["containers"][0])
    assert _settings(dashboard).dashboard_secret == SECRET["stringData"]["dashboard-secret"]


def _settings(env: dict[str, str]) -> Settings:
    """The settings of a container's variables, without the ConfigMap's file (tested above)."""
    return load_settings(environ={k: v for k, v in env.items() if k != "MLWATCH_CONFIG"})


# --- security, resources, the agent ----------------------------------------------------------


def test_every_container_runs_unprivileged_with_requests_and_limits() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    user = re.findall(r"^USER (\w+)", dockerfile, re.M)[-1]
    home = re.findall(r"^WORKDIR (\S+)", dockerfile, re.M)[-1]
    assert (user, home) == ("mlwatch", "/home/mlwatch")
    for workload, pod, container in containers():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, workload
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not pod.get("hostNetwork") and not pod.get("automountServiceAccountToken", True), workload
        ours = container["securityContext"]
        assert ours["allowPrivilegeEscalation"] is False and ours.get("privileged") is not True, workload
        assert ours["readOnlyRootFilesystem"] is True and ours["capabilities"] == {"drop": ["ALL"]}, workload
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert {home, "/tmp"} <= writable, workload  # the working directory, caches, the SDK's spool
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), (workload, bound)


def _agent(build_name: str) -> dict[str, Any]:
    (agent,) = [o for o in BUILDS[build_name] if _key(o) == ("DaemonSet", "mlwatch-agent")]
    return pod_spec(agent)


def test_the_agent_sees_the_host_processes_and_only_overlays_give_it_gpus() -> None:
    assert all(not pod.get("hostPID") for name, pod, _ in containers() if name != "mlwatch-agent")
    base = _agent("base")
    assert base["hostPID"] is True
    assert "nvidia.com/gpu" not in base["containers"][0]["resources"]["limits"]
    assert {"overlays/gpu", "overlays/gpu-runtime"} <= set(BUILDS)


def test_the_gpu_overlay_asks_the_device_plugin_for_a_gpu_on_gpu_nodes_only() -> None:
    pod = _agent("overlays/gpu")
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert (
        pod["containers"][0]["resources"]["limits"]["cpu"]
        == _agent("base")["containers"][0]["resources"]["limits"]["cpu"]
    )  # merged into the limits, not replacing them
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["hostPID"] is True


def test_the_gpu_runtime_overlay_shows_every_gpu_and_reserves_none() -> None:
    pod = _agent("overlays/gpu-runtime")
    (container,) = pod["containers"]
    assert pod["runtimeClassName"] == "nvidia"
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    env = environment(container, BUILDS["overlays/gpu-runtime"])
    assert (env["NVIDIA_VISIBLE_DEVICES"], env["NVIDIA_DRIVER_CAPABILITIES"]) == ("all", "utility")
    assert env["MLWATCH_TOKEN"] == SECRET["stringData"]["agent-token"]  # the base's variables are kept


def test_the_migrate_job_runs_once_per_apply_without_restarting_in_place() -> None:
    job = OBJECTS["Job", "mlwatch-migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] > 0
    assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 3600  # gone before the next rollout's apply
