"""Experiment workflows built on the CLI and the library: ``ablate`` (variants x seeds, tables,
paired tests), ``knowledge`` (the KG-only LAMA experiment), ``probe`` (LAMA P@1 of a checkpoint)
and ``demo`` (the KG-only probe at laptop size). Each fits through
:func:`kgllm.cli.lightning.fit_and_test` and writes its results atomically."""
