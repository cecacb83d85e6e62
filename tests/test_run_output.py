"""What a run prints and leaves beside its metrics: one line per epoch, the classification report."""

import torch


def test_epoch_line_shows_each_metric_once_val_first():
    from kgllm.lit.runtime import epoch_line

    metrics = {"train/loss": torch.tensor(2.0), "train/loss_step": torch.tensor(2.0),
               "train/loss_epoch": torch.tensor(1.5), "val/acc": torch.tensor(0.25), "train/acc": torch.tensor(0.5),
               "fusion/gate_norm_layer3": torch.tensor(0.1), "val/f1": torch.tensor(0.125)}
    assert epoch_line(metrics) == "val/acc 0.25  val/f1 0.125  train/acc 0.5  train/loss 1.5"


def test_per_class_scores_and_confusion_figure(tmp_path):
    from kgllm.lit.report import confusion_figure, per_class, write_report

    cm = torch.tensor([[3, 1, 0], [0, 2, 2], [0, 0, 0]])  # rows: true class
    rows = {r["label"]: r for r in per_class(cm, ["a", "b", "c"])}
    assert rows["a"]["precision"] == 1.0 and rows["a"]["recall"] == 0.75
    assert abs(rows["b"]["f1"] - 2 * (2 / 3) * 0.5 / (2 / 3 + 0.5)) < 1e-9
    assert rows["c"] == {"label": "c", "name": "", "support": 0, "predicted": 2, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    paths = write_report(cm, ["a", "b", "c"], tmp_path / "run", "seq_cls on x: test confusion matrix")
    assert [p.name for p in paths] == ["per_class.csv", "confusion_matrix.csv", "confusion_matrix.png"]
    assert (tmp_path / "run" / "per_class.csv").read_text().splitlines()[1] == "a,,4,3,1.0000,0.7500,0.8571"
    assert (tmp_path / "run" / "confusion_matrix.csv").read_text().splitlines()[2] == "b,0,2,2"
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temporary left

    fig = confusion_figure(cm, ["a", "b", "c"], "title")
    (ax, _bar) = fig.axes
    assert ax.get_title() == "title" and ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "2", "3"]  # counts in the non-zero cells
    many = torch.eye(40, dtype=torch.long) * torch.arange(1, 41)
    ax = confusion_figure(many, [f"r{i}" for i in range(40)], "t").axes[0]
    assert ax.get_title() == "t (30 most frequent of 40 classes)" and len(ax.get_yticklabels()) == 30
    assert "r0" not in {t.get_text() for t in ax.get_yticklabels()}  # the rarest classes are the ones left out


def test_relations_show_their_wikidata_labels():
    """Wikidata property ids show with their labels in reports, figures and statistics."""
    from kgllm.kg.graph.wikidata import relation_label, with_label
    from kgllm.lit.report import confusion_figure, per_class

    assert with_label("P19") == "P19 (place of birth)" and with_label("born_in") == "born_in"
    assert relation_label("P1412") == "languages spoken, written or signed" and relation_label("P0") is None
    cm = torch.tensor([[2, 0], [1, 1]])
    assert [r["name"] for r in per_class(cm, ["P27", "NA"])] == ["country of citizenship", ""]
    ax = confusion_figure(cm, ["P27", "NA"], "t").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["P27 (country of citizenship)", "NA"]
