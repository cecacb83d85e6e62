"""The documentation site builds strictly (no broken link or reference), its runnable blocks run
as written on the fixtures, every command is in the reference, and the README stays a landing page
whose links all resolve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _hooks():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_is_in_the_reference():
    from kgllm.cli import COMMANDS

    helps = _hooks().command_help()
    assert set(helps) == set(COMMANDS)
    for name, text in helps.items():
        assert text.startswith("usage: kgllm " + name), name
    page = _hooks().cli_markdown()
    assert all(f"## `kgllm {name}`" in page for name in COMMANDS)


def test_readme_is_a_landing_page_whose_links_resolve():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 250
    first = "\n".join(lines[:6])
    assert "make demo" in first and "make test" in first  # the two commands open it
    from kgllm.cli import COMMANDS

    assert all(f"`kgllm {name}`" in text for name in COMMANDS)  # the commands table, ablate included
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target).exists(), target


@pytest.mark.slow
def test_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text()
    assert "kgllm ablate" in cli and "usage: kgllm kg-query" in cli


def _runnable_blocks() -> list[tuple[str, str]]:
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        for m in re.finditer(r"<!-- runnable -->\n```bash\n(.*?)```", page.read_text(), re.S):
            out.append((str(page.relative_to(ROOT)), m.group(1)))
    return out


def test_some_blocks_are_marked_runnable():
    assert _runnable_blocks()


@pytest.mark.slow
@pytest.mark.parametrize("page,block", _runnable_blocks(), ids=lambda x: x if x.endswith(".md") else "")
def test_runnable_blocks_run_as_written(page, block, tmp_path):
    """Run in a fresh folder beside the repository's experiments/ and test fixtures, with the
    installed kgllm on PATH, as a reader would after `make test`."""
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "fixtures").symlink_to(ROOT / "tests" / "fixtures")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "KGLLM_CACHE": str(tmp_path / "cache")}
    env.pop("KGLLM_RUN_VERSION", None)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, f"{page}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def test_every_number_of_the_old_readme_is_in_the_docs():
    """The README's tables moved into docs/ with nothing lost: every number of the README before
    it became a landing page is in today's README or docs/, or listed as remeasured on purpose."""
    import subprocess

    if subprocess.run(["git", "cat-file", "-e", "41d44f1^:README.md"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("a shallow clone: the commit before the move is not in its history")
    proc = subprocess.run([sys.executable, str(ROOT / "experiments/bench/moved_numbers.py"), "--allow",
                           str(DOCS / "moved_numbers_allow.txt")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "; 0 missing" in proc.stdout
