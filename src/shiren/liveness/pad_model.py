"""A small presentation-attack classifier a lender can train on its own labelled attacks.

Why: a deep PAD model (MiniFASNet) is trained on someone else's attacks.  A lender who collects
its own (its printers, its customers' phones) should be able to adapt the decision without a
deep-learning stack.  So this is deliberately simple and auditable:

* inputs: the texture/frequency features of :mod:`shiren.liveness.texture` and, optionally, the
  base detector's log-odds ``log(p / (1 - p))`` (so the fused model can only *add* evidence to
  MiniFASNet, and a weight near zero shows when the texture adds nothing);
* standardisation (mean/scale of the training rows), then **L2-regularised logistic
  regression** fitted by Newton's method (IRLS) in numpy: convex, so the optimum is unique and
  the fit deterministic — the same rows give the same file, bit for bit except the timestamp;
* the two classes are weighted equally (live and attack rows each carry half the loss), because
  PAD data is rarely balanced and the operating threshold is chosen afterwards anyway.

A model is saved as one JSON file holding its format and feature-spec versions, the weights,
the training-data description (labels file and its sha256, rows per label, split) and the
base model's sha256, sealed with the sha256 of its own canonical content.  Loading re-checks the
seal (``model.checksum_mismatch``) and the layout (``model.invalid``): an edited or truncated
file is refused, never half-used.

**Licensing:** a model trained on a research-only data set (NUAA, for example) must not be
shipped or committed; train such models only into temporary files for measurement.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shiren.core.geometry import BBox, RGBImage
from shiren.errors import ErrorCode, ModelError
from shiren.liveness.texture import (
    CROP_SCALE,
    CROP_SIZE,
    FEATURE_DIM,
    FEATURE_SPEC_VERSION,
    feature_names,
    texture_features,
)
from shiren.models.protocols import ModelInfo, PresentationAttackDetector

FORMAT = "shiren.pad_model"
FORMAT_VERSION = 1
BASE_INPUT = "base_logodds"
"""Name of the extra input holding the base detector's log-odds."""

_P_CLIP = 1e-6
_MAX_NEWTON = 100
_GRAD_TOL = 1e-10
_MIN_SCALE = 1e-9

FloatArray = npt.NDArray[np.float64]


def logodds(p: float | FloatArray) -> FloatArray:
    """``log(p / (1 - p))`` with ``p`` clipped to ``[1e-6, 1 - 1e-6]`` (a saturated base score
    then stays a finite, bounded input of about ±13.8)."""
    q = np.clip(np.asarray(p, dtype=np.float64), _P_CLIP, 1.0 - _P_CLIP)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def sigmoid(z: FloatArray) -> FloatArray:
    """The logistic function, without overflow for large ``|z|``."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.asarray(np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class LogisticFit:
    """Weights of a fitted standardised logistic model: ``logit = (x - means) / scales · w + b``."""

    weights: FloatArray
    bias: float
    means: FloatArray
    scales: FloatArray
    iterations: int
    converged: bool


def fit_logistic(x: FloatArray, y: npt.ArrayLike, *, l2: float = 1e-2) -> LogisticFit:
    """Fit an L2-regularised, class-balanced logistic regression by Newton's method.

    ``x`` is ``(N, D)`` finite floats, ``y`` is ``(N,)`` with 1 = live, 0 = attack; both classes
    must be present.  The loss minimised is the class-balanced mean log-loss plus
    ``l2 / 2 · |w|²`` on the standardised weights (the bias is not penalised).  With ``l2 > 0``
    the problem is strictly convex, so even perfectly separable data gives a finite, unique fit.
    """
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(y).astype(bool)
    if x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ValueError(f"x must be (N, D) and y (N,), got {x.shape} and {labels.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features must be finite")
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0, got {l2}")
    n_live, n_attack = int(labels.sum()), int((~labels).sum())
    if n_live == 0 or n_attack == 0:
        raise ValueError(f"need both classes to fit, got {n_live} live and {n_attack} attack rows")
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales = np.where(scales > _MIN_SCALE, scales, 1.0)
    z = np.hstack([(x - means) / scales, np.ones((x.shape[0], 1))])
    # Each class carries half of the (unit) total weight.
    sample_w = np.where(labels, 0.5 / n_live, 0.5 / n_attack)
    target = labels.astype(np.float64)
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    theta = np.zeros(z.shape[1])
    converged = False
    iterations = 0
    for iterations in range(1, _MAX_NEWTON + 1):  # noqa: B007 - the count is reported
        p = sigmoid(z @ theta)
        grad = z.T @ (sample_w * (p - target)) + penalty * theta
        if float(np.max(np.abs(grad))) < _GRAD_TOL:
            converged = True
            break
        curvature = sample_w * p * (1.0 - p)
        hessian = (z.T * curvature) @ z + np.diag(penalty)
        hessian[-1, -1] += 1e-12  # keeps the bias row solvable if every p saturates
        step = np.linalg.solve(hessian, grad)
        theta = _line_search(z, target, sample_w, penalty, theta, step)
    return LogisticFit(
        weights=theta[:-1].copy(),
        bias=float(theta[-1]),
        means=means,
        scales=scales,
        iterations=iterations,
        converged=converged,
    )


def _loss(
    z: FloatArray, target: FloatArray, sample_w: FloatArray, penalty: FloatArray, theta: FloatArray
) -> float:
    logits = z @ theta
    # log(1 + e^t) - y·t, stably.
    nll = np.logaddexp(0.0, logits) - target * logits
    return float(sample_w @ nll + 0.5 * penalty @ (theta * theta))


def _line_search(
    z: FloatArray,
    target: FloatArray,
    sample_w: FloatArray,
    penalty: FloatArray,
    theta: FloatArray,
    step: FloatArray,
) -> FloatArray:
    """Damped Newton step: halve it until the loss does not increase (keeps the fit monotone
    on badly scaled or nearly separable data, where a full step can overshoot)."""
    current = _loss(z, target, sample_w, penalty, theta)
    scale = 1.0
    for _ in range(30):
        candidate = theta - scale * step
        if _loss(z, target, sample_w, penalty, candidate) <= current:
            return candidate
        scale /= 2.0
    return theta


def _feature_spec() -> dict[str, Any]:
    return {
        "name": "texture",
        "version": FEATURE_SPEC_VERSION,
        "dim": FEATURE_DIM,
        "crop_scale": CROP_SCALE,
        "crop_size": CROP_SIZE,
    }


@dataclass(frozen=True)
class PadModel:
    """A trained texture (optionally fused with a base detector) PAD classifier.

    ``input_names`` lists every input in order: the texture feature names, then
    :data:`BASE_INPUT` when ``base_model`` is set.  ``base_model`` is ``{"name", "version",
    "sha256"}`` of the detector whose log-odds were used in training: the weights are only valid
    for exactly that model.
    """

    weights: FloatArray
    bias: float
    means: FloatArray
    scales: FloatArray
    input_names: tuple[str, ...]
    l2: float
    training: dict[str, Any]
    base_model: dict[str, str] | None = None
    created_utc: str = ""
    feature_spec: dict[str, Any] = field(default_factory=_feature_spec)

    @property
    def uses_base(self) -> bool:
        return self.base_model is not None

    def logits(self, features: FloatArray, base_live: npt.ArrayLike | None = None) -> FloatArray:
        """``(N,)`` log-odds of live for ``(N, FEATURE_DIM)`` texture features and, when the model
        uses a base detector, the base detector's ``(N,)`` live probabilities."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if x.shape[1] != FEATURE_DIM:
            raise ValueError(f"expected {FEATURE_DIM} texture features, got {x.shape[1]}")
        if self.uses_base:
            if base_live is None:
                raise ValueError("this model needs the base detector's scores")
            base = logodds(np.asarray(base_live, dtype=np.float64)).reshape(-1, 1)
            x = np.hstack([x, base])
        return np.asarray(((x - self.means) / self.scales) @ self.weights + self.bias)

    def probabilities(
        self, features: FloatArray, base_live: npt.ArrayLike | None = None
    ) -> FloatArray:
        """``(N,)`` probabilities of live (see :meth:`logits`)."""
        return sigmoid(self.logits(features, base_live))

    def payload(self) -> dict[str, Any]:
        """The JSON content of the model file, without its seal."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "feature_spec": dict(self.feature_spec),
            "input_names": list(self.input_names),
            "weights": [float(v) for v in self.weights],
            "bias": float(self.bias),
            "means": [float(v) for v in self.means],
            "scales": [float(v) for v in self.scales],
            "l2": float(self.l2),
            "base_model": dict(self.base_model) if self.base_model is not None else None,
            "training": self.training,
            "created_utc": self.created_utc,
        }

    @property
    def sha256(self) -> str:
        """sha256 of the canonical JSON of :meth:`payload` (the seal written into the file)."""
        return content_sha256(self.payload())


def content_sha256(payload: Mapping[str, Any]) -> str:
    """sha256 of ``payload`` as canonical JSON (sorted keys, no spaces, UTF-8).

    Python writes floats with the shortest repr that reads back to the same double, so a
    payload read from the file hashes to the same value it was sealed with.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def train_pad_model(
    features: FloatArray,
    is_live: npt.ArrayLike,
    *,
    base_live: npt.ArrayLike | None = None,
    base_info: ModelInfo | None = None,
    training: Mapping[str, Any] | None = None,
    l2: float = 1e-2,
) -> PadModel:
    """Fit a :class:`PadModel` on ``(N, FEATURE_DIM)`` texture features and ``(N,)`` labels
    (1 = live).  Pass ``base_live`` (the base detector's ``(N,)`` live probabilities) *and*
    ``base_info`` to fuse with it.  ``training`` describes the data (goes into the file)."""
    x = np.asarray(features, dtype=np.float64)
    names = list(feature_names())
    base_model: dict[str, str] | None = None
    if (base_live is None) != (base_info is None):
        raise ValueError("pass both base_live and base_info, or neither")
    if base_live is not None and base_info is not None:
        x = np.hstack([x, logodds(np.asarray(base_live, dtype=np.float64)).reshape(-1, 1)])
        names.append(BASE_INPUT)
        base_model = {
            "name": base_info.name,
            "version": base_info.version,
            "sha256": base_info.sha256,
        }
    fit = fit_logistic(x, is_live, l2=l2)
    info = dict(training or {})
    info["optimizer"] = {"method": "newton-irls", "iterations": fit.iterations}
    info["optimizer"]["converged"] = fit.converged
    return PadModel(
        weights=fit.weights,
        bias=fit.bias,
        means=fit.means,
        scales=fit.scales,
        input_names=tuple(names),
        l2=l2,
        training=info,
        base_model=base_model,
        created_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def save_pad_model(model: PadModel, path: Path) -> str:
    """Write ``model`` to ``path`` as sealed JSON (atomically); returns its content sha256."""
    payload = model.payload()
    digest = content_sha256(payload)
    text = json.dumps({**payload, "sha256": digest}, indent=1, sort_keys=True, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
    return digest


def load_pad_model(path: Path) -> PadModel:
    """Read and verify a model file written by :func:`save_pad_model`.

    Raises :class:`ModelError`: ``model.unavailable`` (no such file), ``model.checksum_mismatch``
    (content does not match its seal: edited or corrupted), ``model.invalid`` (not a model file,
    another format version or feature layout, inconsistent shapes).
    """
    detail = {"model": path.name}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            "PAD model file not found", code=ErrorCode.MODEL_UNAVAILABLE, detail=detail
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid("PAD model file is not readable JSON", detail) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _invalid("not a shiren PAD model file", detail)
    sealed = raw.pop("sha256", None)
    if not isinstance(sealed, str):
        raise _invalid("PAD model file has no sha256 seal", detail)
    actual = content_sha256(raw)
    if actual != sealed:
        raise ModelError(
            "PAD model file does not match its sha256 (edited or corrupted)",
            code=ErrorCode.MODEL_CHECKSUM_MISMATCH,
            detail={**detail, "expected": sealed, "actual": actual},
        )
    if raw.get("format_version") != FORMAT_VERSION:
        raise _invalid(
            f"unsupported PAD model format version {raw.get('format_version')!r}",
            {**detail, "supported": FORMAT_VERSION},
        )
    try:
        return _from_payload(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise _invalid(f"PAD model file is inconsistent: {exc}", detail) from None


def _from_payload(raw: dict[str, Any]) -> PadModel:
    spec = dict(raw["feature_spec"])
    if spec != _feature_spec():
        raise ValueError(f"feature spec {spec} differs from this version's {_feature_spec()}")
    names = tuple(str(n) for n in raw["input_names"])
    base = raw["base_model"]
    expected = (*feature_names(), BASE_INPUT) if base is not None else feature_names()
    if names != expected:
        raise ValueError("input names do not match the feature layout")
    weights, means, scales = (
        np.asarray([float(v) for v in raw[k]], dtype=np.float64)
        for k in ("weights", "means", "scales")
    )
    if not weights.shape == means.shape == scales.shape == (len(names),):
        raise ValueError("weights, means and scales must each have one value per input")
    bias = float(raw["bias"])
    values = np.concatenate([weights, means, scales, [bias]])
    if not np.isfinite(values).all() or (scales <= 0).any():
        raise ValueError("non-finite weights or non-positive scales")
    return PadModel(
        weights=weights,
        bias=bias,
        means=means,
        scales=scales,
        input_names=names,
        l2=float(raw["l2"]),
        training=dict(raw["training"]),
        base_model={str(k): str(v) for k, v in base.items()} if base is not None else None,
        created_utc=str(raw["created_utc"]),
        feature_spec=spec,
    )


def _invalid(message: str, detail: dict[str, Any]) -> ModelError:
    return ModelError(message, code=ErrorCode.MODEL_INVALID, detail=detail)


class TexturePad:
    """A :class:`~shiren.models.protocols.PresentationAttackDetector` built from a
    :class:`PadModel` and, for a fused model, the base detector it was trained with.

    The base detector must be the very model the weights were fitted on (same sha256): another
    model's log-odds live on another scale, and silently mixing them would move every decision.
    """

    def __init__(
        self,
        model: PadModel,
        base: PresentationAttackDetector | None = None,
        *,
        source: str = "",
    ) -> None:
        if model.base_model is not None:
            if base is None:
                raise ModelError(
                    f"this PAD model needs its base detector {model.base_model['name']!r}",
                    code=ErrorCode.MODEL_UNAVAILABLE,
                    detail={"base_model": model.base_model["name"]},
                )
            if base.info.sha256 != model.base_model["sha256"]:
                raise ModelError(
                    "the base detector differs from the one this PAD model was trained with",
                    code=ErrorCode.MODEL_INVALID,
                    detail={"expected": model.base_model["sha256"], "actual": base.info.sha256},
                )
        self.model = model
        self.base = base if model.base_model is not None else None
        self.info = ModelInfo(
            name="texture-pad" + ("+" + model.base_model["name"] if model.base_model else ""),
            version=f"{FORMAT}.v{FORMAT_VERSION}/{FEATURE_SPEC_VERSION}",
            sha256=model.sha256,
            licence="trained by the operator (see the model file's training record)",
            source=source or "shiren.liveness.pad_model",
            input_size=(CROP_SIZE, CROP_SIZE),
        )

    def live_score(self, image: RGBImage, box: BBox) -> float:
        """Probability in [0, 1] that the face in ``box`` is bona fide."""
        features = texture_features(image, box)
        base = [self.base.live_score(image, box)] if self.base is not None else None
        return float(self.model.probabilities(features, base)[0])

    def score_many(
        self, features: FloatArray, base_live: Sequence[float] | FloatArray | None = None
    ) -> FloatArray:
        """Scores of precomputed features (and base scores): the batch path of evaluations."""
        if not self.model.uses_base:
            base_live = None
        return self.model.probabilities(features, base_live)


def describe_weights(model: PadModel, top: int = 10) -> list[dict[str, float | str]]:
    """The ``top`` inputs with the largest standardised weights (what the model relies on)."""
    order = np.argsort(-np.abs(model.weights))[:top]
    return [
        {"input": model.input_names[i], "weight": round(float(model.weights[i]), 4)}
        for i in order
        if math.isfinite(float(model.weights[i]))
    ]


__all__ = [
    "BASE_INPUT",
    "FORMAT",
    "FORMAT_VERSION",
    "LogisticFit",
    "PadModel",
    "TexturePad",
    "content_sha256",
    "describe_weights",
    "fit_logistic",
    "load_pad_model",
    "logodds",
    "save_pad_model",
    "sigmoid",
    "train_pad_model",
]
