"""MkDocs hook: ``reference/cli.md`` gets every command's ``--help``, generated from the parsers
at build time (so the reference cannot drift from the code)."""

from __future__ import annotations

import contextlib
import io
import os


def command_help() -> dict[str, str]:
    """``kgllm COMMAND --help`` of every command, as printed (80 columns, repository paths shortened)."""
    from pathlib import Path

    from kgllm.cli import COMMANDS, main

    root = str(Path(__file__).resolve().parents[1])
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    out = {}
    try:
        for name in COMMANDS:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
                try:
                    main([name, "--help"])
                except SystemExit:
                    pass
            out[name] = buf.getvalue().replace(root, "<kgllm>").rstrip()
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out


def cli_markdown() -> str:
    """The body of ``reference/cli.md``: one section per command with its help text."""
    from kgllm.cli import COMMANDS

    parts = []
    for name, text in command_help().items():
        parts.append(f"## `kgllm {name}`\n\n{COMMANDS[name][1]}\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs' hook signature
    if page.file.src_uri == "reference/cli.md":
        return markdown.replace("<!-- generated: commands -->", cli_markdown())
    return markdown
