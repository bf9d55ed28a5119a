"""Reading pair lists: LFW pairs.txt (10-fold and one-fold), CSV, malformed input, --limit."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from shiren.errors import ErrorCode, InputError
from shiren.eval.pairs import Pair, limit_per_fold, read_pairs
from tests.conftest import SHARED

LFW_DIR = SHARED / "lfw_view2"

LFW_TWO_FOLDS = """2\t2
Abel_Pacheco\t1\t4
Zico\t2\t3
Abel_Pacheco\t1\tZico\t1
Ann_Lee\t10\tBo_Ra\t2
Amy_Adams\t1\t2
Bo_Ra\t1\t3
Amy_Adams\t1\tBo_Ra\t3
Zico\t1\tAnn_Lee\t1
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error_line(path: Path) -> int:
    with pytest.raises(InputError) as info:
        read_pairs(path)
    assert info.value.code is ErrorCode.INPUT_INVALID
    line = info.value.detail["line"]
    assert isinstance(line, int)
    return line


def test_lfw_folds_and_paths(tmp_path: Path) -> None:
    pairs = read_pairs(_write(tmp_path, "pairs.txt", LFW_TWO_FOLDS))
    assert len(pairs) == 8
    assert pairs[0] == Pair(
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", True, 0, None
    )
    assert pairs[3] == Pair("Ann_Lee/Ann_Lee_0010.jpg", "Bo_Ra/Bo_Ra_0002.jpg", False, 0, None)
    assert [p.fold for p in pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [p.same for p in pairs] == [True, True, False, False] * 2


def test_lfw_one_fold_form(tmp_path: Path) -> None:
    text = "1\nAmy_Adams\t1\t2\nAmy_Adams\t1\tBo_Ra\t3\n"
    pairs = read_pairs(_write(tmp_path, "pairsDevTrain.txt", text))
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0)]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", 1),  # empty
        ("2\t1\nA\t1\t2\nA\t1\tB\t1\n", 4),  # header promises 4 lines, 2 present
        ("1\t1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\n", 4),  # one line too many
        ("1\t1\nA\t1\tB\t2\nA\t1\t2\n", 2),  # classes swapped: 4 tokens in the same block
        ("1\t1\nA\t1\t2\nA\t1\tB\n", 3),  # 3 tokens in the different block
        ("1\t1\nA\tx\t2\nA\t1\tB\t1\n", 2),  # index not a number
        ("1\t1\nA\t0\t2\nA\t1\tB\t1\n", 2),  # index 0
        ("1\t1\nA\t²\t2\nA\t1\tB\t1\n", 2),  # a Unicode digit int() refuses
        ("1\t1\n../x\t1\t2\nA\t1\tB\t1\n", 2),  # path separator in a name
        ("0\t5\n", 1),  # no folds
        ("hello world\n", 1),  # neither format
    ],
)
def test_lfw_malformed(tmp_path: Path, text: str, line: int) -> None:
    assert _error_line(_write(tmp_path, "pairs.txt", text)) == line


def test_csv_with_cohort_and_fold(tmp_path: Path) -> None:
    text = "img1,img2,same,cohort,fold\na.jpg,b.jpg,1,female,3\nc.jpg,d.jpg,false,,7\n"
    pairs = read_pairs(_write(tmp_path, "p.csv", text))
    assert pairs == [
        Pair("a.jpg", "b.jpg", True, 3, "female"),
        Pair("c.jpg", "d.jpg", False, 7, None),
    ]


def test_csv_columns_in_any_order_after_the_first_three(tmp_path: Path) -> None:
    text = "\ufeffA,B,Same,Fold,Cohort\nx/1.jpg,y/2.jpg,TRUE,0,male\n"
    assert read_pairs(_write(tmp_path, "p.csv", text)) == [
        Pair("x/1.jpg", "y/2.jpg", True, 0, "male")
    ]


def test_csv_without_fold_gets_ten_contiguous_folds(tmp_path: Path) -> None:
    rows = "".join(f"a{i}.jpg,b{i}.jpg,{i % 2}\n" for i in range(25))
    pairs = read_pairs(_write(tmp_path, "p.csv", "img1,img2,same\n" + rows))
    # Row i of 25 gets fold i * 10 // 25: blocks of 3, 2, 3, 2, ...
    assert [p.fold for p in pairs] == [i * 10 // 25 for i in range(25)]
    assert Counter(p.fold for p in pairs) == {f: 3 if f % 2 == 0 else 2 for f in range(10)}
    assert all(p.cohort is None for p in pairs)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("img1,img2,label\na,b,1\n", 1),  # third column is not 'same'
        ("img1,img2\na,b\n", 1),  # too few columns
        ("img1,img2,same,fold,fold\na,b,1,0,0\n", 1),  # duplicate column
        ("img1,img2,same\na,b,1\nc,d,yes\n", 3),  # 'yes' is not accepted
        ("img1,img2,same\na,b,1\nc,d\n", 3),  # short row
        ("img1,img2,same\na,,1\n", 2),  # empty path
        ("img1,img2,same,fold\na,b,1,-1\n", 2),  # negative fold
        ("img1,img2,same\n", 2),  # header only
    ],
)
def test_csv_malformed(tmp_path: Path, text: str, line: int) -> None:
    assert _error_line(_write(tmp_path, "p.csv", text)) == line


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_pairs(tmp_path / "nope.txt")
    assert info.value.code is ErrorCode.INPUT_FILE_NOT_FOUND
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    assert _error_line(binary) == 1


def test_limit_per_fold_keeps_both_classes_in_file_order(tmp_path: Path) -> None:
    pairs = read_pairs(_write(tmp_path, "pairs.txt", LFW_TWO_FOLDS))
    three = limit_per_fold(pairs, 3)  # per fold: 2 same + 1 different
    assert three == [pairs[0], pairs[1], pairs[2], pairs[4], pairs[5], pairs[6]]
    one = limit_per_fold(pairs, 1)  # per fold: ceil(1/2) = 1 same, 0 different
    assert one == [pairs[0], pairs[4]]
    assert limit_per_fold(pairs, 0) == []
    assert limit_per_fold(pairs, 100) == pairs
    with pytest.raises(InputError):
        limit_per_fold(pairs, -1)


# --- the real LFW View 2 files ------------------------------------------------------------

needs_lfw = pytest.mark.skipif(
    not LFW_DIR.is_dir() and not os.environ.get("CI"), reason="LFW View 2 data not present"
)


@needs_lfw
def test_real_lfw_pairs_txt() -> None:
    pairs = read_pairs(LFW_DIR / "pairs.txt")
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    assert Counter(p.fold for p in pairs) == dict.fromkeys(range(10), 600)
    assert Counter((p.fold, p.same) for p in pairs) == {
        (f, s): 300 for f in range(10) for s in (True, False)
    }
    first = pairs[0]
    assert (first.a, first.b) == (
        "Abel_Pacheco/Abel_Pacheco_0001.jpg",
        "Abel_Pacheco/Abel_Pacheco_0004.jpg",
    )
    images = LFW_DIR / "lfw-deepfunneled"
    if images.is_dir():
        for pair in pairs[::500]:
            assert (images / pair.a).is_file()
            assert (images / pair.b).is_file()
    limited = limit_per_fold(pairs, 10)
    assert Counter((p.fold, p.same) for p in limited) == {
        (f, s): 5 for f in range(10) for s in (True, False)
    }


@needs_lfw
def test_real_gender_csv_matches_lfw_folds() -> None:
    csv_pairs = read_pairs(LFW_DIR / "pairs_gender.csv")
    txt_pairs = read_pairs(LFW_DIR / "pairs.txt")
    assert len(csv_pairs) == 6000
    # Same pairs in the same order, and the contiguous-block folds reproduce LFW's.
    assert [(p.a, p.b, p.same, p.fold) for p in csv_pairs] == [
        (p.a, p.b, p.same, p.fold) for p in txt_pairs
    ]
    cohorts = Counter(p.cohort for p in csv_pairs)
    assert set(cohorts) <= {"female", "male", "mixed", "unknown"}
    assert cohorts["mixed"] > 0
    assert all(not p.same for p in csv_pairs if p.cohort == "mixed")
