"""Checkpoints of finished work, so that a killed stage resumes where it stopped.

A checkpoint is an append-only JSONL file of finished records, keyed by id. Each batch is appended
and fsynced before the stage moves on; a process killed mid-write leaves at most one torn last line,
which loading drops (and cuts off the file) so the record is simply done again. Loading keeps the
first record per id, so nothing is ever counted twice.

Checkpoints live outside DVC's outputs (DVC deletes a stage's outputs before running it) under
`.rlaif/checkpoints/`, named by a fingerprint of everything that decides the records: input file
contents and the stage's params. Changed inputs therefore never resume from stale work.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

CHECKPOINT_DIR = Path(".rlaif/checkpoints")


def fingerprint(files: Iterable[Path], settings: Any) -> str:
    digest = hashlib.sha256()
    for path in files:
        path = Path(path)
        if path.is_file():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def checkpoint_path(stage: str, files: Iterable[Path], settings: Any, suffix: str = "") -> Path:
    """Where a stage keeps its checkpoint: one place per stage, input bytes, settings and seed (in `settings`), so
    that a rerun of the same work resumes and changed work starts afresh."""
    return CHECKPOINT_DIR / f"{stage}-{fingerprint(files, settings)}{suffix}"


class JsonlCheckpoint:
    def __init__(self, path: Path, key: str):
        self.path = Path(path)
        self.key = key

    def load(self) -> dict[str, dict]:
        """Finished records by id; a torn last line (killed mid-write) is dropped and cut off."""
        if not self.path.exists():
            return {}
        records: dict[str, dict] = {}
        good_bytes = 0
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    break
                if not line.endswith(b"\n"):
                    break
                records.setdefault(record[self.key], record)
                good_bytes += len(line)
        if good_bytes < self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(good_bytes)
        return records

    def append(self, records: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
