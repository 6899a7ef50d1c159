"""NerPE: decoder, local ensemble, query sampling, targets, loss and the two decodings."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keypoint_corrupt.models import (  # noqa: E402
    NerPE,
    PoseNetTrunk,
    continuous_targets,
    count_parameters,
    decode_field,
    nerpe_loss,
    sample_queries,
)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return NerPE().eval()


def test_decoder_has_the_released_sizes(model):
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (258, 256), (256, 256), (256, 128), (128, 128), (128, 128), (128, 21),
    ]  # fmt: skip
    assert isinstance(model.encoder, PoseNetTrunk)
    conv = model.project[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (128, 256, (1, 1))
    assert count_parameters(model) == 9_110_720 + 33_024 + 200_725


def test_256_input_shapes(model):
    images = torch.zeros(1, 3, 256, 256)
    with torch.no_grad():
        feats = model.features(images)
        assert feats.shape == (1, 256, 32, 32)
        coords = torch.tensor([[[0.0, 0.0], [127.3, 80.9], [255.0, 255.0]]])
        assert model.query_features(feats, coords, 256).shape == (1, 3, 21)
    assert model.decode(images, 64, "progressive").shape == (1, 21, 2)


def test_local_ensemble_is_continuous_and_exact_at_cell_centres(model):
    torch.manual_seed(1)
    feats = 3 * torch.randn(2, 256, 4, 4)
    # Points a hair either side of the cell borders x = 7.5, 15.5, 23.5 (32 px image, 8 px cells).
    borders = torch.tensor([7.5, 15.5, 23.5])
    xs = torch.stack([borders - 1e-3, borders + 1e-3], -1).flatten()
    pts = torch.stack([xs, torch.full_like(xs, 13.3)], -1).expand(2, -1, -1)
    nearest = NerPE(local_ensemble=False).eval()
    nearest.load_state_dict(model.state_dict())
    with torch.no_grad():
        smooth = model.query_features(feats, pts, 32).view(2, 3, 2, 21)
        jumpy = nearest.query_features(feats, pts, 32).view(2, 3, 2, 21)
        assert (smooth[:, :, 0] - smooth[:, :, 1]).abs().max() < 1e-3
        assert (jumpy[:, :, 0] - jumpy[:, :, 1]).abs().max() > 1e-2  # one cell, then the next

        # At a cell centre only that cell votes, with relative coordinate (0, 0).
        centre = torch.tensor([[[8 * 2 + 3.5, 8 * 1 + 3.5]]]).expand(2, -1, -1)
        direct = model.decoder(torch.cat([feats[:, :, 1, 2], torch.zeros(2, 2)], -1))
        torch.testing.assert_close(
            model.query_features(feats, centre, 32)[:, 0], direct, rtol=1e-4, atol=1e-5
        )


def test_queries_cover_every_subcell_once():
    g = torch.Generator().manual_seed(0)
    q = sample_queries(3, (4, 6), (32, 48), 4, generator=g)
    assert q.shape == (3, 4 * 6 * 16, 2)
    # Sub-cells are 2 x 2 px: every one holds exactly one query.
    cell = torch.floor((q + 0.5) / 2.0).long()
    ids = cell[..., 1] * 24 + cell[..., 0]
    for b in range(3):
        assert sorted(ids[b].tolist()) == list(range(16 * 24))
    again = sample_queries(3, (4, 6), (32, 48), 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(q, again)


def test_continuous_targets_and_loss():
    coords = torch.tensor([[[10.0, 10.0], [10.0 + 7.68, 10.0], [60.0, 10.0]]])
    kp = torch.tensor([[[10.0, 10.0], [0.0, 0.0]]])
    vis = torch.tensor([[1.0, 0.0]])
    t = continuous_targets(coords, kp, vis, 256)
    # sigma 0.06 normalised = 7.68 px on 256: one sigma away gives exp(-1/2).
    np.testing.assert_allclose(
        t[0, :, 0].numpy(), [1.0, np.exp(-0.5), np.exp(-((50 / 128) ** 2) / 0.0072)], rtol=1e-5
    )
    assert t[0, :, 1].abs().sum() == 0
    lap = continuous_targets(coords, kp, vis, 256, kind="laplace")
    assert float(lap[0, 1, 0]) == pytest.approx(np.exp(-0.06 / 0.09), rel=1e-5)

    pred = torch.zeros(1, 3, 2)
    pred[..., 1] = 100.0  # invisible joint: ignored
    loss = nerpe_loss(pred, t, vis)
    assert float(loss) == pytest.approx(0.5 * float((t[0, :, 0] ** 2).mean()), rel=1e-6)


def gaussian_field(peaks: torch.Tensor, sigma: float = 6.0):
    """A known field: per joint, a Gaussian peak plus a weaker, wider bump elsewhere."""
    decoy = peaks.flip(1)

    def field(q: torch.Tensor) -> torch.Tensor:
        d = (q[:, :, None, :] - peaks[:, None]).square().sum(-1)
        d2 = (q[:, :, None, :] - decoy[:, None]).square().sum(-1)
        return torch.exp(-d / (2 * sigma**2)) + 0.5 * torch.exp(-d2 / (2 * (2 * sigma) ** 2))

    return field


def test_progressive_decode_lands_on_the_standard_answer_for_a_fraction_of_the_cost():
    rng = np.random.default_rng(0)
    peaks = torch.from_numpy(rng.uniform(10, 246, (2, 21, 2))).float()
    field = gaussian_field(peaks)
    std = decode_field(field, 256, 256, "standard", batch_size=2)
    prog = decode_field(field, 256, 256, "progressive", batch_size=2, coarse=32)
    assert (std.coords - peaks).abs().max() <= 1.0  # the decoys' tails pull the maxima a little
    step = 256 / 256
    assert (prog.coords - std.coords).abs().max() <= step  # within one fine-grid step
    assert std.evaluations == 256 * 256
    assert prog.evaluations == 32 * 32 + 21 * 3 * 25
    assert prog.evaluations < 0.05 * std.evaluations

    # At 4x the resolution the gap widens (3 joints here to keep the dense reference cheap).
    small = gaussian_field(peaks[:1, :3])
    fine = decode_field(small, 256, 1024, "progressive", batch_size=1, coarse=32)
    fine_std = decode_field(small, 256, 1024, "standard", batch_size=1, chunk=1 << 17)
    assert (fine.coords - fine_std.coords).abs().max() <= 256 / 1024
    assert fine.evaluations == 32 * 32 + 3 * 5 * 25 < 0.002 * fine_std.evaluations


def test_model_decode_on_its_own_field(model):
    images = torch.zeros(1, 3, 64, 64)
    res = model.decode(images, 64, "standard", return_result=True)
    assert res.coords.shape == (1, 21, 2) and res.evaluations == 64 * 64
    assert ((res.coords >= 0) & (res.coords <= 63)).all()
    prog = model.decode(images, 64, "progressive", return_result=True)
    assert prog.evaluations == 8 * 8 + 21 * 3 * 25
    # The progressive answer is never better than the dense maximum it approximates.
    assert (prog.scores <= res.scores + 1e-5).all()


def test_decode_builds_no_autograd_graph(model):
    # decode is inference only: with grad mode on, no result may carry a graph.
    images = torch.zeros(1, 3, 64, 64)
    with torch.enable_grad():
        coords = model.decode(images, 16)
        res = model.decode(images, 16, return_result=True)
    assert not coords.requires_grad and not res.coords.requires_grad and not res.scores.requires_grad


def test_custom_encoder_and_validation():
    class Tiny(torch.nn.Module):
        out_channels = 16

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 4, stride=4)

        def forward(self, x):
            return self.conv(x)

    net = NerPE(5, Tiny(), feature_channels=16, hidden=(32, 32))
    assert isinstance(net.project, torch.nn.Identity)
    assert net.query(torch.zeros(2, 3, 16, 16), torch.rand(2, 7, 2) * 15).shape == (2, 7, 5)
    assert net.config()["encoder"] == "custom"
    with pytest.raises(ValueError, match="out_channels"):
        NerPE(encoder=torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1)))
    with pytest.raises(ValueError, match="mode"):
        decode_field(lambda q: q, 8, 8, "fast")
