"""The registry of named configurations."""

from __future__ import annotations

import pytest

import keypoint_corrupt as kc
from keypoint_corrupt.cli.data import parse_configs
from keypoint_corrupt.cli.main import CliError
from keypoint_corrupt.registry import summarize_names


def test_configs_are_the_eleven_reference_names_in_table_order():
    assert kc.CONFIGS == (
        "defocus-7", "defocus-13", "defocus-21",
        "motion-15", "motion-30", "motion-45",
        "occlusion-10", "occlusion-20", "occlusion-30",
        "noise-gaussian", "noise-saltpepper",
    )  # fmt: skip


@pytest.mark.parametrize(
    "name, cls, params",
    [
        ("defocus-7", kc.DefocusBlur, {"kernel_size": 7}),
        ("defocus-13", kc.DefocusBlur, {"kernel_size": 13}),
        ("defocus-21", kc.DefocusBlur, {"kernel_size": 21}),
        ("motion-15", kc.HorizontalMotionBlur, {"kernel_size": 15}),
        ("motion-30", kc.HorizontalMotionBlur, {"kernel_size": 30}),
        ("motion-45", kc.HorizontalMotionBlur, {"kernel_size": 45}),
        ("occlusion-10", kc.KeypointOcclusion, {"area": 0.10, "margin": 0.15, "fill": 0.0}),
        ("occlusion-20", kc.KeypointOcclusion, {"area": 0.20, "margin": 0.15, "fill": 0.0}),
        ("occlusion-30", kc.KeypointOcclusion, {"area": 0.30, "margin": 0.15, "fill": 0.0}),
        ("noise-gaussian", kc.GaussianNoise, {"var": 0.01, "mean": 0.0}),
        (
            "noise-saltpepper",
            kc.SaltPepperNoise,
            {"amount": 0.05, "salt_vs_pepper": 0.5, "per_channel": True},
        ),
    ],
)
def test_reference_parameters(name, cls, params):
    t = kc.make_corruption(name)
    assert type(t) is cls and t.p == 1.0
    for k, v in params.items():
        assert getattr(t, k) == v


def test_occlusion_configs_share_one_random_stream_and_others_do_not():
    streams = {n: kc.get_config(n).rng_stream for n in kc.CONFIGS}
    assert streams["occlusion-10"] == streams["occlusion-20"] == streams["occlusion-30"]
    others = [s for n, s in streams.items() if not n.startswith("occlusion")]
    assert len(set(others)) == len(others)


def test_overrides_and_unknown_names():
    assert kc.make_corruption("motion-45", p=0.25).p == 0.25
    with pytest.raises(
        ValueError, match=r"unknown corruption configuration 'blur-9'.*defocus-7.*noise-saltpepper"
    ):
        kc.make_corruption("blur-9")
    with pytest.raises(TypeError, match="sigma"):
        kc.make_corruption("defocus-7", sigma=3)


def test_users_register_their_own_configurations():
    cfg = kc.register_config("motion-60", kc.HorizontalMotionBlur, {"kernel_size": 60}, description="long")
    try:
        assert cfg.family == "motion" and cfg.rng_stream == "motion-60"
        assert "motion-60" in kc.available_configs() and "motion-60" not in kc.CONFIGS
        assert kc.make_corruption("motion-60").kernel_size == 60
        with pytest.raises(ValueError, match="already registered"):
            kc.register_config("motion-60", kc.HorizontalMotionBlur, {"kernel_size": 61})
        kc.register_config("motion-60", kc.HorizontalMotionBlur, {"kernel_size": 61}, replace=True)
        assert kc.make_corruption("motion-60").kernel_size == 61
    finally:
        kc.unregister_config("motion-60")
    assert "motion-60" not in kc.available_configs()


def test_registration_is_validated():
    with pytest.raises(ValueError, match="reference configuration"):
        kc.register_config("defocus-7", kc.DefocusBlur, {"kernel_size": 9})
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        kc.register_config("defocus-8", kc.DefocusBlur, {"kernel_size": 8})
    with pytest.raises(ValueError, match="name must be lower-case"):
        kc.register_config("Bad Name", kc.DefocusBlur, {"kernel_size": 9})
    with pytest.raises(TypeError, match="CorruptionTransform subclass"):
        kc.register_config("x", dict, {})
    with pytest.raises(ValueError, match="cannot be removed"):
        kc.unregister_config("motion-15")


def test_apply_corruption_reuses_one_transform_but_honours_overrides_and_replacement():
    import numpy as np

    img = np.full((40, 40, 3), 100, np.uint8)
    kps = [[5, 5], [30, 35]]
    a, _ = kc.apply_corruption("occlusion-30", img, kps, rng=3)
    b, _ = kc.apply_corruption("occlusion-30", img, kps, rng=3)
    np.testing.assert_array_equal(a, b)
    grey, _ = kc.apply_corruption("occlusion-30", img, kps, rng=3, fill=50)
    assert (grey == 50).any() and not (grey == 0).any()
    kc.register_config("blur-x", kc.DefocusBlur, {"kernel_size": 3})
    try:
        small, _ = kc.apply_corruption("blur-x", img, kps)
        np.testing.assert_array_equal(small, kc.functional.defocus_blur(img, 3))
        kc.register_config("blur-x", kc.DefocusBlur, {"kernel_size": 31}, replace=True)
        assert kc.get_config("blur-x").params["kernel_size"] == 31
        np.testing.assert_array_equal(
            kc.apply_corruption("blur-x", img, kps)[0], kc.functional.defocus_blur(img, 31)
        )
    finally:
        kc.unregister_config("blur-x")


def test_configs_stay_the_eleven_and_the_suites_rows_are_extra_builtins():
    names = kc.available_configs()
    assert names[:11] == kc.CONFIGS and len(kc.CONFIGS) == 11
    assert len([n for n in names if n.startswith("imagenet-c.")]) == 95
    assert len([n for n in names if n.startswith("posebench.")]) == 50
    assert parse_configs("all") == kc.CONFIGS
    with pytest.raises(ValueError, match="built-in configuration and cannot be replaced"):
        kc.register_config("imagenet-c.fog-1", kc.ImageNetC, {"corruption": "fog"})
    with pytest.raises(ValueError, match="built-in configuration and cannot be removed"):
        kc.unregister_config("posebench.mask-5")


def test_unknown_names_are_listed_by_suite_not_one_by_one():
    with pytest.raises(ValueError) as err:
        kc.get_config("fog-3")
    message = str(err.value)
    assert (
        "noise-saltpepper" in message
        and "imagenet-c.* (95 names, e.g. imagenet-c.gaussian_noise-1)" in message
    )
    assert "posebench.* (50 names" in message and "imagenet-c.fog-3" not in message
    with pytest.raises(CliError) as cli_err:
        parse_configs("defocus-7,fog-3")
    assert "unknown configuration(s) fog-3" in str(cli_err.value) and len(str(cli_err.value)) < 600


def test_summarize_names_groups_dotted_names_by_prefix():
    names = ("motion-15", "a.x-1", "b.y-1", "a.x-2", "my-own")
    assert summarize_names(names) == "motion-15, my-own, a.* (2 names, e.g. a.x-1), b.* (1 name, e.g. b.y-1)"
    assert summarize_names(()) == ""
