"""The knowledge experiments in one room: the LAMA protocol (``protocol``: splits, KGs, arms,
tables), the probe (``probe``), knowledge updates and edits (``update``, ``edit``), the demo
(``demo``) and the corpus experiment, a KG built from text vs reading that text (``corpus``).
"""
