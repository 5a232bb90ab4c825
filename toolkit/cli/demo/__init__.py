"""``toolkit demo``: the whole mission on bundled data (or a user's image folder), stage by stage.

- :mod:`.stages`: a cache of each stage's outputs keyed by its inputs (reruns are fast);
- :mod:`.prepare`: training the pool and CBNet, building FP32/INT8 engines, pruning, choosing the
  pair (host work, PyTorch);
- :mod:`.compare`: running every strategy on the test split and the duplicated protocol;
- :mod:`.report`: ``report.json``, ``report.md`` and the printed table; :mod:`.plots`: the PNGs.
"""
