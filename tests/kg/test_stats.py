from kgllm.kg.quality.stats import format_stats, kg_stats
from kgllm.kg.graph.store import KnowledgeGraph


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

    from kgllm.util.errors import KGFormatError
    from kgllm.kg.quality.stats import find_entity

    assert find_entity(kg, "obama") == find_entity(kg, "PER:barack obama") == find_entity(kg, "0") == 0
    with pytest.raises(KGFormatError, match="no entity"):
        find_entity(kg, "Atlantis")


def test_ambiguous_label_lists_candidates():
    import pytest

    from kgllm.util.errors import KGFormatError
    from kgllm.kg.quality.stats import find_entity
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph()
    kg.add_entity("PER:paris", "Paris", "PER", count=2)
    kg.add_entity("LOC:paris", "Paris", "LOC", count=9)
    with pytest.raises(KGFormatError, match=r"2 entities match 'Paris': 1 LOC:paris \(0 edges, 9 mentions\); 0 PER"):
        find_entity(kg, "Paris")
    assert find_entity(kg, "LOC:paris") == 1


def test_ambiguous_label_picks_the_best_connected_and_says_so(caplog):
    """`kg-stats --entity NAME` with several matches draws the one with most edges (not most
    mentions) and names the others."""
    from kgllm.kg.quality.stats import find_entity
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph()
    per = kg.add_entity("PER:paris", "Paris", "PER", count=2)
    loc = kg.add_entity("LOC:paris", "Paris", "LOC", count=9)
    fr = kg.add_entity("LOC:france", "France", "LOC")
    kg.add_edge(per, "lives_in", fr)
    kg.add_edge(fr, "knows", per)
    with caplog.at_level("WARNING"):
        assert find_entity(kg, "Paris", pick=True) == per != loc
    assert "2 entities match 'Paris'; using the best-connected, 0 PER:paris" in caplog.text
    assert "1 LOC:paris (0 edges, 9 mentions)" in caplog.text


def test_plots_state_what_they_leave_out():
    from kgllm.kg.quality.stats import degree_figure, kg_stats, neighbourhood_figure
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph()
    hub = kg.add_entity("PER:hub", "Hub", "PER")
    for i in range(12):
        n = kg.add_entity(f"LOC:n{i}", f"N{i}", "LOC")
        kg.add_edge(hub, "near", n)
    kg.add_edge(hub, "born_in", 1)  # two relations between the same two nodes
    kg.add_entity("ORG:alone", "Alone", "ORG")
    fig = degree_figure(kg_stats(kg))
    ax = fig.axes[0]
    assert "1 isolated nodes" in ax.get_title() and {t.get_text() for t in ax.get_legend().get_texts()} == \
        {"in-degree", "out-degree"}
    fig = neighbourhood_figure(kg, hub, max_nodes=5)
    ax = fig.axes[0]
    assert "5 of 13 nodes" in ax.get_title()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"PER", "LOC"}
    assert any(t.get_text() == "born_in / near" for t in ax.texts)


def test_neighbourhood_labels_keep_apart():
    """A 25-node star: no two entity labels overlap, and none sits on the centre's label."""
    from kgllm.kg.quality.stats import neighbourhood_figure
    from kgllm.kg.graph.store import KnowledgeGraph

    kg = KnowledgeGraph()
    hub = kg.add_entity("PER:hub", "Angela Merkel", "PER")
    for i in range(24):
        n = kg.add_entity(f"LOC:n{i}", f"Some place number {i}", "LOC")
        kg.add_edge(hub, ("born_in", "member_of", "visited")[i % 3], n)
    fig = neighbourhood_figure(kg, hub, max_nodes=25)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text() == "Angela Merkel" or t.get_text().startswith("Some place")]
    assert len(labels) == 25
    shapes = [_text_corners(t, renderer) for t in labels]
    overlaps = [(labels[i].get_text(), labels[j].get_text()) for i in range(len(shapes))
                for j in range(i + 1, len(shapes)) if _convex_overlap(shapes[i], shapes[j])]
    assert overlaps == []
    far = [t for t in labels if t.get_text() == "Some place number 0"]
    assert _convex_overlap(_text_corners(far[0], renderer), _text_corners(far[0], renderer))  # the check can fail


def _text_corners(text, renderer):
    """The four display-space corners of a (rotated) text: its unrotated box turned about its anchor."""
    import numpy as np

    angle = text.get_rotation()
    text.set_rotation(0)
    box = text.get_window_extent(renderer)
    text.set_rotation(angle)
    ax_, ay_ = text.get_transform().transform(text.get_position())
    corners = np.array([[box.x0, box.y0], [box.x1, box.y0], [box.x1, box.y1], [box.x0, box.y1]]) - (ax_, ay_)
    t = np.radians(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return corners @ rot.T + (ax_, ay_)


def _convex_overlap(a, b) -> bool:
    """Separating-axis test for two convex polygons."""
    import numpy as np

    for poly in (a, b):
        for i in range(len(poly)):
            edge = poly[(i + 1) % len(poly)] - poly[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() <= pb.min() or pb.max() <= pa.min():
                return False
    return True
