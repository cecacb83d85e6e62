"""kgllm plot: curves of several runs overlaid, one panel per metric (checked on the figure objects)."""

import pytest

from kgllm.util.errors import KGLLMError
from kgllm.workflows.plot_runs import curves_figure, find_runs


def run(folder, rows):
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("epoch,step,train/loss_step,val/loss,val/acc\n" + "".join(rows))
    return folder


def test_runs_overlaid_one_panel_per_metric(tmp_path):
    a = run(tmp_path / "runs" / "none-seed0", ["0,0,2.0,,\n", "0,1,1.5,,\n", "0,1,,1.4,0.5\n"])
    b = run(tmp_path / "runs" / "gated-seed0", ["0,0,2.1,,\n", "0,1,1.2,,\n", "0,1,,1.1,0.6\n"])
    runs = find_runs([tmp_path / "runs"])
    assert runs == [b, a]
    fig = curves_figure(runs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["train/loss_step", "val/acc", "val/loss"]
    first = fig.axes[0]
    assert len(first.lines) == 2 and list(first.lines[1].get_ydata()) == [2.0, 1.5]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"none-seed0", "gated-seed0"}
    assert first.get_xlabel() == "step"


def test_cli_and_missing_runs(tmp_path, capsys):
    from kgllm.cli import main

    run(tmp_path / "r", ["0,0,2.0,,\n"])
    assert main(["plot", str(tmp_path / "r"), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(KGLLMError, match="no metrics.csv"):
        find_runs([tmp_path / "empty"])
