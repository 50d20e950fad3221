"""Content digests of the files and folders the lineage records, with a cache for large files.

A model folder is read in every stage that records it (its inputs and outputs), by the report's lineage check and
by `rlaif reproduce`: a real model's weights (hundreds of MB to GB) would be hashed again each time. A large file's
digest is kept in `.rlaif/digests.sqlite`, keyed as DVC keys its own: the absolute path, inode, size and
modification time in nanoseconds. A rewrite changes the time (or the inode, when written aside and renamed), so
the key no longer matches and the file is hashed again. A same-size rewrite in place within one tick of the
filesystem's clock would keep the old digest, as it would in DVC's cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

CACHE = Path(".rlaif/digests.sqlite")  # in the project the stages run in; no cache where .rlaif/ does not exist
CACHED_FROM_BYTES = 16 << 20  # smaller files hash in less time than a lookup takes
KEY = "path = ? AND inode = ? AND size = ? AND mtime_ns = ?"


def file_md5(path: Path) -> str:
    """md5 of a file, or of a directory's sorted (relative path, md5) list; the same scheme DVC uses in spirit."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.md5()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{child.relative_to(path)}:{file_md5(child)}\n".encode())
        return digest.hexdigest() + ".dir"
    stat = path.stat()
    if stat.st_size < CACHED_FROM_BYTES or not CACHE.parent.is_dir():
        return _read_md5(path)
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with closing(_open_cache()) as cache, cache:
        found = cache.execute(f"SELECT md5 FROM digests WHERE {KEY}", key).fetchone()
        if found:
            return found[0]
        md5 = _read_md5(path)
        cache.execute("DELETE FROM digests WHERE path = ?", key[:1])
        cache.execute("INSERT INTO digests VALUES (?, ?, ?, ?, ?)", (*key, md5))
        return md5


def _read_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_cache() -> sqlite3.Connection:
    cache = sqlite3.connect(CACHE, timeout=60)  # stages and `rlaif lineage` may look up at once
    cache.execute("CREATE TABLE IF NOT EXISTS digests "
                  "(path TEXT, inode INTEGER, size INTEGER, mtime_ns INTEGER, md5 TEXT)")
    return cache
