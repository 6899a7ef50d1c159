"""`keypoint-corrupt preview --suite`: a grid of one image, a row per corruption, a column per severity."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from kc_cli_helpers import decode_rgb

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.cli.preview import is_preview_file
from keypoint_corrupt.datasets import STB, CocoKeypoints, bundled_sample_root, load_image, sample_rng
from keypoint_corrupt.preview import suite_grid
from keypoint_corrupt.registry import apply_corruption
from keypoint_corrupt.suites import available_suites, get_suite

LABEL = 22  # the label bar above each tile


def tile(grid, row, col, width, height):
    """The picture of one tile, without its label bar."""
    top = row * (height + LABEL) + LABEL
    return grid[top : top + height, col * width : (col + 1) * width]


@pytest.fixture(scope="module")
def stb_sample():
    sample = STB(bundled_sample_root(), "val")[0]
    return sample, load_image(sample)


def test_grid_tiles_are_the_suites_corruptions_at_each_severity(stb_sample):
    """With no visible keypoint nothing is drawn: each tile is exactly the resized corrupted image."""
    sample, image = stb_sample
    hidden = np.zeros(len(sample.keypoints), bool)
    grid = suite_grid(
        image, sample.keypoints, hidden, suite="costa2021", seed=3, sample_id="x", tile_width=80
    )
    suite = get_suite("costa2021")
    width, height = 80, round(image.shape[0] * 80 / image.shape[1])
    assert grid.shape == (len(suite.corruptions) * (height + LABEL), 4 * width, 3)

    def small(img):
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)

    for row, corruption in enumerate(suite.corruptions):
        np.testing.assert_array_equal(tile(grid, row, 0, width, height), small(image))
        for col in (1, 2, 3):
            if col > len(suite.table[corruption]):
                assert not tile(grid, row, col, width, height).any()  # no such severity: black
                continue
            config = suite.config(corruption, col)
            want, _ = apply_corruption(
                config, image, sample.keypoints, visibility=hidden, rng=sample_rng(3, "x", config)
            )
            np.testing.assert_array_equal(tile(grid, row, col, width, height), small(want))


def test_grid_keeps_only_the_corruptions_with_a_requested_severity(stb_sample):
    sample, image = stb_sample
    grid = suite_grid(image, sample.keypoints, suite="costa2021", severities=[2, 3], tile_width=64)
    height = round(image.shape[0] * 64 / image.shape[1]) + LABEL
    assert grid.shape == (3 * height, 3 * 64, 3)  # defocus, motion, occlusion; clean, 2, 3
    with pytest.raises(ValueError, match=r"severities of suite 'costa2021' are 1\.\.3"):
        suite_grid(image, sample.keypoints, suite="costa2021", severities=[4])


def test_cli_grid_of_a_coco_image_is_its_whole_image_as_materialize_has_it(tmp_path, fixtures_dir, capsys):
    """All the image's people are drawn and passed to the corruption; the stream is the image's."""
    ann = fixtures_dir / "body" / "coco" / "test_coco.json"
    out = tmp_path / "grid.png"
    argv = ["preview", "--dataset", "coco", "--annotations", str(ann), "--index", "2"]
    assert (
        main([*argv, "--suite", "costa2021", "--severities", "3", "--tile-width", "96", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "suite costa2021: 3 corruptions x 1 severities + clean, schema coco17" in printed
    coco = CocoKeypoints(ann)
    image_path = coco[2].image_path
    people = [s for s in coco if s.image_path == image_path]
    assert len(people) == 3 and image_path.name in printed
    want = suite_grid(
        load_image(image_path),
        np.concatenate([s.keypoints for s in people]),
        np.concatenate([s.visibility for s in people]),
        suite="costa2021",
        severities=[3],
        sample_id=image_path.name,
        tile_width=96,
        schema="coco17",
    )
    np.testing.assert_array_equal(decode_rgb(out), want)


def test_cli_grid_as_jpeg_is_marked_and_replaced_by_a_later_preview(tmp_path, capsys):
    out = tmp_path / "grid.jpg"
    argv = ["preview", "--suite", "costa2021", "--severities", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert is_preview_file(out) and decode_rgb(out).shape == (5 * (120 + LABEL), 2 * 160, 3)
    assert main([*argv, "--jpeg-quality", "60"]) == 0  # a file of ours: replaced without --overwrite
    foreign = tmp_path / "photo.jpg"
    cv2.imwrite(str(foreign), np.zeros((8, 8, 3), np.uint8))
    assert not is_preview_file(foreign)
    assert main([*argv[:-3], "--out", str(foreign)]) == 2
    assert "was not written by 'keypoint-corrupt preview'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--suite", "costa2021", "--configs", "motion-15"], "--suite costa2021 and --configs motion-15"),
        (["--suite", "nope"], "--suite: unknown suite 'nope'"),
        (["--suite", "costa2021", "--severities", "0-2"], "--severities 0-2: severities must be ranges"),
        (["--suite", "costa2021", "--severities", "9"], "--severities 9: severities of suite 'costa2021'"),
        (
            ["--suite", "costa2021", "--columns", "3"],
            "--columns 3: a --suite grid has one column per severity",
        ),
        (["--severities", "2"], "--severities 2 needs --suite"),
    ],
)
def test_cli_suite_errors_name_the_option_and_value(tmp_path, capsys, extra, message):
    out = tmp_path / "g.png"
    assert main(["preview", "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_configs_sheet_is_still_the_contact_sheet(tmp_path, stb_sample):
    from keypoint_corrupt.preview import contact_sheet

    sample, image = stb_sample
    out = tmp_path / "s.png"
    assert (
        main(["preview", "--configs", "motion-30", "--tile-width", "64", "--out", str(out), "--quiet"]) == 0
    )
    want = contact_sheet(
        image,
        sample.keypoints,
        configs=["motion-30"],
        tile_width=64,
        schema=STB(bundled_sample_root(), "val").schema,
        sample_id=sample.id,
    )
    np.testing.assert_array_equal(decode_rgb(out), want)


@pytest.mark.skipif(
    "imagenet-c" not in available_suites(), reason="the imagenet-c suite is not registered yet"
)
def test_imagenet_c_grid_is_15_rows_of_clean_and_5_severities(stb_sample):
    sample, image = stb_sample
    small = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)
    grid = suite_grid(small, sample.keypoints / 4, suite="imagenet-c", tile_width=48)
    assert grid.shape == (15 * (36 + LABEL), 6 * 48, 3)
    assert json.dumps(get_suite("imagenet-c").severities) == "[1, 2, 3, 4, 5]"


@pytest.mark.skipif("imagenet-c" not in available_suites(), reason="the imagenet-c suite is not registered")
@pytest.mark.parametrize("choice", [["--suite", "imagenet-c"], ["--configs", "defocus-7,imagenet-c.frost-3"]])
def test_cli_without_frost_textures_exits_2_in_one_line_before_any_work(
    tmp_path, capsys, no_frost_textures, choice
):
    out = tmp_path / "g.png"
    assert main(["preview", "--out", str(out), *choice]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keypoint-corrupt preview: error: "), err
    frost = ", ".join(f"imagenet-c.frost-{s}" for s in range(1, 6))
    assert (frost if choice[0] == "--suite" else "imagenet-c.frost-3") + " cannot run" in err
    assert no_frost_textures in err and "pip install --no-deps imagecorruptions==1.1.2" in err
    assert not out.exists()
