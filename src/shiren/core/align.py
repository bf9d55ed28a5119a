"""Alignment points taken from the face mesh.

dlib's 5-point convention (the points its ResNet's face chips are built from), subject's left/right:
0 left-eye outer corner, 1 left-eye inner corner, 2 right-eye outer corner, 3 right-eye inner
corner, 4 nose base (subnasale).  The MediaPipe Face Mesh indices for the same anatomical points
are 263, 362, 33, 133 and 2 (from the mesh's canonical-face UV map).  Measured on LFW View 2,
chips aligned on these mesh points verify better than chips from dlib's 5-point regressor
started from a detector box (99.07 % vs 98.57 % 10-fold accuracy, flip-averaged), and the two
alignments fused beat either alone: see docs/MODEL_CARD.md.
"""

from __future__ import annotations

import numpy as np

from shiren.core.geometry import FloatArray

MESH_TO_DLIB5 = (263, 362, 33, 133, 2)


def dlib5_from_mesh(mesh: FloatArray) -> FloatArray:
    """``(N, 2|3)`` mesh points → ``(5, 2)`` float32 points in dlib's 5-point order."""
    return np.ascontiguousarray(mesh[list(MESH_TO_DLIB5), :2], dtype=np.float32)
