"""``shiren eval idcard``: read synthetic ID cards (made at run time) and the demo specimen with
the ID-card reader, and report per-field exact-match rates, front/back, portraits, check-digit
catches, guidance, time per card and the card-portrait face match (issue 16)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shiren.cli.common import emit, model_dict, run_guarded, verifier_for
from shiren.cli.eval_common import EvalProfileOpt, SeedOpt

if TYPE_CHECKING:
    from shiren.idcard.types import CardReader

# The evaluation data sit beside a checkout (../shared/data) or where SHIREN_SHARED_DATA says.
DEFAULT_SHARED = Path(
    os.environ.get(
        "SHIREN_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
    )
)
DEFAULT_FACES = DEFAULT_SHARED / "casia_facev5_subset"
DEFAULT_SPECIMEN = DEFAULT_SHARED / "cn_idcard_specimen" / "cn_idcard_demo_specimen_front.jpg"


def eval_idcard(
    out: Annotated[Path, typer.Option("--out", help="Report folder (report.json, report.md).")],
    cards: Annotated[int, typer.Option("--cards", min=1, help="Synthetic cards per level.")] = 200,
    level: Annotated[
        str, typer.Option("--level", help="none | moderate | strong, a comma list, or all.")
    ] = "moderate",
    seed: SeedOpt = 0,
    invalid_share: Annotated[
        float,
        typer.Option("--invalid-share", min=0.0, max=1.0, help="Numbers with a wrong check digit."),
    ] = 0.1,
    faces: Annotated[
        Path | None,
        typer.Option("--faces", help="Portrait faces: labels.csv + images, or per-person folders."),
    ] = None,
    specimen: Annotated[
        Path | None, typer.Option("--specimen", help="The demo specimen photo (front).")
    ] = None,
    profile: EvalProfileOpt = "standard",
    match: Annotated[
        bool, typer.Option("--match/--no-match", help="Also the card-portrait face match.")
    ] = True,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
) -> None:
    """Read synthetic cards and the specimen; write DIR/report.json and DIR/report.md."""
    from shiren.eval.idcard_photo import LEVELS
    from shiren.eval.idcard_report import levels_of

    try:
        levels = levels_of(level, LEVELS)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    faces_dir = faces if faces is not None else (DEFAULT_FACES if DEFAULT_FACES.is_dir() else None)
    if specimen is not None and not specimen.is_file():
        raise typer.BadParameter(f"--specimen {specimen} is not a file")
    specimen_file = specimen or (DEFAULT_SPECIMEN if DEFAULT_SPECIMEN.is_file() else None)
    verifier = verifier_for(profile) if match and faces_dir is not None else None

    def action() -> dict[str, Any]:
        return _run(out, cards, levels, seed, invalid_share, faces_dir, specimen_file, verifier,
                    profile, progress)  # fmt: skip

    report = run_guarded(True, action)
    emit({lv: {"fields": {k: v["exact"] for k, v in s["fields"].items()},
               "side_accuracy": s["side_accuracy"]["rate"],
               "portrait_found": s["portrait_found"]["rate"],
               "check_digit_caught": s["check_digit"]["caught"]["rate"],
               "time_ms_p95": s["time_ms"]["p95"]}
          for lv, s in report["levels"].items()})  # fmt: skip


def _run(
    out: Path, cards: int, levels: tuple[str, ...], seed: int, invalid_share: float,
    faces: Path | None, specimen: Path | None, verifier: Any, profile: str, progress: bool,
) -> dict[str, Any]:  # fmt: skip
    import cv2
    from tqdm import tqdm

    from shiren.eval.idcard_report import IdcardRun, evaluate, markdown
    from shiren.eval.idcard_synth import FaceBank, SynthConfig
    from shiren.eval.provenance import provenance, write_json

    cv2.setNumThreads(1)  # time per card on one core, as the issue asks
    reader = _load_reader()
    run = IdcardRun(
        cards=cards,
        levels=levels,
        synth=SynthConfig(seed=seed, invalid_share=invalid_share),
        faces=FaceBank.load(faces) if faces is not None else None,
        specimen=specimen,
    )
    total = cards * len(levels) + (1 if specimen else 0)
    with tqdm(
        total=total, desc="idcard", unit="card", disable=not progress, file=sys.stderr
    ) as bar:
        report = evaluate(reader, run, verifier=verifier, progress=bar.update)
    models = _reader_models(reader)
    if verifier is not None:
        models += [model_dict(m) for m in verifier.models]
    settings = {**report["protocol"], "profile": profile if verifier else None, "cv2_threads": 1}
    report["provenance"] = provenance(settings, models)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    return report


def _load_reader() -> CardReader:
    """The real reader, models loaded once (``shiren.idcard``)."""
    from shiren.idcard.types import CardReader

    return CardReader.load()


def _reader_models(reader: CardReader) -> list[dict[str, str]]:
    """The reader's models (text recogniser, face detector) for the provenance."""
    infos = (getattr(part, "info", None) for part in (reader.ocr, reader.detector))
    return [model_dict(info) for info in infos if info is not None]


def register(eval_app: typer.Typer) -> None:
    eval_app.command("idcard")(eval_idcard)


__all__ = ["eval_idcard", "register"]
