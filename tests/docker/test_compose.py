"""The compose stacks, read with PyYAML: which services each profile starts, health checks on /ready, one
settlement key per settling container, the balancer's upstream list, no default secrets on mainnet, and the
dev-chain constants against the payment code. `make docker-check` renders the same files with docker-compose;
the last tests here do that too (skipped where docker-compose is not installed).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DEVCHAIN_STACK = DOCKER / "compose.yml"
MAINNET_STACK = DOCKER / "compose.mainnet.yml"
TEMPLATES = DOCKER / "compose.templates.yml"
STACKS = (DEVCHAIN_STACK, MAINNET_STACK)

HTTP_SERVICES = ("tts", "tts-gpu", "tts-1", "tts-2", "tts-3")
REPLICAS = ("tts-1", "tts-2", "tts-3")
SERVICE_DOCKERFILES = ("service.Dockerfile", "service-gpu.Dockerfile")
KEY_VAR = "SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY"
EXPECTED_PROFILES: dict[Path, dict[str | None, set[str]]] = {
    DEVCHAIN_STACK: {
        None: {"anvil", "devchain-deploy", "fetch-model", "tts"},
        "gpu": {"tts-gpu"},
        "scale": {"postgres", "tts-1", "tts-2", "tts-3", "lb"},
    },
    MAINNET_STACK: {
        None: {"fetch-model", "tts"},
        "gpu": {"tts-gpu"},
        "scale": {"postgres", "tts-1", "tts-2", "tts-3", "lb"},
    },
}


# --- a small reader: YAML anchors come from PyYAML, `extends` is resolved here ------------------------------


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Compose's extends merge, as far as these files use it: mappings merge key by key, volumes merge by
    their container path, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if key == "extends":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        elif key == "volumes" and key in merged:
            by_target = {volume.split(":")[1]: volume for volume in merged[key]}
            by_target.update({volume.split(":")[1]: volume for volume in value})
            merged[key] = list(by_target.values())
        else:
            merged[key] = value
    return merged


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return parsed


def _resolve(path: Path, name: str) -> dict[str, Any]:
    service: dict[str, Any] = copy.deepcopy(_read(path)["services"][name])
    extends = service.get("extends")
    if extends is None:
        return service
    base_path = path.parent / extends["file"] if "file" in extends else path
    return _merge(_resolve(base_path, extends["service"]), service)


def load_services(path: Path) -> dict[str, dict[str, Any]]:
    names = _read(path)["services"]
    return {name: _resolve(path, name) for name in names}


def active_services(services: dict[str, dict[str, Any]], profile: str | None) -> set[str]:
    """What `docker compose [--profile P] up` starts: services without profiles plus those of P."""
    return {name for name, spec in services.items() if not spec.get("profiles") or profile in spec["profiles"]}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in (spec.get("environment") or {}).items()}


# --- profiles and dependencies ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_each_profile_adds_exactly_its_services(stack: Path) -> None:
    services = load_services(stack)
    expected = EXPECTED_PROFILES[stack]
    default = active_services(services, None)
    assert default == expected[None]
    for profile in ("gpu", "scale"):
        assert active_services(services, profile) - default == expected[profile]


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
@pytest.mark.parametrize("profile", [None, "gpu", "scale"])
def test_dependencies_stay_inside_the_active_set(stack: Path, profile: str | None) -> None:
    # compose v2 refuses `up` when a started service depends on one that the profile leaves out; v1's config
    # does not check this, so it is checked here.
    services = load_services(stack)
    active = active_services(services, profile)
    for name in active:
        assert set(services[name].get("depends_on", {})) <= active, name


def test_services_start_after_the_chain_has_its_token_and_the_model_is_there() -> None:
    services = load_services(DEVCHAIN_STACK)
    assert services["devchain-deploy"]["depends_on"]["anvil"]["condition"] == "service_healthy"
    for name in HTTP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["devchain-deploy"]["condition"] == "service_completed_successfully", name
        assert depends_on["fetch-model"]["condition"] == "service_completed_successfully", name


def test_root_compose_file_includes_the_dev_chain_stack() -> None:
    root = yaml.safe_load((REPO / "compose.yml").read_text(encoding="utf-8"))
    assert set(root) == {"name", "include"}
    assert root["include"] == ["docker/compose.yml"]


# --- health, ports, volumes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_every_http_service_is_healthy_only_when_ready(stack: Path) -> None:
    services = load_services(stack)
    for name in HTTP_SERVICES:
        test = " ".join(services[name]["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/ready" in test, name
    # Waiting for a service's health needs a healthcheck on it (an image's own would do, but be explicit).
    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}'s health"


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_models_are_read_only_in_the_service_and_written_only_by_the_fetch_step(stack: Path) -> None:
    services = load_services(stack)
    for name in HTTP_SERVICES:
        assert "${SMALLTTS_MODELS:-models}:/models:ro" in services[name]["volumes"], name
        assert any(volume.endswith(":/data") for volume in services[name]["volumes"]), name
    assert "${SMALLTTS_MODELS:-models}:/models" in services["fetch-model"]["volumes"]


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_replicas_are_reached_only_through_the_balancer(stack: Path) -> None:
    services = load_services(stack)
    for name in REPLICAS:
        assert "ports" not in services[name], name
        assert services[name]["volumes"].count("scale-data:/data") == 1, name
    assert services["lb"]["ports"] == ["${SMALLTTS_PUBLISH_ADDR:-127.0.0.1}:${SMALLTTS_PUBLISH_LB_PORT:-8080}:8080"]
    assert set(services["lb"]["depends_on"]) == set(REPLICAS)


def test_published_ports_bind_to_loopback_unless_asked() -> None:
    for stack in STACKS:
        for name, spec in load_services(stack).items():
            for port in spec.get("ports", []):
                assert port.startswith("${SMALLTTS_PUBLISH_ADDR:-127.0.0.1}:"), f"{stack.name}: {name}: {port}"


def test_gpu_service_reserves_gpus() -> None:
    for stack in STACKS:
        spec = load_services(stack)["tts-gpu"]
        (device,) = spec["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
        assert device["driver"] == "nvidia"
        assert spec["build"]["dockerfile"] == "docker/service-gpu.Dockerfile"


# --- payments: keys, ledger, balancer -----------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_every_settling_container_has_its_own_key(stack: Path) -> None:
    # The design choice (docker/compose.yml header): one key per settling container, because the SDK's
    # settlement signer keeps the account nonce behind a process-local lock.
    services = load_services(stack)
    settling = {name: environment(spec) for name, spec in services.items() if KEY_VAR in environment(spec)}
    assert set(settling) == set(HTTP_SERVICES)
    keys = [env[KEY_VAR] for env in settling.values()]
    assert len(set(keys)) == len(keys), keys
    # Each also names itself in the ledger, stably (the default, the host name, changes with every container).
    assert {name: env["SMALLTTS_PAYMENT__INSTANCE_ID"] for name, env in settling.items()} == {n: n for n in settling}
    for name, env in settling.items():
        assert env["SMALLTTS_PAYMENT__MODE"] in ("local", "${SMALLTTS_PAYMENT__MODE:-local}"), name


@pytest.mark.parametrize("stack", STACKS, ids=lambda p: p.name)
def test_replicas_share_one_postgres_ledger(stack: Path) -> None:
    services = load_services(stack)
    urls = {environment(services[name])["SMALLTTS_PAYMENT__LEDGER_URL"] for name in REPLICAS}
    (url,) = urls
    assert url.startswith("postgresql://smalltts:") and url.endswith("@postgres:5432/smalltts")
    for name in REPLICAS:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    # One replica creates the ledger tables; the others wait for it to be ready.
    assert "tts-1" not in services["tts-1"]["depends_on"]
    for name in ("tts-2", "tts-3"):
        assert services[name]["depends_on"]["tts-1"]["condition"] == "service_healthy"
    # tts and tts-gpu share their own ledger (tests/service/payment/test_compose_ledger.py), never this one.
    for name in set(HTTP_SERVICES) - set(REPLICAS):
        assert environment(services[name])["SMALLTTS_PAYMENT__LEDGER_URL"] != url, name


def test_balancer_upstream_lists_exactly_the_replicas() -> None:
    conf = (DOCKER / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream smalltts \{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)\b", upstream.group(1), re.M)
    assert servers == [(name, "8000") for name in REPLICAS]
    assert "proxy_pass http://smalltts;" in conf
    # A paid POST must never be replayed on a second replica by the balancer.
    directives = [line.split("#", 1)[0] for line in conf.splitlines()]
    assert not any("non_idempotent" in line for line in directives)
    lb = load_services(TEMPLATES)["lb"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]


def test_mainnet_stack_has_no_dev_chain_and_no_default_secrets() -> None:
    text = MAINNET_STACK.read_text(encoding="utf-8")
    assert not re.search(r"0x[0-9a-fA-F]{64}", text), "a literal private key in the mainnet stack"
    assert "anvil" not in load_services(MAINNET_STACK)
    for name, spec in load_services(MAINNET_STACK).items():
        env = environment(spec)
        if KEY_VAR in env:
            assert re.fullmatch(r"\$\{SMALLTTS_\w+_KEY:-\}", env[KEY_VAR]), name
        if name in HTTP_SERVICES:
            assert env["SMALLTTS_PAYMENT__NETWORK"] == "base", name
            assert env["SMALLTTS_PAYMENT__PAY_TO"].startswith("${SMALLTTS_PAYMENT__PAY_TO:?"), name
    assert load_services(MAINNET_STACK)["postgres"]["environment"]["POSTGRES_PASSWORD"] == (
        "${SMALLTTS_POSTGRES_PASSWORD:-}"
    )


# --- the environment against the real settings ---------------------------------------------------------------


def interpolate(value: str, host_env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as the stacks use them."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3)
        if host_env.get(name):
            return host_env[name]
        if operator == ":?":
            raise KeyError(f"{name}: {word}")
        return word or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", substitute, value)


def image_environment(dockerfile: str) -> dict[str, str]:
    """The ENV defaults of a Dockerfile's final stage (KEY=value pairs)."""
    text = (DOCKER / dockerfile).read_text(encoding="utf-8").split("\nFROM ")[-1]
    pairs: dict[str, str] = {}
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", text, re.M):
        for key, value in re.findall(r"(\w+)=(\S+)", block.replace("\\\n", " ")):
            pairs[key] = value
    return pairs


def container_settings(stack: Path, name: str, host_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service Settings that container would build: image ENV, then the stack's environment."""
    from service.settings import Settings

    spec = load_services(stack)[name]
    env = image_environment(Path(spec["build"]["dockerfile"]).name)
    env.update({key: interpolate(value, host_env) for key, value in environment(spec).items()})
    for key in [key for key in os.environ if key.startswith("SMALLTTS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("SMALLTTS_"):  # not PATH and the like: they would change this test process
            monkeypatch.setenv(key, value)
    return Settings()


def test_every_smalltts_variable_names_a_real_setting() -> None:
    # Settings ignore unknown variables, so a renamed field would silently fall back to its default.
    from pydantic import BaseModel

    from service.settings import Settings

    def exists(model: type[BaseModel], path: list[str]) -> bool:
        field = model.model_fields.get(path[0])
        if field is None:
            return False
        if len(path) == 1:
            return True
        nested = field.annotation
        return isinstance(nested, type) and issubclass(nested, BaseModel) and exists(nested, path[1:])

    names = {key for stack in STACKS for spec in load_services(stack).values() for key in environment(spec)}
    names |= {key for dockerfile in SERVICE_DOCKERFILES for key in image_environment(dockerfile)}
    for name in sorted(names):
        if name.startswith("SMALLTTS_"):
            assert exists(Settings, name.removeprefix("SMALLTTS_").lower().split("__")), name


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_devchain_containers_build_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = container_settings(DEVCHAIN_STACK, name, {}, monkeypatch)
    payment = settings.payment
    assert (settings.host, settings.port, str(settings.model_dir)) == ("0.0.0.0", 8000, "/models")
    assert (payment.mode, payment.network, payment.instance_id) == ("local", "devchain", name)
    assert payment.asset == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    # One RPC name for the service (compose alias) and the page (GET /v1/devchain; *.localhost is loopback).
    assert payment.rpc_url == "http://anvil.localhost:8545"
    assert "anvil.localhost" in load_services(DEVCHAIN_STACK)["anvil"]["networks"]["default"]["aliases"]
    assert payment.facilitator_private_key is not None
    if name in REPLICAS:
        assert payment.ledger_url == "postgresql://smalltts:smalltts@postgres:5432/smalltts"
    else:
        assert payment.ledger_url == "sqlite:////ledger/payments.sqlite3"  # one file shared by tts and tts-gpu


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_mainnet_containers_build_valid_settings_from_the_operators_env(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "0x" + "ab" * 32
    host_env = {
        "SMALLTTS_PAYMENT__PAY_TO": "0x" + "12" * 20,
        "SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY": key,
        "SMALLTTS_TTS_GPU_FACILITATOR_PRIVATE_KEY": key,
        **{f"SMALLTTS_TTS_{n}_FACILITATOR_PRIVATE_KEY": key for n in (1, 2, 3)},
        "SMALLTTS_POSTGRES_PASSWORD": "secret",
    }
    payment = container_settings(MAINNET_STACK, name, host_env, monkeypatch).payment
    assert (payment.mode, payment.network, payment.rpc_url) == ("local", "base", "https://mainnet.base.org")
    assert payment.facilitator_private_key.get_secret_value() == key
    assert payment.asset is None  # the network's USDC


def test_mainnet_container_without_a_key_does_not_get_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    # An empty key must stop the service (it refuses invalid settings) rather than run without settling.
    with pytest.raises(ValidationError, match="facilitator_private_key"):
        container_settings(MAINNET_STACK, "tts-1", {"SMALLTTS_PAYMENT__PAY_TO": "0x" + "12" * 20}, monkeypatch)


# --- the dev chain against the payment code -----------------------------------------------------------------


def _create_address(deployer: str, nonce: int) -> str:
    """The address of the contract an account creates with this nonce (keccak of rlp([sender, nonce]))."""
    from eth_utils import keccak, to_checksum_address

    assert 0 <= nonce < 0x80  # single-byte RLP is enough for the nonces used here
    sender = bytes.fromhex(deployer[2:])
    payload = b"\x94" + sender + (b"\x80" if nonce == 0 else bytes([nonce]))
    return str(to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:]))


def test_devchain_constants_match_the_deploy_code() -> None:
    from eth_account import Account

    from service.payment.devchain import launch

    services = load_services(DEVCHAIN_STACK)
    env = environment(services["tts"])
    facilitator = Account.from_key(launch.FACILITATOR_KEY).address
    assert env[KEY_VAR] == launch.FACILITATOR_KEY
    # The token is the first contract the deployer creates on the fresh chain.
    assert env["SMALLTTS_PAYMENT__ASSET"] == _create_address(facilitator, 0)
    assert env["SMALLTTS_PAYMENT__PAY_TO"] == Account.from_key(launch.PAY_TO_KEY).address
    # No settling container may use the payer's key or the pay_to key.
    keys = {environment(services[name])[KEY_VAR] for name in HTTP_SERVICES}
    assert not keys & {launch.PAYER_KEY, launch.PAY_TO_KEY}


def test_anvil_image_runs_the_tested_version_on_the_dev_chain_id() -> None:
    from service.payment.devchain.anvil import DEV_CHAIN_ID

    package = json.loads((REPO / "package.json").read_text(encoding="utf-8"))
    version = package["devDependencies"]["@foundry-rs/anvil"]
    assert load_services(DEVCHAIN_STACK)["anvil"]["image"] == f"smalltts-anvil:{version}"
    dockerfile = (DOCKER / "anvil.Dockerfile").read_text(encoding="utf-8")
    assert f'"--chain-id", "{DEV_CHAIN_ID}"' in dockerfile


def _cli_commands() -> list[tuple[str, list[str]]]:
    """Every `smalltts` command line the stacks run in the service image."""
    commands = []
    for stack in STACKS:
        for name, spec in load_services(stack).items():
            if spec.get("image") == "smalltts:cpu" and "command" in spec and "entrypoint" not in spec:
                commands.append((f"{stack.name}:{name}", list(spec["command"])))
            elif "entrypoint" in spec:
                script = " ".join(spec["command"])
                for match in re.finditer(r"exec smalltts ([^;]+);", script):
                    commands.append((f"{stack.name}:{name}", match.group(1).split()))
    return commands


@pytest.mark.parametrize(("where", "argv"), _cli_commands(), ids=lambda value: str(value))
def test_commands_run_in_the_image_exist_in_the_cli(where: str, argv: list[str]) -> None:
    from smalltts.cli.main import COMMANDS, build_parser

    assert argv[0] in COMMANDS, f"{where} runs `smalltts {argv[0]}`, which is not in the command table"
    build_parser(argv[0]).parse_args(argv)  # SystemExit(2) on an unknown flag


def test_fetch_guard_uses_an_existing_completeness_check(tmp_path: Path) -> None:
    from model.runtime.assets import is_complete

    assert not is_complete(tmp_path)
    script = " ".join(load_services(DEVCHAIN_STACK)["fetch-model"]["command"])
    assert "from model.runtime.assets import is_complete" in script


# --- rendering with docker-compose v1, as `make docker-check` does -----------------------------------------

COMPOSE_V1 = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(COMPOSE_V1 is None, reason="docker-compose is not installed (make docker-check)")


def _render(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_V1 is not None
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("SMALLTTS_")}
    return subprocess.run(
        [COMPOSE_V1, "-f", str(path), "config"],
        capture_output=True,
        text=True,
        env={**clean_env, **env},
        timeout=60,
        check=False,
    )


@needs_compose
def test_docker_compose_resolves_templates_as_this_reader_does() -> None:
    result = _render(DEVCHAIN_STACK)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    mine = load_services(DEVCHAIN_STACK)
    assert set(rendered) == set(mine)
    for name in HTTP_SERVICES:
        assert rendered[name]["healthcheck"]["test"] == mine[name]["healthcheck"]["test"]
        assert str(rendered[name]["environment"][KEY_VAR]) == environment(mine[name])[KEY_VAR]
        assert rendered[name]["volumes"][-1] == "models:/models:ro"


@needs_compose
def test_mainnet_stack_refuses_to_render_without_a_pay_to_address() -> None:
    result = _render(MAINNET_STACK)
    assert result.returncode != 0
    assert "SMALLTTS_PAYMENT__PAY_TO" in result.stdout + result.stderr
    assert _render(MAINNET_STACK, SMALLTTS_PAYMENT__PAY_TO="0x" + "11" * 20).returncode == 0
