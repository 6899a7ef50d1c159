"""`verify` catches damage; `preview` draws contact sheets; every command has --help with examples."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from keypoint_corrupt import CONFIGS
from keypoint_corrupt import preview as preview_module
from keypoint_corrupt._version import __version__
from keypoint_corrupt.cli.main import COMMAND_MODULES, build_parser, main
from keypoint_corrupt.datasets import STB, CocoKeypoints, load_image
from keypoint_corrupt.preview import contact_sheet


@pytest.fixture
def damaged(tmp_path, reference):
    out = tmp_path / "o"
    shutil.copytree(reference, out)
    return out


def test_verify_accepts_an_intact_output(reference, capsys):
    assert main(["verify", str(reference)]) == 0
    assert capsys.readouterr().out.startswith("OK: 158 image files and 24 annotation files match")


def test_verify_catches_a_flipped_byte(damaged, capsys):
    victim = sorted(damaged.glob("val/noise-saltpepper/images/*/*.png"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert main(["verify", str(damaged)]) == 1
    out = capsys.readouterr().out.splitlines()
    rel = victim.relative_to(damaged).as_posix()
    assert out == [f"{rel}: sha256 {out[0].split('sha256 ')[1]}"] and "differs from the manifest" in out[0]


def test_verify_catches_missing_extra_and_edited_files(damaged, capsys):
    missing = sorted(damaged.glob("train/motion-15/images/*/*.png"))[0]
    missing.unlink()
    (damaged / "val" / "defocus-7" / "images" / "stray.png").write_bytes(b"x")
    ann = damaged / "val" / "occlusion-20" / "annotations.json"
    coco = json.loads(ann.read_text())
    coco["annotations"].pop()
    ann.write_text(json.dumps(coco))
    assert main(["verify", str(damaged)]) == 1
    out = capsys.readouterr().out
    assert f"{missing.relative_to(damaged).as_posix()}: missing" in out
    assert "val/defocus-7/images/stray.png: on disk but not in the manifest" in out
    assert "val/occlusion-20/annotations.json: sha256 differs" in out
    assert "val/occlusion-20/annotations.json: 2 images / 1 annotations, manifest says 2 / 2" in out


def test_verify_on_a_folder_without_manifest(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 1
    assert "not a keypoint-corrupt materialize output" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nope")]) == 2


def test_preview_bundled_sample(tmp_path, bundled, capsys):
    out = tmp_path / "sheet.png"
    assert main(["preview", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "bundled sample" in captured.err and f"wrote {out}" in captured.out
    ds = STB(bundled, "val")
    sample = ds[0]
    want = contact_sheet(
        load_image(sample), sample.keypoints, sample.visibility, sample_id=sample.id, schema=ds.schema
    )
    got = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(got, want)  # 12 tiles: clean + the eleven configurations, STB's bones
    assert got.shape == (3 * (240 + 22), 4 * 320, 3)


def test_preview_from_a_real_fixture_dataset_and_from_image_plus_keypoints(tmp_path, fixtures_dir):
    freihand = fixtures_dir / "hands" / "freihand"
    ann = freihand / "test_freihand.json"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    argv = ["preview", "--dataset", "coco", "--annotations", str(ann), "--index", "2", "--out", str(a), "-q"]
    assert main([*argv, "--seed", "3"]) == 0
    reader = CocoKeypoints(ann)
    sample = reader[2]
    assert reader.schema is not None and reader.schema.name == "hand21"
    want = contact_sheet(
        load_image(sample), sample.keypoints, sample.visibility, seed=3, sample_id=sample.id, schema="hand21"
    )
    np.testing.assert_array_equal(cv2.imread(str(a))[..., ::-1], want)

    image = sample.image_path  # the COCO file as --keypoints: its names give the schema too
    assert main(["preview", "--image", str(image), "--keypoints", str(ann), "--out", str(b), "-q"]) == 0
    want = contact_sheet(load_image(image), sample.keypoints, sample.visibility, schema="hand21")
    np.testing.assert_array_equal(cv2.imread(str(b))[..., ::-1], want)

    rows = tmp_path / "kps.json"
    rows.write_text(json.dumps(sample.keypoints.tolist()))
    c = tmp_path / "c.png"
    argv = ["preview", "--image", str(image), "--keypoints", str(rows), "--configs", "motion-30,occlusion-20"]
    assert main([*argv, "--columns", "3", "--out", str(c), "-q"]) == 0
    assert cv2.imread(str(c)).shape == (320 + 22, 3 * 320, 3)  # 224 px tiles scaled to 320
    # a list without names: no skeleton, unless --schema names it
    configs = ["--configs", "motion-30", "--tile-width", "64"]
    assert main([*argv[:5], *configs, "--out", str(c), "--overwrite", "-q"]) == 0
    want = contact_sheet(load_image(image), sample.keypoints, configs=["motion-30"], tile_width=64)
    np.testing.assert_array_equal(cv2.imread(str(c))[..., ::-1], want)
    assert main([*argv[:5], *configs, "--schema", "hand21", "--out", str(c), "-q"]) == 0
    want = contact_sheet(
        load_image(image), sample.keypoints, configs=["motion-30"], tile_width=64, schema="hand21"
    )
    np.testing.assert_array_equal(cv2.imread(str(c))[..., ::-1], want)


@pytest.fixture
def drawn_bones(monkeypatch):
    """The bones each tile of a sheet drew, as joint index pairs and as joint names."""
    drawn: list[tuple[str, list[tuple[int, int]], list[tuple[str, str]]]] = []
    real = preview_module.skeleton_segments

    def spy(schema, visible):
        segments = real(schema, visible)
        drawn.append((schema.name, segments, [(schema.joints[a], schema.joints[b]) for a, b in segments]))
        return segments

    monkeypatch.setattr(preview_module, "skeleton_segments", spy)
    return drawn


def test_preview_draws_the_datasets_skeleton_by_joint_name(tmp_path, fixtures_dir, drawn_bones, capsys):
    # FreiHAND lists each finger base to tip: the wrist (0) joins the index MCP (5), not its tip (8)
    ann = fixtures_dir / "hands" / "freihand" / "test_freihand.json"
    argv = ["preview", "--dataset", "coco", "--annotations", str(ann), "--configs", "defocus-7"]
    assert main([*argv, "--out", str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.rstrip().endswith(", schema hand21")
    assert len(drawn_bones) == 2  # the clean tile and defocus-7
    for name, segments, bones in drawn_bones:
        assert name == "hand21"
        assert (0, 5) in segments and (0, 8) not in segments
        assert ("wrist", "index_finger_mcp") in bones and ("wrist", "index_finger_tip") not in bones
        assert len(segments) == 20  # every joint of the sample is visible

    # --schema overrides the dataset's: read as RHD (tip to base), the wrist joins point 8
    drawn_bones.clear()
    assert main([*argv, "--schema", "rhd", "--out", str(tmp_path / "b.png"), "-q"]) == 0
    assert {name for name, _, _ in drawn_bones} == {"rhd"}
    assert all((0, 8) in segments and (0, 5) not in segments for _, segments, _ in drawn_bones)


def test_preview_checks_schema_before_any_work(tmp_path, capsys, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the source was read before --schema was checked")

    monkeypatch.setattr("keypoint_corrupt.cli.preview._source", forbidden)
    out = tmp_path / "s.png"
    assert main(["preview", "--schema", "nosuch", "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keypoint-corrupt preview: error: --schema: ")
    assert "unknown keypoint schema 'nosuch'" in lines[0] and "hand21" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--index", "99"], "--index 99 is out of range: the dataset has 8 samples"),
        (["--image", "x.png"], "--image and --keypoints go together"),
        (["--configs", "blur"], "unknown configuration(s) blur"),
        (["--dataset", "stb"], "--dataset stb needs --root"),
        (["--schema", "coco17"], "--schema 'coco17' has 17 joints but B1Counting/BB_left_0 has 21 keypoints"),
    ],
)
def test_preview_errors(tmp_path, capsys, argv, message):
    assert main(["preview", "--out", str(tmp_path / "s.png"), "-q", *argv]) == 2
    assert message in capsys.readouterr().err


def test_preview_reports_an_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 50)
    kps = tmp_path / "k.json"
    kps.write_text("[[1, 2], [3, 4]]")
    argv = ["preview", "--image", str(bad), "--keypoints", str(kps), "--out", str(tmp_path / "s.png")]
    assert main(argv) == 2
    assert str(bad) in capsys.readouterr().err


def test_every_command_has_help_with_examples(capsys):
    parser = build_parser()
    commands = list(parser._subparsers._group_actions[0].choices)
    assert len(commands) >= len(COMMAND_MODULES)
    assert {"list", "materialize", "verify", "preview"} <= set(commands)
    for command in commands:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert "example" in capsys.readouterr().out.lower(), command
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"keypoint-corrupt {__version__}"


def test_list_shows_the_configurations_and_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CONFIGS) and "kernel_size=45" in out
