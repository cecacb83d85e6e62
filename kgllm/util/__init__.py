"""Small helpers every layer may import: errors (``errors``), atomic files and terminal-safe text
(``io``), data and cache locations (``paths``), the statistics of experiment tables (``stats``)
and the ``--help`` layout (``formatting``).

What may go here: code with no kgllm import outside ``kgllm.util`` and no torch import at module
level. Anything that knows about KGs, models or runs belongs to its layer instead.
"""
