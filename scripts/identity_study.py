"""The identity study of issue 14 (docs/MODEL_CARD.md, "MobileFaceNet: the shipped network").

Scores the embeddings that ``scripts/embed_views.py`` wrote (both networks, every view) and prints,
per network and profile: LFW View 2 10-fold accuracy and TAR at FAR 1e-2 / 1e-3; UTKFace adult
cohorts — asian_female FMR at the threshold giving white_male FMR 1e-3, the every-cohort FMR-1e-3
threshold and the worst/best cohort FMR there; CASIA-FaceV5 and asian_celeb FNMR at their own
FMR 1e-3 — and the thresholds that data/thresholds.json records.  Re-run::

    D=../shared/data; S=/tmp/study; mkdir -p $S
    for ds in casia_facev5_subset asian_celeb_subset utkface_cohorts; do
      cut -d, -f1 $D/$ds/labels.csv | tail -n +2 > $S/$ds.txt
      .venv/bin/python scripts/embed_views.py --images $D/$ds --list $S/$ds.txt --out $S/$ds.npz
    done
    (cd $D/lfw_view2 && ls -d lfw-deepfunneled/*/*.jpg) > $S/lfw.txt
    .venv/bin/python scripts/embed_views.py --images $D/lfw_view2 --list $S/lfw.txt --out $S/lfw.npz
    .venv/bin/python scripts/identity_study.py --study $S --data $D

(``embed_views.py --shard i/n`` splits a set across processes; this script reads every
``NAME*.npz`` of a set.)  A pair whose image had no face is left out here; the CLI evaluations
(``shiren eval verification``) count it as a non-match instead.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

VIEWS = ("mesh", "mesh-flip", "5pt", "5pt-flip")
NETWORKS = {
    "dlib-resnet-v1-onnx": ("mesh", "5pt-flip"),
    "mobilefacenet-onnx": ("mesh", "mesh-flip"),
}
FAST = ("mesh",)


def load(study: Path, name: str) -> tuple[list[str], dict[str, np.ndarray]]:
    parts = [np.load(p) for p in sorted(study.glob(f"{name}*.npz"))]
    if not parts:
        raise SystemExit(f"no {name}*.npz in {study}: run scripts/embed_views.py first")
    paths = [str(p) for z in parts for p in z["paths"]]
    return paths, {e: np.concatenate([z[e] for z in parts]) for e in NETWORKS}


def templates(emb: np.ndarray, views: tuple[str, ...]) -> np.ndarray:
    t = emb[:, [VIEWS.index(v) for v in views]].mean(axis=1)
    return t / np.linalg.norm(t, axis=1, keepdims=True)


def threshold_at(impostor: np.ndarray, far: float) -> float:
    ranked = np.sort(impostor)[::-1]
    return float(ranked[min(int(np.floor(far * len(ranked))), len(ranked) - 1)])


def lfw(study: Path, data: Path, t_by: dict[str, np.ndarray]) -> dict[str, object]:
    paths, _ = load(study, "lfw")
    index = {p: i for i, p in enumerate(paths)}
    lines = (data / "lfw_view2" / "pairs.txt").read_text().split("\n")[1:]
    a, b, same, fold = [], [], [], []
    for k, line in enumerate(x for x in lines if x.strip()):
        f = line.split("\t")
        first = f"lfw-deepfunneled/{f[0]}/{f[0]}_{int(f[1]):04d}.jpg"
        other = f[0] if len(f) == 3 else f[2]
        second = f"lfw-deepfunneled/{other}/{other}_{int(f[-1]):04d}.jpg"
        if first in index and second in index:
            a.append(index[first])
            b.append(index[second])
            same.append(len(f) == 3)
            fold.append(k // 600)
    labels, folds = np.array(same), np.array(fold)
    out: dict[str, object] = {}
    for key, t in t_by.items():
        s = (t[a] * t[b]).sum(axis=1)
        accs = []
        for f in range(10):
            train, test = folds != f, folds == f
            best = max(np.unique(s[train]), key=lambda x: np.mean((s[train] >= x) == labels[train]))
            accs.append(np.mean((s[test] >= best) == labels[test]))
        imp, gen = s[~labels], s[labels]
        out[key] = {
            "accuracy": round(float(np.mean(accs)) * 100, 2),
            "std": round(float(np.std(accs)) * 100, 2),
            "tar": {
                f: round(float(np.mean(gen >= threshold_at(imp, f))) * 100, 2) for f in (1e-2, 1e-3)
            },
            "threshold_far": {f: round(threshold_at(imp, f), 4) for f in (1e-2, 1e-3, 1e-4)},
        }
    return out


def utk(study: Path, data: Path, t_by: dict[str, np.ndarray]) -> dict[str, object]:
    with open(data / "utkface_cohorts" / "labels.csv", encoding="utf-8") as handle:
        rows = {r["path"]: r for r in csv.DictReader(handle)}
    paths, _ = load(study, "utk")
    adult = np.array([int(rows[p]["age"]) >= 18 for p in paths])
    cohort = np.array([rows[p]["cohort"] for p in paths])
    out: dict[str, object] = {}
    for key, t in t_by.items():
        imp = {}
        for c in sorted(set(cohort)):
            x = t[(cohort == c) & adult]
            iu = np.triu_indices(len(x), 1)
            imp[c] = (x @ x.T)[iu]
        t_wm = threshold_at(imp["white_male"], 1e-3)
        every = max(threshold_at(v, 1e-3) for v in imp.values())
        fmr = {c: float(np.mean(v >= every)) for c, v in imp.items()}
        out[key] = {
            "asian_female_fmr_at_white_male_1e-3": round(
                float(np.mean(imp["asian_female"] >= t_wm)), 4
            ),
            "every_cohort_threshold_1e-3": round(every, 4),
            "worst_best_fmr_ratio_there": round(
                max(fmr.values()) / max(min(fmr.values()), 1e-12), 1
            ),
        }
    return out


def labelled(study: Path, data: Path, name: str, t_by: dict[str, np.ndarray]) -> dict[str, object]:
    with open(data / name / "labels.csv", encoding="utf-8") as handle:
        rows = {r["path"]: r["identity"] for r in csv.DictReader(handle)}
    paths, _ = load(study, name)
    ids = np.array([rows[p] for p in paths])
    iu = np.triu_indices(len(paths), 1)
    same = ids[iu[0]] == ids[iu[1]]
    out: dict[str, object] = {}
    for key, t in t_by.items():
        s = (t @ t.T)[iu]
        th = threshold_at(s[~same], 1e-3)
        out[key] = {
            "genuine": int(same.sum()),
            "impostor": int((~same).sum()),
            "threshold_fmr_1e-3": round(th, 4),
            "threshold_fmr_1e-4": round(threshold_at(s[~same], 1e-4), 4),
            "fnmr_at_own_fmr_1e-3": round(float(np.mean(s[same] < th)) * 100, 1),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", type=Path, required=True, help="Folder of embed_views.py outputs.")
    ap.add_argument("--data", type=Path, required=True, help="The shared data folder.")
    args = ap.parse_args()
    report: dict[str, object] = {}
    for name, prefix in (("lfw", "lfw"), ("utk", "utk"), ("casia", "casia_facev5_subset"),
                         ("asian_celeb", "asian_celeb_subset")):  # fmt: skip
        _, emb = load(args.study, prefix)
        t_by = {}
        for network, views in NETWORKS.items():
            t_by[f"{network}:{'+'.join(views)}"] = templates(emb[network], views)
        t_by["mobilefacenet-onnx:mesh"] = templates(emb["mobilefacenet-onnx"], FAST)
        if name == "lfw":
            report[name] = lfw(args.study, args.data, t_by)
        elif name == "utk":
            report[name] = utk(args.study, args.data, t_by)
        else:
            report[name] = labelled(args.study, args.data, prefix, t_by)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
