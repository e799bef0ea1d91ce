"""The pipeline's stages: one module per stage, each what one Snakemake rule calls through ``ttdm <stage>``.

data → train → sample → evaluate (and floor) → tables, figures, paper (``ttdm.report``); bench, complexity and
landscape measure trained or freshly built models.  Stage modules read their inputs, call the library
(``ttdm.methods``, ``ttdm.models``, ``ttdm.samplers``, ``ttdm.metrics``, ``ttdm.analysis``, ...) and write their
outputs atomically; they never import each other.
"""
