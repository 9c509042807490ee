"""`smalltts say` end to end on the real tiny model graphs and the real espeak-ng front end."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from smalltts.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def voice(voice_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared 2 s stereo 44.1 kHz voice as an MP3, to exercise decoding and resampling on the way in."""
    path = tmp_path_factory.mktemp("voice") / "voice.mp3"
    samples, rate_hz = sf.read(voice_file)
    sf.write(path, samples, rate_hz)
    return path


def _say(tiny_model_dir: Path, *args: str) -> int:
    return main(["say", *args, "--model", str(tiny_model_dir)])


def test_say_writes_exactly_frames_times_hop_samples(
    tiny_model_dir: Path, voice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hello.wav"
    assert (
        _say(tiny_model_dir, "Hello there [laughter]!", "--ref", str(voice), "--duration", "3.0", "--out", str(out))
        == 0
    )
    info = sf.info(out)
    assert (info.frames, info.samplerate, info.channels, info.subtype) == (23 * 3200, 24_000, 1, "PCM_16")
    captured = capsys.readouterr()
    assert "23 frames" in captured.out and "untrained" in captured.out
    assert "warning: model random-tiny-seed0" in captured.err and "untrained" in captured.err


def test_same_seed_same_file_other_seed_other_file(tiny_model_dir: Path, voice: Path, tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.wav" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("7", "7", "8"), strict=True):
        assert _say(tiny_model_dir, "seeded", "--ref", str(voice), "--seed", seed, "--out", str(path)) == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_estimated_duration_flac_output_and_npy_reference(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model.text import estimate_duration_s, tokenize

    latents = tmp_path / "voice.npy"
    np.save(latents, np.random.default_rng(0).standard_normal((20, 64)).astype(np.float32))
    out = tmp_path / "out.flac"
    text = "This sentence has no duration given."
    assert _say(tiny_model_dir, text, "--ref", str(latents), "--schedule", "original", "--out", str(out)) == 0
    frames = math.ceil(estimate_duration_s(tokenize(text)) * 7.5 - 1e-9)
    assert sf.info(out).frames == frames * 3200 and sf.info(out).format == "FLAC"
    assert "estimated" in capsys.readouterr().out


def test_the_model_dir_comes_from_the_environment(
    tiny_model_dir: Path, voice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMALLTTS_MODEL_DIR", str(tiny_model_dir))
    assert main(["say", "from the environment", "--ref", str(voice), "--out", str(tmp_path / "env.ogg")]) == 0
    assert sf.info(tmp_path / "env.ogg").format == "OGG"
    monkeypatch.setenv("SMALLTTS_MODEL_DIR", str(tmp_path / "missing"))
    assert main(["say", "nowhere", "--ref", str(voice), "--out", str(tmp_path / "x.wav")]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hi", "--ref", "{missing}"], "reference file not found"),
        (["hi", "--ref", "{garbage}"], "could not be decoded"),
        (["hi", "--ref", "{voice}", "--out", "x.mp4"], ".wav, .flac or .ogg"),
        (["", "--ref", "{voice}"], "text is empty"),
        (["hi", "--ref", "{voice}", "--duration", "nan"], "duration must be between"),
        (["hi", "--ref", "{voice}", "--duration", "-3"], "duration must be between"),
        (["hi", "--ref", "{voice}", "--duration", "100000"], "duration must be between"),
        (["hi", "--ref", "{voice}", "--steps", "0"], "steps must be"),
        (["hi", "--ref", "{silent}"], "silent"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    tiny_model_dir: Path,
    voice: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really" * 20)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(24_000, dtype=np.float32), 24_000)
    paths = {"missing": str(tmp_path / "nope.wav"), "garbage": str(garbage), "voice": str(voice), "silent": str(silent)}
    argv = [arg.format(**paths) for arg in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out.wav")]
    assert _say(tiny_model_dir, *argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("smalltts: error: ") and message in err
    assert not (tmp_path / "out.wav").exists()


def test_the_module_entry_point_prints_no_traceback(tiny_model_dir: Path, voice: Path) -> None:
    command = [sys.executable, "-m", "smalltts", "say", "hi", "--ref", str(voice), "--model", str(tiny_model_dir)]
    bad = subprocess.run([*command, "--duration", "inf"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr == "smalltts: error: duration must be between 0.5 and 30 seconds, got inf\n"


def test_without_ref_the_models_own_voice_speaks(
    tiny_model_dir: Path, voice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _say(tiny_model_dir, "hi", "--out", str(tmp_path / "none.wav")) == 2
    assert "--ref FILE is required" in capsys.readouterr().err
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    shutil.copyfile(voice, model / "reference.wav")
    assert _say(model, "hi", "--out", str(tmp_path / "own.wav")) == 0
    out = capsys.readouterr().out
    assert "4 steps (trained)" in out and f"at {model}" in out


def test_without_steps_say_uses_the_models_own_count_and_sampler(
    ddim_model_dir: Path, voice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _say(ddim_model_dir, "hi", "--ref", str(voice), "--out", str(tmp_path / "ddim.wav")) == 0
    assert "12 steps (ddim)" in capsys.readouterr().out
    assert _say(ddim_model_dir, "hi", "--ref", str(voice), "--steps", "3", "--out", str(tmp_path / "3.wav")) == 0
    assert "3 steps (ddim)" in capsys.readouterr().out


def test_dash_reads_the_text_from_stdin(tiny_model_dir: Path, voice: Path, tmp_path: Path) -> None:
    out = tmp_path / "piped.wav"
    command = [sys.executable, "-m", "smalltts", "say", "-", "--ref", str(voice), "--model", str(tiny_model_dir)]
    piped = subprocess.run(
        [*command, "--seed", "3", "--out", str(out)],
        input="Text from a pipe.\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    from model.text import estimate_duration_s, tokenize

    frames = math.ceil(estimate_duration_s(tokenize("Text from a pipe.")) * 7.5 - 1e-9)
    assert sf.info(out).frames == frames * 3200  # a literal "-" would be one short token, not these frames
    empty = subprocess.run([*command, "--out", str(out)], input="", capture_output=True, text=True, check=False)
    assert empty.returncode == 2 and empty.stderr == "smalltts: error: text is empty\n"


def test_without_a_seed_a_random_one_is_printed_and_remakes_the_file(
    tiny_model_dir: Path, voice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeds = []
    for name in ("a", "b"):
        assert (
            _say(
                tiny_model_dir, "random", "--ref", str(voice), "--duration", "1", "--out", str(tmp_path / f"{name}.wav")
            )
            == 0
        )
        seeds.append(int(capsys.readouterr().out.split("seed ")[1].split(",")[0]))
    assert seeds[0] != seeds[1]
    again = tmp_path / "again.wav"
    assert (
        _say(
            tiny_model_dir,
            "random",
            "--ref",
            str(voice),
            "--duration",
            "1",
            "--seed",
            str(seeds[0]),
            "--out",
            str(again),
        )
        == 0
    )
    assert again.read_bytes() == (tmp_path / "a.wav").read_bytes()


def test_a_transcription_changes_the_audio_but_not_its_length(
    tiny_model_dir: Path, voice: Path, tmp_path: Path
) -> None:
    plain, heard = tmp_path / "plain.wav", tmp_path / "heard.wav"
    args = ["New words.", "--ref", str(voice), "--seed", "1"]
    assert _say(tiny_model_dir, *args, "--out", str(plain)) == 0
    assert _say(tiny_model_dir, *args, "--transcription", "What the voice says.", "--out", str(heard)) == 0
    assert sf.info(plain).frames == sf.info(heard).frames
    assert plain.read_bytes() != heard.read_bytes()


def test_say_keeps_the_services_limits(
    tiny_model_dir: Path, voice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.wav")
    assert _say(tiny_model_dir, "hi", "--ref", str(voice), "--duration", "0.3", "--out", out) == 2
    assert "between 0.5 and 30 seconds" in capsys.readouterr().err
    assert _say(tiny_model_dir, "hi", "--ref", str(voice), "--steps", "33", "--out", out) == 2
    assert "between 1 and 32" in capsys.readouterr().err
