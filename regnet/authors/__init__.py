"""The RegNet authors' released artefacts (github PeihaoChen/regnet): checkpoints and features.

`layout` writes down their state-dict keys and shapes, `checkpoints` converts both ways,
`features` turns their per-video pickles into our feature cache, and `detect.maybe_import` lets
`generate` take their files directly.
"""
