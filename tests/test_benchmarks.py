"""Benchmark scripts run (on fixtures, tiny sizes); their numbers are measured by hand, not here."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_build_kg_benchmark_runs(data_dir, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "experiments/bench/bench_build_kg.py"), "--data-dir",
                          str(data_dir), "--max-words", "200", "--processes", "1", "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, check=True)
    assert "(b) build-kg words/s" in out.stdout
    import json

    result = json.loads((tmp_path / "r.json").read_text())
    assert result["words"] > 100 and result["rows"][0]["ratio_build_over_spacy"] > 0


@pytest.mark.slow
def test_build_kg_benchmark_ray_engine_runs(data_dir, tmp_path):
    import json

    subprocess.run([sys.executable, str(ROOT / "experiments/bench/bench_build_kg.py"), "--data-dir", str(data_dir),
                    "--max-words", "200", "--processes", "1,2", "--engine", "ray", "--json", str(tmp_path / "r.json")],
                   capture_output=True, text=True, check=True)
    result = json.loads((tmp_path / "r.json").read_text())
    assert [r["workers"] for r in result["ray"]["ray"]] == [1, 2] and len(result["ray"]["merge"]) == 3
    assert "1024 workers" in result["projection"]


@pytest.mark.slow
def test_update_benchmark_checks_equivalence(data_dir, tmp_path):
    import json

    subprocess.run([sys.executable, str(ROOT / "experiments/bench/bench_update_kg.py"), "--data-dir", str(data_dir),
                    "--max-words", "300", "--fractions", "0.5,0.1", "--json", str(tmp_path / "u.json")],
                   capture_output=True, text=True, check=True)
    rows = json.loads((tmp_path / "u.json").read_text())["rows"]
    assert [r["fraction"] for r in rows] == [0.5, 0.1] and all(r["same_kg_as_full_build"] for r in rows)
    assert all(r["update_seconds"] > 0 and r["update_peak_mib"] > 0 for r in rows)


@pytest.mark.slow
def test_sparql_load_benchmark_runs(kg_dir, tmp_path):
    import json

    subprocess.run([sys.executable, str(ROOT / "experiments/bench/bench_sparql_load.py"), str(kg_dir), "--clients",
                    "2,4", "--seconds", "2", "--queries", "5", "--rdflib-seconds", "20", "--json",
                    str(tmp_path / "l.json")], capture_output=True, text=True, check=True)
    rows = json.loads((tmp_path / "l.json").read_text())["rows"]
    assert [r["clients"] for r in rows] == [2, 4, 1] and all(r["errors"] == 0 and r["queries"] > 0 for r in rows)
    assert rows[-1]["queries"] == 15 and not rows[-1]["unfinished_query_at_deadline"]  # 5 of each kind


def test_query_examples_benchmark_runs(kg_dir, tmp_path):
    env = {**__import__("os").environ, "KGLLM_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, str(ROOT / "experiments/bench/query_examples.py"), str(kg_dir),
                          "--repeat", "1"], capture_output=True, text=True, check=True, env=env).stdout
    lines = out.splitlines()
    assert lines[0].startswith("cache store ready") and len(lines) == 5
    assert all(" rows, " in line and not line.split(": ", 1)[1].startswith("0 rows") for line in lines[2:])


@pytest.mark.slow
def test_kg_corpus_is_exactly_the_classifiers_training_text(data_dir, tmp_path):
    """prepare_corpus --config writes the training split the config's classifier sees, nothing more."""
    import json

    import yaml

    from kgllm.data.datasets import load_dataset

    cfg = yaml.safe_load((ROOT / "experiments/finetune_fewrel.yaml").read_text())
    cfg["data"]["init_args"]["dataset_args"] = {"n_train": 3, "n_val": 1, "train_per_relation": 2}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, str(ROOT / "experiments/prepare_corpus.py"), "--config", str(tmp_path / "c.yaml"),
                    "--data-dir", str(data_dir), "--out", str(tmp_path / "corpus.jsonl")], check=True,
                   capture_output=True, text=True)
    written = [json.loads(line)["text"] for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    splits, _, _ = load_dataset("fewrel", data_dir, n_train=3, n_val=1, train_per_relation=2)
    everything, _, _ = load_dataset("fewrel", data_dir, n_train=3, n_val=1)
    assert written == [ex.text for ex in splits["train"]] and 0 < len(written) < len(everything["train"])


@pytest.mark.slow
def test_lama_experiment_end_to_end_on_fixtures(data_dir, tmp_path, monkeypatch):
    """The KG-only LAMA protocol runs every arm and writes a table with intervals (tiny BERT)."""
    import json

    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import lama

    monkeypatch.chdir(tmp_path)
    assert lama.main(["experiment", "--variants", "none,xattn", "--seeds", "0,1", "--out", str(tmp_path / "res"),
                      "--graphs", str(tmp_path / "graphs"), "--data-dir", str(data_dir),
                      "--data.backbone", "tiny", "--model.fusion_layers", "[0]", "--model.gnn_hidden", "16",
                      "--model.gnn_heads", "2", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
                      "--trainer.enable_progress_bar", "false", "--removed-kg"]) == 0
    table = json.loads((tmp_path / "res" / "id" / "probe.json").read_text())
    arms = {r["arm"] for r in table}
    assert arms == {"none", "xattn", "xattn, fusion off at inference", "xattn (KG-only facts removed)",
                    "xattn (KG-only facts removed), fusion off at inference", "majority (no model)",
                    "xattn, KG-only facts deleted after training"}
    assert all(r["kg_only_facts"] + r["text_facts"] > 0 for r in table if not r["arm"].startswith("majority"))
    report = (tmp_path / "res" / "id" / "results.md").read_text()
    assert "KG-only" in report and "Holm p=" in report and "Relation-majority baseline" in report
    assert (tmp_path / "res" / "id" / "results.png").stat().st_size > 1000  # the paired plot


@pytest.mark.slow
def test_lama_update_experiment_end_to_end_on_fixtures(data_dir, tmp_path, monkeypatch):
    """Train on the KG without the KG-only facts, add them by update, probe before/after (tiny BERT)."""
    import json

    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import lama

    monkeypatch.chdir(tmp_path)
    assert lama.main(["update", "--seeds", "0,1", "--out", str(tmp_path / "res"), "--graphs", str(tmp_path / "graphs"),
                      "--data-dir", str(data_dir), "--data.backbone", "tiny", "--model.fusion_layers", "[0]",
                      "--model.gnn_hidden", "16", "--model.gnn_heads", "2", "--trainer.max_epochs", "1",
                      "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]) == 0
    result = json.loads((tmp_path / "res" / "probe.json").read_text())
    arms = {r["arm"] for r in result["rows"]}
    assert {"none", "xattn, old KG (before the update)", "xattn, updated KG, no retraining",
            "xattn, updated KG + 1 epoch(s) continued pretraining"} <= arms
    assert result["update"]["diff_vs_full"] == {}  # the update gives lama_all's entities and triples
    updated = json.loads((tmp_path / "res" / "lama_updated" / "meta.json").read_text())
    assert [u["kind"] for u in updated["updates"]] == ["snapshot", "import"]
    retained = [r["retained"] for r in result["rows"] if "retained" in r]
    assert retained and all(x != x or 0 <= x <= 1 for x in retained)  # NaN: the tiny model knew no fact before
    assert "Forgetting" in (tmp_path / "res" / "results.md").read_text()


def test_docre_table_pairs_arms_by_seed(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import docre_table

    head = "variant,seed,test/f1,test/ign_f1,test/precision,test/recall\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "results.csv").write_text(head + "none,0,0.50,0.49,0.6,0.4\nnone,1,0.52,0.51,0.6,0.45\n"
                                                 "gated,0,0.55,0.50,0.6,0.5\ngated,1,0.58,0.52,0.6,0.55\n")
    (tmp_path / "b" / "results.csv").write_text(head + "none,1,0.40,0.39,0.5,0.3\n")
    arms = [f"base={tmp_path / 'a'}:none", f"fused={tmp_path / 'a'}:gated", f"distant={tmp_path / 'b'}:none"]
    assert docre_table.main(arms + ["--out", str(tmp_path / "t.md")]) == 0
    rows = (tmp_path / "t.md").read_text().splitlines()
    assert rows[2].startswith("| base | 2 (0,1) | 0.5100 ± 0.0141")
    assert "| fused | 2 (0,1) | 0.5650 ± 0.0212" in rows[3] and "+0.0550" in rows[3] and "+0.0100" in rows[3]
    assert rows[4].startswith("| distant | 1 (1) |") and rows[4].endswith("| – | – |")  # one common seed: no test
    # with every run's per-document counts, F1's interval over seeds x documents, and the difference's
    for arm, f1s in (("none", [(1, 2, 2), (1, 1, 2)]), ("gated", [(2, 2, 2), (2, 2, 2)])):
        for seed in (0, 1):
            run = tmp_path / "a" / "runs" / f"{arm}-seed{seed}"
            run.mkdir(parents=True)
            run.joinpath("test_items.csv").write_text("idx,correct,predicted,gold\n" +
                                                      "".join(f"{i},{c},{p},{g}\n" for i, (c, p, g) in enumerate(f1s)))
    assert docre_table.main(arms[:2] + ["--out", str(tmp_path / "t2.md"), "--plot", str(tmp_path / "f1.png")]) == 0
    assert (tmp_path / "f1.png").read_bytes()[:4] == b"\x89PNG"
    rows = (tmp_path / "t2.md").read_text().splitlines()
    assert "seeds × test documents" in rows[0]
    assert rows[3].endswith("| [1.0000, 1.0000] (2 documents) | [0.3333, 0.5000] |")  # F1 1 vs 0.5 to 0.667
    with pytest.raises(SystemExit, match="no finished run of variant 'xattn'"):
        docre_table.read_arm(f"x={tmp_path / 'a'}:xattn")


def test_docre_kg_coverage_counts_what_a_hand_made_kg_states(redocred_file, tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import docre_kg_coverage

    from kgllm.kg.graph.store import KnowledgeGraph

    data = json.loads(redocred_file.read_text())
    lab = data[1]["labels"][0]
    names = [data[1]["vertexSet"][lab[k]][0]["name"] for k in ("h", "t")]
    kg = KnowledgeGraph()
    h, t = (kg.add_entity(f"e{i}", n, "MISC") for i, n in enumerate(names))
    kg.add_edge(t, lab["r"], h)  # either direction counts
    kg.save(tmp_path / "kg")
    assert docre_kg_coverage.main([str(tmp_path / "kg"), "--gold", str(redocred_file), "--groups", "a=0:1", "b=1:2",
                                   "--out", str(tmp_path / "t.md")]) == 0
    rows = (tmp_path / "t.md").read_text().splitlines()
    assert rows[2].endswith("| 0 (0.0%) | 0 (0.0%) |")  # document 0's triples: no edge states them
    n = len({(x["h"], x["r"], x["t"]) for x in data[1]["labels"]})
    same_pair = {x["r"] for x in data[1]["labels"] if {x["h"], x["t"]} == {lab["h"], lab["t"]}}
    typed = sum(1 for x in {(x["h"], x["r"], x["t"]) for x in data[1]["labels"]}
                if {x[0], x[2]} == {lab["h"], lab["t"]} and x[1] == lab["r"])
    assert rows[3].startswith(f"| b (1) | {n:,} |") and len(same_pair) >= 1 and typed >= 1
    assert rows[3].endswith(f"| {typed} ({typed / n:.1%}) |")


def test_docre_type_prior_by_hand(tmp_path, monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import docre_prior

    def doc(types, labels):
        return {"vertexSet": [[{"type": t, "name": f"e{i}"}] for i, t in enumerate(types)],
                "labels": [{"h": h, "t": t, "r": r} for h, t, r in labels], "sents": [["x"]]}

    # training: 3 ordered PER->LOC pairs, 2 with P19 and 1 with P27; LOC->PER never related
    train = [doc(["PER", "LOC"], [(0, 1, "P19")]), doc(["PER", "LOC", "LOC"], [(0, 1, "P19"), (0, 2, "P27")])]
    prior = docre_prior.fit(train)
    assert prior == {("PER", "LOC"): ("P19", pytest.approx(2 / 3))}
    test = [doc(["PER", "LOC"], [(0, 1, "P19")]), doc(["LOC", "PER"], [(1, 0, "P27")])]
    assert docre_prior.counts(prior, test, 0.5) == [(1, 1, 1), (0, 1, 1)]
    assert docre_prior.counts(prior, test, 0.7) == [(0, 0, 1), (0, 0, 1)]
    assert docre_prior.scores([(1, 1, 1), (0, 1, 1)]) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps(train + test + test))
    assert docre_prior.main(["--gold", str(gold), "--train-docs", "0:2", "--val-docs", "2:4", "--test-docs", "4:6",
                             "--out", str(tmp_path / "p.json")]) == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["threshold"] <= 0.5 and result["f1"] == 0.5  # 0.7 predicts nothing


@pytest.mark.slow
def test_ray_merge_benchmark_runs_and_checks_identity(kg_dir, tmp_path):
    import json

    bench = str(ROOT / "experiments/bench/bench_ray_merge.py")
    subprocess.run([sys.executable, bench, "--kg", str(kg_dir), "--copies", "2", "--repeat", "1", "--extract-wps", "5000",
                    "--json", str(tmp_path / "r.json")], capture_output=True, text=True, check=True)
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result["ray_merge_s"]) == {"1", "2"} and len(result["memory"]) == 3
    assert {r["workers"] for r in result["projection"]} == {16, 128, 1024}
    again = subprocess.run([sys.executable, bench, "--from-json", str(tmp_path / "r.json"), "--extract-wps", "1597"],
                           capture_output=True, text=True, check=True)
    assert "1024 workers" in again.stdout and "1,597 words/s" in again.stdout


@pytest.mark.slow
def test_fusion_memory_benchmark_runs(tmp_path):
    import json

    subprocess.run([sys.executable, str(ROOT / "experiments/bench/bench_fusion_memory.py"), "--graphs",
                    str(tmp_path / "graphs"), "--sizes", "1e3", "--inputs", "lm,sparse_id", "--batch", "2", "--steps", "1",
                    "--json", str(tmp_path / "r.json")], capture_output=True, text=True, check=True)
    rows = json.loads((tmp_path / "r.json").read_text())
    assert [r["inputs"] for r in rows] == ["lm", "sparse_id"] and all(r["peak_rss_mb"] > 0 for r in rows)
