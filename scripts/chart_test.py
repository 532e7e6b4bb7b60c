#!/usr/bin/env python3
"""Checks the Helm chart against Helm, Kubernetes and the sluice binary.

`make chart-test` runs it (in the venv scripts/chart-test-requirements.txt
describes). For every values set in RENDERS it

  1. lints the chart with Helm (strict) and validates the values against
     values.schema.json,
  2. renders it with Helm (the Helm v4 SDK, no helm binary needed),
  3. validates every manifest against the Kubernetes JSON schemas of the
     oldest and newest supported Kubernetes versions,
  4. checks what the chart promises: non-root read-only Sluice pods with
     /ready probes, Services that select pods, referenced ConfigMaps and
     Secrets that exist, the ingester StatefulSet's volume, anti-affinity,
     budget and headless Service, the Service Grafana talks to, one
     dashboard ConfigMap per dashboards/*.json for Grafana's sidecar and a
     PrometheusRule holding rules/*.yaml,
  5. runs `sluice -config.file=<rendered> <each workload's args> -config.verify`
     with the workload's environment, so the binary accepts the config and
     flags every pod starts with.

It also checks that values.schema.json and the chart's own checks refuse
bad values with a useful message, that Chart.yaml's appVersion is the
binary's version, that the dashboards are what scripts/dashboards.py writes,
that k8s/ equals the default render (`--write-k8s` regenerates it), that the
image's default config and the examples are valid, and prints
`chart-test: N passed, M failed`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "sluice"
K8S_DIR = ROOT / "k8s"
EXAMPLES = ROOT / "examples"
RELEASE = "sluice"
NAMESPACE = "monitoring"
# Oldest supported (Chart.yaml kubeVersion) and newest the schemas know.
KUBE_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]

# (name, values files merged in order, whether it enables components the
# binary may not have yet).
RENDERS = [
    ("default", ["default-values.yaml"], False),
    ("single-binary", ["single-binary-values.yaml"], False),
    ("production", ["production-values.yaml"], False),
    ("next", ["production-values.yaml", "next-values.yaml"], True),
]

# Refusals of `-config.verify` that mean "this binary does not have that yet",
# not "the chart is wrong". A workload refused for one of these reasons is
# reported as pending; once the binary has the feature, verify must pass.
# (pattern, reason, applies to renders of components the binary is gaining only)
KNOWN_GAPS = [
    (
        re.compile(r"the distributor currently reaches the ingester in process"),
        "a distributor apart from the ingesters needs the ring wired into the binary",
        False,
    ),
    (
        re.compile(r'unknown target "(query-frontend|compactor|ruler)"'),
        "the binary has no such target yet",
        True,
    ),
    (
        re.compile(r"unknown key `(compactor|frontend|query_range)[`.]"),
        "the binary has no such config section yet",
        True,
    ),
]

# Placeholder environment for the verify runs (Kubernetes fills these in).
POD_IP = "10.20.30.40"

# Custom resources kubernetes-validate has no schema for, with the fields the
# chart must set on them.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector", "spec.endpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
}

DASHBOARDS = CHART / "dashboards"
RULES = CHART / "rules"


@dataclass
class Report:
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def check(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except AssertionError as err:
            self.failed.append(name)
            print(f"FAIL {name}: {err}", flush=True)
            return
        except Exception as err:  # a crash of the check is a failure too
            self.failed.append(name)
            print(f"FAIL {name}: {type(err).__name__}: {err}", flush=True)
            return
        self.passed += 1
        print(f"ok   {name}", flush=True)


def deep_merge(base: dict, over: dict) -> dict:
    """Merges values the way `helm -f a -f b` does: maps merge, the rest is replaced."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_values(files: list[str]) -> dict:
    values: dict = {}
    for name in files:
        values = deep_merge(values, yaml.safe_load((CHART / "ci" / name).read_text()) or {})
    return values


def render(values: dict) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def documents(manifests: dict[str, str]) -> list[dict]:
    docs = []
    for path in sorted(manifests):
        if path.endswith("NOTES.txt") or not manifests[path].strip():
            continue
        for doc in yaml.safe_load_all(manifests[path]):
            if doc:
                doc["__template"] = path
                docs.append(doc)
    return docs


def strip_meta(doc: dict) -> dict:
    return {key: value for key, value in doc.items() if key != "__template"}


def name_of(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def get_path(doc: dict, dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def sluice_workloads(docs: list[dict]) -> list[tuple[dict, dict]]:
    found = []
    for doc in workloads(docs):
        for container in pod_spec(doc)["containers"]:
            if container["name"] == "sluice":
                found.append((doc, container))
    return found


def find(docs: list[dict], kind: str, name: str) -> dict:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind}/{name} rendered")


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# ---------------------------------------------------------------------------
# Kubernetes schema validation


def validate_kubernetes(docs: list[dict]) -> None:
    problems = []
    for doc in docs:
        resource = strip_meta(doc)
        custom = CUSTOM_KINDS.get((resource.get("apiVersion"), resource.get("kind")))
        if custom is not None:
            missing = [path for path in custom if get_path(resource, path) is None]
            if missing or not get_path(resource, "metadata.name"):
                problems.append(f"{name_of(doc)}: missing {missing}")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                path = ".".join(str(part) for part in err.path)
                problems.append(f"{name_of(doc)} (Kubernetes {version}): {path}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError as err:
                problems.append(f"{name_of(doc)}: {err.message}")
    assert not problems, "\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------
# What the chart promises


def check_sluice_pods(docs: list[dict]) -> None:
    found = sluice_workloads(docs)
    assert found, "no Sluice workload rendered"
    for doc, container in found:
        where = name_of(doc)
        spec = pod_spec(doc)
        security = container.get("securityContext", {})
        assert spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert security.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
        assert security.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
        probe = container.get("readinessProbe", {}).get("httpGet", {})
        assert probe.get("path") == "/ready", f"{where}: readiness probe {probe}"
        assert container.get("resources", {}).get("requests"), f"{where}: no resource requests"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http-metrics": 3100, "grpc": 9095}, f"{where}: ports {ports}"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/etc/sluice", "/var/sluice", "/tmp"} <= mounts, f"{where}: mounts {mounts}"
        assert "-config.expand-env=true" in container["args"], f"{where}: no -config.expand-env=true"
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        assert "checksum/config" in annotations, f"{where}: pods do not roll on config changes"


def check_references(docs: list[dict], values: dict) -> None:
    """Services select pods; ConfigMaps, Secrets and ServiceAccounts referenced exist."""
    pods = [(name_of(d), d["spec"]["template"]["metadata"]["labels"]) for d in workloads(docs)]
    problems = []
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"].get("selector", {})
        if not any(selects(selector, labels) for _, labels in pods):
            problems.append(f"{name_of(service)} selects no pods ({selector})")
    for kind in ("PodDisruptionBudget",):
        for budget in (d for d in docs if d["kind"] == kind):
            selector = budget["spec"]["selector"]["matchLabels"]
            if not any(selects(selector, labels) for _, labels in pods):
                problems.append(f"{name_of(budget)} selects no pods")
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    external = values.get("storage", {}).get("s3", {}).get("existingSecret")
    if external:
        secrets.add(external)
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    for doc in workloads(docs):
        spec = pod_spec(doc)
        if spec.get("serviceAccountName") not in accounts:
            problems.append(f"{name_of(doc)}: ServiceAccount {spec.get('serviceAccountName')} not rendered")
        for volume in spec.get("volumes", []):
            if "configMap" in volume and volume["configMap"]["name"] not in configmaps:
                problems.append(f"{name_of(doc)}: ConfigMap {volume['configMap']['name']} not rendered")
        for container in spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in secrets:
                    problems.append(f"{name_of(doc)}: Secret {ref['name']} not rendered")
    for scaler in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
        target = scaler["spec"]["scaleTargetRef"]
        find(docs, target["kind"], target["name"])
        assert "replicas" not in find(docs, target["kind"], target["name"])["spec"], (
            f"{name_of(scaler)}: its target also fixes replicas"
        )
    assert not problems, "\n  " + "\n  ".join(problems)


def check_microservices(docs: list[dict], values: dict) -> None:
    ingester = find(docs, "StatefulSet", f"{RELEASE}-ingester")
    expected_replicas = values.get("ingester", {}).get("replicas", 3)
    assert ingester["spec"]["replicas"] == expected_replicas, ingester["spec"]["replicas"]
    claims = [c["metadata"]["name"] for c in ingester["spec"].get("volumeClaimTemplates", [])]
    assert claims == ["data"], f"ingester volume claims {claims}"
    spec = pod_spec(ingester)
    anti = get_path(spec, "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution")
    assert anti and anti[0]["topologyKey"] == "kubernetes.io/hostname", "ingester anti-affinity"
    assert spec["terminationGracePeriodSeconds"] >= 300, "ingester grace period too short to flush"
    container = next(c for c in spec["containers"] if c["name"] == "sluice")
    assert "-ring.instance-addr=$(POD_IP):9095" in container["args"], container["args"]
    assert "-target=ingester" in container["args"], container["args"]
    budget = find(docs, "PodDisruptionBudget", f"{RELEASE}-ingester")
    assert budget["spec"]["maxUnavailable"] == 1, budget["spec"]
    headless = find(docs, "Service", ingester["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None", "ingester Service is not headless"
    assert any(p["port"] == 9095 for p in headless["spec"]["ports"]), "headless Service has no gRPC port"
    for component in ("distributor", "querier"):
        find(docs, "Deployment", f"{RELEASE}-{component}")
        find(docs, "Service", f"{RELEASE}-{component}")
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    frontend = values.get("queryFrontend", {}).get(
        "enabled", defaults["queryFrontend"]["enabled"]
    )
    read = "query-frontend" if frontend else "querier"
    api = find(docs, "Service", RELEASE)
    assert api["spec"]["selector"].get("app.kubernetes.io/component") == read, (
        f"the API Service selects {api['spec']['selector']}, expected the {read} pods"
    )
    assert any(p["port"] == 3100 for p in api["spec"]["ports"]), "API Service not on 3100"
    compactor = values.get("compactor", {}).get("enabled", False)
    if compactor:
        stateful = find(docs, "StatefulSet", f"{RELEASE}-compactor")
        assert stateful["spec"]["replicas"] == 1, "more than one compactor"
        assert stateful["spec"].get("volumeClaimTemplates"), "compactor has no volume"
    config = yaml.safe_load(find(docs, "ConfigMap", f"{RELEASE}-config")["data"]["config.yaml"])
    if frontend:
        find(docs, "Deployment", f"{RELEASE}-query-frontend")
        # Live tails reach a querier through the frontend's proxy.
        proxy = config["frontend"]["tail_proxy_url"]
        assert proxy == f"http://{RELEASE}-querier:3100", proxy
        find(docs, "Service", f"{RELEASE}-querier")
    ruler = values.get("ruler", {}).get("enabled", defaults["ruler"]["enabled"])
    if ruler:
        deployment = find(docs, "Deployment", f"{RELEASE}-ruler")
        expected_rulers = values.get("ruler", {}).get("replicas", defaults["ruler"]["replicas"])
        assert deployment["spec"]["replicas"] == expected_rulers, deployment["spec"]["replicas"]
        assert config["ruler"]["enable_sharding"] is True, "rulers do not shard on the ring"
        if frontend:
            # Grafana's alerting UI reaches the rulers through the frontend.
            proxy = config["frontend"]["ruler_proxy_url"]
            assert proxy == f"http://{RELEASE}-ruler:3100", proxy
            find(docs, "Service", f"{RELEASE}-ruler")
        check_rule_files(docs, values, deployment)
    kvstore = config["common"]["ring"]["kvstore"]
    assert kvstore["store"] == "memcached", f"ring store {kvstore['store']}"
    ring_values = values.get("memcached", {}).get("ring", {})
    if ring_values.get("enabled", True):
        for address in kvstore["memcached"]["addresses"]:
            # <statefulset>-<ordinal>.<headless service>.<namespace>.svc:11211
            match = re.fullmatch(r"(.+)-(\d+)\.(.+)\.(.+)\.svc:11211", address)
            assert match, f"ring address {address}"
            stateful = find(docs, "StatefulSet", match.group(1))
            assert int(match.group(2)) < stateful["spec"]["replicas"], f"{address}: no such pod"
            service = find(docs, "Service", match.group(3))
            assert service["spec"]["clusterIP"] == "None" and match.group(3) == stateful["spec"]["serviceName"]
            assert match.group(4) == NAMESPACE, address
    else:
        assert kvstore["memcached"]["addresses"] == ring_values["addresses"], kvstore
    memcached = {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet" and "-memcached-" in d["metadata"]["name"]}
    expected = set()
    for key, instance in (("ring", "ring"), ("resultsCache", "results"), ("chunksCache", "chunks")):
        if values.get("memcached", {}).get(key, {}).get("enabled", True):
            expected.add(f"{RELEASE}-memcached-{instance}")
    assert memcached == expected, f"memcached StatefulSets {sorted(memcached)}, expected {sorted(expected)}"


def check_rule_files(docs: list[dict], values: dict, workload: dict) -> None:
    """ruler.rules reach the pod as <tenant>/<file> under the rules directory."""
    rules = values.get("ruler", {}).get("rules", {})
    if not rules:
        return
    config = yaml.safe_load(find(docs, "ConfigMap", f"{RELEASE}-config")["data"]["config.yaml"])
    directory = config["ruler"]["storage"]["local"]["directory"]
    container = next(c for c in pod_spec(workload)["containers"] if c["name"] == "sluice")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts.get("rules") == directory, f"{name_of(workload)}: rules mounted at {mounts.get('rules')}, read from {directory}"
    volume = next(v for v in pod_spec(workload)["volumes"] if v["name"] == "rules")
    configmap = find(docs, "ConfigMap", volume["configMap"]["name"])
    paths = {item["path"]: configmap["data"][item["key"]] for item in volume["configMap"]["items"]}
    for tenant, files in rules.items():
        for file, text in files.items():
            assert paths.get(f"{tenant}/{file}") == text, f"{tenant}/{file} not mounted as written"


def check_single_binary(docs: list[dict], values: dict) -> None:
    stateful = find(docs, "StatefulSet", RELEASE)
    assert stateful["spec"]["replicas"] == 1
    container = next(c for c in pod_spec(stateful)["containers"] if c["name"] == "sluice")
    assert "-target=all" in container["args"], container["args"]
    assert not [d for d in docs if d["kind"] == "Deployment"], "single-binary mode renders Deployments"
    api = find(docs, "Service", RELEASE)
    assert api["spec"]["selector"].get("app.kubernetes.io/component") == "single-binary"
    check_rule_files(docs, values, stateful)


def check_grafana_datasource(docs: list[dict]) -> None:
    configmap = find(docs, "ConfigMap", f"{RELEASE}-grafana-datasource")
    (text,) = configmap["data"].values()
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["type"] == "loki", source
    expected = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:3100"
    assert source["url"] == expected, f"data source URL {source['url']}, expected {expected}"


def check_dashboards(docs: list[dict], values: dict) -> None:
    """One ConfigMap per dashboard file, labelled for Grafana's sidecar,
    holding the file's JSON unchanged."""
    settings = values.get("grafana", {}).get("dashboards", {})
    labels = settings.get("labels", {"grafana_dashboard": "1"})
    files = {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}
    assert files, f"no dashboards in {DASHBOARDS}"
    found: dict[str, dict] = {}
    for doc in docs:
        if doc["kind"] != "ConfigMap" or not doc["metadata"]["name"].startswith(f"{RELEASE}-dashboard-"):
            continue
        for key, value in labels.items():
            assert doc["metadata"]["labels"].get(key) == value, f"{doc['metadata']['name']} lacks label {key}={value}"
        namespace = settings.get("namespace") or NAMESPACE
        assert doc["metadata"]["namespace"] == namespace, doc["metadata"]
        for name, text in doc["data"].items():
            found[name] = json.loads(text)
    assert found == files, f"dashboard ConfigMaps hold {sorted(found)}, the chart has {sorted(files)}"
    uids = [board["uid"] for board in files.values()]
    assert len(set(uids)) == len(uids), f"dashboard uids repeat: {uids}"


def check_prometheus_rule(docs: list[dict]) -> None:
    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    groups = [group for path in sorted(RULES.glob("*.yaml")) for group in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == groups, "the PrometheusRule's groups differ from rules/*.yaml"


def check_dashboards_generated() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dashboards.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr.strip()


def check_minio(docs: list[dict]) -> None:
    job = find(docs, "Job", f"{RELEASE}-minio-make-bucket")
    env = {e["name"]: e.get("value") for e in pod_spec(job)["containers"][0]["env"]}
    config = yaml.safe_load(find(docs, "ConfigMap", f"{RELEASE}-config")["data"]["config.yaml"])
    aws = config["storage_config"]["aws"]
    assert env["BUCKET"] == aws["bucketnames"], (env["BUCKET"], aws["bucketnames"])
    assert env["MINIO_URL"] == aws["endpoint"], (env["MINIO_URL"], aws["endpoint"])
    service = find(docs, "Service", f"{RELEASE}-minio")
    host = aws["endpoint"].split("//")[1].split(".")[0]
    assert host == service["metadata"]["name"], f"endpoint {aws['endpoint']} is not the MinIO Service"


# Values the chart must refuse, and a phrase the refusal must contain.
BAD_VALUES = [
    ({"ingester": {"replica": 3}}, "additional properties 'replica' not allowed"),
    ({"deploymentMode": "distributed"}, "deploymentMode"),
    ({"storage": {"type": "filesystem"}, "minio": {"enabled": False}}, "storage.type=filesystem works only with deploymentMode=singleBinary"),
    ({"ingester": {"replicas": 2}}, "sluice.ring.replication_factor (3) exceeds ingester.replicas (2)"),
    ({"memcached": {"ring": {"enabled": False}}}, "microservices mode needs a memcached for the ring"),
    ({"sluice": {"auth_enabled": True}}, "set grafana.datasource.tenant"),
    ({"storage": {"s3": {"endpoint": "minio:9000"}}}, "/storage/s3/endpoint"),
]


def check_refusals() -> None:
    problems = []
    for values, phrase in BAD_VALUES:
        try:
            render(values)
        except Exception as err:
            if phrase not in str(err):
                problems.append(f"{values}: refused, but the message lacks {phrase!r}: {err}")
            continue
        problems.append(f"{values}: rendered, expected a refusal mentioning {phrase!r}")
    assert not problems, "\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------
# The binary


def env_value(env: dict) -> str:
    ref = env.get("valueFrom", {})
    if "fieldRef" in ref:
        return {"status.podIP": POD_IP}.get(ref["fieldRef"]["fieldPath"], "placeholder")
    if "secretKeyRef" in ref:
        return f"secret-{ref['secretKeyRef']['key']}"
    return env.get("value", "")


def kube_expand(text: str, env: dict[str, str]) -> str:
    """Expands $(VAR) in container args as the kubelet does."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def verify_workloads(report: Report, label: str, docs: list[dict], binary: Path, future: bool) -> None:
    configmap = find(docs, "ConfigMap", f"{RELEASE}-config")
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(configmap["data"]["config.yaml"])
        for doc, container in sluice_workloads(docs):
            env = {e["name"]: env_value(e) for e in container.get("env", [])}
            args = []
            for arg in container["args"]:
                arg = kube_expand(arg, env)
                if arg.startswith("-config.file="):
                    arg = f"-config.file={config_path}"
                args.append(arg)
            target = next(a.split("=", 1)[1] for a in args if a.startswith("-target="))
            name = f"{label}: sluice -config.verify -target={target} ({name_of(doc)})"
            run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}

            def verify(args=args, run_env=run_env, target=target, name=name) -> None:
                result = subprocess.run(
                    [str(binary), *args, "-config.verify"],
                    env=run_env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    cwd=tmp,
                )
                if result.returncode != 0:
                    for pattern, reason, future_only in KNOWN_GAPS:
                        if (future or not future_only) and pattern.search(result.stderr):
                            report.pending.append(f"{name}: {reason}")
                            print(f"pend {name}: {reason}", flush=True)
                            raise _Pending()
                    raise AssertionError(f"exit {result.returncode}: {result.stderr.strip()}")
                effective = yaml.safe_load(result.stdout)
                assert effective["target"] == target, f"effective target {effective['target']}"
                assert effective["server"]["http_listen_port"] == 3100
                assert effective["server"]["grpc_listen_port"] == 9095
                assert effective["common"]["path_prefix"] == "/var/sluice"
                if any(a.startswith("-ring.instance-addr=") for a in args):
                    addr = effective["common"]["ring"]["instance_addr"]
                    assert addr == f"{POD_IP}:9095", f"ring instance_addr {addr}"
                if "AWS_ACCESS_KEY_ID" in run_env:
                    key = effective["storage_config"]["aws"]["access_key_id"]
                    assert key == run_env["AWS_ACCESS_KEY_ID"], "S3 credentials were not expanded from the environment"

            _check_allowing_pending(report, name, verify)


class _Pending(Exception):
    pass


def _check_allowing_pending(report: Report, name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except _Pending:
        return
    except Exception as err:
        report.failed.append(name)
        print(f"FAIL {name}: {err}", flush=True)
        return
    report.passed += 1
    print(f"ok   {name}", flush=True)


def check_app_version(binary: Path) -> None:
    output = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"version (\S+)", output)
    assert match, f"cannot read the version from: {output!r}"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert str(chart["appVersion"]) == match.group(1), (
        f"Chart.yaml appVersion {chart['appVersion']} but the binary is {match.group(1)}: "
        "bump appVersion (and the chart version) with the release"
    )


def check_image_config(binary: Path) -> None:
    """The image's default config (docker/sluice.yaml) is valid for -target=all."""
    config = ROOT / "docker" / "sluice.yaml"
    result = subprocess.run(
        [str(binary), f"-config.file={config}", "-target=all", "-config.verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.strip()
    effective = yaml.safe_load(result.stdout)
    assert effective["common"]["path_prefix"] == "/var/sluice", effective["common"]
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^VOLUME \[?\"?/var/sluice", dockerfile, re.M), "the image does not declare /var/sluice a volume"
    assert re.search(r"^USER 10001", dockerfile, re.M), "the image does not run as the chart's user 10001"
    assert re.search(r"^EXPOSE 3100 9095", dockerfile, re.M), "the image does not expose 3100 and 9095"
    assert "/ready" in dockerfile, "the image has no /ready health check"


IMAGE_RUNTIME_SCRIPT = r"""
set -eu
# A private mount namespace: nothing below touches the machine's mounts.
mount -t tmpfs -o mode=0755 tmpfs /var
install -d -o 10001 -g 10001 -m 0750 /var/sluice
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -o remount,bind,ro /
if touch /etc/sluice-image-test 2>/dev/null; then echo "root filesystem is writable" >&2; exit 2; fi
setpriv --reuid 10001 --regid 10001 --clear-groups \
    "$SLUICE_BIN" -config.file="$CONFIG" -target=all \
    -server.http-listen-address=127.0.0.1 -server.http-listen-port="$HTTP_PORT" \
    -server.grpc-listen-address=127.0.0.1 -server.grpc-listen-port="$GRPC_PORT" \
    2>/tmp/sluice.log &
pid=$!
ready=no
for _ in $(seq 1 100); do
    if bash "$READY" "$HTTP_PORT"; then ready=yes; break; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
done
if [ "$ready" != yes ]; then echo "never ready:" >&2; cat /tmp/sluice.log >&2; kill "$pid" 2>/dev/null; exit 3; fi
echo "files: $(find /var/sluice -mindepth 1 -maxdepth 1 -printf '%u:%f ' | sort)"
kill -TERM "$pid"
wait "$pid" || { echo "exit $? after SIGTERM:" >&2; cat /tmp/sluice.log >&2; exit 4; }
if bash "$READY" "$HTTP_PORT"; then echo "still ready after exit" >&2; exit 5; fi
echo "ok"
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_image_runtime(binary: Path) -> None:
    """What the image promises, without a container runtime: the binary runs
    as uid 10001 with the image's config on a read-only root (only
    /var/sluice and /tmp writable), and docker/sluice-ready, the image's
    HEALTHCHECK, reports /ready."""
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "bash", "-c", IMAGE_RUNTIME_SCRIPT],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SLUICE_BIN": str(binary),
            "CONFIG": str(ROOT / "docker" / "sluice.yaml"),
            "READY": str(ROOT / "docker" / "sluice-ready"),
            "HTTP_PORT": str(free_port()),
            "GRPC_PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr.strip()}"
    files = result.stdout.split("files:", 1)[1].split("\n", 1)[0].split()
    assert files and all(f.startswith("10001:") for f in files), f"state under /var/sluice: {files}"


def can_emulate_image() -> str | None:
    """Why the image runtime check cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespace, setpriv)"
    for tool in ("unshare", "setpriv"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            return f"{tool} not found"
    return None


# ---------------------------------------------------------------------------
# k8s/ and examples/


def k8s_files(manifests: dict[str, str]) -> dict[str, str]:
    """The plain manifests: one file per chart template, as Helm rendered it."""
    header = (
        "# Generated by `make k8s-manifests` from helm/sluice with its default values\n"
        f"# (release {RELEASE}, namespace {NAMESPACE}). Do not edit: change the chart and\n"
        "# regenerate; `make chart-test` fails when this file is out of date.\n"
    )
    files = {}
    for path in sorted(manifests):
        text = manifests[path].strip()
        if path.endswith("NOTES.txt") or not text:
            continue
        if not text.startswith("---"):
            text = "---\n" + text
        files[Path(path).name] = header + text + "\n"
    return files


def check_k8s_in_sync(manifests: dict[str, str]) -> None:
    expected = k8s_files(manifests)
    present = {p.name: p.read_text() for p in K8S_DIR.glob("*.yaml")} if K8S_DIR.is_dir() else {}
    stale = sorted(name for name in expected if present.get(name) != expected[name])
    extra = sorted(set(present) - set(expected))
    assert not stale and not extra, (
        f"k8s/ is out of date with the chart (differs: {stale}, not from the chart: {extra}): run `make k8s-manifests`"
    )


def write_k8s(manifests: dict[str, str]) -> None:
    K8S_DIR.mkdir(exist_ok=True)
    expected = k8s_files(manifests)
    for stale in K8S_DIR.glob("*.yaml"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (K8S_DIR / name).write_text(text)
    print(f"wrote {len(expected)} files to {K8S_DIR.relative_to(ROOT)}/")


def check_examples(default_docs: list[dict]) -> None:
    push = f"http://{RELEASE}-distributor.{NAMESPACE}.svc.cluster.local:3100/loki/api/v1/push"
    promtail = yaml.safe_load((EXAMPLES / "promtail" / "promtail.yaml").read_text())
    urls = [client["url"] for client in promtail["clients"]]
    assert urls == [push], f"promtail pushes to {urls}, the chart's distributor Service is {push}"
    find(default_docs, "Service", f"{RELEASE}-distributor")
    scrape = promtail["scrape_configs"][0]
    assert scrape["kubernetes_sd_configs"][0]["role"] == "pod", "promtail does not discover pods"
    manifests = [d for d in yaml.safe_load_all((EXAMPLES / "promtail" / "promtail-daemonset.yaml").read_text()) if d]
    embedded = next(d for d in manifests if d["kind"] == "ConfigMap")
    assert yaml.safe_load(embedded["data"]["promtail.yaml"]) == promtail, (
        "examples/promtail/promtail-daemonset.yaml embeds a different promtail.yaml"
    )
    for doc in manifests:
        doc["__template"] = "examples/promtail/promtail-daemonset.yaml"
    validate_kubernetes(manifests)
    grafana = yaml.safe_load((EXAMPLES / "grafana" / "datasources.yaml").read_text())
    api = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:3100"
    (source,) = grafana["datasources"]
    assert source["type"] == "loki" and source["url"] == api, f"Grafana data source {source}, expected {api}"


# ---------------------------------------------------------------------------


def lint(values: dict) -> None:
    result = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSIONS[0]}")
    # Severity 1 is informational (e.g. "icon is recommended").
    problems = [f"{m['path']}: {m['error']}" for m in result["messages"] if m["severity"] >= 2]
    problems += result.get("errors") or []
    assert not problems, "\n  " + "\n  ".join(problems)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice-bin", type=Path, help="the sluice binary to verify configs with")
    parser.add_argument("--write-k8s", action="store_true", help="regenerate k8s/ from the default render and exit")
    args = parser.parse_args()

    if args.write_k8s:
        write_k8s(render(load_values(["default-values.yaml"])))
        return 0
    if args.sluice_bin is None or not args.sluice_bin.is_file():
        parser.error("--sluice-bin must name the built sluice binary")
    args.sluice_bin = args.sluice_bin.resolve()

    report = Report()
    print(f"helm {helm.helm_sdk_version()} (helm-python-sdk), Kubernetes schemas {', '.join(KUBE_VERSIONS)}")
    rendered: dict[str, tuple[dict, dict[str, str], list[dict]]] = {}
    for label, files, future in RENDERS:
        values = load_values(files)
        report.check(f"{label}: helm lint --strict", lambda values=values: lint(values))
        try:
            manifests = render(values)
        except Exception as err:
            report.failed.append(f"{label}: render")
            print(f"FAIL {label}: render: {err}", flush=True)
            continue
        report.passed += 1
        print(f"ok   {label}: render ({len(manifests)} templates)", flush=True)
        docs = documents(manifests)
        rendered[label] = (values, manifests, docs)
        report.check(f"{label}: Kubernetes schemas ({len(docs)} objects)", lambda docs=docs: validate_kubernetes(docs))
        report.check(f"{label}: Sluice pods", lambda docs=docs: check_sluice_pods(docs))
        report.check(f"{label}: references", lambda docs=docs, values=values: check_references(docs, values))
        if values.get("deploymentMode", "microservices") == "microservices":
            report.check(f"{label}: microservices layout", lambda docs=docs, values=values: check_microservices(docs, values))
        else:
            report.check(f"{label}: single-binary layout", lambda docs=docs, values=values: check_single_binary(docs, values))
        if values.get("grafana", {}).get("datasource", {}).get("enabled", True):
            report.check(f"{label}: Grafana data source", lambda docs=docs: check_grafana_datasource(docs))
        if values.get("grafana", {}).get("dashboards", {}).get("enabled", True):
            report.check(
                f"{label}: Grafana dashboards", lambda docs=docs, values=values: check_dashboards(docs, values)
            )
        if values.get("prometheusRule", {}).get("enabled", False):
            report.check(f"{label}: PrometheusRule", lambda docs=docs: check_prometheus_rule(docs))
        if values.get("minio", {}).get("enabled", True):
            report.check(f"{label}: MinIO bucket and endpoint", lambda docs=docs: check_minio(docs))
        verify_workloads(report, label, docs, args.sluice_bin, future)

    report.check("dashboards are what scripts/dashboards.py writes", check_dashboards_generated)
    report.check(f"values the chart refuses ({len(BAD_VALUES)})", check_refusals)
    report.check("Chart.yaml appVersion is the binary's version", lambda: check_app_version(args.sluice_bin))
    report.check("docker/sluice.yaml and the Dockerfile", lambda: check_image_config(args.sluice_bin))
    skip = can_emulate_image()
    if skip is None:
        report.check(
            "image runtime: uid 10001, read-only root, sluice-ready health check",
            lambda: check_image_runtime(args.sluice_bin),
        )
    else:
        print(f"skip image runtime check: {skip}")
    if "default" in rendered:
        _, manifests, docs = rendered["default"]
        report.check("k8s/ is the default render", lambda: check_k8s_in_sync(manifests))
        report.check("examples/ point at the chart's Services", lambda: check_examples(docs))

    for line in report.pending:
        print(f"pending: {line}")
    print(f"chart-test: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
