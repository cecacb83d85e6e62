"""Experiment workflows built on the runner and the library: ``ablate`` (variants x seeds,
tables, paired tests), ``knowledge/`` (the LAMA protocol, probe, updates, edits, demo and the
corpus experiment), ``predict``/``export``/``inspect``/``eval_re`` (a trained checkpoint at work),
``plot_runs`` and ``prepare_backbone``. Each fits through :func:`kgllm.lit.runner.fit_and_test`
(never through the CLI, which sits above) and writes its results atomically."""
