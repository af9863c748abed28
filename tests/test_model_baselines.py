# SPDX-License-Identifier: GPL-3.0-or-later
"""Baselines: U-Net, DeepLabV3-MobileNetV3 (optional torchvision), energy detector."""

import numpy as np
import pytest
import torch

from gr_specdiff import spectrogram
from gr_specdiff.model.baselines import (
    EnergyDetector,
    UNet,
    deeplab_available,
    deeplabv3_mobilenetv3,
)
from gr_specdiff.model.factory import build_model, build_pipeline, load_config
from gr_specdiff.model.specdiff import count_parameters
from gr_specdiff.train import compute_losses


def test_unet_shapes_and_size():
    for stem in (1, 4):
        net = UNet(widths=(8, 16, 16, 32), stem=stem).eval()
        assert net(torch.rand(1, 3, 64, 64)).shape == (1, 4, 64, 64)
    paper = count_parameters(build_model(load_config("paper")))
    unet = count_parameters(build_model(load_config("unet")))
    assert 0.8 < unet / paper < 1.25
    lite = count_parameters(build_model(load_config("lite")))
    assert 0.8 < count_parameters(build_model(load_config("unet_lite"))) / lite < 1.25


def test_unet_trains_and_scripts():
    torch.manual_seed(0)
    cfg = {"model": {"arch": "unet", "widths": [8, 16]}}
    net = build_model(cfg)
    x, y = torch.rand(2, 3, 32, 32), torch.randint(0, 4, (2, 32, 32))
    loss, parts = compute_losses(net, None, x, y, {})
    loss.backward()
    assert set(parts) == {"seg", "total"}
    pipe = build_pipeline(net.eval(), cfg)
    c1, p1 = pipe(x)
    c2, p2 = torch.jit.script(pipe)(x)
    torch.testing.assert_close(c1, c2)
    torch.testing.assert_close(p1, p2)


@pytest.mark.skipif(not deeplab_available(), reason="torchvision not installed")
def test_deeplab():
    net = deeplabv3_mobilenetv3().eval()
    assert net(torch.rand(1, 3, 64, 64)).shape == (1, 4, 64, 64)


@pytest.mark.skipif(deeplab_available(), reason="torchvision installed")
def test_deeplab_missing_is_clear():
    with pytest.raises(RuntimeError, match="torchvision"):
        deeplabv3_mobilenetv3()


def test_energy_detector():
    span = spectrogram.DB_HIGH - spectrogram.DB_LOW
    x = torch.full((1, 3, 16, 16), (0.0 - spectrogram.DB_LOW) / span)  # 0 dB: noise floor
    x[0, 0, 4:8, 4:12] = (20.0 - spectrogram.DB_LOW) / span  # a 20 dB carrier
    det = EnergyDetector(threshold_db=6.0, smooth=1)
    cls, conf = det(x)
    assert cls.dtype == torch.uint8 and cls.shape == (1, 16, 16)
    want = np.zeros((16, 16), np.uint8)
    want[4:8, 4:12] = 1
    np.testing.assert_array_equal(cls[0].numpy(), want)
    assert float(conf.min()) > 0.5
    torch.jit.script(det)
