# SPDX-License-Identifier: GPL-3.0-or-later
"""Baselines for the paper's comparison table, trained and exported like SpecDiff.

* :class:`UNet`: a plain 4-level U-Net (conv-BN-ReLU x 2 per level); the configs give it the
  size of the SpecDiff it is compared with (``unet.yaml`` 3.0 M, ``unet_lite.yaml`` 1.06 M).
* :func:`deeplabv3_mobilenetv3`: torchvision's DeepLabV3 with a MobileNetV3-Large backbone,
  random initialisation (no downloaded weights). torchvision is optional: when it is missing,
  :func:`deeplab_available` is False and building it raises a clear ``RuntimeError``.
* :class:`EnergyDetector`: classical occupancy detector, no learning, no classes: a pixel is
  "signal" when the smoothed mean-power channel exceeds a threshold in dB above the noise
  floor. Only its noise-vs-signal IoU is meaningful (class map: 0 noise, 1 "signal").

All are ``forward(x) -> logits (B, 4, H, W)`` networks except the energy detector, which
already follows the exported contract ``forward(x) -> (class map uint8, confidence)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gr_specdiff import spectrogram as _spec


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net with ``len(widths)`` levels (max-pool down, nearest-upsample + concat up)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 4,
                 widths: tuple[int, ...] = (32, 64, 128, 256), stem: int = 1):
        super().__init__()
        self.stem = nn.PixelUnshuffle(stem) if stem > 1 else nn.Identity()
        self.unstem = nn.PixelShuffle(stem) if stem > 1 else nn.Identity()
        widths = tuple(int(w) for w in widths)
        self.downs = nn.ModuleList()
        c = in_channels * stem * stem
        for w in widths:
            self.downs.append(_block(c, w))
            c = w
        self.ups = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.ups.append(_block(c + w, w))
            c = w
        self.head = nn.Conv2d(c, n_classes * stem * stem, 1)
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        skips: list[Tensor] = []
        n = len(self.downs)
        for i, down in enumerate(self.downs):
            h = down(h)
            if i < n - 1:
                skips.append(h)
                h = self.pool(h)
        for j, up in enumerate(self.ups):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = up(torch.cat([h, skips[n - 2 - j]], dim=1))
        return self.unstem(self.head(h))


def deeplab_available() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return False
    return True


class DeepLabLogits(nn.Module):
    """torchvision DeepLabV3 returns a dict; this returns the ``out`` logits tensor."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)["out"]


def deeplabv3_mobilenetv3(n_classes: int = 4) -> nn.Module:
    """DeepLabV3-MobileNetV3-Large, random init, no pretrained weights (needs torchvision)."""
    if not deeplab_available():
        raise RuntimeError(
            "the DeepLabV3-MobileNetV3 baseline needs torchvision, which is not installed "
            "(PyPI torchvision does not match this torch build); skip this baseline or install "
            "a torchvision built for this torch"
        )
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    net = deeplabv3_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=n_classes, aux_loss=False
    )
    return DeepLabLogits(net)


class EnergyDetector(nn.Module):
    """Threshold the (box-smoothed) mean-power channel at ``threshold_db`` above the floor.

    Features are the package spectrogram: channel 0 is mean power in dB re the noise floor,
    clipped to [DB_LOW, DB_HIGH] and scaled to [0, 1]. Output class map: 0 noise, 1 signal;
    confidence: a logistic of the margin to the threshold (per 3 dB).
    """

    def __init__(self, threshold_db: float = 6.0, smooth: int = 3):
        super().__init__()
        span = _spec.DB_HIGH - _spec.DB_LOW
        self.level = float((threshold_db - _spec.DB_LOW) / span)
        self.per_3db = float(3.0 / span)
        self.smooth = int(smooth)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        p = x[:, 0:1]
        if self.smooth > 1:
            p = F.avg_pool2d(p, self.smooth, stride=1, padding=self.smooth // 2,
                             count_include_pad=False)
        p = p[:, 0]
        signal = p > self.level
        margin = (p - self.level) / self.per_3db
        conf = torch.sigmoid(margin.abs())
        return signal.to(torch.uint8), conf


def build_baseline(arch: str, cfg: dict) -> nn.Module:
    """``unet`` / ``deeplab`` logits networks from a config's ``model`` section."""
    if arch == "unet":
        return UNet(widths=tuple(cfg.get("widths", (32, 64, 128, 256))),
                    stem=int(cfg.get("stem", 1)))
    if arch == "deeplab":
        return deeplabv3_mobilenetv3()
    raise ValueError(f"unknown baseline arch {arch!r} (unet, deeplab)")
