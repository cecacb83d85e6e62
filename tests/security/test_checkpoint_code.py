"""Round two: a checkpoint never chooses code (``_class_path``), a URL is never answered from a cache
by file name, and checkpoint misuses are one-line errors."""

from __future__ import annotations

import sys

import pytest
import torch

from kgllm.cli import main
from tests.security.servers import http_server, url
from tests.security.test_checkpoints import _fit_args

PAYLOAD = "import pathlib\npathlib.Path({marker!r}).touch()\nclass Model:\n    pass\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, kg_dir, data_dir):
    """One tiny fitted run: (folder, best.ckpt, last.ckpt)."""
    tmp = tmp_path_factory.mktemp("fitted")
    assert main(_fit_args(tmp, kg_dir, data_dir, "--keep_last", "true")) == 0
    return tmp, next(tmp.rglob("best.ckpt")), next(tmp.rglob("last.ckpt"))


def _with_hparams(src, dst, **changes):
    blob = torch.load(src, weights_only=True)
    blob["hyper_parameters"].update(changes)
    torch.save(blob, dst)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("sub", ["validate", "test"])
def test_checkpoint_class_path_never_imports_a_module(trained, tmp_path, kg_dir, data_dir, monkeypatch, capsys, sub):
    marker = tmp_path / "pwned"
    (tmp_path / "payload_mod.py").write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    evil = _with_hparams(trained[1], tmp_path / "m2.ckpt", _class_path="payload_mod.Model")
    args = _fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", str(evil))
    assert main([sub, *args[1:]]) == 1
    assert not marker.exists() and "payload_mod" not in sys.modules
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "m2.ckpt: refused" in err and "payload_mod.Model" in err


@pytest.mark.slow
@pytest.mark.parametrize("hparams", [{"_class_path": "this.Nope"}, {"fusion": {"class_path": "this.Nope"}},
                                     {"lr": [{"__path__": "this.Nope"}]}])
def test_no_value_in_a_checkpoint_names_code(trained, tmp_path, kg_dir, data_dir, capsys, hparams):
    sys.modules.pop("this", None)
    evil = _with_hparams(trained[1], tmp_path / "m3.ckpt", **hparams)
    args = _fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", str(evil))
    assert main(["validate", *args[1:]]) == 1
    assert "this" not in sys.modules  # `import this` would print the Zen of Python
    assert "refused" in capsys.readouterr().err


@pytest.mark.slow
def test_own_checkpoint_still_validates(trained, tmp_path, kg_dir, data_dir):
    args = _fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", str(trained[1]))
    assert main(["validate", *args[1:]]) == 0


@pytest.mark.slow
def test_url_checkpoints_are_not_cached_by_file_name(trained, tmp_path, kg_dir, data_dir, monkeypatch, capsys):
    """Two URLs ending in the same file name: the second serves garbage and must be refused, not
    answered with the first one's weights (torch.hub's cache is keyed by file name)."""
    from kgllm.nn import checkpoints

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    (tmp_path / "srv" / "a").mkdir(parents=True)
    (tmp_path / "srv" / "b").mkdir()
    (tmp_path / "srv" / "a" / "best.ckpt").write_bytes(trained[1].read_bytes())
    (tmp_path / "srv" / "b" / "best.ckpt").write_bytes(b"not a checkpoint")
    with http_server(tmp_path / "srv") as server:
        args = _fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", url(server, "a/best.ckpt"))
        assert main(["test", *args[1:]]) == 0
        checkpoints._FETCHED.clear()  # as a new process: nothing remembered by URL
        args = _fit_args(tmp_path / "run", kg_dir, data_dir, "--ckpt_path", url(server, "b/best.ckpt"))
        assert main(["test", *args[1:]]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "b/best.ckpt: " in err and ("not a readable checkpoint" in err or "refused" in err)


def test_local_checkpoint_names_downloads_by_content(tmp_path):
    from kgllm.nn import checkpoints

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.ckpt").write_bytes(b"first")
    (tmp_path / "b" / "x.ckpt").write_bytes(b"second")
    with http_server(tmp_path) as server:
        one = checkpoints.local_checkpoint(url(server, "a/x.ckpt"))
        two = checkpoints.local_checkpoint(url(server, "b/x.ckpt"))
    assert one != two
    assert open(one, "rb").read() == b"first" and open(two, "rb").read() == b"second"
    assert checkpoints.local_checkpoint(tmp_path / "a" / "x.ckpt") == str(tmp_path / "a" / "x.ckpt")


@pytest.mark.slow
def test_fit_resuming_from_weights_only_and_registry_are_one_line(trained, tmp_path, kg_dir, data_dir, capsys):
    best = str(trained[1])
    assert main(_fit_args(tmp_path / "r", kg_dir, data_dir, "--ckpt_path", best, "--ckpt_path", best)) == 1
    assert "holds weights only" in capsys.readouterr().err
    args = _fit_args(tmp_path / "r", kg_dir, data_dir, "--ckpt_path", "registry")
    assert main(["test", *args[1:]]) == 1
    assert "model registry" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_that_trains_to_nan_fails(tmp_path, kg_dir, data_dir, capsys):
    """lr=nan is refused by the module; a finite lr that still blows the loss up stops the run (exit 1)."""
    args = _fit_args(tmp_path / "r", kg_dir, data_dir, "--model.lr", "1e30", "--model.kg_lr", "1e30",
                     "--trainer.limit_train_batches", "4", "--trainer.max_epochs", "3")
    assert main(args) == 1
    assert "train/loss is" in capsys.readouterr().err
    assert main(_fit_args(tmp_path / "r", kg_dir, data_dir, "--model.lr", ".nan")) == 2
    assert "lr must be a finite number" in capsys.readouterr().err
