"""Dump what a refactor must not change, and compare two dumps.

    python experiments/bench/dump_state.py dump OUT_DIR      # build a KG and train on the fixtures
    python experiments/bench/dump_state.py compare A/digest.json B/digest.json

``dump`` goes through the public commands only (``kgllm build-kg``, ``kgllm fit``), so the same
script runs before and after a move of modules: the fixture Re-DocRED documents to a KG (every
file's SHA-256), then a seeded tiny fused MLM fit on them (every state-dict tensor's SHA-256 and
the metrics file, timing columns left out). ``compare`` lists every difference; exit status 1 if
there is one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = next(p for p in (Path.cwd() / "tests" / "fixtures" / "data", ROOT / "tests" / "fixtures" / "data")
                if p.is_dir())  # the checkout's fixtures (a frozen copy of kgllm/ may sit elsewhere)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _timeless(value):
    """``meta.json`` without its wall-clock fields (build time, durations)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in ("time", "created", "seconds", "timing")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def dump(out: Path) -> dict:
    import torch

    from kgllm.cli import main

    if out.exists():
        raise SystemExit(f"{out}: exists; give a new folder")
    out.mkdir(parents=True)
    kg = out / "kg"
    assert main(["build-kg", str(FIXTURES / "redocred" / "dev_revised.json"), "--format", "redocred",
                 "--out", str(kg), "--no-progress"]) == 0
    digest = {"kg": {p.relative_to(kg).as_posix(): _sha(p.read_bytes()) for p in sorted(kg.rglob("*"))
                     if p.is_file() and p.name != "meta.json"}}
    meta = json.loads((kg / "meta.json").read_text())
    digest["kg_meta"] = _timeless(meta)
    logger = json.dumps([{"class_path": "lightning.pytorch.loggers.CSVLogger",
                          "init_args": {"save_dir": str(out), "name": "run", "version": "v"}}])
    os.environ.setdefault("KGLLM_CACHE", str(out / "cache"))
    assert main(["fit", "--config", str(ROOT / "experiments/pretrain_redocred.yaml"), "--data.kg_dir", str(kg),
                 "--data.backbone", "tiny", "--data.data_dir", str(FIXTURES),
                 "--data.dataset_args", json.dumps({"train_docs": "0:4", "val_docs": "4:6"}),
                 "--data.batch_size", "4", "--model.fusion_layers", "[0]", "--trainer.accelerator", "cpu",
                 "--trainer.max_epochs", "2", "--trainer.enable_progress_bar", "false", "--trainer.logger", logger,
                 "--trainer.default_root_dir", str(out), "--seed_everything", "7"]) == 0
    ckpt = torch.load(out / "run" / "v" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    digest["state_dict"] = {k: _sha(v.detach().cpu().contiguous().numpy().tobytes())
                            for k, v in sorted(ckpt["state_dict"].items())}
    rows = (out / "run" / "v" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    keep = [i for i, h in enumerate(header) if "time" not in h and "seconds" not in h]
    digest["metrics"] = [[r.split(",")[i] for i in keep] for r in rows]
    (out / "digest.json").write_text(json.dumps(digest, indent=1, sort_keys=True))
    return digest


def compare(a: Path, b: Path) -> list[str]:
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    diffs = []
    for part in sorted(set(da) | set(db)):
        x, y = da.get(part), db.get(part)
        if isinstance(x, dict) and isinstance(y, dict):
            diffs += [f"{part}/{k}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]
        elif x != y:
            diffs.append(part)
    return diffs


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        d = dump(Path(sys.argv[2]))
        print(f"{sys.argv[2]}/digest.json: {len(d['kg'])} KG files, {len(d['state_dict'])} tensors, "
              f"{len(d['metrics'])} metrics rows")
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        found = compare(Path(sys.argv[2]), Path(sys.argv[3]))
        print("identical" if not found else "differ: " + ", ".join(found[:20]))
        raise SystemExit(1 if found else 0)
    else:
        raise SystemExit(__doc__)
