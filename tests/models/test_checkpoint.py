"""Checkpoints: state dict plus header, round-tripped for every model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import keypoint_corrupt  # noqa: E402
from keypoint_corrupt.models import MODEL_NAMES, NerPE, build_model, load, read_checkpoint, save  # noqa: E402


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_load_round_trip(tmp_path, name):
    torch.manual_seed(0)
    kwargs = {"depth_multiplier": 2} if name == "posenet-depthwise" else {}
    model = build_model(name, num_keypoints=5, **kwargs).eval()
    path = save(model, tmp_path / "sub" / "m.pt", train_set="S-train*", seed=7, epoch=3, data="gen/stb")
    assert path.is_file() and not path.with_name("m.pt.tmp").exists()

    loaded = load(path)
    header = loaded.checkpoint_header
    assert header["model"] == name
    assert (
        header["variant"] == {"posenet-dense": "dense", "posenet-depthwise": "depthwise", "nerpe": None}[name]
    )
    assert header["train_set"] == "S-train*" and header["seed"] == 7
    assert header["package_version"] == keypoint_corrupt.__version__
    assert header["epoch"] == 3 and header["data"] == "gen/stb"
    assert header["config"] == model.config() and header["config"]["num_keypoints"] == 5

    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        if name == "nerpe":
            q = torch.rand(1, 9, 2) * 31
            torch.testing.assert_close(loaded.query(x, q), model.query(x, q), rtol=0, atol=0)
        else:
            for a, b in zip(loaded(x), model(x), strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_state_travels_with_the_checkpoint(tmp_path):
    model = build_model("nerpe", hidden=(8,))
    opt = torch.optim.Adam(model.parameters())
    model.decoder(torch.randn(2, 258)).sum().backward()
    opt.step()
    save(model, tmp_path / "c.pt", training_state={"optimizer": opt.state_dict(), "epoch": 4})
    payload = read_checkpoint(tmp_path / "c.pt")
    assert payload["training_state"]["epoch"] == 4
    opt2 = torch.optim.Adam(build_model("nerpe", hidden=(8,)).parameters())
    opt2.load_state_dict(payload["training_state"]["optimizer"])


def test_header_values_must_be_plain(tmp_path):
    with pytest.raises(TypeError, match="plain value"):
        save(build_model("nerpe", hidden=(8,)), tmp_path / "x.pt", note=object())


def test_foreign_files_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a keypoint_corrupt checkpoint"):
        load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="unknown model"):
        build_model("hrnet")


def test_custom_encoder_needs_to_be_supplied(tmp_path):
    class Enc(torch.nn.Module):
        out_channels = 4

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 8, stride=8)

        def forward(self, x):
            return self.conv(x)

    model = NerPE(3, Enc(), feature_channels=4, hidden=(8,))
    save(model, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="custom encoder"):
        load(tmp_path / "c.pt")
    again = load(tmp_path / "c.pt", encoder=Enc())
    x, q = torch.randn(1, 3, 16, 16), torch.rand(1, 4, 2) * 15
    with torch.no_grad():
        torch.testing.assert_close(again.query(x, q), model.query(x, q))
