"""Round two: inputs that raised tracebacks, crashed the process (exit 139) or exited 0 with a wrong
result now end in one line naming the input. Each case is the reproduction from issue 23."""

from __future__ import annotations

import json
import shutil

import pytest

from kgllm.cli import main
from kgllm.util.errors import ConfigError, KGLLMError


def _one_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, last
    return last


def _deep(n: int = 100_000) -> str:
    return "[" * n + "]" * n


def test_openke_non_integer_ids(tmp_path, capsys):
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "entity2id.txt").write_text("2\nA\t0\nB\tx\n")
    (folder / "relation2id.txt").write_text("1\nr\t0\n")
    (folder / "train2id.txt").write_text("1\n0 1 0\n")
    assert main(["kg-import", "openke", str(folder), "--out", str(tmp_path / "kg")]) == 1
    _one_line(capsys, "entity2id.txt", "not an integer")
    assert not (tmp_path / "kg").exists()


def test_lama_json_nested_deeply(tmp_path, capsys):
    (tmp_path / "lama").mkdir()
    (tmp_path / "lama" / "P19.test.jsonl").write_text('{"sub_label": ' + _deep() + "}\n")
    assert main(["kg-import", "lama", str(tmp_path / "lama"), "--out", str(tmp_path / "kg")]) == 1
    _one_line(capsys, "P19.test.jsonl:1", "not a LAMA fact")


def test_endpoint_json_nested_deeply():
    from kgllm.kg.sparql.endpoint import _rows

    with pytest.raises(RecursionError):
        _rows(json.loads(_deep(50_000)), None)  # what the reader must catch ...
    from tests.security.test_serving import _close, _start

    import http.server

    class Deep(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = ('{"head": {"vars": ["x"]}, "results": ' + _deep(50_000) + "}").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    from kgllm.kg.sparql.endpoint import query_endpoint
    from kgllm.kg.sparql.local import QueryError

    server = _start(Deep)
    try:  # ... and does: one line, no traceback
        with pytest.raises(QueryError, match="not a SPARQL JSON result"):
            query_endpoint(f"http://127.0.0.1:{server.server_address[1]}", "SELECT ?x WHERE { ?x ?p ?o }")
    finally:
        _close(server)


@pytest.mark.parametrize("kind", ["predict", "build-kg"])
def test_deeply_nested_jsonl_row_is_refused_before_pyarrow(tmp_path, kg_dir, capsys, kind):
    """pyarrow's JSON reader used to crash the whole process (exit 139) on this row."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "Ann lives in Paris."}\n{"text": ' + _deep() + "}\n")
    if kind == "predict":
        from kgllm.kg.extraction.hf_sources import open_source

        with pytest.raises(KGLLMError, match="rows.jsonl:2: JSON nested more than"):
            open_source(str(rows))
    else:
        assert main(["build-kg", str(rows), "--format", "hf", "--out", str(tmp_path / "kg"), "--no-progress"]) == 1
        _one_line(capsys, "rows.jsonl:2", "nested")


def test_a_30mb_text_is_refused_naming_the_row():
    from kgllm.kg.extraction.hf_sources import check_text

    assert check_text("Paris " * 1000, "in.jsonl", "test", 0, "text")
    with pytest.raises(KGLLMError, match=r"in.jsonl \[test\] row 3: column 'text' holds 30,000,000 characters"):
        check_text("Paris " * 5_000_000, "in.jsonl", "test", 3, "text")


@pytest.mark.parametrize("where", ["input", "folder"])
def test_predict_out_must_be_a_new_file(tmp_path, capsys, where):
    rows = tmp_path / "in.jsonl"
    rows.write_text('{"text": "Ann lives in Paris."}\n')
    out = rows if where == "input" else tmp_path
    assert main(["predict", str(tmp_path / "model.ckpt"), "--input", str(rows), "--out", str(out)]) == 2
    _one_line(capsys, "--out")
    assert rows.read_text() == '{"text": "Ann lives in Paris."}\n'


@pytest.mark.parametrize("args,needle", [
    (["--n-process", "100000"], "n_process 100000"),
    (["--extractor", "dependency+"], "empty name"),
    (["--extractor", "+"], "empty name"),
])
def test_build_options_out_of_range(tmp_path, capsys, args, needle):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "Ann lives in Paris."}\n')
    assert main(["build-kg", str(corpus), "--out", str(tmp_path / "kg"), "--no-progress", *args]) == 2
    _one_line(capsys, needle)
    assert not (tmp_path / "kg").exists()


def test_unwritable_plot_dir(kg_dir, capsys):
    assert main(["kg-stats", str(kg_dir), "--plot-dir", "/proc/kgllm-plots"]) == 1
    _one_line(capsys, "/proc/kgllm-plots")


@pytest.mark.parametrize("kwargs,needle", [
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"kg_lr": float("inf")}, "kg_lr must be a finite number"),
    ({"warmup_ratio": 5.0}, "warmup_ratio must be in [0, 1]"),
    ({"fusion_dropout": 2.0}, "fusion_dropout must be in [0, 1)"),
    ({"gnn_dropout": -0.1}, "gnn_dropout must be non-negative"),
    ({"backbone_dropout": 1.0}, "backbone_dropout must be in [0, 1)"),
])
def test_training_numbers_out_of_range(kwargs, needle):
    from kgllm.lit import ClassifierModule, MLMModule

    for cls in (MLMModule, ClassifierModule):
        with pytest.raises(ConfigError) as exc:
            cls(fusion="gated", fusion_layers=[0], **kwargs)
        assert needle in str(exc.value)


def test_fusion_layer_beyond_the_encoder():
    from torch import nn

    from kgllm.nn.fusion import install_fusion

    with pytest.raises(ConfigError, match=r"fusion_layers \[99\]: invalid for a 2-layer encoder"):
        install_fusion(nn.ModuleList([nn.Identity(), nn.Identity()]), [99], "gated", None, 32, 16)


def test_backbone_folder_that_is_not_a_model():
    from kgllm.util.errors import BackboneError
    from kgllm.nn.backbone import load_tokenizer

    with pytest.raises(BackboneError, match="/etc: not a Hugging Face model folder"):
        load_tokenizer("/etc")


@pytest.mark.parametrize("broken", ["junk", "pickle", "no-tab", "meta"])
def test_evil_exported_encoder_folder(tmp_path, broken):
    import torch

    from kgllm.nn.exported import load_exported

    folder = tmp_path / "enc"
    folder.mkdir()
    torch.save({"hparams": {}, "encoder": {}, "decoder": {}}, folder / "model.pt")
    torch.save(torch.zeros(2, 4), folder / "embeddings.pt")
    (folder / "entities.tsv").write_text("id\tkey\n0\ta\n1\tb\n")
    (folder / "relations.tsv").write_text("id\tname\n0\tr\n")
    (folder / "meta.json").write_text("{}")
    if broken == "junk":
        (folder / "model.pt").write_bytes(b"junk")
    elif broken == "pickle":
        torch.save({"hparams": {}, "x": shutil.rmtree}, folder / "model.pt")  # a function: refused, not called
    elif broken == "no-tab":
        (folder / "entities.tsv").write_text("id\tkey\nnothing\n")
    else:
        (folder / "meta.json").write_text(_deep(50_000))
    with pytest.raises(KGLLMError, match=str(folder)):
        load_exported(folder)


@pytest.mark.parametrize("field,value,needle", [
    ("updates", "abc", "updates must be a JSON list"),
    ("updates", [{"update": "x"}], "updates[0]"),
    ("tsv_format", 99, "tsv_format 99"),
    ("lineage", [1], "lineage"),
    ("retracted", [["a", "b"]], "retracted[0]"),
])
def test_hand_edited_meta_json(kg_dir, tmp_path, capsys, field, value, needle):
    kg = tmp_path / "kg"
    shutil.copytree(kg_dir, kg)
    meta = json.loads((kg / "meta.json").read_text())
    meta[field] = value
    (kg / "meta.json").write_text(json.dumps(meta))
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "Ann lives in Paris."}\n')
    assert main(["update-kg", str(kg), str(corpus), "--no-progress"]) == 1
    _one_line(capsys, "meta.json", needle)
    assert main(["kg-stats", str(kg)]) == 1
    _one_line(capsys, "meta.json", needle)


def test_partial_folder_that_is_a_symlink(kg_dir, tmp_path, capsys):
    kg = tmp_path / "kgX"
    shutil.copytree(kg_dir, kg)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    (tmp_path / ".kgX.partial").symlink_to(victim)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "Ann lives in Paris."}\n')
    assert main(["update-kg", str(kg), str(corpus), "--no-progress"]) == 1
    _one_line(capsys, ".kgX.partial", "symlink")
    assert (victim / "keep.txt").read_text() == "mine"


def test_kg_query_takes_options_before_the_query(kg_dir, capsys):
    assert main(["kg-query", str(kg_dir), "--store", "memory", "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1"]) == 0
    assert capsys.readouterr().out.startswith("s\n")


def test_probe_and_re_model_take_urls(tmp_path, capsys):
    """A URL is downloaded (and refused as garbage here), not read as the local path 'http:/...'."""
    from tests.security.servers import http_server, url

    (tmp_path / "x.ckpt").write_bytes(b"garbage")
    with http_server(tmp_path) as server:
        assert main(["probe", url(server, "x.ckpt")]) == 1
        last = _one_line(capsys, "x.ckpt")
        assert "http:/1" not in last and "not found" not in last
        corpus = tmp_path / "c.jsonl"
        corpus.write_text('{"id": "a", "text": "Ann lives in Paris."}\n')
        assert main(["build-kg", str(corpus), "--out", str(tmp_path / "kg"), "--extractor", "learned",
                     "--re-model", url(server, "x.ckpt"), "--no-progress"]) != 0
        last = _one_line(capsys, "x.ckpt")
        assert "not found" not in last


@pytest.mark.parametrize("text", ["null\nnull\nnull\n", "1\n2\n", '["a"]\n'])
def test_rows_that_are_not_objects_are_refused_before_pyarrow(tmp_path, text):
    """Found by the fuzz test: JSON Lines of ``null`` crashed pyarrow's reader (exit 139)."""
    from kgllm.kg.extraction.hf_sources import open_source

    rows = tmp_path / "rows.jsonl"
    rows.write_text(text)
    with pytest.raises(KGLLMError, match="rows.jsonl:1: a row must be a JSON object"):
        open_source(str(rows))
