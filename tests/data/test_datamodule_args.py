"""The datamodule's subgraph settings are one typed argument, configurable from the command line."""

import json
from pathlib import Path

import pytest

from kgllm.data.subgraph import SubgraphConfig
from kgllm.util.errors import ConfigError
from tests.conftest import FIXTURE_DATASET_ARGS

ROOT = Path(__file__).resolve().parents[2]


def test_subgraph_is_one_argument_from_the_command_line(kg_dir, data_dir):
    from kgllm.lit.runner import run_cli

    cli = run_cli(["--config", str(ROOT / "experiments/pretrain_redocred.yaml"), "--data.kg_dir", str(kg_dir),
                   "--data.backbone", "tiny", "--data.data_dir", str(data_dir),
                   "--data.dataset_args", json.dumps(FIXTURE_DATASET_ARGS["redocred"]),
                   "--data.subgraph.num_hops", "2", "--data.subgraph.edges", "sampled",
                   "--data.subgraph.sample", "random"], run=False)
    dm = cli.datamodule
    assert dm.subgraph == SubgraphConfig(num_hops=2, edges="sampled", sample="random")
    assert dm.hparams["subgraph"] == {"num_hops": 2, "max_neighbors": 16, "max_nodes": 64, "edges": "sampled",
                                      "sample": "random"}  # plain data in checkpoints (weights_only loads)


@pytest.mark.parametrize("bad", [dict(num_hops=-1), dict(max_nodes=0), dict(edges="all"), dict(sample="best")])
def test_bad_subgraph_settings(bad):
    with pytest.raises(ConfigError):
        SubgraphConfig(**bad)
