# SPDX-License-Identifier: GPL-3.0-or-later
"""Training: the loss decreases, a tiny model overfits a tiny dataset, checkpoints resume."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gr_specdiff import IGNORE
from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion
from gr_specdiff.model.diffusion import NoiseSchedule
from gr_specdiff.model.factory import build_model, build_pipeline, load_config
from gr_specdiff.spectrogram import mirror_frequency
from gr_specdiff.train import (
    SyntheticRectangles,
    _lr_at,
    class_weights_from,
    compute_losses,
    distillation_loss,
    load_checkpoint,
    load_teacher,
    lovasz_softmax,
    sharpen,
    split_indices,
    train,
)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def _batch(n=4):
    ds = SyntheticRectangles(n, 64, seed=5)
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.stack([ds[i][1] for i in range(n)])
    return x, y


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_one_step_lowers_loss(prediction):
    torch.manual_seed(0)
    cfg = load_config("tiny")
    cfg["model"]["prediction"] = prediction
    model = build_model(cfg)
    sched = NoiseSchedule()
    x, y = _batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loss():
        g = torch.Generator().manual_seed(7)
        return compute_losses(model, sched, x, y, cfg["loss"], generator=g)

    before, parts = loss()
    assert set(parts) == {"diff", "seg", "seg_pred", "total"}
    opt.zero_grad()
    before.backward()
    opt.step()
    after, _ = loss()
    assert float(after.detach()) < float(before.detach())


def test_ignore_index_and_weights():
    torch.manual_seed(0)
    cfg = load_config("tiny")
    model = build_model(cfg)
    x, y = _batch(2)
    y[:, :8] = 255
    total, parts = compute_losses(model, NoiseSchedule(), x, y, cfg["loss"],
                                  class_weights=torch.tensor([0.2, 1.0, 1.0, 1.0]))
    assert torch.isfinite(total)
    y[:] = 255
    total, parts = compute_losses(model, NoiseSchedule(), x, y, {"lambda_seg": 0,
                                  "lambda_seg_pred": 0})
    assert "seg" not in parts and torch.isfinite(total)


def _lovasz_sorted(logits, labels):
    """The Lovasz-softmax loss as the paper defines it (an explicit sort): the reference the
    binned one in train.py is held to."""
    probs = logits.softmax(1).permute(0, 2, 3, 1).reshape(-1, logits.shape[1])
    labels = labels.reshape(-1)
    keep = labels != 255
    probs, labels = probs[keep], labels[keep]
    out = []
    for c in range(probs.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors, order = torch.sort((fg - probs[:, c]).abs(), descending=True)
        fg = fg[order]
        jac = 1 - (fg.sum() - fg.cumsum(0)) / (fg.sum() + (1 - fg).cumsum(0))
        out.append(torch.dot(errors, torch.cat([jac[:1], jac[1:] - jac[:-1]])))
    return torch.stack(out).mean()


def test_lovasz_softmax_is_one_minus_iou_for_confident_predictions():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (2, 24, 24), generator=g)  # class 3 absent: not averaged
    labels[0, :4] = 255
    pred = torch.randint(0, 4, (2, 24, 24), generator=g)
    logits = 40.0 * torch.nn.functional.one_hot(pred, 4).permute(0, 3, 1, 2).float()
    cm = confusion_matrix(pred.numpy(), labels.numpy())
    tp, true_n, pred_n = np.diag(cm), cm.sum(1), cm.sum(0)
    present = true_n > 0
    iou = tp[present] / (true_n + pred_n - tp)[present]
    assert float(lovasz_softmax(logits, labels)) == pytest.approx(1 - iou.mean(), abs=1e-6)
    perfect = 40.0 * torch.nn.functional.one_hot(labels.clamp(max=3), 4).permute(0, 3, 1, 2)
    assert float(lovasz_softmax(perfect.float(), labels)) == pytest.approx(0.0, abs=1e-6)
    assert float(lovasz_softmax(logits, torch.full_like(labels, 255))) == 0.0


@pytest.mark.parametrize("scale", [0.3, 3.0])
def test_lovasz_softmax_matches_the_sorted_definition(scale):
    g = torch.Generator().manual_seed(4)
    logits = (scale * torch.randn(3, 4, 40, 40, generator=g)).requires_grad_()
    labels = torch.randint(0, 4, (3, 40, 40), generator=g)
    labels[1, 5:9] = 255
    binned, ref = lovasz_softmax(logits, labels), _lovasz_sorted(logits, labels)
    assert float(binned.detach()) == pytest.approx(float(ref.detach()), rel=1e-4)
    (g_binned,) = torch.autograd.grad(binned, logits)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert float((g_binned - g_ref).norm() / g_ref.norm()) < 5e-3
    assert float(g_binned[1, :, 5:9].abs().max()) == 0.0  # IGNORE pixels get no gradient


@pytest.mark.parametrize("config", ["tiny", "unet_lite"])
def test_lambda_lovasz_adds_the_lovasz_term(config):
    torch.manual_seed(0)
    cfg = load_config(config)
    model = build_model(cfg)
    x, y = _batch(2)
    with_lovasz = dict(cfg["loss"], lambda_lovasz=0.5)
    _, parts = compute_losses(model, NoiseSchedule(), x, y, cfg["loss"],
                                 generator=torch.Generator().manual_seed(1))
    _, parts_l = compute_losses(model, NoiseSchedule(), x, y, with_lovasz,
                                    generator=torch.Generator().manual_seed(1))
    n_outputs = 2 if config == "tiny" else 1  # SpecDiff: decoder(F_0) and decoder(F_0_hat)
    assert "lovasz" not in parts and 0 < parts_l["lovasz"] < n_outputs  # each term <= 1
    assert parts_l["total"] == pytest.approx(parts["total"] + 0.5 * parts_l["lovasz"], rel=1e-4)


def test_helpers():
    tr, va = split_indices(20, 0.1, seed=0)
    assert len(va) == 2 and not set(tr) & set(va) and len(tr) + len(va) == 20
    ds = SyntheticRectangles(4, 32)
    w = class_weights_from(ds, list(range(4)))
    assert w.shape == (4,) and float(w.mean()) == pytest.approx(1.0) and w[0] < w[1:].max()


def test_tiny_overfits_and_resumes(tmp_path):
    """A tiny model reaches > 95 % pixel accuracy on a tiny dataset; checkpoints resume."""
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=12, val_fraction=0.1)
    cfg["train"].update(steps=50, val_every=50, ckpt_every=25, log_every=10, lr=1e-2, warmup=5)
    run = tmp_path / "run"
    res = train(cfg, out=run, progress=False, threads=2)
    assert res["step"] == 50
    ck = load_checkpoint(run / "checkpoint.pt")  # weights_only=True
    assert {"step", "model", "optimizer", "ema", "config", "version"} <= set(ck)
    model = build_model(ck["config"])
    model.load_state_dict(ck["ema"])
    model.eval()
    pipe = build_pipeline(model, ck["config"], image_size=64).eval()
    ds = SyntheticRectangles(12, 64, seed=0)
    cm = np.zeros((4, 4), np.int64)
    with torch.no_grad():
        for i in range(len(ds)):
            x, y, _ = ds[i]
            cls, _ = pipe(x[None])
            cm += confusion_matrix(cls[0].numpy(), y.numpy())
    acc = metrics_from_confusion(cm)["global_accuracy"]
    assert acc > 0.95, acc
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "val" for r in lines) and (run / "train.log").exists()
    # Resume: continues from step 50 to 55.
    cfg["train"]["steps"] = 55
    res2 = train(cfg, out=run, resume=True, progress=False, threads=2)
    assert res2["step"] == 55 and load_checkpoint(run / "checkpoint.pt")["step"] == 55


def test_generated_scenes_on_the_fly():
    from gr_specdiff.train import GeneratedScenes, open_dataset

    ds = open_dataset("generate", data_cfg={"frames": 3, "sample_rates": [30.72e6]})
    assert isinstance(ds, GeneratedScenes) and len(ds) == 3
    x, y, i = ds[1]
    assert x.shape == (3, 256, 256) and x.dtype == torch.float32 and y.shape == (256, 256)
    assert i == 1 and ds.meta(1)
    x2, y2, _ = GeneratedScenes(3, sample_rates=[30.72e6])[1]
    torch.testing.assert_close(x, x2)
    torch.testing.assert_close(y, y2)


def test_stop_at_keeps_the_long_schedule(tmp_path):
    """--stop-at ends early (validated, checkpointed) with the LR schedule of --steps."""
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=100, val_every=1000, ckpt_every=1000, log_every=1, warmup=2)
    run = tmp_path / "run"
    res = train(cfg, out=run, progress=False, threads=1, stop_at=6)
    assert res["step"] == 6 and "mean_iou" in res
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 6
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    lr6 = [r["lr"] for r in lines if r["kind"] == "train" and r["step"] == 6][0]
    assert lr6 == pytest.approx(_lr_at(5, float(cfg["train"]["lr"]), 2, 100))


def test_each_run_logs_to_its_own_file(tmp_path):
    """Two train() calls in one process (compare_budget.py) write two separate train.logs."""
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=2, val_every=1000, ckpt_every=1000, log_every=1, warmup=1)
    for name in ("a", "b"):
        train(cfg, out=tmp_path / name, progress=False, threads=1)
    log_a = (tmp_path / "a" / "train.log").read_text()
    assert "step 2" in log_a and str(tmp_path / "b") not in log_a
    assert log_a.count("INFO training ") == 1


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_runs_convolutions_in_bfloat16_where_the_cpu_has_it(tmp_path, monkeypatch,
                                                                      caplog, native):
    """``train.cpu_bf16``: the step's convolutions run in bfloat16, the weights stay float32;
    on a CPU without native bfloat16 the run stays float32 and the log says why."""
    import gr_specdiff.train as train_mod

    seen: set = set()

    def build_and_watch(cfg):
        model = build_model(cfg)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype) if _m.training else None)
        return model

    monkeypatch.setattr(train_mod, "build_model", build_and_watch)
    monkeypatch.setattr(train_mod.export, "cpu_has_native_bf16", lambda: native)
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=2, val_every=1000, ckpt_every=1000, log_every=1, warmup=1,
                        cpu_bf16=True)
    train(cfg, out=tmp_path / "run", progress=False, threads=1)
    assert seen == ({torch.bfloat16} if native else {torch.float32})
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert all(v.dtype != torch.bfloat16 for v in ck["model"].values())
    assert native or "no native bfloat16" in caplog.text
    cfg["train"]["cpu_bf16"] = "yes"
    with pytest.raises(ValueError, match="cpu_bf16"):
        train(cfg, out=tmp_path / "bad", progress=False, threads=1)


def test_t_max_fraction_trains_the_first_sampler_step():
    """``loss.t_max_fraction`` puts that share of the batch at the sampler's first timestep."""
    cfg = load_config("tiny")
    model = build_model(cfg)
    sched = NoiseSchedule()
    seen = []
    denoise = model.denoise
    model.denoise = lambda ft, t, cond: seen.append(t.clone()) or denoise(ft, t, cond)
    x, y = _batch(4)
    g = torch.Generator().manual_seed(3)
    compute_losses(model, sched, x, y, {**cfg["loss"], "t_max_fraction": 0.5}, generator=g)
    compute_losses(model, sched, x, y, cfg["loss"], generator=torch.Generator().manual_seed(3))
    half, uniform = seen
    assert half[:2].tolist() == [sched.t_max] * 2
    assert half[2:].tolist() == uniform[2:].tolist()  # the rest keeps its uniform draw
    assert sched.t_max not in uniform.tolist()


@pytest.mark.parametrize("prediction", ["eps", "x0"])
def test_first_estimate_is_the_one_step_sampler(prediction):
    """Recycling starts from the latent a K = 1 pipeline returns for the same noise, and that
    pass leaves the batch-norm running statistics alone."""
    from gr_specdiff.train import _first_estimate

    torch.manual_seed(0)
    cfg = load_config("tiny")
    cfg["model"]["prediction"] = prediction
    cfg["diffusion"]["steps"] = 1
    model = build_model(cfg)
    x, _ = _batch(2)
    pipe = build_pipeline(model, cfg, image_size=64)  # shares the model's modules
    model.train()
    cond = model.encode(x)[0].detach()
    stats = [b.clone() for b in model.denoiser.buffers()]
    lim = model.config.latent_scale
    got = _first_estimate(model, NoiseSchedule(), pipe.noise.expand(2, -1, -1, -1), cond, lim)
    assert model.denoiser.training
    assert all(torch.equal(a, b) for a, b in zip(stats, model.denoiser.buffers()))
    model.eval()
    with torch.no_grad():
        want = pipe.sample_latent(cond, pipe.noise)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_recycle_fraction_builds_f_t_from_the_first_estimate(monkeypatch):
    """``loss.recycle_fraction``: after the t_max share, that share of the batch is noised from
    the model's own first estimate (same noise draw), at t in 1..t_max-1; the rest is not."""
    import gr_specdiff.train as tr

    cfg = load_config("tiny")
    model = build_model(cfg)
    sched = NoiseSchedule()
    given = {}

    def fake_first(model_, schedule, z, cond, lim):
        given["z"] = z.clone()
        return torch.full_like(z, 0.5)

    monkeypatch.setattr(tr, "_first_estimate", fake_first)
    seen = []
    denoise = model.denoise
    model.denoise = lambda ft, t, cond: seen.append((ft.detach().clone(), t.clone())) or denoise(
        ft, t, cond)
    x, y = _batch(4)
    loss_cfg = {**cfg["loss"], "t_max_fraction": 0.25, "recycle_fraction": 0.5}
    total, _ = tr.compute_losses(model, sched, x, y, loss_cfg,
                                 generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(total)
    (ft, t), = seen
    assert t[0] == sched.t_max
    assert all(1 <= v < sched.t_max for v in t[1:3].tolist())
    abar = sched.alpha_bar[t[1:3].long()].view(-1, 1, 1, 1)
    want = abar.sqrt() * 0.5 + (1 - abar).sqrt() * given["z"]
    torch.testing.assert_close(ft[1:3], want)
    f0 = model.latent(y.long())
    assert not torch.allclose(ft[3], abar[0].sqrt() * 0.5 + (1 - abar[0]).sqrt() * given["z"][0])
    assert f0.shape == ft.shape
    # recycle_steps: the recycled share sits at the later timesteps of that sampler
    seen.clear()
    tr.compute_losses(model, sched, x, y, {**loss_cfg, "recycle_steps": 3},
                      generator=torch.Generator().manual_seed(4))
    assert set(seen[0][1][1:3].tolist()) <= set(sched.timesteps(3)[1:].tolist())


def test_init_from_checkpoint_and_export(tmp_path):
    """A new run starts from a checkpoint's EMA weights or an exported model's weights; a
    model of another config is refused with a message naming the mismatch."""
    from gr_specdiff.model.export import export_model, load_model
    from gr_specdiff.train import initial_weights

    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=3, val_every=1000, ckpt_every=1000, log_every=1, warmup=1)
    train(cfg, out=tmp_path / "a", progress=False, threads=1)
    ema = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["ema"]
    model = build_model(cfg)
    for k, v in initial_weights(tmp_path / "a" / "checkpoint.pt", model).items():
        torch.testing.assert_close(v, ema[k])
    model.load_state_dict(ema)
    pipe = build_pipeline(model.eval(), cfg, image_size=64)
    export_model(pipe, tmp_path / "m", {"name": "m", "sample_rates": [61.44e6]})
    fresh = build_model(cfg)
    for k, v in initial_weights(tmp_path / "m.yaml", fresh).items():
        torch.testing.assert_close(v, ema[k])
    # The run itself: step 0 of the new run holds the loaded weights, its schedule is fresh.
    res = train(cfg, out=tmp_path / "b", progress=False, threads=1, stop_at=1,
                init_from=tmp_path / "m.yaml")
    assert res["step"] == 1
    init = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["provenance"]["init_from"]
    assert init["path"].endswith("m.ts") and len(init["sha256"]) == 64
    from gr_specdiff.cli import main

    assert main(["export", "--checkpoint", str(tmp_path / "b" / "checkpoint.pt"),
                 "--out", str(tmp_path / "b2")]) == 0
    card = load_model(tmp_path / "b2.yaml").card
    assert card["training"]["initialised_from"] == init  # the model card names its parent
    # Wider widths load (widen); narrower ones and other shapes are refused by name.
    wider, narrower, other = (load_config("tiny") for _ in range(3))
    wider["model"]["unet_channels"] = [c * 2 for c in wider["model"]["unet_channels"]]
    assert initial_weights(tmp_path / "m.yaml", build_model(wider)).keys() == \
        build_model(wider).state_dict().keys()
    narrower["model"]["unet_channels"] = [c // 2 for c in narrower["model"]["unet_channels"]]
    with pytest.raises(ValueError, match="cannot narrow"):
        initial_weights(tmp_path / "m.yaml", build_model(narrower))
    other["model"]["t_emb"] *= 2
    with pytest.raises(ValueError, match="does not fit this config"):
        initial_weights(tmp_path / "m.yaml", build_model(other))


def test_max_minutes_stops_validated_and_checkpointed(tmp_path):
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=100, val_every=1000, ckpt_every=1000, log_every=1, warmup=2)
    res = train(cfg, out=tmp_path, progress=False, threads=1, max_minutes=1e-9)
    assert res["step"] == 1 and "mean_iou" in res
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1


def test_rate_conditioned_model_trains_exports_and_runs_live(tmp_path):
    """Fine-tuning adds rate conditioning to an unconditioned checkpoint; the exported card
    says the model takes the rate plane, the loaded model refuses bare features with a hint,
    and the live path (runtime.analyse_frame) feeds it the frame's own rate."""
    from gr_specdiff import runtime as rt
    from gr_specdiff.cli import main
    from gr_specdiff.model.export import load_model
    from gr_specdiff.testsignal import mixed_test_signal

    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=2, val_every=1000, ckpt_every=1000, log_every=1, warmup=1)
    train(cfg, out=tmp_path / "plain", progress=False, threads=1)
    cfg["model"]["rate_conditioning"] = True
    res = train(cfg, out=tmp_path / "rated", progress=False, threads=1,
                init_from=tmp_path / "plain" / "checkpoint.pt")
    assert res["step"] == 2 and "mean_iou" in res
    assert main(["export", "--checkpoint", str(tmp_path / "rated" / "checkpoint.pt"),
                 "--out", str(tmp_path / "m"), "--sample-rates", "20e6"]) == 0
    model = load_model(tmp_path / "m.yaml", device="cpu")
    assert model.card["spectrogram"]["rate_channel"] is True and model.input_channels == 4
    with pytest.raises(ValueError, match="sample-rate plane"):
        model(np.zeros((1, 3, 256, 256), np.float32))
    assert main(["eval", "--model", str(tmp_path / "m.yaml"), "--data", "synthetic",
                 "--frames", "2", "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert [r["sample_rate"] for r in report["per_rate"]] == [61.44e6, 20e6]
    model.warm_up(1)
    iq = mixed_test_signal(20e6)[: rt.frame_length(model.card, 20e6)]
    job = rt.FrameJob(index=0, iq=iq, offset=0, n_valid=len(iq), sample_rate=20e6,
                      center_freq=0.0, rx_time=0.0, t_complete=0.0)
    assert rt.analyse_frame(model, job).class_map.shape == (256, 256)


def test_rate_channel_dataset_needs_the_frame_rate():
    from gr_specdiff.data import WithRateChannel

    class NoRate(SyntheticRectangles):
        def meta(self, i):
            return {}

    x, _, _ = WithRateChannel(SyntheticRectangles(2, 64))[1]
    assert x.shape == (4, 64, 64) and float(x[3, 0, 0]) == pytest.approx(np.log2(20 / 61.44))
    with pytest.raises(ValueError, match="no sample_rate"):
        WithRateChannel(NoRate(2, 64))[0]


def test_random_flips_move_image_and_labels_together(tmp_path):
    """A flipped frame keeps every label on its own pixel; about half the frames flip; an
    unknown flip in the config is refused before training starts."""
    from gr_specdiff.spectrogram import mirror_frequency
    from gr_specdiff.train import random_flips

    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (64, 32, 32))
    x = y[:, None].repeat(1, 3, 1, 1).float()  # features that spell out the labels
    x0 = x.clone()
    fx, fy = random_flips(x.clone(), y.clone(), ["frequency", "time"], g)
    torch.testing.assert_close(fx[:, 0].long(), fy)
    kinds = set()
    for k in range(64):
        for kind, op in (("none", lambda a: a), ("f", mirror_frequency),
                         ("t", lambda a: a.flip(-2)),
                         ("ft", lambda a: mirror_frequency(a).flip(-2))):
            if torch.equal(fy[k], op(y[k])):
                kinds.add(kind)
                torch.testing.assert_close(fx[k], op(x0[k]))
                break
    assert kinds == {"none", "f", "t", "ft"}
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, flips=["upside-down"])
    with pytest.raises(ValueError, match="unknown flip 'upside-down'"):
        train(cfg, out=tmp_path / "run", progress=False, threads=1)
    assert not (tmp_path / "run").exists()


def test_every_shipped_config_resolves_under_its_own_name():
    """Each config's ``base:`` chain resolves (a misspelt base or key fails here, not an hour
    into a training run), and its ``name`` is its file's."""
    import gr_specdiff

    configs = sorted((Path(gr_specdiff.__file__).parent / "configs").glob("*.yaml"))
    assert len(configs) > 10
    for path in configs:
        cfg = load_config(path.stem)
        assert cfg["name"] == path.stem, path
        assert {"model", "loss", "train", "data"} <= set(cfg), path
    assert load_config("polish_lovasz")["loss"]["lambda_lovasz"] > 0


def test_distillation_loss_is_cross_entropy_against_the_teacher():
    """One-hot teacher probabilities give plain cross entropy; a student that already answers
    as the teacher does is at the minimum (zero gradient)."""
    logits = torch.randn(2, 4, 8, 8)
    labels = torch.randint(0, 4, (2, 8, 8))
    one_hot = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(distillation_loss(logits, one_hot),
                               torch.nn.functional.cross_entropy(logits, labels))
    # Class balanced, it is the hard loss's weighted cross entropy (IGNORE pixels left out).
    weight = torch.tensor([0.2, 1.0, 1.5, 3.0])
    labels[0, 0] = IGNORE
    torch.testing.assert_close(
        distillation_loss(logits, one_hot, labels, weight),
        torch.nn.functional.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE))
    student = torch.randn(2, 4, 8, 8, requires_grad=True)
    distillation_loss(student, student.detach().softmax(1)).backward()
    assert student.grad.abs().max() < 1e-6


def test_sharpened_teacher_keeps_its_argmax_and_moves_towards_it():
    """``distill_temperature`` 1 leaves the teacher's probabilities as they are; below 1 each
    pixel keeps its argmax and its distribution, still normalised, moves towards one-hot (a
    60/40 pixel becomes 9/4 : 1 at 0.5)."""
    probs = torch.softmax(torch.randn(2, 4, 8, 8), dim=1)
    assert sharpen(probs, 1.0) is probs
    sharp = sharpen(probs, 0.25)
    torch.testing.assert_close(sharp.sum(1), torch.ones(2, 8, 8))
    assert torch.equal(sharp.argmax(1), probs.argmax(1))
    assert (sharp.amax(1) >= probs.amax(1) - 1e-6).all()
    pixel = torch.tensor([0.6, 0.4, 0.0, 0.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(sharpen(pixel, 0.5).flatten()[:2],
                               torch.tensor([0.36, 0.16]) / 0.52)


def test_teacher_runs_only_on_the_items_it_teaches():
    """With ``distill_items: t_max`` the teacher is asked about the t_max items alone (2 of
    8 here), not the whole batch; with ``all`` about every item; the term it adds is the
    distillation loss of its answers."""
    torch.manual_seed(0)
    cfg = load_config("tiny")
    model = build_model(cfg)
    x, y = _batch(8)
    asked = []

    def teacher(frames):
        asked.append(frames.shape[0])
        return torch.full((frames.shape[0], 4, *frames.shape[-2:]), 0.25)

    for items, n in (("t_max", 2), ("all", 8)):
        loss_cfg = {**cfg["loss"], "t_max_fraction": 0.25, "distill_items": items}
        asked.clear()
        g = torch.Generator().manual_seed(1)
        total, parts = compute_losses(model, NoiseSchedule(), x, y, loss_cfg, generator=g,
                                      teacher=teacher)
        g = torch.Generator().manual_seed(1)
        plain, _ = compute_losses(model, NoiseSchedule(), x, y, loss_cfg, generator=g)
        assert asked == [n], items
        assert parts["distill"] > 0
        torch.testing.assert_close(total - plain, torch.tensor(parts["distill"]),
                                   rtol=1e-4, atol=1e-4)
    # A temperature reaches the term: a sharper teacher, another loss on the same batch.
    def confident(frames):
        p = torch.tensor([0.55, 0.15, 0.15, 0.15]).view(1, 4, 1, 1)
        return p.expand(frames.shape[0], 4, *frames.shape[-2:])

    terms = []
    for temperature in (1.0, 0.25):
        loss_cfg = {**cfg["loss"], "t_max_fraction": 0.25, "distill_temperature": temperature}
        g = torch.Generator().manual_seed(1)
        terms.append(compute_losses(model, NoiseSchedule(), x, y, loss_cfg, generator=g,
                                    teacher=confident)[1]["distill"])
    assert abs(terms[0] - terms[1]) > 1e-3


def test_training_distils_from_a_teacher(tmp_path):
    """``loss.teacher`` (a checkpoint or an exported model) adds the distillation term to
    every step, on the items at t_max; a missing teacher, or batches with no item at t_max,
    are refused by name before any training."""
    cfg = load_config("tiny")
    cfg["data"].update(dir="synthetic", synthetic_frames=8, val_fraction=0.25)
    cfg["train"].update(steps=2, val_every=1000, ckpt_every=1000, log_every=1, warmup=1)
    cfg["loss"]["t_max_fraction"] = 0.25  # the teacher teaches the answer at t_max
    train(cfg, out=tmp_path / "teacher", progress=False, threads=1)
    from gr_specdiff.cli import main

    assert main(["export", "--checkpoint", str(tmp_path / "teacher" / "checkpoint.pt"),
                 "--out", str(tmp_path / "t")]) == 0
    # A flip-averaged teacher is the same network with flips in its card.
    assert main(["export", "--checkpoint", str(tmp_path / "t.yaml"), "--flips", "frequency",
                 "--out", str(tmp_path / "t_flipped")]) == 0
    flipped = load_teacher(tmp_path / "t_flipped.yaml", "cpu", image_size=64)
    x = torch.randn(2, 3, 64, 64)
    plain = load_teacher(tmp_path / "t.yaml", "cpu", image_size=64).probabilities
    averaged = (plain(x) + mirror_frequency(plain(mirror_frequency(x)))) / 2
    torch.testing.assert_close(flipped.probabilities(x), averaged)
    for teacher in (tmp_path / "teacher" / "checkpoint.pt", tmp_path / "t.yaml",
                    tmp_path / "t_flipped.yaml"):
        cfg["loss"].update(teacher=str(teacher), lambda_distill=0.5)
        out = tmp_path / f"student_{teacher.stem}"
        assert train(cfg, out=out, progress=False, threads=1)["step"] == 2
        logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        steps = [r for r in logged if r.get("kind") == "train"]
        assert len(steps) == 2 and all(r["distill"] > 0 for r in steps)
    cfg["loss"]["teacher"] = str(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="loss.teacher"):
        train(cfg, out=tmp_path / "none", progress=False, threads=1)
    cfg["loss"].update(teacher=str(tmp_path / "t.yaml"), t_max_fraction=0.0)
    with pytest.raises(ValueError, match="t_max_fraction"):
        train(cfg, out=tmp_path / "no_t_max", progress=False, threads=1)
    cfg["loss"].update(t_max_fraction=0.25, distill_temperature=0)
    with pytest.raises(ValueError, match="distill_temperature"):
        train(cfg, out=tmp_path / "no_temperature", progress=False, threads=1)
