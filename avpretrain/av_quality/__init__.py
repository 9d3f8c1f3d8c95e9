"""Quality assessment (task ``av_quality``) tools beside the model.

- :mod:`avpretrain.av_quality.opinion`: raw subjective ratings -> MOS (YT-NTU-AVQ submission
  screening, SFQA-style z-scores with BT.500 subject rejection, 0-100 rescaling, five levels).
- the synthetic quality world (shards of degraded synthetic clips, ``avpretrain synth-quality``)
  is :mod:`avpretrain.data.synthetic.av_quality_world`, with the other synthetic generators; its
  degradations of known severity and MOS model are :mod:`avpretrain.data.synthetic.degrade`.
- :mod:`avpretrain.av_quality.kfold`: k-fold cross-validation of a recipe over per-fold shard
  folders, with the fold summary; ``avpretrain av-quality-kfold``.

The metrics (SRCC, PLCC, KRCC, logistic-fitted PLCC) live in :mod:`avpretrain.metrics.av_quality`.
"""
