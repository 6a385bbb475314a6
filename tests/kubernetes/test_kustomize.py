"""The Kubernetes deployment (deploy/kubernetes + deploy/overlays/*): rendered by
``kubectl kustomize``, every object validated against the Kubernetes schemas
(kubernetes-validate), and every component's command and environment checked against the
CLI's own parser and settings, as the Helm chart calls them. Also the Dockerfile's shape."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from dranspose.cli import build_parser
from dranspose.config import Settings
from dranspose.services import health
from dranspose.services.ingesters import INGESTER_CLASSES
from tests.paths import ROOT

pytestmark = pytest.mark.e2e  # starts processes (servers, a browser, kubectl)

BASE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p for p in (ROOT / "deploy" / "overlays").iterdir() if (p / "kustomization.yaml").exists())
K8S_VERSION = "1.30.0"
#: environment read by no dranspose setting, set by the Helm chart for information
INFORMATIONAL_ENV = {"BEAMLINE"}
#: which component gets which address variable (Helm chart): workers get neither
ADDRESS_ENV = {"ingester": "INGESTER_URL", "reducer": "REDUCER_URL"}


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed here and could not be installed (scripts/ensure-kubectl)")
    return path


def render(folder: Path) -> list[dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, check=False, timeout=120)
    if out.returncode != 0 and "must be a file" in out.stderr:
        pytest.skip(f"this kubectl's kustomize is too old for overlays (needs kubectl >= 1.21): {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=[BASE, *OVERLAYS], ids=lambda p: p.relative_to(ROOT).as_posix())
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def containers(objs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, c) for d in by_kind(objs, "Deployment").values() for c in d["spec"]["template"]["spec"]["containers"]]


def dranspose_containers(objs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(d, c) for d, c in containers(objs) if c.get("command") == ["dranspose"]]


def resolved_env(objs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    maps = by_kind(objs, "ConfigMap")
    env: dict[str, str] = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["configMapKeyRef"]
            assert ref["name"] in maps, f"{e['name']}: no ConfigMap {ref['name']}"
            env[e["name"]] = maps[ref["name"]]["data"][ref["key"]]
    return env


def settings_aliases() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", []) or ([alias] if isinstance(alias, str) else []))
    return names


def test_every_object_validates_against_the_kubernetes_schemas(rendered: list[dict[str, Any]]) -> None:
    assert {"ConfigMap", "Deployment", "Service", "Ingress"} <= {o["kind"] for o in rendered}
    for obj in rendered:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises on any error


def test_the_pipeline_is_complete(rendered: list[dict[str, Any]]) -> None:
    roles = [parse(c)[0].command for _, c in dranspose_containers(rendered)]
    assert roles.count("controller") == 1 and roles.count("reducer") == 1 and roles.count("worker") == 1
    assert roles.count("ingester") >= 1
    assert "redis" in by_kind(rendered, "Deployment")
    ingresses = by_kind(rendered, "Ingress")
    backends = {p["backend"]["service"]["name"] for i in ingresses.values() for r in i["spec"]["rules"] for p in r["http"]["paths"]}
    assert {"controller", "reducer-web"} <= backends


def parse(container: dict[str, Any]) -> tuple[Any, list[str]]:
    args = container["args"]
    return build_parser().parse_args(args), args


def test_commands_parse_with_the_cli_as_the_helm_chart_calls_them(rendered: list[dict[str, Any]]) -> None:
    for dep, c in dranspose_containers(rendered):
        ns, args = parse(c)  # SystemExit (a failure) on any flag the CLI does not know
        if ns.command in ("controller", "reducer"):
            assert args[1:3] == ["--host", "0.0.0.0"], args  # reachable from the Service
            assert ns.host == "0.0.0.0"
        if ns.command == "ingester":
            assert args[1] == "--name" and args[3] == "-c" and args[5] == "-u", args  # the chart's order
            assert args[4] in INGESTER_CLASSES or ":" in args[4], args[4]
            assert urlparse(args[6]).scheme in ("tcp", "ipc", "http", "https"), args[6]
        if ns.command in ("worker", "reducer") and "-c" in args:
            assert re.fullmatch(r"[\w.]+:[\w.]+", args[args.index("-c") + 1]), args


def test_environment_is_what_the_cli_reads(rendered: list[dict[str, Any]]) -> None:
    known = settings_aliases()
    for dep, c in dranspose_containers(rendered):
        ns, _ = parse(c)
        env = resolved_env(rendered, c)
        assert set(env) <= known | INFORMATIONAL_ENV, set(env) - known
        assert {"REDIS_URL", "LOG_LEVEL", "BEAMLINE"} <= set(env)
        Settings.model_validate({k: v for k, v in env.items() if k in known})  # values the settings accept
        for role, var in ADDRESS_ENV.items():
            assert (var in env) == (ns.command == role), (dep["metadata"]["name"], var)


def service_for(objs: list[dict[str, Any]], host: str, port: int) -> dict[str, Any]:
    svc = by_kind(objs, "Service").get(host)
    assert svc is not None, f"no Service {host}"
    assert any(p["port"] == port for p in svc["spec"]["ports"]), f"Service {host} has no port {port}"
    return svc


def selects(svc: dict[str, Any], dep: dict[str, Any]) -> bool:
    labels = dep["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())


def test_addresses_point_at_services_of_the_right_pods(rendered: list[dict[str, Any]]) -> None:
    deployments = by_kind(rendered, "Deployment")
    for dep, c in dranspose_containers(rendered):
        env = resolved_env(rendered, c)
        redis_url = urlparse(env["REDIS_URL"])
        assert selects(service_for(rendered, redis_url.hostname or "", redis_url.port or 6379), deployments["redis"])
        for var in ("INGESTER_URL", "REDUCER_URL"):
            if var in env:
                url = urlparse(env[var])
                svc = service_for(rendered, url.hostname or "", url.port or 0)
                assert selects(svc, dep), f"{var} of {dep['metadata']['name']} reaches other pods"
                assert any(p["containerPort"] == url.port for p in c["ports"])
    for svc in by_kind(rendered, "Service").values():
        assert any(selects(svc, d) for d in deployments.values()), f"Service {svc['metadata']['name']} selects no pod"


def test_probes_use_real_health_endpoints_and_resources_are_requested(rendered: list[dict[str, Any]]) -> None:
    for dep, c in containers(rendered):
        name = dep["metadata"]["name"]
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"], name
        for probe in ("livenessProbe", "readinessProbe"):
            p = c[probe]
            if "httpGet" in p:
                port = p["httpGet"]["port"]
                number = next(x["containerPort"] for x in c["ports"] if x["name"] == port) if isinstance(port, str) else port
                ns, _ = parse(c)
                assert ns.port == number, f"{name}: probe on {number}, the {ns.command} listens on {ns.port}"
                assert p["httpGet"]["path"] == "/healthz"
            else:
                cmd = p["exec"]["command"]
                if cmd[:3] == ["python", "-m", "dranspose.services.health"]:
                    kind = cmd[cmd.index("--kind") + 1]
                    assert kind == parse(c)[0].command, name  # checks its own kind
                    health_parser_accepts(cmd[3:])
                else:
                    assert name == "redis" and cmd == ["redis-cli", "ping"]
        sec = dep["spec"]["template"]["spec"].get("securityContext", {})
        assert sec.get("runAsNonRoot") is True and sec.get("runAsUser", 0) != 0, name


def health_parser_accepts(args: list[str]) -> None:
    """The health command's arguments parse (a SystemExit with status 2 otherwise)."""
    import argparse
    from unittest import mock

    seen: list[argparse.Namespace] = []
    with mock.patch.object(health, "check_presence", lambda *a: (seen.append(a) or True, "ok")), \
            mock.patch.object(health, "check_http", lambda *a: (True, "ok")):
        assert health.main(args) == 0
    assert seen, args


def test_reducer_and_controller_serve_what_probes_and_ingresses_use(redis_url: str) -> None:
    from fastapi.testclient import TestClient

    from dranspose.services.controller import create_app
    from dranspose.services.reducer import Reducer

    reducer = Reducer("reducer", Settings(redis_url=redis_url, reducer_url="tcp://127.0.0.1:0"), http_port=None)
    try:
        client = TestClient(reducer.build_app())
        for path in ("/healthz", "/metrics", "/viewer", "/"):
            assert client.get(path).status_code == 200, path
    finally:
        pull = getattr(reducer, "pull", None)  # bound in the constructor or only in start()
        if pull is not None:
            pull.close(0)
    with TestClient(create_app(Settings(redis_url=redis_url))) as client:  # runs the lifespan: scheduler up
        for path in ("/healthz", "/metrics", "/"):
            assert client.get(path).status_code == 200, path


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        if op.upper() == "FROM":
            stages.append([])
        stages[-1].append((op.upper(), rest))
    return stages


def test_dockerfile_installs_a_built_wheel_as_non_root_with_a_healthcheck() -> None:
    stages = dockerfile_stages((ROOT / "deploy" / "Dockerfile").read_text())
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert any(op == "RUN" and "pip wheel" in arg for op, arg in build)
    runs = [arg for op, arg in final if op == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs and all(".whl" in r for r in installs) and not any(re.search(r"pip install[^&]* \.(\s|$)", r) for r in runs)
    assert any(op == "COPY" and arg.startswith("--from=") for op, arg in final)
    assert not any(op == "COPY" and "src" in arg.split() for op, arg in final)  # no sources in the image
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    checks = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert len(checks) == 1
    cmd = yaml.safe_load(checks[0].split("CMD", 1)[1].strip())
    assert cmd[:3] == ["python", "-m", "dranspose.services.health"]
    out = subprocess.run([sys.executable, "-m", "dranspose.services.health", "--help"],
                         capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
