"""Every ``--out`` is checked before any work, and nothing a user wrote is replaced (issue #11).

Each refusal is one line on stderr, ``keypoint-corrupt COMMAND: error: ...`` naming the path,
exit status 2, the file untouched, and no work done: the functions that would do the work are
replaced by ones that fail the test if called.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from keypoint_corrupt.cli.main import main

NOTES = "my notes, not a report\n"


def _one_error_line(capsys, command: str, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"keypoint-corrupt {command}: error: "), err
    for word in words:
        assert word in lines[0], (word, err)
    return lines[0]


def _forbid(monkeypatch, target: str) -> None:
    def fail(*args, **kwargs):
        raise AssertionError(f"{target} ran although --out was refused")

    monkeypatch.setattr(target, fail)


@pytest.fixture
def notes(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(NOTES)
    return path


@pytest.fixture
def predict_file(tmp_path):
    """A user predictor (crop centre for every joint): no torch needed."""
    path = tmp_path / "centre_predict.py"
    path.write_text(
        "import numpy as np\n\n"
        "def predict(images, crops):\n"
        "    return np.repeat(np.asarray(crops.center)[:, None], 21, axis=1)\n"
    )
    return f"{path}:predict"


# -- benchmark --------------------------------------------------------------------------------


@pytest.fixture
def no_benchmark_work(monkeypatch):
    import keypoint_corrupt.benchmark as bench

    _forbid(monkeypatch, "keypoint_corrupt.benchmark.evaluate")
    _forbid(monkeypatch, "keypoint_corrupt.benchmark.load_predictor")
    _forbid(monkeypatch, "keypoint_corrupt.benchmark.load_callable")
    return bench


@pytest.mark.parametrize("mode", [[], ["--speed"]])
def test_benchmark_out_an_existing_file_is_refused_before_any_work(
    notes, capsys, no_benchmark_work, predict_file, mode
):
    argv = ["benchmark", "--predict", predict_file, "--out", str(notes), "--no-progress", *mode]
    assert main(argv) == 2
    _one_error_line(capsys, "benchmark", str(notes), "not a folder")
    assert notes.read_text() == NOTES


def test_benchmark_out_inside_a_file_is_refused(notes, capsys, no_benchmark_work, predict_file):
    assert main(["benchmark", "--predict", predict_file, "--out", str(notes / "r")]) == 2
    _one_error_line(capsys, "benchmark", str(notes))


@pytest.mark.parametrize("name", ["report.md", "report.json", "examples.png"])
def test_benchmark_never_replaces_a_foreign_report_file(
    tmp_path, capsys, no_benchmark_work, predict_file, name
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text(NOTES)
    assert main(["benchmark", "--predict", predict_file, "--out", str(out)]) == 2
    _one_error_line(capsys, "benchmark", str(out / name), "earlier benchmark report")
    assert (out / name).read_text() == NOTES


def test_benchmark_speed_never_replaces_a_foreign_speed_md(tmp_path, capsys, monkeypatch):
    _forbid(monkeypatch, "keypoint_corrupt.benchmark.speed.measure_speed")
    (tmp_path / "speed.md").write_text(NOTES)
    assert main(["benchmark", "--speed", "--out", str(tmp_path)]) == 2
    _one_error_line(capsys, "benchmark", str(tmp_path / "speed.md"))
    assert (tmp_path / "speed.md").read_text() == NOTES


def test_benchmark_replaces_its_own_earlier_report(tmp_path, capsys, predict_file):
    out = tmp_path / "r"
    out.mkdir()
    (out / "unrelated.txt").write_text(NOTES)  # other files in the folder are left alone
    argv = ["benchmark", "--predict", predict_file, "--configs", "defocus-7", "--no-plots", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    first = json.loads((out / "report.json").read_text())
    assert main([*argv, "--seed", "1", "--out", str(out)]) == 0
    second = json.loads((out / "report.json").read_text())
    assert "--seed 1" not in first["command"] and "--seed 1" in second["command"]
    assert (out / "unrelated.txt").read_text() == NOTES
    capsys.readouterr()


def test_write_report_refuses_a_foreign_file(tmp_path):
    from keypoint_corrupt.benchmark.report import check_output_dir

    (tmp_path / "report.csv").write_text(NOTES)
    with pytest.raises(
        FileExistsError, match=r"report\.csv exists and is not from an earlier benchmark report"
    ):
        check_output_dir(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"format": "keypoint-corrupt/benchmark-report"}))
    assert check_output_dir(tmp_path) == tmp_path


# -- checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x00\x01 random bytes \xff" * 40, "not a file torch.load can read"),
        (b"hi\n", "not a file torch.load can read"),
        (b"", "not a file torch.load can read"),
    ],
)
def test_a_junk_checkpoint_is_one_clear_line(tmp_path, capsys, content, reason):
    pytest.importorskip("torch")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(content)
    argv = ["benchmark", "--model", "posenet-dense", "--weights", str(junk), "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    _one_error_line(capsys, "benchmark", f"{junk} is not a keypoint_corrupt checkpoint ({reason}")
    assert not (tmp_path / "r").exists()


def test_read_checkpoint_names_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    from keypoint_corrupt.models import read_checkpoint

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hi\n")
    with pytest.raises(ValueError, match=r"junk\.pt is not a keypoint_corrupt checkpoint \(not a file"):
        read_checkpoint(junk)
    whole = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(2, 2), whole)  # a pickled module, not weights and plain values
    with pytest.raises(
        ValueError, match=r"whole\.pt is not a keypoint_corrupt checkpoint \(it holds pickled"
    ):
        read_checkpoint(whole)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "missing.pt")


# -- train ------------------------------------------------------------------------------------


@pytest.fixture
def no_training(monkeypatch):
    pytest.importorskip("torch")
    import keypoint_corrupt.models  # noqa: F401  (the attribute to replace)

    _forbid(monkeypatch, "keypoint_corrupt.models.train")
    _forbid(monkeypatch, "keypoint_corrupt.cli.data.training_data")


def test_train_out_an_existing_file_is_refused(notes, capsys, no_training):
    assert main(["train", "--model", "posenet-dense", "--out", str(notes)]) == 2
    _one_error_line(capsys, "train", str(notes), "not a folder")
    assert notes.read_text() == NOTES


def test_train_out_holding_foreign_run_files_is_refused(tmp_path, capsys, no_training):
    (tmp_path / "model.pt").write_text(NOTES)
    assert main(["train", "--model", "posenet-dense", "--out", str(tmp_path)]) == 2
    _one_error_line(capsys, "train", str(tmp_path), "model.pt", "no last.pt")
    assert (tmp_path / "model.pt").read_text() == NOTES


@pytest.mark.parametrize("joint, words", [(30, ["30", "21 joints", "0..20"]), (-1, [">= 0"])])
def test_train_center_joint_out_of_range_is_refused_before_training(
    tmp_path, capsys, monkeypatch, joint, words
):
    pytest.importorskip("torch")
    import keypoint_corrupt.models  # noqa: F401

    _forbid(monkeypatch, "keypoint_corrupt.models.train")
    out = tmp_path / "run"
    argv = ["train", "--model", "posenet-dense", "--out", str(out), "--center-joint", str(joint)]
    assert main(argv) == 2
    _one_error_line(capsys, "train", "--center-joint", *words)
    assert not out.exists()


def test_train_api_checks_center_joint(tmp_path):
    pytest.importorskip("torch")
    from keypoint_corrupt.models import train

    data = [{"image": np.zeros((64, 64, 3), np.uint8), "keypoints": np.full((21, 2), 32.0)}] * 2
    with pytest.raises(ValueError, match=r"center_joint=30 is out of range: the data has 21 joints"):
        train(
            "posenet-dense",
            data,
            epochs=1,
            batch_size=2,
            crop_size=32,
            out_dir=tmp_path / "o",
            center_joint=30,
        )
    assert not (tmp_path / "o").exists()


# -- preview ----------------------------------------------------------------------------------


@pytest.fixture
def no_sheet(monkeypatch):
    _forbid(monkeypatch, "keypoint_corrupt.preview.contact_sheet")


def test_preview_never_replaces_a_foreign_file(notes, capsys, no_sheet):
    assert main(["preview", "--out", str(notes), "-q"]) == 2
    _one_error_line(capsys, "preview", str(notes), "--overwrite")
    assert notes.read_text() == NOTES


def test_preview_refuses_a_foreign_png_and_a_folder(tmp_path, capsys, no_sheet):
    import cv2

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((4, 4, 3), np.uint8))
    before = photo.read_bytes()
    assert main(["preview", "--out", str(photo), "-q"]) == 2
    _one_error_line(capsys, "preview", str(photo))
    assert photo.read_bytes() == before
    assert main(["preview", "--out", str(tmp_path), "-q"]) == 2
    _one_error_line(capsys, "preview", "is a folder")


def test_preview_replaces_its_own_sheet_and_with_overwrite_anything(tmp_path, notes, capsys):
    import cv2

    from keypoint_corrupt.cli.preview import is_preview_png

    out = tmp_path / "sheet.png"
    argv = ["preview", "--configs", "defocus-7", "--tile-width", "64", "-q"]
    assert main([*argv, "--out", str(out)]) == 0
    assert is_preview_png(out) and cv2.imread(str(out)) is not None
    assert main([*argv, "--seed", "2", "--out", str(out)]) == 0  # its own earlier output
    assert main([*argv, "--overwrite", "--out", str(notes)]) == 0
    assert is_preview_png(notes) and cv2.imread(str(notes)) is not None
    assert capsys.readouterr().err == ""


# -- NaN keypoints ----------------------------------------------------------------------------


def test_coco_nan_keypoint_with_v0_is_read_as_invisible(tmp_path):
    from keypoint_corrupt.datasets import CocoKeypoints

    doc = {
        "images": [{"id": 1, "file_name": "a.png"}],
        "categories": [{"id": 1, "name": "hand", "keypoints": ["a", "b", "c"]}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "keypoints": [1, 2, 2, None, None, 0, 5, 6, 1]}
        ],
    }
    text = json.dumps(doc).replace("null", "NaN")
    (tmp_path / "a.json").write_text(text)
    sample = CocoKeypoints(tmp_path / "a.json")[0]
    assert sample.visibility.tolist() == [True, False, True]
    assert sample.keypoints.tolist() == [[1, 2], [0, 0], [5, 6]]
    (tmp_path / "b.json").write_text(text.replace("NaN, NaN, 0", "NaN, NaN, 2"))
    with pytest.raises(ValueError, match=r"b\.json.*annotation 1: 'keypoints' holds NaN or infinite values"):
        CocoKeypoints(tmp_path / "b.json")


# -- the shared --out check -------------------------------------------------------------------


def test_check_output_path_is_one_line_naming_the_path(tmp_path):
    from keypoint_corrupt._paths import check_output_path

    a_file = tmp_path / "f"
    a_file.write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    check_output_path(tmp_path / "new" / "deeper")  # missing: fine
    check_output_path(tmp_path / "d")
    check_output_path(a_file, want="file")
    for path, want, words in [
        (a_file, "folder", "exists and is not a folder"),
        (a_file / "sub" / "x", "folder", f"is inside {a_file}, which is not a folder"),
        (a_file / "sub.png", "file", f"is inside {a_file}, which is not a folder"),
        (tmp_path / "d", "file", "is a folder; give a file name"),
        (tmp_path / "dangling", "folder", "is a broken symbolic link"),
    ]:
        with pytest.raises(ValueError) as info:
            check_output_path(path, want=want)
        message = str(info.value)
        assert message.startswith(f"--out {path} ") and words in message and "\n" not in message
    assert a_file.read_text() == "x"
