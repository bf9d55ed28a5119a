"""Evaluation harness, pure parts: pair lists, verification metrics, threshold calibration, plots
and provenance.  No model is loaded here; the harness that runs models lives above this layer.

Score convention everywhere: a *similarity* score, higher = more alike; a pair *matches* when
``score >= threshold``.  Counts are accumulated first and rates derived from them, so every rate
can be reported together with the exact numbers behind it.
"""
