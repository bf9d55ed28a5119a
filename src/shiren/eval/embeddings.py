"""Compute templates for many images once, in parallel, and cache them on disk.

The cache key of an image is (relative path, size, mtime); the cache file is named after the
pipeline's fingerprint (model sha256s and every setting that changes a template), so a change of
model or setting never reuses stale templates.  Failures are cached too, with their error code:
an image that cannot be processed is counted and reported, never silently dropped.

With ``degrade`` (a :mod:`shiren.core.degrade` spec name, e.g. ``"idcard"``) each image is
turned into an ID-card-like reference before detection: its face is found on the original, the
portrait cut around it and spoiled, seeded per image by ``(seed, crc32(path))``.  Such templates
are cached under a key that names the spec and the seed, never under the image's own key.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiren.core.geometry import FloatArray
from shiren.errors import ShirenError

Progress = Callable[[int], None]


@dataclass(slots=True)
class TemplateSet:
    """Templates by relative image path, and the failures (path → error code)."""

    templates: dict[str, FloatArray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def fingerprint(verifier: Any) -> str:
    """A short hash of everything that changes a template."""
    cfg = verifier.config
    from shiren.verifier import TEMPLATE_VERSION

    parts = [TEMPLATE_VERSION, *(m.sha256 for m in verifier.models)]
    parts += [
        cfg.face_policy,
        "+".join(cfg.views),
        str(cfg.min_face_score),
        cfg.detector,
        cfg.aligner,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _key(images_dir: Path, rel: str, degrade: str | None = None, seed: int = 0) -> str:
    try:
        st = (images_dir / rel).stat()
    except OSError:
        return f"{rel}|missing"
    base = f"{rel}|{st.st_size}|{st.st_mtime_ns}"
    return base if degrade is None else f"{base}|degrade={degrade}|seed={seed}"


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        arr = np.load(path.with_suffix(".npy"))
    except (OSError, ValueError):
        return {}
    rows = data.get("rows", {})
    return {k: (arr[v] if isinstance(v, int) else v) for k, v in rows.items()}


def _save_cache(path: Path, entries: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows: dict[str, Any] = {}
    arrays: list[FloatArray] = []
    for key, value in entries.items():
        if isinstance(value, np.ndarray):
            rows[key] = len(arrays)
            arrays.append(value)
        else:
            rows[key] = value
    matrix = np.stack(arrays) if arrays else np.zeros((0, 0), dtype=np.float32)
    np.save(path.with_suffix(".npy.tmp.npy"), matrix)
    os.replace(path.with_suffix(".npy.tmp.npy"), path.with_suffix(".npy"))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows}), encoding="utf-8")
    os.replace(tmp, path)


_WORKER: Any = None


def _init_worker(config: Any) -> None:
    global _WORKER
    from shiren.verifier import Verifier

    _WORKER = Verifier.from_config(config)


def _analyze_one(args: tuple[str, str, str | None, int]) -> tuple[str, Any]:
    images_dir, rel, degrade, seed = args
    return rel, analyze_safely(_WORKER, Path(images_dir) / rel, degrade, image_seed(seed, rel))


def image_seed(seed: int, rel: str) -> int:
    """The degradation seed of one image: the run's seed mixed with the image's path."""
    return (seed * 0x1_0000_0000 + zlib.crc32(rel.encode("utf-8"))) % 2**63


def degraded_pixels(verifier: Any, path: Path, spec: str, seed: int) -> Any:
    """The image at ``path`` as an ID-card-like reference: the face is found on the original
    (the verifier's detector and face policy) and the portrait is cut around it."""
    from shiren.core.choice import choose_face
    from shiren.core.degrade import degrade, parse_spec

    how = parse_spec(spec)
    pixels = verifier.decode(path)
    if how is None:
        return pixels
    faces = verifier.detector.detect(pixels)
    face = choose_face(faces, pixels.shape[1], pixels.shape[0], verifier.config.face_policy)
    return degrade(pixels, how, face_box=face.box, seed=seed)


def analyze_safely(verifier: Any, path: Path, degrade: str | None = None, seed: int = 0) -> Any:
    """The template of one image, or ``{"error": code}`` for a typed failure.

    With ``degrade``, the image is first made an ID-card-like reference (see
    :func:`degraded_pixels`).  Anything else that escapes the pipeline is recorded as
    ``internal.crash``: the evaluation reports it instead of dying, and a crash count above zero
    fails the acceptance target.
    """
    try:
        image = path if degrade is None else degraded_pixels(verifier, path, degrade, seed)
        analysis = verifier.analyze(image)
    except ShirenError as exc:
        return {"error": str(exc.code)}
    except Exception as exc:  # counted as a crash on purpose; the report shows the type
        return {"error": "internal.crash", "type": type(exc).__name__}
    return {"template": analysis.template}


def compute_templates(
    verifier: Any,
    images_dir: Path,
    rel_paths: Sequence[str],
    *,
    cache_dir: Path | None,
    workers: int = 1,
    progress: Progress | None = None,
    degrade: str | None = None,
    seed: int = 0,
) -> TemplateSet:
    """Templates for ``rel_paths`` (deduplicated), reusing and updating the on-disk cache.

    ``degrade`` (a spec name other than ``"none"``) and ``seed``: templates of the images made
    ID-card-like references (module docstring), cached under their own keys.
    """
    degrade = None if degrade in (None, "none") else degrade
    unique = sorted(set(rel_paths))
    cache_path = cache_dir / f"templates-{fingerprint(verifier)}.json" if cache_dir else None
    cached = _load_cache(cache_path) if cache_path else {}
    results: dict[str, Any] = {}
    todo = []
    for rel in unique:
        hit = cached.get(_key(images_dir, rel, degrade, seed))
        if hit is None:
            todo.append(rel)
        else:
            results[rel] = hit
            if progress:
                progress(1)
    for rel, outcome in _run(verifier, images_dir, todo, workers, progress, degrade, seed):
        results[rel] = outcome
    if cache_path and todo:
        # Merge: the cache is shared by data sets (LFW, UTKFace, ...); keep the other entries.
        fresh = {_key(images_dir, r, degrade, seed): _cacheable(v) for r, v in results.items()}
        _save_cache(cache_path, {**cached, **fresh})
    return _to_set(results)


def _cacheable(outcome: Any) -> Any:
    if isinstance(outcome, np.ndarray):
        return outcome
    if isinstance(outcome, dict) and "template" in outcome:
        return np.asarray(outcome["template"], dtype=np.float32)
    return outcome


def _run(
    verifier: Any,
    images_dir: Path,
    todo: list[str],
    workers: int,
    progress: Progress | None,
    degrade: str | None = None,
    seed: int = 0,
) -> Any:
    if workers <= 1 or len(todo) < 2 * workers:
        for rel in todo:
            yield rel, analyze_safely(verifier, images_dir / rel, degrade, image_seed(seed, rel))
            if progress:
                progress(1)
        return
    jobs = [(str(images_dir), rel, degrade, seed) for rel in todo]
    # "spawn": the parent already runs mediapipe's threads, which do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(verifier.config,)
    ) as pool:
        for rel, outcome in pool.map(_analyze_one, jobs, chunksize=16):
            yield rel, outcome
            if progress:
                progress(1)


def _to_set(results: dict[str, Any]) -> TemplateSet:
    out = TemplateSet()
    for rel, value in results.items():
        if isinstance(value, np.ndarray):
            out.templates[rel] = value.astype(np.float32)
        elif isinstance(value, dict) and "template" in value:
            out.templates[rel] = np.asarray(value["template"], dtype=np.float32)
        else:
            out.failures[rel] = str(value.get("error", "internal.crash"))
    return out


def _assess_one(args: tuple[str, str]) -> tuple[str, Any]:
    images_dir, rel = args
    return rel, assess_safely(_WORKER, Path(images_dir) / rel)


def assess_safely(verifier: Any, path: Path) -> Any:
    """Quality reason codes of one image (``[]`` = passed), or ``{"error": code}``."""
    try:
        report = verifier.assess(path)
    except ShirenError as exc:
        return {"error": str(exc.code)}
    except Exception as exc:  # counted as a crash on purpose, like analyze_safely
        return {"error": "internal.crash", "type": type(exc).__name__}
    return [str(code) for code in report.reasons]


def compute_quality(
    verifier: Any,
    images_dir: Path,
    rel_paths: Sequence[str],
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> dict[str, list[str] | str]:
    """Quality-gate reasons per image (a list, empty when it passed) or its error code (a str)."""
    unique = sorted(set(rel_paths))
    out: dict[str, list[str] | str] = {}
    if workers <= 1 or len(unique) < 2 * workers:
        for rel in unique:
            out[rel] = _flatten(assess_safely(verifier, images_dir / rel))
            if progress:
                progress(1)
        return out
    context = multiprocessing.get_context("spawn")
    jobs = [(str(images_dir), rel) for rel in unique]
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(verifier.config,)
    ) as pool:
        for rel, outcome in pool.map(_assess_one, jobs, chunksize=16):
            out[rel] = _flatten(outcome)
            if progress:
                progress(1)
    return out


def _flatten(outcome: Any) -> list[str] | str:
    return outcome if isinstance(outcome, list) else str(outcome.get("error", "internal.crash"))
