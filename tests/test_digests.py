"""The digests the lineage records: a large file's md5 is read once and looked up after, until the file changes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

from rlaif.lifecycle import digests

BIG = digests.CACHED_FROM_BYTES


def test_a_large_files_digest_is_looked_up_until_the_file_is_rewritten(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".rlaif").mkdir()
    weights = tmp_path / "model" / "model.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"a" * BIG)
    assert digests.file_md5(weights) == hashlib.md5(b"a" * BIG).hexdigest()
    with sqlite3.connect(digests.CACHE) as cache:  # the stored digest is what a second call answers
        cache.execute("UPDATE digests SET md5 = 'from-the-cache'")
    assert digests.file_md5(weights) == "from-the-cache"

    weights.write_bytes(b"b" * BIG)  # same size, new content and time
    # where the clock ticks coarser than two writes (the limit DVC's cache shares), the time moves on anyway
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))
    assert digests.file_md5(weights) == hashlib.md5(b"b" * BIG).hexdigest()
    with sqlite3.connect(digests.CACHE) as cache:
        assert cache.execute("SELECT count(*) FROM digests").fetchone()[0] == 1  # the old key replaced


def test_small_files_and_folders_without_rlaif_are_hashed_each_time(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    big = tmp_path / "big.bin"
    big.write_bytes(b"c" * BIG)
    assert digests.file_md5(big) == hashlib.md5(b"c" * BIG).hexdigest()
    assert not (tmp_path / ".rlaif").exists()  # no cache outside a project the flow has run in
    (tmp_path / ".rlaif").mkdir()
    small = tmp_path / "labels.jsonl"
    small.write_text("{}\n")
    assert digests.file_md5(small) == hashlib.md5(b"{}\n").hexdigest()
    assert not digests.CACHE.exists()
