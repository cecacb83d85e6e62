from kgllm.kg.stats import format_stats, kg_stats
from kgllm.kg.store import KnowledgeGraph


def test_stats_on_hand_made_graph():
    kg = KnowledgeGraph()
    ids = [kg.add_entity(f"X:{n}", n, "X") for n in "abcde"]
    kg.add_edge(ids[0], "r", ids[1])
    kg.add_edge(ids[1], "r", ids[2])
    kg.add_edge(ids[3], "s", ids[1])
    s = kg_stats(kg, top=3)
    assert (s["nodes"], s["edges"], s["relations"]) == (5, 3, 2)
    assert s["components"] == 2 and s["largest_component"] == 4 and s["isolated_nodes"] == 1
    assert s["top_pagerank"][0][0] == "c"  # sink of the chain collects the most rank
    assert s["top_relations"][0] == ("r", 2)
    assert "components 2" in format_stats(s)


def test_plots_and_cli(kg_dir, tmp_path, capsys):
    from kgllm.cli import main

    assert main(["kg-stats", str(kg_dir), "--plot-dir", str(tmp_path), "--entity", "Barack Obama", "--json"]) == 0
    import json

    stats = json.loads(capsys.readouterr().out)
    assert stats["nodes"] > 10
    for name in ("degree_distribution.png", "neighbourhood_0.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_find_entity(kg):
    import pytest

    from kgllm.errors import KGFormatError
    from kgllm.kg.stats import find_entity

    assert find_entity(kg, "obama") == find_entity(kg, "PER:barack obama") == find_entity(kg, "0") == 0
    with pytest.raises(KGFormatError, match="no entity"):
        find_entity(kg, "Atlantis")
