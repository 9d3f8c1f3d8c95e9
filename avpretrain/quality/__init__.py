"""Quality assessment (task ``av_quality``) tools beside the model.

- :mod:`avpretrain.quality.opinion`: raw subjective ratings -> MOS (YT-NTU-AVQ submission
  screening, SFQA-style z-scores with BT.500 subject rejection, 0-100 rescaling, five levels).
- :mod:`avpretrain.quality.degrade`: degradations of known severity and the MOS model of the
  synthetic quality world.

The metrics (SRCC, PLCC, KRCC, logistic-fitted PLCC) live in :mod:`avpretrain.metrics.quality`.
"""
