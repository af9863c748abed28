# SPDX-License-Identifier: GPL-3.0-or-later
"""TorchScript export + model card: scripted == eager, sha256 / version checks, clear errors."""

import logging

import numpy as np
import pytest
import torch
import yaml

from gr_specdiff import spectrogram
from gr_specdiff.cli import main as cli_main
from gr_specdiff.model.export import ModelLoadError, export_model, load_model, sha256_file
from gr_specdiff.model.factory import build_model, build_pipeline, load_config
from gr_specdiff.model.pipeline import LogitsPipeline


@pytest.fixture(scope="module")
def tiny_pipe():
    torch.manual_seed(0)
    cfg = load_config("tiny")
    model = build_model(cfg).eval()
    return build_pipeline(model, cfg, image_size=64).eval()


@pytest.fixture()
def exported(tiny_pipe, tmp_path):
    ts = export_model(tiny_pipe, tmp_path / "m", {"name": "m", "sample_rates": [30.72e6]})
    return ts, tmp_path / "m.yaml"


def test_scripted_equals_eager(tiny_pipe):
    scripted = torch.jit.script(tiny_pipe)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        c1, p1 = tiny_pipe(x)
        c2, p2 = scripted(x)
    assert c1.dtype == torch.uint8 and p1.dtype == torch.float32
    assert c1.shape == (3, 64, 64) and p1.shape == (3, 64, 64)
    torch.testing.assert_close(c2, c1)
    torch.testing.assert_close(p2, p1)
    assert float(p1.min()) >= 0.25 and float(p1.max()) <= 1.0


@pytest.mark.parametrize("use_cp,use_ff", [(False, True), (True, False), (False, False)])
def test_ablation_variants_script(use_cp, use_ff):
    """Table I's ablations export like the full model (they once failed: no ``cp1``)."""
    torch.manual_seed(0)
    cfg = load_config("tiny")
    cfg["model"].update(use_cp=use_cp, use_ff=use_ff)
    pipe = build_pipeline(build_model(cfg).eval(), cfg, image_size=64).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.script(pipe)(x), pipe(x))


def test_multi_seed_confidence():
    torch.manual_seed(0)
    cfg = load_config("tiny")
    cfg["diffusion"]["seeds"] = 3
    pipe = build_pipeline(build_model(cfg).eval(), cfg, image_size=64).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        c, p = torch.jit.script(pipe)(x)
        c2, p2 = pipe(x)
    torch.testing.assert_close(p, p2)
    assert pipe.noise.shape[0] == 3


def test_load_round_trip(exported, tiny_pipe, caplog):
    ts, card_path = exported
    card = yaml.safe_load(card_path.read_text())
    assert card["sha256"] == sha256_file(ts)
    assert card["spectrogram"]["version"] == spectrogram.VERSION
    assert card["classes"] == ["noise", "NR", "LTE", "radar"]
    with caplog.at_level(logging.WARNING):
        m = load_model(card_path, device="auto")  # the .yaml path works too
    if not torch.cuda.is_available():
        assert m.device.type == "cpu" and "CPU" in caplog.text
    assert m.sample_rates == [30.72e6] and m.frame_seconds == pytest.approx(0.04)
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    cls, conf = m(x)
    assert cls.dtype == np.uint8 and conf.dtype == np.float32 and cls.shape == (2, 64, 64)
    with torch.no_grad():
        c_ref, p_ref = tiny_pipe(torch.from_numpy(x))
    np.testing.assert_array_equal(cls, c_ref.numpy())
    np.testing.assert_allclose(conf, p_ref.numpy(), rtol=1e-5, atol=1e-6)
    cls1, _ = load_model(ts, device="cpu")(x[0])  # (3, H, W) input
    assert cls1.shape == (1, 64, 64)


def test_sha_mismatch(exported):
    ts, card_path = exported
    card = yaml.safe_load(card_path.read_text())
    card["sha256"] = "0" * 64
    card_path.write_text(yaml.safe_dump(card))
    with pytest.raises(ModelLoadError, match="sha256.*does not match"):
        load_model(ts)


def test_corrupt_file(exported):
    ts, card_path = exported
    ts.write_bytes(b"this is not a zip archive")
    card = yaml.safe_load(card_path.read_text())
    card["sha256"] = sha256_file(ts)
    card_path.write_text(yaml.safe_dump(card))
    with pytest.raises(ModelLoadError, match="not a loadable TorchScript"):
        load_model(ts, device="cpu")


def test_missing_files(exported, tmp_path):
    ts, card_path = exported
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope.ts")
    card_path.unlink()
    with pytest.raises(ModelLoadError, match="card .* not found"):
        load_model(ts)


def test_version_mismatch(exported):
    ts, card_path = exported
    card = yaml.safe_load(card_path.read_text())
    card["spectrogram"]["version"] = spectrogram.VERSION + 1
    card_path.write_text(yaml.safe_dump(card))
    with pytest.raises(ModelLoadError, match="spectrogram version"):
        load_model(ts)


def test_bad_device(exported):
    ts, _ = exported
    with pytest.raises(ModelLoadError, match="device"):
        load_model(ts, device="tpu")


def test_logits_pipeline_export(tmp_path):
    net = torch.nn.Conv2d(3, 4, 1)
    ts = export_model(LogitsPipeline(net), tmp_path / "lin", {"name": "lin"})
    cls, conf = load_model(ts, device="cpu")(np.zeros((1, 3, 8, 8), np.float32))
    assert cls.shape == (1, 8, 8)


def test_cli_export_random(tmp_path, capsys):
    out = tmp_path / "rnd"
    assert cli_main(["export", "--random", "--config", "tiny", "--out", str(out),
                     "--sample-rates", "1e6"]) == 0
    m = load_model(out.with_suffix(".ts"), device="cpu")
    assert m.card["training"]["checkpoint"] is None and m.sample_rates == [1e6]
    assert m.card["sampler"]["steps"] == 2
    cls, _ = m(np.zeros((1, 3, 256, 256), np.float32))
    assert cls.shape == (1, 256, 256)


def test_cli_export_paper_protocol_frame_length(tmp_path):
    """Paper-protocol datasets record frame_seconds 0 ("3 radar PRIs"); the card must carry
    the real 2.857 ms, not the 40 ms default, or the blocks would cut 14x longer frames."""
    torch.manual_seed(0)
    cfg = load_config("tiny")
    model = build_model(cfg)
    ckpt = tmp_path / "paper.pt"
    torch.save({"step": 1, "config": cfg, "model": model.state_dict(), "ema": None,
                "data_info": {"frames": 8, "sample_rates": [61.44e6],  # as dataset_info()
                              "config": {"preset": "paper", "frame_seconds": 0.0}}}, ckpt)
    out = tmp_path / "pp"
    assert cli_main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    card = load_model(out, device="cpu").card
    assert card["frame_seconds"] == pytest.approx(3 * 58515 / 61.44e6)  # 3 x ceil(rate/1050)
    assert card["sample_rates"] == [61.44e6]


@pytest.mark.parametrize("flips", [["frequency"], ["time"], ["frequency", "time"]])
def test_flip_averaged_pipeline_is_equivariant_and_scripts(tiny_pipe, flips):
    """Averaging over the flips' group makes the output commute with them exactly: a frame
    seen mirrored gets the mirrored answer. Also the average of the explicit views."""
    from gr_specdiff.model.pipeline import FlipAveraged

    pipe = FlipAveraged(tiny_pipe, flips).eval()
    x = torch.rand(2, 3, 64, 64)
    ops = {"frequency": spectrogram.mirror_frequency, "time": lambda a: a.flip(-2)}
    with torch.no_grad():
        p = pipe.probabilities(x)
        for f in flips:
            torch.testing.assert_close(pipe.probabilities(ops[f](x)), ops[f](p))
        views = [x]
        for f in flips:
            views += [ops[f](v) for v in views]
        manual = 0
        for k, v in enumerate(views):
            q = tiny_pipe.probabilities(v)
            for bit, f in enumerate(flips):  # each view's own flips, applied again, undo it
                if k >> bit & 1:
                    q = ops[f](q)
            manual = manual + q / len(views)
        torch.testing.assert_close(p, manual)
        torch.testing.assert_close(torch.jit.script(pipe)(x), pipe(x))


def test_cli_export_with_flips_records_them(tmp_path):
    out = tmp_path / "flip"
    assert cli_main(["export", "--random", "--config", "tiny", "--out", str(out),
                     "--flips", "frequency", "time"]) == 0
    m = load_model(out.with_suffix(".yaml"), device="cpu")
    assert m.card["sampler"]["flips"] == ["frequency", "time"]
    assert m.card["sampler"]["steps"] == 2  # the sampler under the views
    cls, conf = m(np.random.default_rng(0).random((1, 3, 256, 256), np.float32))
    assert cls.shape == (1, 256, 256) and float(conf.min()) > 0
    with pytest.raises(ValueError, match="unknown flip 'sideways'"):
        build_pipeline(build_model(load_config("tiny")), load_config("tiny"), flips=["sideways"])


def test_load_model_with_flips_wraps_the_scripted_pipeline(exported, tiny_pipe):
    """Flips at load time (the segmenter's Flips parameter) give what a flip-averaged export
    gives: the scripted pipeline keeps probabilities() for this."""
    from gr_specdiff.model.pipeline import FlipAveraged

    ts, _card = exported
    m = load_model(ts, device="cpu", flips=["frequency", "time"])
    assert m.flips == ["frequency", "time"] and "flips" in repr(m)
    assert load_model(ts, device="cpu").flips == []
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        cls, conf = FlipAveraged(tiny_pipe, ["frequency", "time"])(x)
    got_cls, got_conf = m(x.numpy())
    np.testing.assert_array_equal(got_cls, cls.numpy())
    np.testing.assert_allclose(got_conf, conf.numpy(), atol=1e-6)


def test_cli_export_average_is_the_mean_of_the_weights(tmp_path):
    """--average (a model soup): the exported weights are the element-wise mean of the runs',
    integer buffers the first run's, and the card names what was averaged."""
    cfg = load_config("tiny")
    sds = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model(cfg)
        for m in model.modules():  # distinct running stats, so buffers are averaged too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.num_batches_tracked.fill_(seed + 5)
        sds.append(model.state_dict())
        torch.save({"step": 1, "config": cfg, "model": sds[-1], "ema": sds[-1]},
                   tmp_path / f"r{seed}.pt")
    out = tmp_path / "soup"
    assert cli_main(["export", "--checkpoint", str(tmp_path / "r0.pt"), "--average",
                     str(tmp_path / "r1.pt"), "--out", str(out)]) == 0
    m = load_model(out.with_suffix(".yaml"), device="cpu")
    assert m.card["training"]["averaged_with"] == [str(tmp_path / "r1.pt")]
    got = m.module.state_dict()
    for k, v in sds[0].items():
        want = (v + sds[1][k]) / 2 if v.is_floating_point() else v
        torch.testing.assert_close(got[k], want, msg=k)
    first = "encoder.fs1.conv1.0.weight"
    assert not torch.equal(sds[0][first], sds[1][first])  # two different runs
    # A soup has no checkpoint of its own: the accuracy-vs-steps sweep (`specdiff eval
    # --checkpoint`) loads the exported weights and the card's config instead.
    from gr_specdiff.model.factory import load_trained

    soup, soup_cfg = load_trained(out.with_suffix(".ts"))
    assert soup_cfg["model"] == cfg["model"] and not soup.training
    for k, v in soup.state_dict().items():
        torch.testing.assert_close(v, got[k], msg=k)
    assert cli_main(["export", "--random", "--config", "tiny", "--average",
                     str(tmp_path / "r1.pt"), "--out", str(tmp_path / "bad")]) == 2


def test_cli_export_again_from_an_exported_model(tmp_path):
    """An exported model re-exports with another sampler (its card supplies config and
    training record) and averages with a checkpoint; --no-ema has no meaning there."""
    first = tmp_path / "first"
    assert cli_main(["export", "--random", "--config", "tiny", "--out", str(first)]) == 0
    again = tmp_path / "again"
    assert cli_main(["export", "--checkpoint", str(first.with_suffix(".yaml")), "--steps", "1",
                     "--out", str(again)]) == 0
    a, b = (load_model(p.with_suffix(".yaml"), device="cpu") for p in (first, again))
    assert b.card["sampler"]["steps"] == 1 and a.card["sampler"]["steps"] == 2
    assert b.card["training"]["exported_from"]["sha256"] == a.card["sha256"]
    assert b.card["training"]["note"] == a.card["training"]["note"]  # the record carries over
    cfg = load_config("tiny")
    for k in build_model(cfg).state_dict():  # the network's weights; the sampler's differ
        torch.testing.assert_close(b.module.state_dict()[k], a.module.state_dict()[k])
    torch.manual_seed(3)
    other = build_model(cfg).state_dict()
    torch.save({"step": 1, "config": cfg, "model": other, "ema": other}, tmp_path / "o.pt")
    mixed = tmp_path / "mixed"
    assert cli_main(["export", "--checkpoint", str(again.with_suffix(".ts")), "--average",
                     str(tmp_path / "o.pt"), "--out", str(mixed)]) == 0
    k = "encoder.fs1.conv1.0.weight"
    torch.testing.assert_close(load_model(mixed.with_suffix(".yaml"), device="cpu")
                               .module.state_dict()[k], (other[k] + a.module.state_dict()[k]) / 2)
    assert cli_main(["export", "--checkpoint", str(again.with_suffix(".yaml")), "--no-ema",
                     "--out", str(tmp_path / "bad")]) == 2


@pytest.mark.parametrize("native", [True, False])
def test_load_model_in_bfloat16_where_the_cpu_has_it(exported, monkeypatch, caplog, native):
    """``precision='bfloat16'`` runs the model under bfloat16 autocast: the same classes to
    within rounding, confidences that differ by rounding only; a CPU without native bfloat16
    stays in float32 and the log says why; an unknown precision is refused by name."""
    import gr_specdiff.model.export as export

    monkeypatch.setattr(export, "cpu_has_native_bf16", lambda: native)
    ts, _card = exported
    x = np.random.default_rng(1).random((2, 3, 64, 64), dtype=np.float32)
    ref_cls, ref_conf = load_model(ts, device="cpu")(x)
    with caplog.at_level(logging.WARNING):
        m = load_model(ts, device="cpu", precision="bfloat16")
    cls, conf = m(x)
    assert cls.dtype == np.uint8 and conf.dtype == np.float32
    if native:
        assert m.precision == "bfloat16" and "bfloat16" in repr(m)
        assert not np.array_equal(conf, ref_conf)  # computed in bfloat16, not float32
        np.testing.assert_allclose(conf, ref_conf, atol=0.05)
        assert (cls == ref_cls).mean() > 0.9
    else:
        assert m.precision == "float32" and "no native bfloat16" in caplog.text
        np.testing.assert_array_equal(cls, ref_cls)
    with pytest.raises(ModelLoadError, match="precision must be one of float32, bfloat16"):
        load_model(ts, device="cpu", precision="float16")
