"""Round two: labels holding terminal escape sequences are printed escaped, never raw."""

from __future__ import annotations

from kgllm.cli import main
from kgllm.util.io import terminal_safe

EVIL = "Evil\x1b]0;owned\x07\x1b[2J\x9b31m\u202eCorp"


def test_terminal_safe_escapes_controls_only():
    assert terminal_safe("Zürich — 東京 α\tβ\n") == "Zürich — 東京 α\tβ\n"
    out = terminal_safe(EVIL)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
    assert out.startswith("Evil\\x1b]0;owned\\x07") and out.endswith("\\u202eCorp")
    assert terminal_safe("a\tb\nc", keep="") == "a\\x09b\\x0ac"


def test_imported_labels_print_escaped(tmp_path, capsys):
    ttl = tmp_path / "evil.ttl"
    label = EVIL.replace("\x1b", "\\u001B").replace("\x07", "\\u0007").replace("\x9b", "\\u009B")
    ttl.write_text("@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                   f'<http://ex.org/a> <http://ex.org/knows> <http://ex.org/b> .\n<http://ex.org/a> rdfs:label "{label}" .\n',
                   encoding="utf-8")
    assert main(["kg-import", "rdf", str(ttl), "--out", str(tmp_path / "kg")]) == 0
    capsys.readouterr()
    assert main(["kg-query", str(tmp_path / "kg"), "SELECT ?l WHERE { ?e rdfs:label ?l }"]) == 0
    assert main(["kg-stats", str(tmp_path / "kg")]) == 0
    out = capsys.readouterr().out
    assert "Evil" in out and "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\u202e" not in out
