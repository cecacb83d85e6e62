"""The ``--help`` layout every kgllm command shares."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every ``kgllm`` command's ``--help``: descriptions as written, and each option's default
    appended unless its help already states it (or it has none worth saying)."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, argparse.SUPPRESS, "", [])
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"
