"""The anti-fraud measurements run for real at a small size: ``shiren bench index`` on a
synthetic gallery and ``shiren eval duplicates`` on a real LFW slice (first 60 people)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shiren.eval.duplicates import ProbeScores, duplicates_report, split
from shiren.eval.index_bench import run_index_bench
from shiren.fraud.policy import load_fraud_policy
from shiren.fraud.synthetic import GalleryModel
from shiren.verifier import MOBILEFACENET
from tests.conftest import SHARED, require
from tests.integration.test_cli import run


def test_bench_index_small() -> None:
    out = run("bench", "index", "--n", "3000", "--queries", "100", "--adds", "50")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["n"] == 3000
    assert report["backend"] == "embedded-ivf"
    assert report["recall_at_1"] >= 0.95
    for part in ("add", "query", "query_cpu"):
        assert 0 < report[part]["p50_ms"] <= report[part]["p99_ms"]
    assert report["memory"]["after_build_mb"] > 0


def test_bench_ivf_cells_and_hnsw_small() -> None:
    """The bench reports the IVF's cells and trainings; the HNSW backend still runs."""
    report = run_index_bench(2500, queries=60, adds=20, backend="ivf")
    assert report["structure"]["nlist"] == 1  # below flat_max: one exact cell
    assert report["recall_at_1"] == 1.0
    hnsw = run_index_bench(1500, queries=40, adds=10, backend="hnsw")
    assert hnsw["backend"] == "usearch-hnsw"
    assert hnsw["recall_at_1"] >= 0.95


def test_bench_exact_backend_has_perfect_recall() -> None:
    report = run_index_bench(2000, queries=50, adds=10, backend="exact")
    assert report["recall_at_1"] == 1.0
    assert report["max_similarity_gap"] <= 1e-5


def test_synthetic_gallery_looks_like_face_templates() -> None:
    """Crowded like dlib templates (impostors ~0.86), not spread over the sphere (~0)."""
    model = GalleryModel.default()
    rng = np.random.default_rng(0)
    g = model.sample(600, rng)
    impostor = float(np.median(g[:300] @ g[300:].T))
    genuine = float(np.median((g * model.probes(g, rng)).sum(axis=1)))
    assert 0.8 < impostor < 0.9
    assert 0.94 < genuine < 0.98


def test_duplicates_split_and_threshold_choice() -> None:
    rng = np.random.default_rng(1)
    templates = {
        f"p{i}/p{i}_{j:04d}.jpg": rng.normal(size=8).astype(np.float32)
        for i in range(6)
        for j in range(1, 1 + (i % 3) + 1)
    }
    gallery, probes, role = split(templates)
    assert all(
        role[f"p{i}/p{i}_0001.jpg"] in ("enrolled", "distractor", "non_mated_probe")
        for i in range(6)
    )
    assert {p for _, p in probes if role[f"{p}/{p}_0001.jpg"] == "enrolled"} <= set(gallery)
    s = ProbeScores(
        mate=[0.99, 0.96, -2.0, -2.0],
        other=[0.5, 0.97, 0.95, 0.1],
        fold=[0, 1, 0, 1],
        mated=[True, True, False, False],
    )
    report = duplicates_report(s, 10, 0.97, target=0.0)
    assert report["at_policy_threshold"]["detection"]["count"] == 1
    assert report["at_policy_threshold"]["false_hit"]["count"] == 0
    assert report["at_policy_threshold"]["mated_probe_also_hit_other_person"]["count"] == 1


def test_eval_duplicates_on_a_real_lfw_slice(tmp_path: Path) -> None:
    lfw = require(SHARED / "lfw_view2")
    out = run(
        "eval",
        "duplicates",
        "--pairs",
        str(lfw / "pairs.txt"),
        "--images",
        str(lfw / "lfw-deepfunneled"),
        "--out",
        str(tmp_path / "dup"),
        "--people",
        "60",
        "--workers",
        "1",
        "--cache",
        str(tmp_path / "cache"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "dup" / "report.json").read_text())
    assert report["failed_images"] == 0
    assert report["mated_probes"] > 0
    assert report["non_mated_probes"] > 0
    at = report["at_policy_threshold"]
    # the shipped network's own 1:N threshold (fraud.toml [networks."mobilefacenet-onnx"])
    assert at["threshold"] == load_fraud_policy().for_network(MOBILEFACENET).duplicate_threshold
    assert at["false_hit"]["of"] == report["non_mated_probes"]
    assert 0 <= at["detection"]["rate"] <= 1
    assert report["provenance"]["settings"]["index"] == "usearch-hnsw"
    # a low threshold finds (nearly) every mate: the search itself works on real faces
    low = report["sweep"][0]
    assert low["threshold"] < at["threshold"]
    assert low["detection"]["rate"] >= 0.8


def test_bench_index_on_pgvector() -> None:
    from tests.storage.conftest import fresh_pg_database

    with fresh_pg_database() as url:
        report = run_index_bench(800, queries=40, adds=10, backend="pgvector", database_url=url)
    assert report["backend"] == "pgvector-hnsw"
    assert report["recall_at_1"] >= 0.95
