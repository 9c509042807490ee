"""An offline multi-speaker speech corpus made with espeak-ng, so every training stage runs on our machines.

A "speaker" is an espeak-ng voice (accent) plus a variant (m1..m7, f1..f5, klatt, ...) plus a base speed and
pitch; each clip varies speed and pitch a little around its speaker's base and speaks a sentence drawn from
a small grammar. Output (the input format of `smalltts dataset build --manifest`):

    OUT/wavs/<speaker>/<speaker>_<i>.wav     22.05 kHz mono 16-bit, as espeak-ng writes it
    OUT/manifest.jsonl                        {"audio": "wavs/...", "text": ..., "speaker": ...} per line
    OUT/heldout.jsonl                         the same for held-out clips (for `smalltts eval`)

    smalltts dataset synth --out data/synth --speakers 4 --clips-per-speaker 6   # a few seconds on a CPU
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.config import SynthCorpusConfig
from training.errors import TrainingBaseError

ACCENTS: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "Annie", "Alex", "Andy", "Gene", "Jacky", "Lee", "Michael", "Paul", "Rob",
    "Steph", "Tweaky", "grandpa",
)  # fmt: skip

_SUBJECTS = (
    "the old sailor", "my neighbour", "a tired doctor", "the young pilot", "our teacher", "the baker",
    "a quiet student", "the clever fox", "my little sister", "the mayor", "a friendly robot", "the gardener",
)  # fmt: skip
_VERBS = (
    "painted", "carried", "found", "opened", "watched", "cleaned", "borrowed", "described", "repaired",
    "followed", "remembered", "ordered",
)  # fmt: skip
_OBJECTS = (
    "a red bicycle", "the heavy box", "seven yellow lamps", "the broken window", "a map of the city",
    "the silver key", "two warm blankets", "a wooden chair", "the green umbrella", "an empty bottle",
)  # fmt: skip
_PLACES = (
    "near the river", "after lunch", "in the morning", "behind the station", "during the storm",
    "at the market", "before dinner", "on a sunny day", "under the bridge", "by the window",
)  # fmt: skip
_CLOSERS = (
    "and then went home.", "without saying a word.", "because it was late.", "while everyone laughed.",
    "and smiled at the crowd.", "as the bells rang.",
)  # fmt: skip
_QUESTIONS = (
    "Did you see where {s} went?", "Why would {s} say that?", "Is it true that {s} {v} {o}?",
    "Where did {s} put {o}?",
)  # fmt: skip


class CorpusError(TrainingBaseError, RuntimeError):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class SpeakerVoice:
    name: str
    voice: str  # espeak-ng -v argument, "accent+variant"
    speed_wpm: int
    pitch: int


def make_sentence(rng: random.Random, min_words: int, max_words: int) -> str:
    """A grammatical English sentence of roughly min_words..max_words words."""
    for _ in range(20):
        s, v, o = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
        kind = rng.random()
        if kind < 0.2:
            sentence = rng.choice(_QUESTIONS).format(s=s, v=v, o=o)
        elif kind < 0.6:
            sentence = f"{s} {v} {o} {rng.choice(_PLACES)}."
        else:
            sentence = f"{s} {v} {o} {rng.choice(_PLACES)} {rng.choice(_CLOSERS)}"
        sentence = sentence[0].upper() + sentence[1:]
        if min_words <= len(sentence.split()) <= max_words:
            return sentence
    return sentence


def choose_speakers(cfg: SynthCorpusConfig) -> list[SpeakerVoice]:
    """Distinct (accent, variant) pairs with their own base speed and pitch, deterministic in cfg.seed."""
    rng = random.Random(cfg.seed)
    pairs = [(accent, variant) for variant in VARIANTS for accent in ACCENTS]
    rng.shuffle(pairs)
    if cfg.num_speakers > len(pairs):
        raise ValueError(f"num_speakers is at most {len(pairs)}, got {cfg.num_speakers}")
    speakers = []
    for i, (accent, variant) in enumerate(pairs[: cfg.num_speakers]):
        speakers.append(
            SpeakerVoice(
                name=f"spk{i:03d}_{accent}_{variant}".replace("-", "_"),
                voice=f"{accent}+{variant}",
                speed_wpm=rng.randint(*cfg.speed_wpm),
                pitch=rng.randint(*cfg.pitch),
            )
        )
    return speakers


def speak(text: str, voice: str, speed_wpm: int, pitch: int, out_path: Path) -> None:
    """Writes espeak-ng's rendering of text to out_path (22.05 kHz mono WAV)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise CorpusError("espeak-ng is not installed (apt-get install espeak-ng)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [binary, "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "-w", str(out_path), "--", text]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0 or not out_path.is_file():
        raise CorpusError(f"espeak-ng failed for voice {voice}: {result.stderr.strip()[:200]}")


def synthesize_corpus(
    out_dir: str | Path,
    cfg: SynthCorpusConfig,
    *,
    heldout_clips_per_speaker: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, Path | None]:
    """Writes the corpus and returns (manifest path, held-out manifest path or None). Idempotent per clip."""
    out_dir = Path(out_dir)
    from model.text.normalize import normalize_text
    from training.sentences import iter_sentences

    rng = random.Random(cfg.seed + 1)
    streams = {
        "train": iter_sentences(cfg.text_source, rng, min_words=cfg.min_words, max_words=cfg.max_words),
        "heldout": iter_sentences(
            cfg.heldout_text_source, random.Random(cfg.seed + 2), min_words=cfg.min_words, max_words=cfg.max_words
        ),
    }
    speakers = choose_speakers(cfg)
    per_speaker = cfg.clips_per_speaker + heldout_clips_per_speaker
    total = len(speakers) * per_speaker
    train_rows: list[dict[str, str]] = []
    heldout_rows: list[dict[str, str]] = []
    done = 0
    for speaker in speakers:
        for i in range(per_speaker):
            heldout = i >= cfg.clips_per_speaker
            text = next(streams["heldout" if heldout else "train"])
            speed = max(80, speaker.speed_wpm + rng.randint(-15, 15))
            pitch = min(99, max(0, speaker.pitch + rng.randint(-6, 6)))
            rel = Path("wavs") / speaker.name / f"{speaker.name}_{i:04d}.wav"
            path = out_dir / rel
            if not path.is_file():  # a re-run only fills in what is missing
                speak(normalize_text(text), speaker.voice, speed, pitch, path)
            row = {"audio": rel.as_posix(), "text": text, "speaker": speaker.name}
            (heldout_rows if heldout else train_rows).append(row)
            done += 1
            if progress is not None:
                progress(done, total)
    if cfg.text_source != "grammar":
        train_rows += _coverage_clips(out_dir, speakers)
    manifest = _write_jsonl(out_dir / "manifest.jsonl", train_rows)
    heldout_manifest = _write_jsonl(out_dir / "heldout.jsonl", heldout_rows) if heldout_rows else None
    return manifest, heldout_manifest


def _coverage_clips(out_dir: Path, speakers: list[SpeakerVoice]) -> list[dict[str, str]]:
    """Each coverage sentence (training.sentences.COVERAGE_SENTENCES: the rare sounds English espeak-ng emits for
    loan words) spoken by several voices, after the regular clips, so the regular clips do not change."""
    from model.text.normalize import normalize_text
    from training.sentences import COVERAGE_SENTENCES, COVERAGE_VOICES_PER_SENTENCE

    rows = []
    for j in range(len(COVERAGE_SENTENCES) * COVERAGE_VOICES_PER_SENTENCE):
        text = COVERAGE_SENTENCES[j % len(COVERAGE_SENTENCES)]
        speaker = speakers[(j * 7) % len(speakers)]  # a stride, so one sentence lands on different voices
        rel = Path("wavs") / speaker.name / f"{speaker.name}_cover{j:03d}.wav"
        if not (out_dir / rel).is_file():
            speak(normalize_text(text), speaker.voice, speaker.speed_wpm, speaker.pitch, out_dir / rel)
        rows.append({"audio": rel.as_posix(), "text": text, "speaker": speaker.name})
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
