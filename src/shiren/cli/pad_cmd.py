"""``shiren eval pad`` (ISO/IEC 30107-3 PAD metrics) and ``shiren train pad``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shiren.cli.common import emit, run_guarded

if TYPE_CHECKING:
    from shiren.eval.pad import Acquired, PadLabels, Scorer, Timings
    from shiren.liveness.pad_model import PadModel
    from shiren.models.protocols import ModelInfo

train_app = typer.Typer(
    help="Train small models on your own labelled data (never on research-only data sets for "
    "production).",
    no_args_is_help=True,
)

NONE_MODEL = "none"

RootOpt = Annotated[
    Path, typer.Option("--root", help="Data folder; labels.csv paths are relative to it.")
]
LabelsOpt = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        help="labels.csv (path,is_live[,label,split|official_nuaa_split,subject]); "
        "default ROOT/labels.csv.",
    ),
]
InputOpt = Annotated[
    str,
    typer.Option(
        "--input",
        help="frames: whole frames (the face is detected; no face = failure to acquire, "
        "rejected) | crops: each image is already a face crop.",
    ),
]
BaseOpt = Annotated[
    str,
    typer.Option("--model", help="Base PAD model from the registry, or 'none' (texture only)."),
]
ModelsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="PAD model(s) from the registry, each reported as its own scorer (repeat the option: "
        "--model minifasnet --model dtn-fas); the first is the base of --fit-texture's fused "
        "model; 'none' = texture only.  Default: minifasnet.",
    ),
]
L2Opt = Annotated[float, typer.Option("--l2", help="L2 penalty of the logistic regression.")]
ProgressOpt = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
]

RESEARCH_ONLY_NOTE = (
    "trained on research-only data (NUAA terms forbid training production models on it): "
    "for measurement only; never ship or commit this file"
)


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    eval_app.command("pad")(eval_pad)
    app.add_typer(train_app, name="train")


def eval_pad(
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json + det.png).")],
    labels: LabelsOpt = None,
    split: Annotated[str, typer.Option("--split", help="Rows reported.")] = "test",
    fit_split: Annotated[
        str, typer.Option("--fit-split", help="Rows the threshold (and fitted models) come from.")
    ] = "train",
    input_mode: InputOpt = "frames",
    model: ModelsOpt = None,
    fuse_mean: Annotated[
        bool,
        typer.Option(
            "--fuse-mean/--no-fuse-mean",
            help="With two or more --model: also report the mean of their live scores.",
        ),
    ] = False,
    texture_model: Annotated[
        Path | None,
        typer.Option("--texture-model", help="A model file from 'shiren train pad' to evaluate."),
    ] = None,
    fit_texture: Annotated[
        bool,
        typer.Option(
            "--fit-texture/--no-fit-texture",
            help="Fit texture-only and fused models on the --fit-split rows (in memory) and "
            "report them next to the base model.",
        ),
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold", help="Fixed threshold for every scorer (default: chosen on fit rows)."
        ),
    ] = None,
    target_bpcer: Annotated[
        float, typer.Option("--target-bpcer", help="BPCER the threshold is chosen at.")
    ] = 0.05,
    l2: L2Opt = 1e-2,
    progress: ProgressOpt = True,
) -> None:
    """Presentation-attack detection: APCER (worst attack type), BPCER, ACER at a threshold fixed
    on the fit rows, BPCER@APCER 1 %/5 %, AUC, per type and subject, failures to acquire, DET."""
    mode = _check_input(input_mode)
    if not 0.0 <= target_bpcer <= 1.0:
        raise typer.BadParameter("--target-bpcer must lie in [0, 1]")
    models = [n for n in dict.fromkeys(model or ["minifasnet"]) if n != NONE_MODEL]
    if fuse_mean and len(models) < 2:
        raise typer.BadParameter("--fuse-mean needs two or more --model")

    def action() -> dict[str, Any]:
        return _eval_pad(
            root,
            labels or root / "labels.csv",
            out,
            split=split,
            fit_split=fit_split,
            mode=mode,
            models=models,
            fuse_mean=fuse_mean,
            texture_model=texture_model,
            fit_texture=fit_texture,
            threshold=threshold,
            target_bpcer=target_bpcer,
            l2=l2,
            progress=progress,
        )

    report = run_guarded(True, action)
    emit(_summary(report, out))


def _eval_pad(
    root: Path,
    labels_path: Path,
    out: Path,
    *,
    split: str,
    fit_split: str,
    mode: str,
    models: list[str],
    fuse_mean: bool,
    texture_model: Path | None,
    fit_texture: bool,
    threshold: float | None,
    target_bpcer: float,
    l2: float,
    progress: bool,
) -> dict[str, Any]:
    from shiren.eval.pad import (
        ThresholdRule,
        Timings,
        base_scorer,
        evaluate_scorers,
        failures_to_acquire,
        file_sha256,
        mean_scorer,
        model_scorer,
        other_scorer,
        plot_pad_det,
        read_pad_labels,
    )
    from shiren.eval.provenance import provenance, write_json
    from shiren.liveness.pad_model import TexturePad, describe_weights, load_pad_model

    _check_root(root)
    pad_labels = read_pad_labels(labels_path)
    detector = _detector(mode)
    names = models
    base = _base_model(names[0]) if names else None
    others = {n: _base_model(n) for n in names[1:]}
    loaded = load_pad_model(texture_model) if texture_model is not None else None
    if loaded is not None:
        TexturePad(loaded, base)  # refuses a fused model without its exact base model
    if base is None and loaded is None and not fit_texture:
        raise typer.BadParameter(
            "nothing to evaluate: give --model, --texture-model or --fit-texture"
        )
    wanted = pad_labels.rows(split) + pad_labels.rows(fit_split)
    timings = Timings()
    acquired = _acquire(
        root,
        wanted,
        mode,
        detector,
        base,
        fit_texture or loaded is not None,
        timings,
        progress,
        others,
    )
    scorers: dict[str, Scorer] = {}
    if base is not None:
        scorers[names[0]] = base_scorer
    scorers |= {n: other_scorer(n) for n in others}
    if fuse_mean:
        scorers[f"mean({','.join(names)})"] = mean_scorer([scorers[n] for n in names])
    fitted: dict[str, Any] = {}
    if fit_texture:
        crossed_scorers, fitted = _cross_fitted(
            pad_labels, root, fit_split, mode, acquired, base, l2
        )
        scorers |= crossed_scorers
    if loaded is not None:
        scorers["texture_model"] = model_scorer(loaded)
        fitted["texture_model"] = {
            **_model_record(loaded, describe_weights(loaded)),
            "file": str(texture_model),
        }
        fitted["texture_model"]["warnings"] = _overlap_warnings(
            loaded, pad_labels, split, fit_split
        )
    rule = ThresholdRule(given=threshold, target_bpcer=target_bpcer)
    result = evaluate_scorers(
        pad_labels, acquired, scorers, split=split, fit_split=fit_split, rule=rule
    )
    primary = next(
        (n for n in ("texture_model", "fused", "texture") if n in scorers), next(iter(scorers))
    )
    rocs = result.pop("rocs")
    out.mkdir(parents=True, exist_ok=True)
    plots = {}
    if rocs:
        plots["det"] = plot_pad_det(rocs, out / "det.png", title=f"PAD DET ({root.name})").name
    report: dict[str, Any] = dict(result["scorers"][primary])
    report |= {
        "primary": primary,
        "scorers": result["scorers"],
        "protocol": result["protocol"],
        "failures_to_acquire": failures_to_acquire(pad_labels.rows(split), acquired),
        "failures_to_acquire_fit_rows": failures_to_acquire(pad_labels.rows(fit_split), acquired),
        "fitted_models": fitted,
        "timing": timings.summary(),
        "plots": plots,
    }
    settings: dict[str, object] = {
        "command": " ".join(["shiren", *sys.argv[1:]]),
        "root": str(root),
        "labels": str(labels_path),
        "labels_sha256": pad_labels.sha256,
        "input": mode,
        "models": names,
        "fuse_mean": fuse_mean,
        "split": split,
        "fit_split": fit_split,
        "threshold": threshold,
        "target_bpcer": target_bpcer,
        "texture_model": str(texture_model) if texture_model else None,
        "texture_model_sha256": file_sha256(texture_model) if texture_model else None,
        "fit_texture": fit_texture,
        "l2": l2,
    }
    infos = [_info_dict(m.info) for m in (detector, base, *others.values()) if m is not None]
    if loaded is not None:
        infos.append({"name": "texture_model", "version": "", "sha256": loaded.sha256})
    report["provenance"] = provenance(settings, infos)
    write_json(out / "report.json", report)
    return report


def _cross_fitted(
    pad_labels: PadLabels,
    root: Path,
    fit_split: str,
    mode: str,
    acquired: dict[str, Acquired],
    base: Any,
    l2: float,
) -> tuple[dict[str, Scorer], dict[str, Any]]:
    """Texture-only and (with a base model) fused models fitted on the fit rows, in memory."""
    from shiren.eval.pad import cross_fit, is_known_research_only
    from shiren.liveness.pad_model import describe_weights

    scorers: dict[str, Scorer] = {}
    fitted: dict[str, Any] = {}
    training = _training_record(pad_labels, root, fit_split, mode)
    if is_known_research_only(pad_labels, root):
        training["terms"] = RESEARCH_ONLY_NOTE
    fit_rows = pad_labels.rows(fit_split)
    variants: list[tuple[str, ModelInfo | None]] = [("texture", None)]
    if base is not None:
        variants.append(("fused", base.info))
    for name, info in variants:
        crossed = cross_fit(fit_rows, acquired, base_info=info, training=training, l2=l2)
        scorers[name] = crossed.scorer()
        fitted[name] = _model_record(crossed.model, describe_weights(crossed.model))
        fitted[name]["out_of_fold"] = {
            "folds": crossed.folds,
            "grouped_by": crossed.grouped_by,
            "note": "fit rows are scored out of fold (threshold choice, and any reported "
            "row that is also a fit row); other rows by the model fitted on all fit rows",
        }
    return scorers, fitted


@train_app.command("pad")
def train_pad(
    root: RootOpt,
    out: Annotated[Path, typer.Option("--out", help="Model file to write (JSON).")],
    labels: LabelsOpt = None,
    split: Annotated[
        str, typer.Option("--split", help="Rows to train on (all rows if no split column).")
    ] = "train",
    input_mode: InputOpt = "frames",
    with_minifasnet: Annotated[
        bool,
        typer.Option(
            "--with-minifasnet/--no-minifasnet",
            help="Fuse with the base model's log-odds (the base model is then required).",
        ),
    ] = True,
    model: BaseOpt = "minifasnet",
    l2: L2Opt = 1e-2,
    progress: ProgressOpt = True,
) -> None:
    """Fit a texture (+ MiniFASNet) presentation-attack classifier on YOUR labelled data.

    Licensing: train only on data you may use for this purpose.  NUAA's terms (and those of most
    academic PAD sets) forbid training production models on them: a model trained on NUAA may be
    written to a temporary file for measurement, never shipped or committed to a repository.
    """
    mode = _check_input(input_mode)

    def action() -> dict[str, Any]:
        from shiren.eval.pad import fit_model_on, is_known_research_only, read_pad_labels
        from shiren.liveness.pad_model import describe_weights, save_pad_model

        _check_root(root)
        labels_path = labels or root / "labels.csv"
        pad_labels = read_pad_labels(labels_path)
        rows = pad_labels.rows(split)
        if not rows:
            raise typer.BadParameter(f"no rows in split {split!r}")
        base = _base_model(model) if with_minifasnet else None
        if with_minifasnet and base is None:
            raise typer.BadParameter("--with-minifasnet needs a base --model (not 'none')")
        acquired = _acquire(root, rows, mode, _detector(mode), base, True, None, progress)
        training = _training_record(pad_labels, root, split, mode)
        research_only = is_known_research_only(pad_labels, root)
        if research_only:
            training["terms"] = RESEARCH_ONLY_NOTE
            typer.echo(f"warning: {RESEARCH_ONLY_NOTE}", err=True)
        fitted = fit_model_on(
            rows, acquired, base_info=base.info if base else None, training=training, l2=l2
        )
        digest = save_pad_model(fitted, out)
        return {
            "model": str(out),
            "sha256": digest,
            "inputs": len(fitted.input_names),
            "base_model": fitted.base_model,
            "rows_used": fitted.training["rows_used"],
            "rows_failed_to_acquire": fitted.training["rows_failed_to_acquire"],
            "rows_used_per_label": fitted.training["rows_used_per_label"],
            "top_weights": describe_weights(fitted, 5),
            "research_only_data": research_only,
        }

    emit(run_guarded(True, action))


def _overlap_warnings(model: PadModel, labels: PadLabels, split: str, fit_split: str) -> list[str]:
    """Say when a loaded model meets its own training rows: scores there are over-confident, so
    a threshold chosen on them is too strict and rates measured on them are optimistic."""
    if model.training.get("labels_sha256") != labels.sha256:
        return []
    trained_on = model.training.get("split")
    warnings = []
    if trained_on is None or trained_on == fit_split:
        warnings.append("the threshold is chosen on rows this model was trained on")
    if trained_on is None or trained_on == split:
        warnings.append("the reported rows include rows this model was trained on")
    return warnings


def _check_input(value: str) -> str:
    if value not in {"frames", "crops"}:
        raise typer.BadParameter("--input must be 'frames' or 'crops'")
    return value


def _check_root(root: Path) -> None:
    if not root.is_dir():
        raise typer.BadParameter(f"--root {root} is not a folder")


def _detector(mode: str) -> Any:
    if mode != "frames":
        return None
    from shiren.models.registry import build_model

    return build_model("blazeface")


def _base_model(name: str) -> Any:
    if name == NONE_MODEL:
        return None
    from shiren.models.registry import build_model

    return build_model(name)


def _acquire(
    root: Path,
    rows: list[Any],
    mode: str,
    detector: Any,
    base: Any,
    texture: bool,
    timings: Timings | None,
    progress: bool,
    others: dict[str, Any] | None = None,
) -> dict[str, Acquired]:
    """Every distinct image of ``rows`` measured once, with a progress bar on stderr."""
    from tqdm import tqdm

    from shiren.eval.pad import acquire

    paths = list(dict.fromkeys(r.path for r in rows))
    with tqdm(
        total=len(paths), desc="pad", unit="img", disable=not progress, file=sys.stderr
    ) as bar:
        return acquire(
            paths,
            root,
            input_mode="frames" if mode == "frames" else "crops",
            detector=detector,
            base=base,
            texture=texture,
            timings=timings,
            progress=bar.update,
            others=others,
        )


def _training_record(labels: PadLabels, root: Path, split: str, mode: str) -> dict[str, Any]:
    rows = labels.rows(split)
    return {
        "labels": str(labels.source),
        "labels_sha256": labels.sha256,
        "root": str(root),
        "split": split if labels.has_split else None,
        "input": mode,
        "rows": len(rows),
        "rows_per_label": labels.label_counts(rows),
    }


def _model_record(model: PadModel, top: list[dict[str, float | str]]) -> dict[str, Any]:
    return {
        "sha256": model.sha256,
        "inputs": len(model.input_names),
        "base_model": model.base_model,
        "training": model.training,
        "top_weights": top,
    }


def _info_dict(info: ModelInfo) -> dict[str, str]:
    return {
        "name": info.name,
        "version": info.version,
        "sha256": info.sha256,
        "licence": info.licence,
    }


def _summary(report: dict[str, Any], out: Path) -> dict[str, Any]:
    """The compact stdout view: the primary scorer's headline numbers and each scorer's."""
    keys = ("threshold", "apcer", "bpcer", "acer", "bpcer_at_apcer_1pct", "auc")
    return {
        "primary": report["primary"],
        **{k: report[k] for k in keys},
        "apcer_by_type": {t: r["rate"] for t, r in report["apcer_by_type"].items()},
        "held_out_threshold": report["protocol"]["held_out"],
        "scorers": {name: {k: m[k] for k in keys} for name, m in report["scorers"].items()},
        "n_rows": report["protocol"]["report_rows"],
        "failures_to_acquire": report["failures_to_acquire"]["all"]["errors"],
        "report": str(out / "report.json"),
    }
