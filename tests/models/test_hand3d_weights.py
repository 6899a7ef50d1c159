"""hand3d's pickled weights load into PoseNet and reproduce an independent NumPy forward pass."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy import signal

torch = pytest.importorskip("torch")

from keypoint_corrupt.models import (  # noqa: E402
    NerPE,
    PoseNet,
    export_hand3d_weights,
    load_hand3d_weights,
)
from keypoint_corrupt.models.posenet import posenet_layer_specs  # noqa: E402


def hand3d_pickle_dict(seed: int = 0, num_keypoints: int = 21) -> dict[str, np.ndarray]:
    """Random weights named and shaped as hand3d stores them (HWIO filters)."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in posenet_layer_specs(num_keypoints):
        fan_in = spec.kernel_size**2 * spec.in_channels
        shape = (spec.kernel_size, spec.kernel_size, spec.in_channels, spec.out_channels)
        out[f"PoseNet2D/{spec.name}/weights"] = rng.normal(0, np.sqrt(2 / fan_in), shape).astype(np.float32)
        out[f"PoseNet2D/{spec.name}/biases"] = rng.normal(0, 0.05, spec.out_channels).astype(np.float32)
    return out


def conv_same_numpy(x: np.ndarray, w_hwio: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TensorFlow conv2d, stride 1, 'SAME', on an H x W x C array (im2col with NumPy)."""
    k = w_hwio.shape[0]
    pad = k // 2
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    patches = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(0, 1))  # H x W x C x k x k
    return np.einsum("hwcij,ijco->hwo", patches, w_hwio, optimize=True) + b


def leaky(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.01 * x)


def pool(x: np.ndarray) -> np.ndarray:
    h, w, c = x.shape
    return x[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2, c).max(axis=(1, 3))


def posenet_numpy(image_hwc: np.ndarray, weights: dict[str, np.ndarray]) -> list[np.ndarray]:
    """hand3d's PoseNet2D, written from its TensorFlow definition with NumPy only."""

    def layer(x, name, act=True):
        y = conv_same_numpy(x, weights[f"PoseNet2D/{name}/weights"], weights[f"PoseNet2D/{name}/biases"])
        return leaky(y) if act else y

    x = image_hwc
    for block, n in ((1, 2), (2, 2), (3, 4)):
        for i in range(1, n + 1):
            x = layer(x, f"conv{block}_{i}")
        x = pool(x)
    for i in range(1, 8):
        x = layer(x, f"conv4_{i}")
    encoding = x
    maps = [layer(layer(encoding, "conv5_1"), "conv5_2", act=False)]
    for block in (6, 7):
        x = np.concatenate([maps[-1], encoding], axis=-1)  # tf.concat([scoremap, encoding], 3)
        for i in range(1, 7):
            x = layer(x, f"conv{block}_{i}")
        maps.append(layer(x, f"conv{block}_7", act=False))
    return maps


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    weights = hand3d_pickle_dict()
    # A real hand3d file also holds other networks' variables; they must be ignored.
    weights["PosePrior/conv_pose_0_1/weights"] = np.zeros((3, 3, 21, 32), np.float32)
    path = tmp_path_factory.mktemp("hand3d") / "posenet-rhd-stb.pickle"
    with path.open("wb") as fh:
        pickle.dump(weights, fh, protocol=2)
    return path, weights


def test_first_layer_matches_scipy_correlation(weights_file):
    path, weights = weights_file
    net = PoseNet()
    load_hand3d_weights(net, path)
    rng = np.random.default_rng(1)
    image = rng.uniform(-0.5, 0.5, (16, 16, 3)).astype(np.float32)
    with torch.no_grad():
        ours = net.layers["conv1_1"](torch.from_numpy(image).permute(2, 0, 1)[None])[0].numpy()
    w, b = weights["PoseNet2D/conv1_1/weights"], weights["PoseNet2D/conv1_1/biases"]
    for o in range(w.shape[3]):
        ref = sum(signal.correlate(image[..., c], w[:, :, c, o], mode="same") for c in range(3)) + b[o]
        np.testing.assert_allclose(ours[o], ref, rtol=1e-4, atol=1e-4)


def test_whole_network_matches_numpy_reference(weights_file):
    path, weights = weights_file
    net = PoseNet().eval()
    loaded = load_hand3d_weights(net, path)
    assert len(loaded) == 31
    rng = np.random.default_rng(2)
    image = rng.uniform(-0.5, 0.5, (24, 16, 3)).astype(np.float32)  # non-square on purpose
    with torch.no_grad():
        ours = net(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous())
    ref = posenet_numpy(image.astype(np.float64), {k: v.astype(np.float64) for k, v in weights.items()})
    assert len(ours) == len(ref) == 3
    for stage, (o, r) in enumerate(zip(ours, ref, strict=True)):
        o = o[0].permute(1, 2, 0).numpy()
        scale = np.abs(r).max()
        np.testing.assert_allclose(o, r, rtol=0, atol=1e-4 * scale, err_msg=f"stage {stage}")


def test_export_round_trip_depthwise_and_reference_separable_layer():
    net = PoseNet("depthwise", depth_multiplier=2).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    exported = export_hand3d_weights(net)
    assert exported["PoseNet2D/conv6_1/depthwise_weights"].shape == (7, 7, 149, 2)
    assert exported["PoseNet2D/conv6_1/pointwise_weights"].shape == (1, 1, 298, 128)
    fresh = PoseNet("depthwise", depth_multiplier=2).eval()
    load_hand3d_weights(fresh, exported)
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(net(x), fresh(x), strict=True))

    # TensorFlow's depthwise layout: output channel c*K + m filters input channel c with dw[..., c, m].
    dw = exported["PoseNet2D/conv6_2/depthwise_weights"].astype(np.float64)
    pw = exported["PoseNet2D/conv6_2/pointwise_weights"].astype(np.float64)
    bias = exported["PoseNet2D/conv6_2/biases"].astype(np.float64)
    feat = np.random.default_rng(3).normal(size=(5, 6, 128))
    mid = np.stack(
        [signal.correlate(feat[..., c], dw[:, :, c, m], mode="same") for c in range(128) for m in range(2)],
        axis=-1,
    )
    ref = mid @ pw[0, 0] + bias
    with torch.no_grad():
        ours = fresh.layers["conv6_2"](torch.from_numpy(feat).float().permute(2, 0, 1)[None])
    np.testing.assert_allclose(ours[0].permute(1, 2, 0).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_strictness_and_partial_loads(weights_file):
    path, weights = weights_file
    depthwise = PoseNet("depthwise")
    with pytest.raises(KeyError, match="missing"):
        load_hand3d_weights(depthwise, path)
    loaded = load_hand3d_weights(depthwise, weights, strict=False)
    assert loaded == [s.name for s in depthwise.specs[:17]]
    np.testing.assert_array_equal(
        depthwise.layers["conv4_7"].weight.detach().numpy(),
        weights["PoseNet2D/conv4_7/weights"].transpose(3, 2, 0, 1),
    )

    nerpe = NerPE()
    assert len(load_hand3d_weights(nerpe, weights, strict=False)) == 15  # the shared trunk

    incomplete = {k: v for k, v in weights.items() if "conv7_7" not in k}
    with pytest.raises(KeyError, match="conv7_7"):
        load_hand3d_weights(PoseNet(), incomplete)

    before = PoseNet()
    snapshot = {k: v.clone() for k, v in before.state_dict().items()}
    wrong = dict(weights)
    wrong["PoseNet2D/conv7_7/biases"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="conv7_7"):
        load_hand3d_weights(before, wrong)
    assert all(torch.equal(snapshot[k], v) for k, v in before.state_dict().items()), "partial load on error"

    suffixed = {f"{k}:0": v for k, v in weights.items()}
    assert len(load_hand3d_weights(before, suffixed)) == 31
