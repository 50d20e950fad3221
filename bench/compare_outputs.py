"""Whether two project checkouts' pipeline runs wrote the same bytes: every file under artifacts/, metrics/ and
reports/ of either, with its MD5 in each and whether they match. Prints a line per file that differs or exists in one
only, then the counts; exit 0 when every file common to both matches and none is missing.

    python bench/compare_outputs.py DIR_A DIR_B [--ignore GLOB ...]

For a change that must not change what the default run computes (a refactor, a library move): `make run` in a fresh
clone of the commit before and of the commit after, then compare the two clones. Files that carry times or run ids
(the registry record, the run summary and report, the Data Docs pages) are listed by --ignore.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import sys
from pathlib import Path

OUTPUT_DIRS = ("artifacts", "metrics", "reports")
VOLATILE = ("artifacts/optimize_policy/registered.json", "reports/last_run.json", "reports/run.html",
            "reports/validate/data_docs/*", "reports/history.png")


def digests(root: Path) -> dict[str, str]:
    found = {}
    for folder in OUTPUT_DIRS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(root))] = hashlib.md5(path.read_bytes()).hexdigest()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--ignore", action="append", default=list(VOLATILE), help="a glob of files not compared")
    args = parser.parse_args()
    a, b = digests(args.a), digests(args.b)
    ignored = {name for name in a.keys() | b.keys() if any(fnmatch.fnmatch(name, g) for g in args.ignore)}
    same = differ = only = 0
    for name in sorted((a.keys() | b.keys()) - ignored):
        if name not in a or name not in b:
            only += 1
            print(f"only in {args.a if name in a else args.b}: {name}")
        elif a[name] == b[name]:
            same += 1
        else:
            differ += 1
            print(f"differs: {name} ({a[name][:12]} against {b[name][:12]})")
    print(f"{same} files identical, {differ} differ, {only} in one checkout only, {len(ignored)} not compared "
          "(times and run ids)")
    return 0 if differ == 0 and only == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
