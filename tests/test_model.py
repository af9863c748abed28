# SPDX-License-Identifier: GPL-3.0-or-later
"""SpecDiff networks: shapes, parameter counts, and the paper's equations (TCS, FF, F_0)."""

import pytest
import torch
import torch.nn.functional as F

from gr_specdiff.model.factory import build_model, load_config
from gr_specdiff.model.pipeline import SpecDiffPipeline
from gr_specdiff.model.specdiff import (
    FF,
    STEM_BOUND,
    TCS,
    SpecDiff,
    SpecDiffConfig,
    count_parameters,
    mask_to_latent,
    timestep_embedding,
)

TINY = dict(enc_channels=(8, 8, 16), unet_channels=(8, 16, 16), ff_channels=16, t_emb=16,
            t_hidden=16)


@pytest.fixture(autouse=True)
def _threads():
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.mark.parametrize("stem", [1, 2])
def test_shapes(stem):
    m = SpecDiff(SpecDiffConfig(stem=stem, **TINY)).eval()
    x = torch.rand(2, 3, 64 * stem, 64 * stem)
    cond, s1, s2, s3 = m.encode(x)
    r = 64 * stem // m.config.downsample
    assert cond.shape == (2, 16, r, r) and r == 8
    assert s1.shape[-1] == 64 and s2.shape[-1] == 32 and s3.shape[-1] == 16
    ft = torch.randn(2, 4, r, r)
    out = m.denoise(ft, torch.tensor([0.0, 999.0]), cond)
    assert out.shape == ft.shape
    logits = m.decode(ft, s1, s2, s3, x)
    assert logits.shape == (2, 4, 64 * stem, 64 * stem)


@pytest.mark.parametrize("use_cp,use_ff", [(True, True), (False, True), (True, False),
                                           (False, False)])
def test_ablation_flags_run(use_cp, use_ff):
    m = SpecDiff(SpecDiffConfig(use_cp=use_cp, use_ff=use_ff, **TINY)).eval()
    cond, *_ = m.encode(torch.rand(1, 3, 64, 64))
    assert m.denoise(torch.randn(1, 4, 8, 8), torch.tensor([5.0]), cond).shape == (1, 4, 8, 8)


def test_parameter_counts():
    paper = build_model(load_config("paper"))
    # Pinned so architecture changes are deliberate (paper reports 9.7 M full / 8.2 M baseline).
    assert count_parameters(paper) == 2_886_248
    cfg = load_config("paper")
    cfg["model"].update(use_cp=False, use_ff=False)
    base = build_model(cfg)
    assert count_parameters(base) < count_parameters(paper)
    lite = build_model(load_config("lite"))
    assert count_parameters(lite) < 1_500_000


def test_check_input():
    m = SpecDiff(SpecDiffConfig(**TINY))
    with pytest.raises(ValueError, match="multiples of 64"):
        m.check_input(torch.rand(1, 3, 100, 64))
    with pytest.raises(ValueError, match="expected"):
        m.check_input(torch.rand(1, 1, 64, 64))


def test_config_round_trip():
    c = SpecDiffConfig(stem=2, **TINY)
    assert SpecDiffConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown"):
        SpecDiffConfig.from_dict({"nope": 1})


def test_tcs_scale_shift_equation():
    """TCS(x, t) = C3(C3(x) * Scale(t)) + Shift(t), Scale/Shift = halves of MLP2(MLP1(PE))."""
    blk = TCS(3, 4, t_emb=8, t_hidden=8).eval()
    x = torch.rand(2, 3, 8, 8)
    temb = timestep_embedding(torch.tensor([3.0, 700.0]), 8)
    scale = torch.tensor([[1.0, 2.0, 0.5, -1.0], [0.0, 1.0, 3.0, 1.0]])
    shift = torch.tensor([[0.1, -0.2, 0.3, 0.0], [1.0, 2.0, 3.0, 4.0]])
    with torch.no_grad():
        blk.mlp2.weight.zero_()
        # Bias is shared by the batch: use the per-sample tensors via a hook on mlp2 instead.
        blk.mlp2.register_forward_hook(lambda mod, inp, out: torch.cat([scale, shift], 1))
        got = blk(x, temb)
        want = blk.conv_out(blk.conv_in(x) * scale[:, :, None, None]) + shift[:, :, None, None]
    torch.testing.assert_close(got, want)
    s, b = blk.scale_shift(temb)
    torch.testing.assert_close(s, scale)
    torch.testing.assert_close(b, shift)


def test_tcs_depends_on_t():
    blk = TCS(3, 4, t_emb=16, t_hidden=16).eval()
    with torch.no_grad():
        blk.mlp2.weight.normal_()
    x = torch.rand(1, 3, 8, 8)
    a = blk(x, timestep_embedding(torch.tensor([1.0]), 16))
    b = blk(x, timestep_embedding(torch.tensor([900.0]), 16))
    assert not torch.allclose(a, b)


def test_ff_decomposition():
    ff = FF(2, 3).eval()
    x = torch.rand(1, 2, 6, 6)
    high, low = ff.split(x)
    torch.testing.assert_close(high + low, x)
    # Interior pixel: plain 3x3 mean.
    torch.testing.assert_close(low[0, :, 2, 3], x[0, :, 1:4, 2:5].mean(dim=(-1, -2)))
    # Border pixel (0, 0): mean of the 2x2 valid neighbours (padding excluded).
    torch.testing.assert_close(low[0, :, 0, 0], x[0, :, 0:2, 0:2].mean(dim=(-1, -2)))
    const = torch.full((1, 2, 5, 5), 0.7)
    h, _ = ff.split(const)
    torch.testing.assert_close(h, torch.zeros_like(h))
    # Output: 1x1 conv (+BN+ReLU) of the concatenation <high, low>.
    with torch.no_grad():
        want = ff.fuse(torch.cat([high, low], 1))
        torch.testing.assert_close(ff(x), want)


def test_mask_to_latent_hand_computed():
    lab = torch.zeros(1, 4, 4, dtype=torch.long)
    lab[0, :2, :2] = 1  # top-left cell all NR
    lab[0, 0, 2:] = 3  # top-right cell: half radar, half noise
    lab[0, 2:, :2] = 255  # bottom-left cell ignored entirely
    lab[0, 2, 2] = 255  # bottom-right: 3 noise + 1 ignored
    f0 = mask_to_latent(lab, 4, factor=2)
    assert f0.shape == (1, 4, 2, 2)
    p = (f0 + 1) / 2
    torch.testing.assert_close(p[0, :, 0, 0], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(p[0, :, 0, 1], torch.tensor([0.5, 0.0, 0.0, 0.5]))
    torch.testing.assert_close(p[0, :, 1, 0], torch.zeros(4))
    torch.testing.assert_close(p[0, :, 1, 1], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    # scale
    torch.testing.assert_close(mask_to_latent(lab, 4, 2, scale=2.0), 2 * f0)


def test_timestep_embedding():
    e = timestep_embedding(torch.tensor([0.0, 10.0]), 8)
    assert e.shape == (2, 8)
    torch.testing.assert_close(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert F.pad(e, (0, 0)).dtype == torch.float32


def test_config_inheritance(tmp_path):
    """``base:`` inherits a config and overrides key by key; loops and bad files are refused."""
    lite, ft = load_config("lite"), load_config("default_finetune")
    assert ft["model"] == lite["model"]  # the fine-tune trains the very network it loads
    assert ft["diffusion"]["steps"] == 1 and ft["diffusion"]["order"] == lite["diffusion"]["order"]
    assert ft["data"]["val_dir"] == load_config("default")["data"]["val_dir"]
    child = tmp_path / "child.yaml"
    child.write_text("base: lite\ntrain: {lr: 0.5}\n")
    cfg = load_config(child)
    assert cfg["train"]["lr"] == 0.5 and cfg["train"]["ema"] == lite["train"]["ema"]
    assert "base" not in cfg
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="inherits from itself"):
        load_config(loop)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="not a YAML mapping"):
        load_config(bad)


def test_rate_conditioning_starts_as_the_unconditioned_model_and_learns_the_rate():
    """A fresh RateFiLM is the identity, so fine-tuning starts from the parent model; once its
    output layer is non-zero, the encoder depends on the rate plane, eager and scripted alike."""
    cfg = load_config("tiny")
    torch.manual_seed(0)
    plain = build_model(cfg).eval()
    cfg["model"]["rate_conditioning"] = True
    rated = build_model(cfg).eval()
    assert rated.config.input_channels == 4
    missing = rated.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(".rate_film." in k for k in missing)
    x = torch.rand(2, 3, 64, 64)
    with_rate = torch.cat([x, torch.full((2, 1, 64, 64), -1.0)], dim=1)
    with torch.no_grad():
        for a, b in zip(rated.encode(with_rate), plain.encode(x)):
            torch.testing.assert_close(a, b)
        torch.nn.init.normal_(rated.encoder.rate_film.mlp[2].weight, std=0.5)
        cond = rated.encode(with_rate)[0]
        other = rated.encode(torch.cat([x, torch.zeros(2, 1, 64, 64)], dim=1))[0]
        assert (cond - other).abs().max() > 1e-3
        scripted = torch.jit.script(rated.encoder)
        torch.testing.assert_close(scripted(with_rate)[0], cond)
    with pytest.raises(ValueError, match=r"expected \(B, 4, H, W\)"):
        rated.check_input(x)


def test_input_pool_is_the_same_network_on_a_coarser_image():
    """``input_pool`` (Fig. 3c's resolutions): the network sees the area-resized image, its
    latent grid shrinks with it, and the logits come back at full size, scripted alike."""
    pooled = SpecDiff(SpecDiffConfig(input_pool=2, **TINY)).eval()
    plain = SpecDiff(SpecDiffConfig(**TINY)).eval()
    plain.load_state_dict(pooled.state_dict())  # pooling has no weights of its own
    assert pooled.config.downsample == 16 and pooled.config.min_size == 128
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        got, want = pooled.encode(x), plain.encode(F.avg_pool2d(x, 2))
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)
        ft = torch.randn(2, 4, 8, 8)
        logits = pooled.decode(ft, *got[1:], x)
        assert logits.shape == (2, 4, 128, 128)
        torch.testing.assert_close(
            logits, F.interpolate(plain.decode(ft, *want[1:], F.avg_pool2d(x, 2)), scale_factor=2.0,
                                  mode="bilinear"))
        assert pooled.latent(torch.zeros(2, 128, 128, dtype=torch.long)).shape == (2, 4, 8, 8)
        pipe = SpecDiffPipeline(pooled, steps=1, image_size=128)
        out = pipe(x)[0]
        assert out.shape == (2, 128, 128)
        torch.testing.assert_close(torch.jit.script(pipe)(x)[0], out)
    with pytest.raises(ValueError, match="multiples of 128"):
        pooled.check_input(torch.rand(1, 3, 64, 64))


def test_refine_starts_as_the_model_without_it_and_corrects_at_full_resolution(tmp_path):
    """``refine``: initialised from a model without it, the new model answers exactly as that
    model (the correction's output layer is zero); the correction reads the input image at
    full resolution, within a stem block, eager and scripted alike."""
    from gr_specdiff.train import initial_weights

    plain = SpecDiff(SpecDiffConfig(stem=2, **TINY)).eval()
    refined = SpecDiff(SpecDiffConfig(stem=2, refine=4, **TINY)).eval()
    torch.save({"ema": plain.state_dict()}, tmp_path / "plain.pt")
    refined.load_state_dict(initial_weights(tmp_path / "plain.pt", refined))
    x = torch.rand(2, 3, 128, 128)
    ft = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        skips = plain.encode(x)[1:]
        torch.testing.assert_close(refined.decode(ft, *skips, x), plain.decode(ft, *skips, x))
        refine = refined.decoder.refine
        torch.nn.init.normal_(refine.out.weight, std=0.5)
        logits = torch.randn(2, 4, 128, 128)
        bumped = x.clone()
        bumped[:, :, 64, 64] += 1.0
        delta = (refine(logits, bumped) - refine(logits, x)).abs().sum((0, 1))
        # two 3x3 layers: one input pixel moves the logits within 2 pixels of it, and only there
        assert delta[64, 64] > 1e-4 and delta[66, 62] > 0
        assert delta[:, 67:].max() == 0 and delta[:62].max() == 0
        pipe = SpecDiffPipeline(refined, steps=1, image_size=128)
        torch.testing.assert_close(torch.jit.script(pipe).probabilities(x), pipe.probabilities(x))
    assert initial_weights(tmp_path / "plain.pt", refined).keys() == refined.state_dict().keys()


def test_a_finer_stem_starts_from_a_coarser_trained_network(tmp_path):
    """``restem``: a stem-2 SpecDiff initialised from a stem-4 one keeps every other tensor;
    its first convolution answers a flat image as before, and its head predicts each
    sub-pixel as the mean of the sub-pixels it stands for in the stem-4 head."""
    from gr_specdiff.train import initial_weights

    coarse = SpecDiff(SpecDiffConfig(stem=4, **TINY)).eval()
    fine = SpecDiff(SpecDiffConfig(stem=2, **TINY)).eval()
    torch.save({"ema": coarse.state_dict()}, tmp_path / "coarse.pt")
    fine.load_state_dict(initial_weights(tmp_path / "coarse.pt", fine))
    for k, v in coarse.state_dict().items():
        if k not in STEM_BOUND:
            torch.testing.assert_close(fine.state_dict()[k], v)
    with torch.no_grad():
        flat = torch.rand(1, 3, 1, 1).expand(1, 3, 64, 64)
        first = [m.encoder.fs1.conv1[0](m.encoder.stem(flat)) for m in (coarse, fine)]
        torch.testing.assert_close(first[1][..., 10, 10], first[0][..., 5, 5])  # interiors
        h = torch.randn(1, TINY["enc_channels"][0], 3, 5)
        coarse_px, fine_px = (m.decoder.unstem(m.decoder.head(h)) for m in (coarse, fine))
        # coarse pixel 4y + 2a + i: the fine pixel 2y + i stands for its mean over a
        want = coarse_px.reshape(1, 4, 3, 2, 2, 5, 2, 2).mean((3, 6)).reshape(1, 4, 6, 10)
        torch.testing.assert_close(fine_px, want)
    with pytest.raises(ValueError, match="must divide"):
        initial_weights(tmp_path / "coarse.pt", SpecDiff(SpecDiffConfig(stem=3, **TINY)))


@pytest.mark.parametrize("flags", [dict(), dict(use_cp=False, use_ff=False),
                                   dict(rate_conditioning=True, stem=2)])
def test_a_wider_network_starts_as_the_narrow_one_it_is_initialised_from(tmp_path, flags):
    """``widen``: every width grown, the wider SpecDiff computes what the narrow one did (to
    float rounding) on every path: encoder skips, noise network, decoder. The layers that
    read the new channels start at zero there but get gradients, so the new channels learn."""
    from gr_specdiff.train import initial_weights

    narrow = SpecDiff(SpecDiffConfig(**flags, **TINY))
    for m in narrow.modules():  # trained-looking batch norms, so a misplaced channel shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    if flags.get("rate_conditioning"):
        narrow.encoder.rate_film.mlp[2].weight.data.normal_()
    narrow.eval()
    wide_cfg = dict(TINY, enc_channels=(12, 16, 20), unet_channels=(16, 20, 24), ff_channels=24)
    wide = SpecDiff(SpecDiffConfig(**flags, **wide_cfg))
    torch.save({"ema": narrow.state_dict()}, tmp_path / "narrow.pt")
    wide.load_state_dict(initial_weights(tmp_path / "narrow.pt", wide))
    wide.eval()
    x = torch.rand(2, narrow.config.input_channels, 128, 128)
    r = 128 // narrow.config.downsample
    ft, t = torch.randn(2, 4, r, r), torch.tensor([3.0, 700.0])
    with torch.no_grad():
        (cond_n, *skips_n), (cond_w, *skips_w) = narrow.encode(x), wide.encode(x)
        torch.testing.assert_close(cond_w[:, :16], cond_n)
        for sn, sw in zip(skips_n, skips_w):
            torch.testing.assert_close(sw[:, : sn.shape[1]], sn)
        torch.testing.assert_close(wide.denoise(ft, t, cond_w), narrow.denoise(ft, t, cond_n))
        torch.testing.assert_close(wide.decode(ft, *skips_w, x), narrow.decode(ft, *skips_n, x))
    wide.train()
    cond_w, *skips_w = wide.encode(x)
    wide.decode(wide.denoise(ft, t, cond_w), *skips_w, x).square().mean().backward()
    head = wide.decoder.head.weight.grad
    assert head[:, 8:].abs().sum() > 0  # the new encoder channels' readers learn
    with pytest.raises(ValueError, match="cannot narrow"):
        torch.save({"ema": wide.state_dict()}, tmp_path / "wide.pt")
        initial_weights(tmp_path / "wide.pt", narrow)
