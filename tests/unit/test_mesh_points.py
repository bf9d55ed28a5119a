"""Face Mesh landmarks read from the message's wire bytes equal the ones read attribute by
attribute, and a message the fast path does not understand falls back to the slow one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from mediapipe.framework.formats import landmark_pb2

from shiren.models.mediapipe_face import _points


def _landmarks(count: int, seed: int = 0) -> landmark_pb2.NormalizedLandmarkList:
    rng = np.random.default_rng(seed)
    msg = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in rng.uniform(-0.2, 1.2, (count, 3)).astype(np.float32):
        msg.landmark.add(x=float(x), y=float(y), z=float(z))
    msg.landmark[1].x = 0.0  # an explicit zero is still on the wire (proto2)
    return msg


def _slow(msg: landmark_pb2.NormalizedLandmarkList, w: int, h: int) -> np.ndarray:
    return np.array([[p.x * w, p.y * h, p.z * w] for p in msg.landmark], dtype=np.float32)


def test_wire_bytes_read_as_the_attributes() -> None:
    msg = _landmarks(478)
    got = _points(msg, 640, 480)
    assert got.shape == (478, 3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, _slow(msg, 640, 480))


@pytest.mark.parametrize("edit", ["visibility", "missing_z", "empty"])
def test_other_messages_fall_back(edit: str) -> None:
    msg = _landmarks(20, seed=1)
    if edit == "visibility":
        msg.landmark[5].visibility = 0.5
    elif edit == "missing_z":
        msg.landmark[7].ClearField("z")
    else:
        msg = landmark_pb2.NormalizedLandmarkList()
    got = _points(msg, 100, 50)
    np.testing.assert_array_equal(got, _slow(msg, 100, 50).reshape(-1, 3))
