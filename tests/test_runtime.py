# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of gr_specdiff.runtime (no GNU Radio)."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gr_specdiff import LTE, NR
from gr_specdiff import runtime as rt
from gr_specdiff import spectrogram as sg


@pytest.mark.parametrize("chunk", [1, 1000, 4096, 37, 2999])
def test_framebuffer_exact_frames_any_chunking(chunk):
    n, frame = 10_500 if chunk > 1 else 4_000, 1_500
    x = np.arange(n).astype(np.complex64)
    fb = rt.FrameBuffer(frame)
    got = []
    for i in range(0, n, chunk):
        got += [(s, f.copy()) for s, f in fb.push(x[i:i + chunk], i)]
    assert [s for s, _ in got] == list(range(0, n - frame + 1, frame))
    for s, f in got:
        np.testing.assert_array_equal(f, x[s:s + frame])
    assert fb.fill == n % frame


def test_framebuffer_reset_restarts_at_offset():
    fb = rt.FrameBuffer(100)
    assert fb.push(np.ones(50, np.complex64), 0) == []
    assert fb.reset(50) == 50
    out = fb.push(np.ones(100, np.complex64), 50)
    assert [s for s, _ in out] == [50]
    assert fb.discarded == 50


def test_detections_of_a_box():
    geo = sg.geometry(40_000, 1e6)
    cmap = np.zeros((256, 256), np.uint8)
    cmap[64:128, 100:140] = NR
    cmap[200:201, 10:12] = LTE  # 2 pixels: below min_pixels
    dets = rt.detections(cmap, geo, frame_offset=1000, t0=5.0)
    assert len(dets) == 1
    d = dets[0]
    assert (d.label, d.row_start, d.row_stop, d.col_start, d.col_stop) == ("NR", 64, 128,
                                                                           100, 140)
    cw = 1e6 / 256
    assert d.f_lower == pytest.approx((100 - 128.5) * cw)
    assert d.f_upper == pytest.approx((139 - 128 + 0.5) * cw)
    assert d.sample_start == 1000 + geo.row_sample_edges[64]
    assert d.sample_count == geo.row_sample_edges[128] - geo.row_sample_edges[64]
    assert d.t_start == pytest.approx(5.0 + geo.row_sample_edges[64] / 1e6)
    # padding rows are ignored
    assert rt.detections(cmap, geo, n_valid=int(geo.row_sample_edges[50])) == []


def test_occupancy():
    cmap = np.zeros((256, 256), np.uint8)
    cmap[:128, 10] = NR
    cmap[:, 20] = LTE
    occ = rt.occupancy(cmap)
    assert occ.shape == (4, 256)
    assert occ[NR, 10] == 0.5 and occ[LTE, 20] == 1.0 and occ[0, 30] == 1.0
    np.testing.assert_allclose(occ.sum(axis=0), 1.0)


@pytest.mark.slow
def test_detections_match_scene_truth_within_two_columns():
    from gr_specdiff import scene

    rate, secs = 15.36e6, 0.01
    checked = 0
    for seed in range(4):
        spec = scene.SceneSpec(  # fully loaded carriers: the label spans the occupied band
            nr=[scene.NRSpec(snr_db=20, params={"pdsch_load": 1.0, "duplex": "FDD"})],
            lte=[scene.LTESpec(snr_db=20, params={"pdsch_load": 1.0})])
        s = scene.generate(np.random.default_rng(seed), rate, secs, spec)
        geo = sg.geometry(len(s.iq), rate)
        dets = rt.detections(s.class_map, geo)
        for truth in s.signals:
            if truth.kind not in ("NR", "LTE"):
                continue
            same = [d for d in dets if d.label == truth.kind]
            assert same, f"seed {seed}: no {truth.kind} detection"
            overlapping = [d for d in same if d.f_upper > truth.f_lower
                           and d.f_lower < truth.f_upper]
            best = max(overlapping, key=lambda d: d.n_pixels)  # the main burst
            cw = geo.col_width
            lo = max(truth.f_lower, -rate / 2)  # a carrier may reach past the band edge
            hi = min(truth.f_upper, rate / 2 - cw / 2)
            assert abs(best.f_lower - lo) <= 2 * cw, (seed, best, truth)
            assert abs(best.f_upper - hi) <= 2 * cw, (seed, best, truth)
            checked += 1
    assert checked >= 6


def test_pad_frame_keeps_noise_level():
    rng = np.random.default_rng(0)
    x = ((rng.standard_normal(5000) + 1j * rng.standard_normal(5000)) * 0.1).astype(
        np.complex64)
    y = rt.pad_frame(x, 40_000)
    assert len(y) == 40_000
    np.testing.assert_array_equal(y[:5000], x)
    ratio = np.mean(np.abs(y[5000:]) ** 2) / np.mean(np.abs(x) ** 2)
    assert 0.7 < ratio < 1.4
    assert len(rt.pad_frame(x[:10], 2000)) == 2000  # shorter than one FFT


def test_worker_drop_never_waits_and_counts():
    done = []
    w = rt.InferenceWorker(lambda j: time.sleep(0.05) or j, policy="drop", depth=1,
                           on_result=lambda j, r: done.append(j))
    t0 = time.monotonic()
    for i in range(20):
        assert w.submit(i)
    assert time.monotonic() - t0 < 0.05
    w.wait_idle(5)
    assert w.dropped + len(done) == 20 and w.dropped >= 15
    assert done[-1] == 19  # the newest frame survives (oldest dropped)
    w.stop()


def test_worker_block_processes_everything_in_order():
    done = []
    w = rt.InferenceWorker(lambda j: j * 2, policy="block", depth=1,
                           on_result=lambda j, r: done.append(r))
    for i in range(50):
        w.submit(i)
    w.wait_idle(5)
    assert done == [2 * i for i in range(50)] and w.dropped == 0
    errors = []
    w2 = rt.InferenceWorker(lambda j: 1 / 0, on_error=lambda j, e: errors.append(e))
    w2.submit(1)
    w2.wait_idle(5)
    assert w2.errors == 1 and isinstance(errors[0], ZeroDivisionError)
    w.stop()
    w2.stop()
    assert not any(t.name == "specdiff-worker" and t.is_alive() for t in threading.enumerate()
                   if t in (w._thread, w2._thread))


def test_check_sample_rate_and_frame_length():
    card = {"name": "m", "sample_rates": [61.44e6, 20e6], "frame_seconds": 0.04}
    assert rt.check_sample_rate(card, 61.44e6) is None
    assert rt.check_sample_rate(card, 20e6 * (1 + 1e-5)) is None
    assert "does not match" in rt.check_sample_rate(card, 10e6)
    assert rt.check_sample_rate({"sample_rates": []}, 1.0) is None
    assert rt.frame_length(card, 61.44e6) == 2_457_600
    assert rt.frame_length(card, 1e6, 0.0015) == 1500
    with pytest.raises(ValueError, match="at least"):
        rt.frame_length(card, 1e3)
    # Another frame length than the model's changes the image's time axis under it.
    assert rt.check_frame_seconds(card, 0.0) is None
    assert rt.check_frame_seconds(card, 0.04) is None
    assert "differs from the 40 ms" in rt.check_frame_seconds(card, 0.12)


def test_default_model_path_env(tmp_path, monkeypatch):
    (tmp_path / rt.DEFAULT_MODEL_NAME).write_bytes(b"x")
    monkeypatch.setenv("GR_SPECDIFF_MODELS", str(tmp_path))
    assert rt.default_model_path() == tmp_path / rt.DEFAULT_MODEL_NAME
    monkeypatch.delenv("GR_SPECDIFF_MODELS")
    assert rt.default_model_path().name == rt.DEFAULT_MODEL_NAME
    # Shipped models by name (the Model field of the segmenter block), paths as they are.
    monkeypatch.setenv("GR_SPECDIFF_MODELS", str(tmp_path))
    (tmp_path / "specdiff_fast.ts").write_bytes(b"x")
    assert rt.resolve_model_path("fast") == tmp_path / "specdiff_fast.ts"
    assert rt.resolve_model_path("specdiff_fast") == tmp_path / "specdiff_fast.ts"
    assert rt.resolve_model_path(" default ") == tmp_path / rt.DEFAULT_MODEL_NAME
    assert rt.resolve_model_path("runs/m.ts") == Path("runs/m.ts")
    monkeypatch.chdir(tmp_path)  # a model of that name here is the user's, not the shipped one
    (tmp_path / "mine.ts").write_bytes(b"x")
    assert rt.resolve_model_path("mine") == Path("mine")
    with pytest.raises(ValueError, match="does not exist"):
        rt.open_model(tmp_path / "nope.ts")


def test_open_model_by_stem(tmp_path):
    """``models/<name>`` works as it does for `specdiff eval`: the stem names the .ts + card."""
    from runtime_fixtures import export_threshold_model

    export_threshold_model(tmp_path / "m")
    assert rt.open_model(tmp_path / "m", device="cpu").card["name"] == "test-threshold"


def test_format_table_and_png(tmp_path):
    geo = sg.geometry(40_000, 1e6)
    cmap = np.zeros((256, 256), np.uint8)
    cmap[10:200, 30:90] = NR
    dets = rt.detections(cmap, geo)
    table = rt.format_table(dets, center_freq=1e9)
    assert "NR" in table and "999.8" in table
    frame = {"db_image": np.full(65536, 10, np.float32), "class_map": cmap.ravel(),
             "center_freq": 1e9, "sample_rate": 1e6, "rx_time": 0.0, "n_samples": 40_000,
             "padded": 0, "detections": [{**d.to_dict(1e9), "class": d.label} for d in dets]}
    png = rt.render_overlay_png(tmp_path / "x.png", [frame])
    assert png.stat().st_size > 1000


def test_chunk_pacer_waits_only_for_what_the_buffer_has_held():
    pacer = rt.ChunkPacer(61.44e6, seconds=1e-3)
    assert pacer.delay(4096) == 0.0  # nothing larger seen yet: the buffer may be that small
    assert pacer.delay(200_000) == 0.0  # behind: never pause
    # The buffer has held 200k samples: gather 1 ms (61,440 samples) per call.
    assert pacer.delay(1_440) == pytest.approx(60_000 / 61.44e6)
    assert pacer.delay(61_440) == 0.0
    small = rt.ChunkPacer(61.44e6)
    small.delay(8192)  # an 8k-item buffer: aim for 3/4 of it, not for 1 ms of signal
    assert small.delay(2048) == pytest.approx((0.75 * 8192 - 2048) / 61.44e6)
    assert rt.ChunkPacer(0.0).delay(10) == 0.0  # rate unknown: no pacing
    # No new input while frames are in flight: wait (for a result), do not spin.
    assert pacer.delay(0, holding=True) == pytest.approx(1e-3)
    assert pacer.delay(0) == 0.0


def test_detection_table_round_trip():
    """The frames message's detection table (one array per field) gives back every
    detection's message dict, with the class named from its index."""
    geo = sg.geometry(800_000, 20e6)
    cmap = np.zeros((256, 256), np.uint8)
    cmap[10:60, 20:40] = 1
    cmap[100:120, 200:250] = 3
    dets = rt.detections(cmap, geo, frame_offset=1000, t0=5.0)
    table = rt.detection_columns(dets, 2.4e9)
    assert {c.dtype for c in table.values()} == {np.dtype(np.float64)}
    want = []
    for d in dets:
        row = {k: v for k, v in d.to_dict(2.4e9).items() if k not in ("label", "n_pixels")}
        want.append({**row, "class": d.label})
    def no_nan(rows):  # NaN != NaN: no SNR without features
        return [{k: "nan" if v != v else v for k, v in r.items()} for r in rows]

    assert no_nan(rt.detection_rows(table)) == no_nan(want)
    assert rt.detection_rows(rt.detection_columns([])) == []
    broken = dict(table, t_stop=table["t_stop"][:1])
    with pytest.raises(ValueError, match="differ in length"):
        rt.detection_rows(broken)
    with pytest.raises(ValueError, match="snr_db"):
        rt.detection_rows({k: v for k, v in table.items() if k != "snr_db"})


@pytest.mark.parametrize("text,flips", [("", ()), ("none", ()), ("frequency", ("frequency",)),
                                        ("frequency+time", ("frequency", "time")),
                                        ("time, frequency", ("time", "frequency")),
                                        (["frequency"], ("frequency",))])
def test_parse_flips_reads_what_blocks_and_command_lines_give(text, flips):
    assert rt.parse_flips(text) == flips


def test_parse_flips_names_the_unknown_flip():
    with pytest.raises(ValueError, match="unknown flip 'mirror'.*frequency, time"):
        rt.parse_flips("frequency+mirror")
