"""A build killed with SIGKILL resumes from its finished shards and ends with the same graph."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kgllm.kg.extraction.build import work_dir_for

FILES = ("entities.tsv", "relations.tsv", "triples.tsv", "provenance.tsv", "mentions.tsv", "graph.ttl")
SENTENCES = ["Barack Obama was born in Honolulu, Hawaii.", "Paris is the capital of France.",
             "Angela Merkel met Emmanuel Macron in Berlin.", "Bill Gates founded Microsoft in Albuquerque.",
             "The Amazon River flows through Brazil and Peru.", "John Lennon was born in Liverpool."]


def _cmd(corpus, out):
    return [sys.executable, "-m", "kgllm", "build-kg", str(corpus), "--out", str(out), "--shard-size", "4",
            "--batch-size", "2", "--no-progress"]


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_graph(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    with open(corpus, "w") as fh:
        for i in range(400):
            fh.write(json.dumps({"id": f"doc{i}", "text": f"{SENTENCES[i % 6]} Document {i}."}) + "\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(_cmd(corpus, tmp_path / "full"), check=True, env=env, capture_output=True)

    out = tmp_path / "killed"
    work = work_dir_for(out)
    proc = subprocess.Popen(_cmd(corpus, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(work.glob("shard-*.jsonl"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(work.glob("shard-*.jsonl")))
    assert 3 <= done < 100, "the build should have been killed part-way"
    assert not out.exists()

    result = subprocess.run(_cmd(corpus, out), env=env, capture_output=True, text=True, check=True)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["corpus"]["shards_resumed"] >= done - 1 >= 2
    for name in FILES:
        assert (out / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    assert not work.exists() and result.returncode == 0
