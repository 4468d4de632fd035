"""Optical flow and the feature backbones (weights saved by the test, loaded through the config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from regnet.data.backbones import (BNInception, ResNet, SimpleBackbone, TorchBackbone, load_backbone,
                                   resnet_depth_from_state)
from regnet.data.flow import FlowComputer, resolve_flow_method, tvl1_available
from regnet.data.video import read_video, write_video
from regnet.errors import UserError

from tests.helpers.media import square_frames


@pytest.fixture(scope="module")
def moving_square(tmp_path_factory):
    """Decoded frames of a real mp4 with a square moving right by 2 px per frame."""
    path = write_video(tmp_path_factory.mktemp("flow") / "sq.mp4", square_frames(12), 21.5)
    return read_video(path, 21.5, 1.0, (64, 48)).frames


@pytest.mark.parametrize("method", ["farneback", "tvl1"])
def test_square_moving_right_has_positive_horizontal_flow(moving_square, method):
    if method == "tvl1" and not tvl1_available():
        pytest.skip("this OpenCV has no TV-L1")
    flow = FlowComputer(method, 20.0).frames(moving_square[:4]).astype(np.float32)
    assert flow.shape == (4, 48, 64, 2)
    square = flow[:3, 18:30, :, :]  # rows the square occupies
    moving = np.abs(square[..., 0]) > 0.5
    assert square[..., 0][moving].mean() > 1.0  # ~2 px per frame to the right
    assert abs(square[..., 1][moving].mean()) < 0.5
    # The simple backbone's flow grid (first 512 values: mean dx, dy per cell) agrees.
    feats = SimpleBackbone(20.0).flow(flow)
    assert feats.shape == (4, 1024) and feats[:, :512].reshape(4, 16, 16, 2)[..., 0].mean() > 0


def test_flow_is_bounded():
    a = np.zeros((2, 48, 64, 3), np.uint8)
    a[0, 10:30, 5:20] = 255
    a[1, 10:30, 40:55] = 255  # a jump far larger than the bound
    flow = FlowComputer("farneback", 3.0).frames(a)
    assert np.abs(flow).max() <= 3.0


def test_flow_method_names():
    assert resolve_flow_method("farneback") == "farneback"
    assert resolve_flow_method("auto") in ("tvl1", "farneback")
    with pytest.raises(UserError, match="data.flow_method: 'lk'"):
        resolve_flow_method("lk")


def test_simple_backbone_default_dims_match_paper_layout(tiny_config):
    b = load_backbone(tiny_config.data)
    assert (b.rgb_dim, b.flow_dim) == (1024, 1024)
    assert b.rgb_dim + b.flow_dim == tiny_config.model.visual_dim
    frames = square_frames(3)
    r = b.rgb(frames)
    assert r.shape == (3, 1024) and r.dtype == np.float32 and np.isfinite(r).all()
    assert not np.array_equal(r[0], r[1])


def _cnn_cfg(tiny_config, name, weights, flow_weights=None):
    d = tiny_config.data
    d.backbone = name
    d.backbone_weights = str(weights)
    d.backbone_flow_weights = str(flow_weights) if flow_weights else None
    d.backbone_size = 64  # small crops keep the test fast; 224 in the paper
    return d


def test_bninception_loads_user_weights(tmp_path, tiny_config):
    torch.manual_seed(0)
    rgb_net, flow_net = BNInception(3).eval(), BNInception(10).eval()
    # A TSN-style checkpoint: wrapped in state_dict, DataParallel/TSN prefixes, a classifier head.
    wrapped = {"state_dict": {f"module.base_model.{k}": v for k, v in rgb_net.state_dict().items()}}
    wrapped["state_dict"]["module.new_fc.weight"] = torch.zeros(5, 1024)
    torch.save(wrapped, tmp_path / "rgb.pth")
    torch.save(flow_net.state_dict(), tmp_path / "flow.pth")
    d = _cnn_cfg(tiny_config, "bninception", tmp_path / "rgb.pth", tmp_path / "flow.pth")
    b = load_backbone(d)
    assert (b.rgb_dim, b.flow_dim) == (1024, 1024)
    ref = TorchBackbone("bninception", rgb_net, flow_net, 64, d.flow_bound, torch.device("cpu"))
    frames = square_frames(3)
    flows = FlowComputer("farneback", 20.0).frames(frames)
    np.testing.assert_allclose(b.rgb(frames), ref.rgb(frames), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.flow(flows), ref.flow(flows), rtol=1e-4, atol=1e-5)
    # Another random init gives other features: the weights really came from the file.
    other = TorchBackbone("bninception", BNInception(3).eval(), flow_net, 64, 20.0, torch.device("cpu"))
    assert not np.allclose(other.rgb(frames), ref.rgb(frames), atol=1e-3)


def test_resnet_torchvision_layout_and_cross_modality(tmp_path, tiny_config):
    torch.manual_seed(1)
    net = ResNet(18).eval()
    state = net.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)  # torchvision head
    torch.save(state, tmp_path / "resnet18.pth")
    assert resnet_depth_from_state(state) == 18
    assert resnet_depth_from_state(ResNet(50).state_dict()) == 50
    b = load_backbone(_cnn_cfg(tiny_config, "resnet", tmp_path / "resnet18.pth"))
    assert (b.rgb_dim, b.flow_dim) == (512, 512)
    frames = square_frames(2)
    ref = TorchBackbone("resnet", net, ResNet(18, 10).eval(), 64, 20.0, torch.device("cpu"))
    np.testing.assert_allclose(b.rgb(frames), ref.rgb(frames), rtol=1e-4, atol=1e-5)
    # No flow weights: the flow stream starts from the RGB filters averaged over colour (TSN).
    w = b.flow_net.conv1.weight
    assert w.shape[1] == 10
    torch.testing.assert_close(w[:, 3], net.conv1.weight.mean(dim=1))


def test_bad_weights_have_one_line_messages(tmp_path, tiny_config):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=f"{junk}: not a readable torch weights file"):
        load_backbone(_cnn_cfg(tiny_config, "bninception", junk))
    torch.save(ResNet(18).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(UserError, match="r18.pth: weights do not fit BNInception"):
        load_backbone(_cnn_cfg(tiny_config, "bninception", tmp_path / "r18.pth"))
    with pytest.raises(UserError, match="missing.pth"):
        load_backbone(_cnn_cfg(tiny_config, "resnet", tmp_path / "missing.pth"))
    d = tiny_config.data
    d.backbone, d.backbone_weights = "bninception", None
    with pytest.raises(UserError, match="data.backbone_weights: the 'bninception' backbone needs"):
        load_backbone(d)
    d.backbone = "vgg"
    with pytest.raises(UserError, match="data.backbone: 'vgg'"):
        load_backbone(d)


def test_weights_content_enters_cache_hash(tmp_path, tiny_config):
    w = tmp_path / "w.pth"
    torch.save(ResNet(18).state_dict(), w)
    d = _cnn_cfg(tiny_config, "resnet", w)
    h1 = d.cache_hash()
    torch.save(ResNet(18).state_dict(), w)  # new random weights, same path
    assert d.cache_hash() != h1
    moved = tmp_path / "moved.pth"
    w.rename(moved)
    with pytest.raises(UserError, match="data.backbone_weights"):
        d.cache_hash()
    d.backbone_weights = str(moved)
    h3 = d.cache_hash()
    w2 = tmp_path / "copy.pth"
    w2.write_bytes(moved.read_bytes())
    d.backbone_weights = str(w2)
    assert d.cache_hash() == h3  # same content elsewhere: same cache
