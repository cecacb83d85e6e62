import csv
import json
import subprocess
import sys

import pytest

from kgllm.cli import COMMANDS, main
from tests.conftest import FIXTURES


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_console_script_installed():
    out = subprocess.run([sys.executable, "-m", "kgllm", "--help"], capture_output=True, text=True, check=True)
    assert "build-kg" in out.stdout


def test_unknown_command(capsys):
    assert main(["nope"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_build_kg_bad_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Paris is in France."}\n{not json}\n')
    assert main(["build-kg", str(bad), "--out", str(tmp_path / "kg"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: malformed JSON" in err and not (tmp_path / "kg").exists()


def test_build_kg_and_stats(tmp_path, capsys):
    fix = __import__("tests.conftest", fromlist=["FIXTURES"]).FIXTURES
    assert main(["build-kg", str(fix / "corpus"), "--out", str(tmp_path / "kg"), "--no-progress",
                 "--rdf-format", "nt"]) == 0
    assert (tmp_path / "kg" / "graph.nt").is_file()
    assert main(["kg-stats", str(tmp_path / "kg")]) == 0
    out = capsys.readouterr().out
    assert "top entities by PageRank" in out and "nodes" in out


@pytest.mark.slow
def test_demo_end_to_end_on_fixtures(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo"
    code = main(["demo", "--data-dir", str(data_dir), "--out", str(out), "--graphs", str(tmp_path / "graphs"),
                 "--backbone", "tiny", "--fusion-layers", "[0]", "--limit-batches", "2", "--epochs", "1",
                 "--seeds", "0,1", "--removed-kg"])
    assert code == 0
    rows = list(csv.DictReader(open(out / "lama_all" / "results.csv")))
    assert sorted((r["variant"], r["seed"]) for r in rows) == [("none", "0"), ("none", "1"), ("none+copy", "0"),
                                                              ("none+copy", "1")]
    table = (out / "results.md").read_text()
    assert "| none | 2 |" in table and "| none+copy | 2 |" in table and "none+copy (KG-only facts removed) | 2 |" in table
    assert "| none+copy, KG-only facts deleted after training | 2 |" in table and "majority (no model)" in table
    assert "relation distractors (seed 0)" in table and "stated once in their relation templates" in table
    assert "**Answer:** none+copy vs none on kg_only_p_at_1" in table
    assert (out / "lama_all" / "runs" / "none+copy-seed0" / "config.yaml").is_file()  # resolved config per run
    assert sorted(p.name for p in (out / "lama_all" / "probes").iterdir())[:2] == [  # probes kept for a rerun
        "none+copy-seed0-on-lama_all.json", "none+copy-seed0-on-lama_no_kgonly.json"]
    assert "**Answer:**" in capsys.readouterr().out


def test_demo_without_data_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("KGLLM_DATA")
    assert main(["demo", "--out", str(tmp_path)]) == 1
    assert "KGLLM_DATA" in capsys.readouterr().err


@pytest.mark.parametrize("backbone", ["/nonexistent/bert", "some-org/some-bert-that-is-not-here"])
def test_unloadable_backbone_is_a_clear_error(backbone):
    from kgllm.util.errors import BackboneError
    from kgllm.nn.backbone import load_tokenizer

    with pytest.raises(BackboneError, match="backbone"):
        load_tokenizer(backbone)


def test_build_kg_config_file(tmp_path, capsys):
    import yaml

    cfg = tmp_path / "build.yaml"
    cfg.write_text(yaml.safe_dump({"corpus": str(FIXTURES / "corpus.jsonl"), "out": str(tmp_path / "kg"),
                                   "max_path_len": 6, "extractor": "dependency+cooccurrence", "no_progress": True}))
    assert main(["build-kg", "--config", str(cfg), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["max_path_len"] == 6 and printed["extractor"] == "dependency+cooccurrence"
    assert main(["build-kg", "--config", str(cfg), "--max-path-len", "5"]) == 0  # the command line wins
    meta = json.loads((tmp_path / "kg" / "meta.json").read_text())
    assert meta["extractor"]["max_path_len"] == 5 and meta["extractor"]["extractor"] == "dependency+cooccurrence"
    for bad in ({"n_process": 0}, {"store": "postgres"}, {"no_such_option": 1}, ["a", "list"]):
        cfg.write_text(yaml.safe_dump(bad))
        with pytest.raises(SystemExit) as exc:
            main(["build-kg", "x", "--out", str(tmp_path / "k2"), "--config", str(cfg)])
        assert exc.value.code == 2 and "--config" in capsys.readouterr().err


def test_datasets_lists_tasks_and_typed_options(capsys):
    from kgllm.cli import main

    assert main(["datasets", "fewrel", "hf"]) == 0
    out = capsys.readouterr().out
    assert "fewrel  (task: rel_cls)" in out and "n_train: int = 500" in out
    assert "hf  (task: its task option)" in out and "columns: dict[str, str] | None = None" in out
    assert main(["datasets", "sst3"]) == 2
    assert "unknown dataset 'sst3'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["datasets", "--help"])
    assert exit_.value.code == 0 and "usage: kgllm datasets" in capsys.readouterr().out


@pytest.mark.parametrize("flag,value,message", [
    ("--model.init_args.fusion", "gatd", "--model.fusion 'gatd' is not a fusion block; choose one of none, gated"),
    ("--model.init_args.peft", "lorra", "--model.peft 'lorra' is not a PEFT method; choose one of none, lora"),
    ("--model.init_args.graph_encoder", "gatt", "--model.graph_encoder must be gat or precomputed, got 'gatt'"),
    ("--data.init_args.masking", "entitty", "--data.masking 'entitty' is not a masking unit; choose one of"),
    ("--data.init_args.control", "shufled", "--data.control 'shufled' is not a control; choose one of none,"),
    ("--data.init_args.dataset", "redocredd", "unknown dataset 'redocredd'; choose one of"),
])
def test_misspelt_choice_is_a_one_line_usage_error_before_any_data(tmp_path, capsys, flag, value, message):
    code = main(["fit", "--config", "experiments/pretrain_redocred.yaml", flag, value,
                 "--data.kg_dir", str(tmp_path / "no_kg_here"), "--trainer.max_epochs", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


@pytest.mark.slow
def test_one_run_one_folder_and_test_logs_into_it(tmp_path, kg_dir, data_dir, monkeypatch, capsys):
    """CSV and TensorBoard share a run folder named by version, fusion and seed, with config and
    checkpoints; `latest` points at the newest; `test` of a checkpoint logs inside its run folder."""
    from pathlib import Path

    from tests.conftest import FIXTURE_DATASET_ARGS

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KGLLM_RUN_VERSION", raising=False)
    args = ["--config", str(root / "experiments/pretrain_redocred.yaml"), "--data.kg_dir", str(kg_dir),
            "--data.backbone", "tiny", "--data.data_dir", str(data_dir), "--model.fusion_layers", "[0]",
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred"]), "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false"]
    assert main(["fit", *args]) == 0
    assert main(["fit", *args, "--model.fusion", "none"]) == 0
    runs = tmp_path / "runs" / "pretrain_redocred"
    folders = sorted(p.name for p in runs.iterdir() if not p.is_symlink())
    assert folders == ["v000-gated-seed0", "v001-none-seed0"]
    for name in folders:
        files = {p.name for p in (runs / name).rglob("*")}
        assert {"config.yaml", "metrics.csv", "best.ckpt"} <= files and "last.ckpt" not in files  # finished
        assert any(f.startswith("events.out.tfevents") for f in files)
    assert (runs / "latest").resolve() == (runs / "v001-none-seed0").resolve()
    assert "run folder: runs/pretrain_redocred/v001-none-seed0" in capsys.readouterr().out
    best = runs / "latest" / "checkpoints" / "best.ckpt"
    import torch

    weights = torch.load(runs / "latest" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert "optimizer_states" not in weights and weights["state_dict"] and weights["kg_meta"]["identity"]
    made = weights["kgllm"]  # what wrote the checkpoint, in plain values
    import kgllm

    assert made["kgllm_version"] == kgllm.__version__ and made["torch_version"] == str(torch.__version__)
    assert made["weights_dtype"] == "float32" and made["precision"] == "32-true" and made["epoch"] == 0
    assert 0 < made["trainable_parameters"] <= made["parameters"] <= sum(v.numel() for v in weights["state_dict"].values())
    assert main(["test", *args, "--model.fusion", "none", "--ckpt_path", str(best)]) == 0
    tests = [p for p in (runs / "v001-none-seed0").iterdir() if p.name.startswith("test-")]
    assert len(tests) == 1 and (tests[0] / "metrics.csv").is_file()
    assert sorted(p.name for p in runs.iterdir() if not p.is_symlink()) == folders  # no new run folder


def test_every_command_line_option_has_help_and_shows_its_default(capsys):
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kgllm"
    missing = [f"{f.relative_to(root)}:{node.lineno}" for f in root.rglob("*.py")
               for node in ast.walk(ast.parse(f.read_text()))
               if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
               and "help" not in {k.arg for k in node.keywords}]
    assert not missing
    with pytest.raises(SystemExit) as exit_:
        main(["kg-merge", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "(default: id)" in out and "(default: turtle)" in out
    assert "--overwrite" in out and "(default: False)" not in out  # nothing to say for a flag


@pytest.mark.slow
def test_a_test_from_the_checkpoint_alone_never_touches_the_fit_record(tmp_path, monkeypatch, data_dir, kg_dir):
    """fit; test with only --ckpt_path (the run's config.yaml is read); test again with --config RUN/config.yaml
    (its logger version names the fit's folder); the fit's files stay byte for byte, each test gets its own
    folder, and plot counts one run."""
    import hashlib
    import json
    from pathlib import Path

    from kgllm.workflows.plot_runs import find_runs
    from tests.conftest import FIXTURE_DATASET_ARGS

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KGLLM_RUN_VERSION", raising=False)
    args = ["--config", str(root / "experiments" / "pretrain_redocred.yaml"), "--data.backbone", "tiny",
            "--data.kg_dir", str(kg_dir),
            "--data.data_dir", str(data_dir), "--model.fusion", "none",
            "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred"]), "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false"]
    assert main(["fit", *args]) == 0
    run = Path("runs/pretrain_redocred/latest").resolve()
    record = {p.relative_to(run): hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*") if p.is_file()}
    best = run / "checkpoints" / "best.ckpt"
    assert main(["test", "--ckpt_path", str(best), "--trainer.enable_progress_bar", "false",
                 "--data.data_dir", str(data_dir)]) == 0
    assert main(["test", "--config", str(run / "config.yaml"), "--ckpt_path", str(best),
                 "--trainer.enable_progress_bar", "false"]) == 0
    after = {p.relative_to(run): hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*")
             if p.is_file() and not p.relative_to(run).parts[0].startswith("test-")}
    assert after == record
    tests = sorted(p for p in run.iterdir() if p.name.startswith("test-"))
    assert len(tests) == 2 and all((t / "metrics.csv").is_file() for t in tests)
    assert [p.resolve() for p in find_runs(["runs/pretrain_redocred"])] == [run]


def test_fast_help_names_only_options_the_full_parser_accepts(capsys):
    """`kgllm fit --help` is text (no torch import); every option it names parses in LightningCLI,
    and lands in the resolved config."""
    import subprocess
    import sys

    import yaml

    from kgllm.cli import main
    from kgllm.cli.help import named_options

    code = "import sys; from kgllm.cli import main; main(['fit', '--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "kgllm options:" in out and "--model.fusion" in out and out.strip().endswith("False")
    values = {"--config": "experiments/finetune_sst2.yaml", "--ckpt_path": "last", "--seed_everything": "3",
              "--test_after_fit": "true", "--keep_last": "true", "--data.kg_dir": "graphs/x",
              "--data.backbone": "tiny", "--data.dataset": "sst2", "--data.dataset_args": "{}",
              "--data.batch_size": "4", "--data.max_length": "32", "--data.control": "shuffled_links",
              "--model.fusion": "xattn", "--model.fusion_layers": "[0]", "--model.node_features": "lm",
              "--model.init_from": "x.ckpt", "--model.lr": "0.001", "--trainer.max_epochs": "1",
              "--trainer.accelerator": "cpu", "--trainer.devices": "1", "--trainer.strategy": "auto",
              "--trainer.precision": "bf16-mixed", "--trainer.enable_progress_bar": "false",
              "--trainer.default_root_dir": "r"}
    assert set(values) | {"--print_config"} == set(named_options())
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # --print_config (spelt with a dash here: both spellings work)
        main(["fit", *(x for kv in values.items() for x in kv), "--print-config"])
    assert stop.value.code in (0, None)
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["keep_last"] is True and cfg["test_after_fit"] is True and cfg["seed_everything"] == 3
    assert cfg["data"]["init_args"]["control"] == "shuffled_links" and cfg["data"]["init_args"]["max_length"] == 32
    model = cfg["model"]["init_args"]
    assert (model["fusion"], model["fusion_layers"], model["node_features"]) == ("xattn", [0], "lm")
    assert cfg["trainer"]["precision"] == "bf16-mixed" and cfg["trainer"]["default_root_dir"] == "r"


def test_options_in_either_spelling():
    from kgllm.cli.help import one_spelling

    assert one_spelling(["--print-config", "--trainer.max-epochs=2", "--ckpt-path", "a-b"], lightning=True) == \
        ["--print_config", "--trainer.max_epochs=2", "--ckpt_path", "a-b"]
    assert one_spelling(["x_y", "--no_progress", "--print_config", "--trainer.max-epochs", "3", "--seed-everything"],
                        lightning=False) == ["x_y", "--no-progress", "--print-config", "--trainer.max_epochs", "3",
                                             "--seed_everything"]


def test_failed_fit_leaves_no_empty_run_folder(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from kgllm.cli import main

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KGLLM_RUN_VERSION", raising=False)
    (tmp_path / "runs" / "mine").mkdir(parents=True)  # a folder the fit did not make stays
    args = ["fit", "--config", str(root / "experiments/finetune_sst2_hf.yaml"), "--data.backbone", "tiny",
            "--data.kg_dir", str(tmp_path / "no_kg")]
    assert main(args) == 1
    assert "not a KG folder" in capsys.readouterr().err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["runs", "runs/mine"]


def test_a_closed_pipe_ends_a_command_quietly():
    """``kgllm ... | head`` closes the pipe: the command stops without a traceback (exit 141, as
    SIGPIPE would)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import sys; from kgllm.cli import main; sys.exit(main())", "datasets"],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command writes its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_every_commands_help_imports_no_torch():
    """``kgllm CMD --help`` answers at once for every command: nothing behind it imports torch
    (``kgllm datasets --help`` took 7 s before the datamodules were imported lazily)."""
    import subprocess
    import sys

    from kgllm.cli import COMMANDS

    code = ("import sys\nfrom kgllm.cli import COMMANDS, main\nslow = []\nfor cmd in COMMANDS:\n"
            "    try:\n        main([cmd, '--help'])\n    except SystemExit:\n        pass\n"
            "    if 'torch' in sys.modules:\n        slow.append(cmd)\n        break\n"
            "print('IMPORTED', slow)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300).stdout
    assert out.strip().splitlines()[-1] == "IMPORTED []", out[-500:]
    assert len(COMMANDS) > 20
