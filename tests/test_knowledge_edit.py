"""Knowledge edits scored like model editing: the metrics on hand-made predictions, the choice of
edits, and the whole run on the fixtures (a tiny copy-head model, one kg-edit update, no training)."""

import json
import sys
from pathlib import Path

import pytest

from kgllm.workflows.knowledge.edit import edit_report, edit_scores, load_paraphrases, share_by_relation

ROOT = Path(__file__).resolve().parents[1]


def test_edit_scores_on_hand_made_predictions():
    scores = edit_scores(new_ids=[5, 6, 7, 8], after=[5, 6, 0, 8], paraphrase_new=[5, 5, 6, 6],
                         paraphrase_after=[5, 1, 6, 6],
                         spec_before={"same_subject": [1, 2, 3, 4, 5], "other_subjects": [9, 9]},
                         spec_after={"same_subject": [1, 2, 3, 0, 5], "other_subjects": [9, 9]})
    assert scores == {"efficacy": 0.75, "paraphrase": 0.75, "specificity_same_subject": 0.8,
                      "specificity_other_subjects": 1.0}
    assert edit_scores([], [], [], [], {}, {})["efficacy"] != edit_scores([], [], [], [], {}, {})["efficacy"]  # NaN


def test_edit_report_aggregates_over_checkpoints():
    rows = [{"ckpt": "a", "edit_seed": 0, "edits": 200, "efficacy": 0.8, "seconds_per_edit": 0.02},
            {"ckpt": "b", "edit_seed": 0, "edits": 200, "efficacy": 1.0, "seconds_per_edit": 0.04}]
    md = edit_report(rows)
    assert "2 runs: 2 checkpoints x 1 edit draws; 200 edits" in md
    line = next(x for x in md.splitlines() if x.startswith("| efficacy |"))
    assert "0.900 ± 0.141" in line and "≥ 0.9" in line  # mean and sample std of 0.8, 1.0
    assert "| seconds_per_edit | 0.030 ± 0.014" in md and "paraphrase" not in md  # absent metrics left out


def test_per_relation_shares_and_their_table():
    assert share_by_relation(["P19", "P103", "P19", "P103", "P19"], [1, 0, 1, 0, 0]) == {"P103": 0.0, "P19": 2 / 3}
    rows = [{"ckpt": c, "edit_seed": 0, "edits": 3, "efficacy": 0.5,
             "efficacy_by_relation": {"P19": e, "P103": 0.0}, "old_object_after_by_relation": {"P19": 0.0, "P103": o}}
            for c, e, o in (("a", 1.0, 1.0), ("b", 0.5, 0.5))]
    md = edit_report(rows)
    assert "| | P103 | P19 |" in md and "| efficacy | 0.000 | 0.750 |" in md and "| old object after | 0.750 | 0.000 |" in md


def test_paraphrase_file_is_checked(tmp_path):
    shipped = load_paraphrases(ROOT / "experiments" / "lama_paraphrases.jsonl")
    assert all(len(t) >= 2 for t in shipped.values()) and {"P19", "P20", "P103", "P140", "P1412", "P27"} <= set(shipped)
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"relation": "P19", "templates": ["no slots"]}\n')
    from kgllm.util.errors import KGFormatError

    with pytest.raises(KGFormatError, match="p.jsonl:1: every template needs"):
        load_paraphrases(bad)


@pytest.mark.slow
def test_edits_end_to_end_on_fixtures(data_dir, tmp_path, monkeypatch):
    """A tiny copy-head model trained one epoch, then two facts edited through kg-edit: the metrics
    are all there, nothing was trained, and the KG it was trained on is unchanged."""
    from kgllm.kg.sources.lama import read_lama, read_templates
    from kgllm.kg.graph.store import KnowledgeGraph
    from kgllm.workflows.knowledge.edit import run_edits

    monkeypatch.syspath_prepend(str(ROOT / "experiments" / "bench"))
    import lama

    monkeypatch.chdir(tmp_path)
    assert lama.main(["experiment", "--variants", "none+copy", "--seeds", "0", "--distractors", "0", "--out",
                      str(tmp_path / "res"), "--graphs", str(tmp_path / "graphs"), "--data-dir",
                      str(data_dir), "--data.backbone", "tiny", "--model.fusion_layers", "[0]",
                      "--model.gnn_hidden", "16", "--model.gnn_heads", "2", "--trainer.max_epochs", "1",
                      "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]) == 0
    ckpt = next((tmp_path / "res").rglob("lama_all/**/best.ckpt"))
    kg_dir = tmp_path / "graphs" / "id-distractors0" / "lama_all"
    before = (kg_dir / "triples.tsv").read_text()
    facts = read_lama(data_dir / "lama_trex", splits=("test",))
    res = run_edits(str(ckpt), kg_dir, facts, load_paraphrases(ROOT / "experiments" / "lama_paraphrases.jsonl"),
                    read_templates(data_dir / "lama_trex" / "relations.jsonl"), tmp_path / "work", n=2)
    assert res["edits"] == 2 and res["training_steps"] == 0 and res["paraphrase_clozes"] == 4
    for key in ("efficacy", "paraphrase", "specificity_same_subject", "specificity_other_subjects"):
        assert 0.0 <= res[key] <= 1.0
    assert res["seconds_per_edit"] > 0 and (kg_dir / "triples.tsv").read_text() == before
    assert res["efficacy_by_relation"] and set(res["efficacy_by_relation"]) == set(res["old_object_after_by_relation"])
    edited = KnowledgeGraph.load(tmp_path / "work" / "edited_kg")
    assert edited.identity() == KnowledgeGraph.load(kg_dir).identity() and len(edited.meta["retracted"]) == 2

    from kgllm.kg.sources.lama import LamaFact
    from kgllm.workflows.knowledge.edit import run_new_subjects

    city = next(f for f in facts if f.relation == "P19")
    new = [LamaFact("P19", "wd:Qnew1", "Zork Blimpton", city.obj_key, city.obj_label, source=("new", 1)),
           LamaFact("P19", city.sub_key, city.sub_label, city.obj_key, city.obj_label)]  # not new: skipped
    grown = run_new_subjects(str(ckpt), kg_dir, new, read_templates(data_dir / "lama_trex" / "relations.jsonl"),
                             tmp_path / "work")
    assert grown["new_subjects"] == 1 and grown["training_steps"] == 0 and 0.0 <= grown["p_at_1"] <= 1.0
    assert (kg_dir / "triples.tsv").read_text() == before
    assert "wd:Qnew1" in KnowledgeGraph.load(tmp_path / "work" / "grown_kg").key_to_id
    assert grown["majority_p_at_1"] != grown["majority_p_at_1"]  # no text facts given: NaN, not 0

    # the bench script over an experiment's runs folder: every seed's checkpoint
    runs = next((tmp_path / "res").rglob("lama_all/results.csv")).parent
    assert lama.main(["edits", "--runs", str(runs), "--kg", str(kg_dir), "--n", "2", "--data-dir", str(data_dir),
                      "--new-per-relation", "5", "--out", str(tmp_path / "edits")]) == 0
    rows = json.loads((tmp_path / "edits" / "edits.json").read_text())
    assert [r["train_seed"] for r in rows] == [0] and rows[0]["edits"] == 2
    assert "| efficacy |" in (tmp_path / "edits" / "results.md").read_text()
    assert (kg_dir / "triples.tsv").read_text() == before
