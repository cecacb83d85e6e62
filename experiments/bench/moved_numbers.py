"""Did the README's numbers survive its move into the documentation site (issue 29)?

Every number in the README of commit ``--before`` (the last one before it became a landing page)
is looked up in today's README and ``docs/`` pages, as the same token (``0.466``, ``2.05x``,
``1,770``, ``[0.727, 0.761]`` counted number by number). Printed: how many numbers the old README
held (distinct), how many are found, and each missing one with the line it stood on; exit status
1 if any is missing. Numbers of a result that was later remeasured on purpose are listed by
``--allow FILE`` (one number per line, ``#`` comments saying why).

Run:  python experiments/bench/moved_numbers.py [--before 41d44f1^] [--allow docs/moved_numbers_allow.txt]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: a number as written in the README: digits with optional thousands commas, decimals, sign, x/%
NUMBER = re.compile(r"(?<![\w.])[-+−]?\d[\d,]*(?:\.\d+)?(?:x|%)?(?![\w])")


def numbers(text: str) -> dict[str, str]:
    """Distinct numbers of ``text`` (with two or more digits, so list markers and "1 seed" do not
    count) -> the first line each stood on."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        for m in NUMBER.finditer(line):
            token = m.group(0).replace("−", "-").rstrip(",")
            if sum(c.isdigit() for c in token) >= 2:
                out.setdefault(token, line.strip())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="41d44f1^", help="the commit whose README is the reference")
    p.add_argument("--allow", default=None, help="numbers allowed to be gone (remeasured on purpose)")
    a = p.parse_args(argv)
    try:
        old = subprocess.run(["git", "show", f"{a.before}:README.md"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except subprocess.CalledProcessError as exc:
        print(f"moved_numbers: cannot read README.md at {a.before}: {exc.stderr.strip()}", file=sys.stderr)
        return 2
    now = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])
    have = set(numbers(now))
    allowed = set()
    if a.allow:
        allowed = {line.split("#")[0].strip() for line in Path(a.allow).read_text().splitlines()} - {""}
    before = numbers(old)
    missing = {n: line for n, line in before.items() if n not in have and n not in allowed}
    print(f"{len(before)} distinct numbers in README.md at {a.before}; {len(before) - len(missing)} found in "
          f"today's README.md and docs/ ({len(allowed & set(before))} allowed to be gone); {len(missing)} missing")
    for n, line in missing.items():
        print(f"  {n}: {line[:160]}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
