"""PoseNet: hand3d's architecture, the depthwise variant and their parameter counts."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from keypoint_corrupt.models import PoseNet, PoseNetTrunk, SeparableConv2d, count_parameters  # noqa: E402
from keypoint_corrupt.models.posenet import (  # noqa: E402
    NUM_ENCODER_LAYERS,
    NUM_TRUNK_LAYERS,
    posenet_layer_specs,
    preprocess_images,
)

DENSE_TOTAL = 17_518_847
FIRST_17 = 9_187_541
DENSE_REFINEMENT = 8_331_306
DEPTHWISE_REFINEMENT = 274_228  # depth multiplier 1


def _split_count(net: PoseNet) -> tuple[int, int]:
    first = sum(count_parameters(net.layers[s.name]) for s in net.specs[:NUM_TRUNK_LAYERS])
    rest = sum(count_parameters(net.layers[s.name]) for s in net.specs[NUM_TRUNK_LAYERS:])
    return first, rest


def test_dense_parameter_count_matches_the_reference():
    net = PoseNet("dense")
    assert count_parameters(net) == DENSE_TOTAL
    assert _split_count(net) == (FIRST_17, DENSE_REFINEMENT)


def test_depthwise_parameter_counts():
    net = PoseNet("depthwise")
    assert _split_count(net) == (FIRST_17, DEPTHWISE_REFINEMENT)
    assert count_parameters(net) == FIRST_17 + DEPTHWISE_REFINEMENT == 9_461_769
    # Each extra unit of depth multiplier adds C*k*k depthwise + C*128|21 pointwise weights per layer.
    assert count_parameters(PoseNet("depthwise", depth_multiplier=2)) == 9_734_419


def test_layer_table_is_hand3ds():
    specs = posenet_layer_specs()
    names = [s.name for s in specs]
    assert names[:NUM_TRUNK_LAYERS] == [
        "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
        "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv4_5", "conv4_6", "conv4_7", "conv5_1", "conv5_2",
    ]  # fmt: skip
    assert names[NUM_TRUNK_LAYERS:] == [f"conv{b}_{i}" for b in (6, 7) for i in range(1, 8)]
    assert [s.name for s in specs if s.pool_after] == ["conv1_2", "conv2_2", "conv3_4"]
    assert [s.name for s in specs if not s.activation] == ["conv5_2", "conv6_7", "conv7_7"]
    assert specs[NUM_ENCODER_LAYERS - 1].out_channels == 128
    assert specs[NUM_TRUNK_LAYERS].in_channels == 149 and specs[NUM_TRUNK_LAYERS].kernel_size == 7
    assert [s.kernel_size for s in specs[NUM_TRUNK_LAYERS : NUM_TRUNK_LAYERS + 7]] == [7, 7, 7, 7, 7, 1, 1]


def test_depthwise_swaps_every_layer_after_the_first_17():
    net = PoseNet("depthwise", depth_multiplier=3)
    modules = [m for _, m in net.named_hand3d_layers()]
    assert all(isinstance(m, torch.nn.Conv2d) for m in modules[:NUM_TRUNK_LAYERS])
    assert all(isinstance(m, SeparableConv2d) for m in modules[NUM_TRUNK_LAYERS:])
    first = modules[NUM_TRUNK_LAYERS]
    assert first.depthwise.groups == 149 and first.depthwise.out_channels == 149 * 3
    assert first.depthwise.kernel_size == (7, 7) and first.depthwise.bias is None
    assert first.pointwise.kernel_size == (1, 1) and first.pointwise.out_channels == 128


@pytest.mark.parametrize("variant", ["dense", "depthwise"])
def test_256_input_gives_32x32_maps_for_every_stage(variant):
    net = PoseNet(variant).eval()
    with torch.no_grad():
        maps = net(torch.zeros(1, 3, 256, 256))
    assert [tuple(m.shape) for m in maps] == [(1, 21, 32, 32)] * 3


def test_stages_and_keypoints_are_configurable():
    net = PoseNet(num_keypoints=5, refinement_stages=1).eval()
    with torch.no_grad():
        maps = net(torch.zeros(2, 3, 16, 24))
    assert [tuple(m.shape) for m in maps] == [(2, 5, 2, 3)] * 2


def test_activation_is_leaky_relu_001():
    net = PoseNet(refinement_stages=0).eval()
    seen = {}
    net.layers["conv1_2"].register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    out1 = {}
    net.layers["conv1_1"].register_forward_hook(lambda mod, args, out: out1.setdefault("y", out))
    with torch.no_grad():
        net(torch.randn(1, 3, 16, 16))
    y = out1["y"]
    assert torch.allclose(seen["x"], torch.where(y > 0, y, 0.01 * y))


def test_trunk_matches_posenet_encoding():
    net, trunk = PoseNet(), PoseNetTrunk()
    trunk.load_state_dict({k: v for k, v in net.state_dict().items() if k.split(".")[1] in trunk.layers})
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(trunk(x), net.encode(x))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="variant"):
        PoseNet("mobile")
    with pytest.raises(ValueError, match="depth_multiplier"):
        PoseNet("depthwise", depth_multiplier=0)
    with pytest.raises(ValueError, match="multiples of 8"):
        PoseNet()(torch.zeros(1, 3, 20, 20))


def test_preprocess_images_scales_like_hand3d():
    import numpy as np

    images = np.stack([np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)])
    x = preprocess_images(images)
    assert x.shape == (2, 3, 8, 8)
    assert x[0].eq(-0.5).all() and x[1].eq(0.5).all()
    with pytest.raises(TypeError):
        preprocess_images(images.astype(np.float32))
