"""`smalltts interactive` end to end on the real tiny model: through a pseudo-terminal and through a pipe.

`sounddevice` is not a dependency, so on a terminal too each line goes to a numbered file.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[3]
# Not a timing assertion: a guard so that a session that stopped answering fails instead of hanging the suite.
HANG_GUARD_S = 120.0


def _command(tiny_model_dir: Path, voice_file: Path, out_dir: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "smalltts", "interactive"),
        *("--ref", str(voice_file), "--out-dir", str(out_dir), "--model", str(tiny_model_dir)),
    ]


class Terminal:
    """A child process on a pseudo-terminal: type lines, read until some text shows."""

    def __init__(self, command: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm", "INPUTRC": "/dev/null"}
        self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=REPO_ROOT, env=env)
        os.close(slave)
        self.seen = ""

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def read_until(self, text: str) -> str:
        """Everything shown up to and including `text` (which is consumed)."""
        while text not in self.seen:
            ready, _, _ = select.select([self.master], [], [], HANG_GUARD_S)
            assert ready, f"no {text!r} on the terminal; it showed: {self.seen[-2000:]!r}"
            try:
                chunk = os.read(self.master, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                chunk = ""
            assert chunk, f"the session ended before {text!r}; it showed: {self.seen[-2000:]!r}"
            self.seen += chunk
        before, _, self.seen = self.seen.partition(text)
        return before + text

    def close(self) -> None:
        """Ends the child if a failed test left it waiting for input, and frees the terminal."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)


def test_a_terminal_session_speaks_lines_keeps_history_and_obeys_commands(
    tiny_model_dir: Path, voice_file: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    terminal = Terminal(_command(tiny_model_dir, voice_file, out_dir))
    try:
        assert "/voice FILE" in terminal.read_until("> ")  # the banner names the commands, then the prompt
        terminal.type("Hello there.\r")
        first = terminal.read_until("> ")
        assert f"{out_dir / '0001.wav'}: " in first and "real-time factor" in first
        terminal.type("/seed 7\r")
        assert "seed: 7" in terminal.read_until("> ")
        terminal.type("/duration 1\r")
        assert "duration: 1 s" in terminal.read_until("> ")
        terminal.type("Again, with a seed.\r")
        assert "0002.wav: 1.07 s, seed 7" in terminal.read_until("> ")
        terminal.type("\x1b[A\r")  # up arrow: readline brings back the last line
        assert "0003.wav: 1.07 s, seed 7" in terminal.read_until("> ")
        terminal.type("/duration 100\r")
        assert "smalltts: error: duration must be between 0.5 and 30 seconds" in terminal.read_until("> ")
        terminal.type(f"/save {tmp_path / 'kept.flac'}\r")
        assert f"saved {tmp_path / 'kept.flac'}" in terminal.read_until("> ")
        terminal.type("/quit\r")
        code = terminal.process.wait(timeout=HANG_GUARD_S)
    finally:
        terminal.close()
    assert code == 0  # a mistake typed at a terminal is shown, not an exit status
    again, kept = sf.read(out_dir / "0003.wav")[0], sf.read(tmp_path / "kept.flac")[0]
    assert np.array_equal(sf.read(out_dir / "0002.wav")[0], again)  # the recalled line, same seed, same audio
    assert again.shape == kept.shape == (8 * 3200,)


def test_piped_lines_become_numbered_files_and_a_failure_sets_the_status(
    tiny_model_dir: Path, voice_file: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    (out_dir).mkdir()
    (out_dir / "0001.wav").write_bytes(b"an earlier session's file")
    lines = f"First line.\n\n/seed 3\n/voice {voice_file}\nSecond line.\n/seed minus one\n/quit\nNever spoken.\n"
    result = subprocess.run(
        _command(tiny_model_dir, voice_file, out_dir),
        input=lines,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 1
    printed = result.stdout.splitlines()
    assert [line.split(":")[0] for line in printed] == [
        str(out_dir / "0002.wav"),
        "seed",
        "voice",
        str(out_dir / "0003.wav"),
    ]
    assert printed[2].startswith(f"voice: {voice_file} (") and "frames)" in printed[2]
    assert "seed 3, real-time factor" in printed[3] and ">" not in result.stdout  # no prompt on a pipe
    assert "smalltts: error: /seed takes an integer or 'random', got 'minus one'" in result.stderr
    assert (out_dir / "0001.wav").read_bytes() == b"an earlier session's file"
    assert sorted(p.name for p in out_dir.iterdir()) == ["0001.wav", "0002.wav", "0003.wav"]
