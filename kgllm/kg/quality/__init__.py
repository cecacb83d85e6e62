"""How good a KG is: mention, pair and typed P/R/F1 against gold (``evaluate``), and graph
statistics and pictures (``stats``).

The top room of ``kgllm.kg``: may import every room below it.
"""
