import csv
import math

import pytest
from scipy import stats

from kgllm.workflows.ablate import format_markdown, main, read_rows, summarise, variant_overrides, write_rows
from kgllm.util.errors import KGLLMError

ROWS = [{"variant": v, "seed": s, "test/f1": f1, "test/acc": acc}
        for v, s, f1, acc in [("none", 0, 0.50, 0.60), ("none", 1, 0.52, 0.61), ("none", 2, 0.48, 0.59),
                              ("gated", 0, 0.55, 0.62), ("gated", 1, 0.56, 0.60), ("gated", 2, 0.51, 0.61)]]


def test_summary_maths_on_a_hand_made_file(tmp_path):
    write_rows(tmp_path / "results.csv", ROWS)
    rows = read_rows(tmp_path / "results.csv")
    assert rows == ROWS
    s = {e["variant"]: e for e in summarise(rows, ["test/f1", "test/acc"])}
    assert s["none"]["test/f1"]["mean"] == pytest.approx(0.50)
    assert s["none"]["test/f1"]["std"] == pytest.approx(0.02)
    assert s["gated"]["test/f1"]["mean"] == pytest.approx(0.54)
    assert s["gated"]["test/f1"]["diff"] == pytest.approx(0.04)
    expected = stats.ttest_rel([0.55, 0.56, 0.51], [0.50, 0.52, 0.48]).pvalue
    assert s["gated"]["test/f1"]["p"] == pytest.approx(expected)
    # hand check of the t statistic: differences 0.05, 0.04, 0.03 -> mean 0.04, sd 0.01, t = 0.04 / (0.01 / sqrt 3)
    t = 0.04 / (0.01 / math.sqrt(3))
    assert expected == pytest.approx(2 * stats.t.sf(t, df=2))
    assert "diff" not in s["none"]["test/f1"]
    md = format_markdown(list(s.values()), ["test/f1", "test/acc"])
    assert "| gated | 3 | 0.5400 ± 0.0265" in md and "+0.0400 (p=" in md


def test_identical_differences_do_not_crash():
    rows = [{"variant": v, "seed": s, "m": x} for v, s, x in
            [("none", 0, 0.1), ("none", 1, 0.2), ("gated", 0, 0.3), ("gated", 1, 0.4)]]
    s = {e["variant"]: e for e in summarise(rows, ["m"])}
    assert s["gated"]["m"]["diff"] == pytest.approx(0.2) and s["gated"]["m"]["p"] == 0.5  # 2 pairs: sign test


def test_variants():
    assert variant_overrides("gated+shuffled_links") == ["--model.fusion", "gated", "--data.control", "shuffled_links"]
    with pytest.raises(KGLLMError, match="unknown variant"):
        variant_overrides("magic")


def test_a_command_line_option_that_replaces_a_variants_setting_is_named(tmp_path, caplog):
    from kgllm.workflows.ablate import main, option_keys

    assert option_keys(["--model.node_features", "id", "--trainer.max_epochs=2", "3"]) == {
        "--model.node_features", "--trainer.max_epochs"}
    with caplog.at_level("WARNING"), pytest.raises(KGLLMError):  # stops at the unknown variant, after the check
        main(["--config", "c.yaml", "--variants", "none+lm_features,magic", "--out", str(tmp_path / "o"),
              "--model.node_features", "id"])
    assert "variant none+lm_features: --model.node_features from the command line replaces" in caplog.text
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_tiny_ablation_end_to_end_and_reproducible(tmp_path, kg_dir, data_dir, capsys):
    from tests.conftest import FIXTURE_DATASET_ARGS

    import json
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "experiments" / "finetune_redocred_rc.yaml"
    extra = ["--data.kg_dir", str(kg_dir), "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
             "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred_rc"]), "--data.batch_size", "4",
             "--model.fusion_layers", "[0]", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
             "--trainer.enable_progress_bar", "false"]
    for out, seeds in (("a", "0,1"), ("b", "0")):
        assert main(["--config", str(config), "--variants", "none,gated", "--seeds", seeds, "--out",
                     str(tmp_path / out), *extra]) == 0
    said = capsys.readouterr().out
    assert "ablate: run 1 of 4: none seed 0\n" in said and "ablate: run 2 of 4: gated seed 0, ETA" in said
    assert said.count("ablate: finished ") == 6 and "ablate: run 1 of 2: none seed 0\n" in said
    rows_a, rows_b = (list(csv.DictReader(open(tmp_path / o / "results.csv"))) for o in ("a", "b"))
    assert [(r["variant"], r["seed"]) for r in rows_a] == [("none", "0"), ("gated", "0"), ("none", "1"), ("gated", "1")]
    assert len(rows_b) == 2
    for ra, rb in zip(rows_a, rows_b):  # same seed -> same numbers on CPU
        assert {k: v for k, v in ra.items() if k.startswith("test/")} == \
            {k: v for k, v in rb.items() if k.startswith("test/")}
    md = (tmp_path / "a" / "results.md").read_text()
    assert "| gated | 2 |" in md and "paired t-test" in md
    items = (tmp_path / "a" / "runs" / "gated-seed1" / "test_items.csv").read_text().splitlines()
    assert items[0] == "idx,correct" and len(items) > 1 and {x.split(",")[1] for x in items[1:]} <= {"0", "1"}
    assert "test accuracy 95% CI (seeds × test items)" in md
    assert (tmp_path / "a" / "results.png").read_bytes()[:4] == b"\x89PNG"
    # a re-run skips what is done
    assert main(["--config", str(config), "--variants", "none,gated", "--seeds", "0,1", "--out",
                 str(tmp_path / "a"), *extra]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "a" / "results.csv")))) == 4
    with pytest.raises(KGLLMError, match="none seed 0, gated seed 0, none seed 1, gated seed 1 ran with other settings"):
        main(["--config", str(config), "--variants", "none,gated", "--seeds", "0,1,2", "--out",
              str(tmp_path / "a"), *extra, "--trainer.max_epochs", "3"])  # resuming with another budget: refused


def test_a_resumed_ablation_summarises_runs_that_did_not_log_every_metric(tmp_path):
    """Rows read back from results.csv hold "" for a metric a run did not log (MLM's entity loss without
    fusion); restarting a finished ablation must still write its table."""
    from kgllm.workflows.ablate import setup_fingerprint

    rows = [{**r, "test/entity_loss": "" if r["variant"] == "none" else 1.5,
             "setup": setup_fingerprint(["unused.yaml"], [])} for r in ROWS]
    write_rows(tmp_path / "results.csv", rows)
    assert main(["--config", "unused.yaml", "--variants", "none,gated", "--seeds", "0,1,2", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "results.md").read_text()
    assert "test/f1" in md and "test/acc" in md and "entity_loss" not in md


def test_ablation_figure_has_panels_labels_pairs_and_p_values():
    from kgllm.workflows.ablate import plot_figure, summarise

    rows = [{"variant": v, "seed": s, "test/acc": a, "test/f1": a - 0.1}
            for v, base in (("none", 0.5), ("gated", 0.6)) for s, a in ((0, base), (1, base + 0.02), (2, base + 0.01))]
    summary = summarise(rows, ["test/acc", "test/f1"])
    fig = plot_figure(rows, ["test/acc", "test/f1"], summary, "finetune_sst2")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["test/acc", "test/f1"]
    assert all(ax.get_ylabel() in ("test/acc", "test/f1") and ax.get_xlabel().startswith("variant") for ax in axes)
    ticks = [t.get_text() for t in axes[0].get_xticklabels()]
    assert ticks[0] == "none" and ticks[1].startswith("gated\np") and "Holm" in ticks[1]
    assert len([ln for ln in axes[0].lines if ln.get_color() == "0.75"]) == 3  # one grey line per seed
    assert fig._suptitle.get_text().startswith("finetune_sst2:")


def test_a_resumed_ablation_refuses_rows_of_other_settings(tmp_path):
    from kgllm.workflows.ablate import setup_fingerprint

    config = tmp_path / "exp.yaml"
    config.write_text("trainer: {max_epochs: 1}\n")
    setup = setup_fingerprint([str(config)], ["--trainer.max_epochs", "2"])
    assert setup == setup_fingerprint([str(config)], ["--trainer.max_epochs", "2"]) != setup_fingerprint([str(config)], [])
    write_rows(tmp_path / "results.csv", [{**r, "setup": setup} for r in ROWS])
    args = ["--config", str(config), "--variants", "none,gated", "--seeds", "0,1,2", "--out", str(tmp_path)]
    assert main([*args, "--trainer.max_epochs", "2"]) == 0  # same settings: the table from the rows, no training
    assert (tmp_path / f"{setup}.json").is_file()
    with pytest.raises(KGLLMError, match="ran with other settings"):
        main(args)
    config.write_text("trainer: {max_epochs: 5}\n")  # the config file changed
    with pytest.raises(KGLLMError, match="ran with other settings"):
        main([*args, "--trainer.max_epochs", "2"])
    write_rows(tmp_path / "results.csv", ROWS)  # rows from before settings were kept
    with pytest.raises(KGLLMError, match="recorded before kgllm kept them"):
        main(args)


def test_controls_flag_adds_every_control_to_graph_reading_variants():
    from kgllm.workflows.ablate import with_controls

    assert with_controls(["none", "xattn", "none+copy"]) == [
        "none", "xattn", "xattn+matched", "xattn+random_graph", "xattn+shuffled_links", "xattn+no_edges",
        "none+copy", "none+copy+random_graph", "none+copy+shuffled_links", "none+copy+no_edges"]
    assert with_controls(["gated+random_graph"]) == ["gated+random_graph", "gated+random_graph+matched",
                                                     "gated+random_graph+shuffled_links",
                                                     "gated+random_graph+no_edges"]
    for v in with_controls(["xattn", "none+copy"]):
        variant_overrides(v)  # every added name is a known variant


def test_with_controls_results_md_compares_each_arm_with_its_graph_free_form(tmp_path):
    from kgllm.workflows.ablate import control_tables, setup_fingerprint

    extra = [{"variant": v, "seed": s, "test/f1": f1, "test/acc": acc}
             for v, s, f1, acc in [("gated+matched", 0, 0.53, 0.61), ("gated+matched", 1, 0.53, 0.60),
                                   ("gated+matched", 2, 0.50, 0.60), ("gated+random_graph", 0, 0.50, 0.60),
                                   ("gated+random_graph", 1, 0.50, 0.60), ("gated+random_graph", 2, 0.50, 0.60),
                                   ("none+copy", 0, 0.70, 0.7), ("none+copy", 1, 0.71, 0.7), ("none+copy", 2, 0.72, 0.7),
                                   ("none+copy+no_edges", 0, 0.4, 0.4), ("none+copy+no_edges", 1, 0.41, 0.4),
                                   ("none+copy+no_edges", 2, 0.40, 0.4)]]
    md = control_tables(ROWS + extra, ["test/f1"])
    gated, copy = md.split("## none+copy against")
    assert gated.startswith("## gated against gated+matched")
    assert "| none |" not in md and "| gated+matched | 3 |" in gated and "| gated+random_graph | 3 |" in gated
    # gated - gated+matched per seed: 0.02, 0.03, 0.01 -> +0.0200; random_graph: -0.03, -0.03, 0.00 -> -0.0200
    assert "| gated | 3 | 0.5400 ± 0.0265 [0.4743, 0.6057] | +0.0200 (p=" in gated
    assert "| gated+random_graph | 3 | 0.5000 ± 0.0000 [0.5000, 0.5000] | -0.0200 (p=" in gated
    assert copy.startswith(" none+copy+no_edges (the same parameters, its nodes without edges)") and "| none+copy | 3 | 0.7100" in copy and "+0.3067 (p=" in copy
    assert control_tables(ROWS, ["test/f1"]) == ""  # no controls, no section
    # and it is part of the results.md a (resumed) ablation writes
    config = tmp_path / "exp.yaml"
    config.write_text("trainer: {max_epochs: 1}\n")
    setup = setup_fingerprint([str(config)], [])
    write_rows(tmp_path / "results.csv", [{**r, "setup": setup} for r in ROWS + extra[:6]])
    assert main(["--config", str(config), "--variants", "none,gated,gated+matched,gated+random_graph", "--seeds",
                 "0,1,2", "--metrics", "test/f1", "--out", str(tmp_path)]) == 0  # every run done: no training
    report = (tmp_path / "results.md").read_text()
    assert report.index("| gated | 3 |") < report.index("## gated against gated+matched") < report.index("Data seen")


def test_no_edges_control_keeps_nodes_and_drops_edges():
    import torch
    from torch_geometric.data import Data

    from kgllm.data.datamodule import without_edges

    g = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), edge_type=torch.tensor([0, 1]),
             edge_weight=torch.ones(2), num_nodes=3)
    e = without_edges(g)
    assert e.num_nodes == 3 and e.edge_index.shape == (2, 0) and e.edge_type.numel() == e.edge_weight.numel() == 0
    assert g.edge_index.shape == (2, 2)  # the KG's own graph is untouched


def test_intervals_over_seeds_and_test_items(tmp_path):
    from kgllm.workflows.ablate import read_test_items

    items = {("none", s): {i: int(i % 2 == 0) for i in range(50)} for s in range(3)}
    items.update({("gated", s): {i: int(i % 5 != 0) for i in range(50)} for s in range(3)})
    summary = summarise(ROWS, ["test/f1"], items=items)
    gated = next(e for e in summary if e["variant"] == "gated")["items"]
    assert gated["items"] == 50 and gated["ci"][0] < 0.8 < gated["ci"][1]  # 40 of 50 right in every seed
    assert gated["diff_ci"][0] < 0.3 < gated["diff_ci"][1] and gated["diff_ci"][0] > 0  # 0.8 - 0.5
    md = format_markdown(summary, ["test/f1"])
    assert "(seeds × test items)" in md and "(50 items)" in md
    assert "seeds × test items" not in format_markdown(summarise(ROWS, ["test/f1"]), ["test/f1"])
    (tmp_path / "test_items.csv").write_text("idx,correct\n0,1\n3,0\n")
    assert read_test_items(tmp_path) == {0: 1, 3: 0} and read_test_items(tmp_path / "none") is None


def test_the_kg_source_of_a_merged_kg_names_every_input():
    from kgllm.workflows.ablate import _source_of

    leaf = {"corpus": {"path": "/x/fold0/corpus.jsonl", "documents": 175}}
    other = {"imported": [{"format": "csv", "files": ["a.csv", "b.csv"]}]}
    merged = {"merge_by": "label", "merged": [{"merge_by": "label", "merged": [leaf, other]},
                                              {"corpus": {"path": "/x/eval/corpus.jsonl", "documents": 150}}]}
    assert _source_of(leaf) == "fold0/corpus.jsonl, 175 documents"
    assert _source_of(merged) == ("merged by label: merged by label: fold0/corpus.jsonl, 175 documents; "
                                  "imported csv (2 files); eval/corpus.jsonl, 150 documents")
