"""Test helpers for the training tests (not fixtures)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

from training.dataset import read_index


def write_subset(data_dir: Path, out_dir: Path, keep: int) -> Path:
    """A copy of a built dataset holding only its first `keep` samples (one shard)."""
    index = read_index(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "shards").mkdir(exist_ok=True)
    kept: list[str] = []
    with tarfile.open(out_dir / "shards" / "shard-000000.tar", "w") as out:
        for shard in index["shards"]:
            with tarfile.open(data_dir / shard) as tar:
                for member in tar:
                    key = Path(member.name).name.split(".")[0]
                    if key not in kept:
                        if len(kept) == keep:
                            continue
                        kept.append(key)
                    handle = tar.extractfile(member)
                    assert handle is not None
                    out.addfile(member, handle)
    index = {**index, "shards": ["shards/shard-000000.tar"], "num_samples": len(kept)}
    (out_dir / "index.json").write_text(json.dumps(index))
    shutil.copy(data_dir / "report.json", out_dir / "report.json")
    return out_dir
