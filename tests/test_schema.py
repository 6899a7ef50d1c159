"""Keypoint schemas: presets, matching by name, remapping between joint orders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keypoint_corrupt.schema import (
    KeypointSchema,
    available_schemas,
    canonical_joint_names,
    get_schema,
    match_schema,
    register_schema,
    remap,
    schema_from_names,
)

# hand21 index -> RHD index: wrist, then each finger base to tip where RHD runs tip to base.
RHD_TO_HAND21 = [0, 4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13, 20, 19, 18, 17]


def test_presets_are_registered_and_consistent():
    for name in ("rhd", "hand21", "stb", "stb_rhd", "coco17", "mpii16", "ap10k"):
        schema = get_schema(name)
        assert schema.name == name and name in available_schemas()
        assert len(set(schema.joints)) == len(schema)
        assert all(0 <= a < len(schema) and 0 <= b < len(schema) for a, b in schema.edge_indices())
    assert [len(get_schema(n)) for n in ("coco17", "mpii16", "ap10k")] == [17, 16, 17]
    assert get_schema("coco17").sigmas[:3] == (0.026, 0.025, 0.025)
    assert get_schema("coco17").sigmas[-1] == 0.089 and len(get_schema("ap10k").sigmas) == 17
    assert ("left_eye", "right_eye") in get_schema("coco17").flip_pairs
    assert ("left_front_paw", "right_front_paw") in get_schema("ap10k").flip_pairs


def test_hand_presets_follow_their_published_orders():
    rhd, hand21, stb = get_schema("rhd"), get_schema("hand21"), get_schema("stb")
    assert rhd.joints[:5] == ("wrist", "thumb_tip", "thumb_ip", "thumb_mcp", "thumb_cmc")
    assert rhd.index("middle_finger_mcp") == 12  # hand3d's crop centre
    assert hand21.joints[:5] == ("wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip")
    assert hand21.joints[5:9] == tuple(f"index_finger_{p}" for p in ("mcp", "pip", "dip", "tip"))
    assert stb.joints[:5] == ("palm", "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")
    for schema in (rhd, hand21, stb):
        root = schema.joints[0]
        edges = set(schema.edges)
        for finger in ("thumb", "index_finger", "middle_finger", "ring_finger", "pinky"):
            base = "thumb_cmc" if finger == "thumb" else f"{finger}_mcp"
            assert (root, base) in edges  # the root joins each finger's base, never its tip
            assert (root, f"{finger}_tip") not in edges
        assert len(edges) == 20
    assert get_schema("stb_rhd").renamed({"palm": "wrist"}).joints == rhd.joints


def test_rhd_hand21_round_trip_is_exact():
    x = np.random.default_rng(0).normal(size=(3, 21, 2))
    for a, b in (("rhd", "hand21"), ("hand21", "rhd"), ("stb", "stb_rhd")):
        assert np.array_equal(remap(remap(x, a, b), b, a), x)
    vis = np.arange(21) % 3 == 0
    assert np.array_equal(remap(vis, "rhd", "hand21", axis=-1), vis[RHD_TO_HAND21])


def test_rhd_fixture_points_remap_to_the_known_permutation(fixtures_dir):
    raw = json.loads((fixtures_dir / "hands" / "rhd" / "test_rhd.json").read_text())
    for ann in raw["annotations"]:
        pts = np.asarray(ann["keypoints"], float).reshape(21, 3)
        assert np.array_equal(remap(pts, "rhd", "hand21"), pts[RHD_TO_HAND21])


def test_stb_order_matches_hand3ds_reordering():
    from keypoint_corrupt.datasets.stb import STB_TO_RHD

    stb_points = np.arange(21.0)[:, None]
    assert np.array_equal(remap(stb_points, "stb", "stb_rhd")[:, 0], np.asarray(STB_TO_RHD, float))


def test_a_missing_joint_is_named():
    with pytest.raises(ValueError, match=r"has no joint.*wrist"):
        remap(np.zeros((21, 2)), "stb_rhd", "hand21")
    with pytest.raises(ValueError, match=r"no joint\(s\) left_ear, right_ear, left_wrist, right_wrist"):
        remap(np.zeros((17, 2)), "ap10k", "coco17")
    with pytest.raises(ValueError, match="expected 21 joints"):
        remap(np.zeros((17, 2)), "rhd", "hand21")
    with pytest.raises(ValueError, match=r"no joint 'elbow'.*'rhd'|'rhd'.*no joint 'elbow'"):
        get_schema("rhd").index("elbow")


def test_unknown_schema_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"known: .*hand21.*coco17"):
        get_schema("hand42")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("hands/freihand/test_freihand.json", "hand21"),
        ("hands/onehand10k/test_onehand10k.json", "hand21"),
        ("hands/panoptic/test_panoptic.json", "hand21"),
        ("body/coco/test_coco.json", "coco17"),
        ("body/coco/test_coco_wholebody.json", "coco17"),
        ("animal/ap10k/test_ap10k.json", "ap10k"),
    ],
)
def test_fixture_categories_match_their_preset(fixtures_dir, path, expected):
    raw = json.loads((fixtures_dir / path).read_text())
    for cat in raw["categories"]:
        schema = match_schema(cat["keypoints"])
        assert schema is not None and schema.name == expected
        # the file's own skeleton is the preset's
        assert sorted(map(tuple, cat["skeleton"])) == sorted((a + 1, b + 1) for a, b in schema.edge_indices())


def test_matching_normalises_case_space_and_synonyms():
    mmpose_ap10k = ["L_Eye", "R_Eye", "Nose", "Neck", "Root of tail", "L_Shoulder", "L_Elbow", "L_F_Paw"]
    mmpose_ap10k += ["R_Shoulder", "R_Elbow", "R_F_Paw", "L_Hip", "L_Knee", "L_B_Paw", "R_Hip", "R_Knee"]
    mmpose_ap10k += ["R_B_Paw"]
    assert match_schema(mmpose_ap10k) is get_schema("ap10k")
    mediapipe = [n.upper() for n in get_schema("hand21").joints]
    assert match_schema(mediapipe) is get_schema("hand21")
    assert match_schema(list(get_schema("coco17").joints)[::-1]) is None  # order matters
    assert canonical_joint_names(["Little Finger-Tip", "forefinger_2"]) == ("pinky_tip", "index_finger_pip")


def test_stb_reader_names_match_the_stb_presets():
    from keypoint_corrupt.datasets import stb_joint_names

    assert match_schema(stb_joint_names("stb")) is get_schema("stb")
    assert match_schema(stb_joint_names("rhd")) is get_schema("stb_rhd")
    assert match_schema(stb_joint_names("rhd", "wrist")) is get_schema("rhd")


def test_user_defined_schema_in_a_few_lines():
    fly = KeypointSchema(
        "test_fly",
        ("head", "thorax", "abdomen", "left_wing", "right_wing"),
        edges=(("head", "thorax"), ("thorax", "abdomen"), ("thorax", "left_wing"), ("thorax", "right_wing")),
        flip_pairs=(("left_wing", "right_wing"),),
        crop_anchor=("thorax",),
    )
    assert register_schema(fly) is fly and get_schema("test_fly") is fly
    assert register_schema(fly) is fly  # an equal schema again is fine
    assert match_schema(["Head", "Thorax", "Abdomen", "Left Wing", "Right Wing"]) is fly
    assert fly.flip_indices() == [(3, 4)] and fly.anchor_indices() == [1]
    with pytest.raises(ValueError, match="already registered"):
        register_schema(KeypointSchema("test_fly", ("head",)))


def test_invalid_schemas_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        KeypointSchema("x", ("a", "a"))
    with pytest.raises(ValueError, match="unknown joints"):
        KeypointSchema("x", ("a", "b"), edges=(("a", "c"),))
    with pytest.raises(ValueError, match="2 sigmas for 3 joints"):
        KeypointSchema("x", ("a", "b", "c"), sigmas=(0.1, 0.2))


def test_generic_schema_from_a_file():
    schema = schema_from_names(["a", "b", "a"], [[1, 2], [2, 9]], name="thing")
    assert schema.joints == ("a_0", "b", "a_2") and schema.edges == (("a_0", "b"),)
    assert schema_from_names(None, joints=2).joints == ("joint_0", "joint_1")
