"""Model adapters: one small class per model behind the Protocols in :mod:`shiren.models.protocols`.

This package is the only place that imports model runtimes (mediapipe, dlib, onnxruntime), and it
imports them lazily, inside the adapters, so that ``import shiren`` loads nothing.
"""
