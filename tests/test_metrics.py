# SPDX-License-Identifier: GPL-3.0-or-later
"""Segmentation metrics against hand-computed values."""

import numpy as np
import pytest

from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion, occupancy_iou


def test_confusion_matrix_hand_computed():
    target = np.array([[0, 0, 1, 1], [2, 2, 3, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 3, 3]])
    cm = confusion_matrix(pred, target)
    want = np.zeros((4, 4), int)
    want[0, 0] = 1
    want[0, 1] = 1
    want[1, 1] = 2
    want[2, 2] = 1
    want[2, 0] = 1
    want[3, 3] = 1  # the IGNORE pixel is not counted
    np.testing.assert_array_equal(cm, want)


def test_metrics_hand_computed():
    target = np.array([[0, 0, 1, 1], [2, 2, 3, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 3, 3]])
    m = metrics_from_confusion(confusion_matrix(pred, target))
    # per-class accuracy: noise 1/2, NR 2/2, LTE 1/2, radar 1/1
    assert m["per_class_accuracy"] == {"noise": 0.5, "NR": 1.0, "LTE": 0.5, "radar": 1.0}
    assert m["mean_accuracy"] == pytest.approx(0.75)
    # IoU: noise tp1 / (2 + 2 - 1) = 1/3; NR 2 / (2 + 3 - 2) = 2/3; LTE 1/2; radar 1/1
    assert m["per_class_iou"]["noise"] == pytest.approx(1 / 3)
    assert m["per_class_iou"]["NR"] == pytest.approx(2 / 3)
    assert m["per_class_iou"]["LTE"] == pytest.approx(0.5)
    assert m["per_class_iou"]["radar"] == pytest.approx(1.0)
    assert m["mean_iou"] == pytest.approx((1 / 3 + 2 / 3 + 0.5 + 1) / 4)
    assert m["global_accuracy"] == pytest.approx(5 / 7)
    assert m["pixels"] == 7


def test_absent_class_is_left_out():
    target = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 1, 0])
    m = metrics_from_confusion(confusion_matrix(pred, target))
    assert m["per_class_accuracy"]["LTE"] is None and m["per_class_iou"]["radar"] is None
    assert m["mean_accuracy"] == pytest.approx((1 + 0.5) / 2)
    assert m["mean_iou"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_empty_and_shape_errors():
    m = metrics_from_confusion(np.zeros((4, 4)))
    assert m["mean_accuracy"] is None and m["global_accuracy"] is None
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros(3), np.zeros(4))


def test_occupancy_iou():
    target = np.array([0, 0, 1, 3, 2, 255])
    pred_signal = np.array([False, True, True, True, False, True])
    o = occupancy_iou(pred_signal, target)
    # signal: pred {1,2,3}, truth {2,3,4}: inter 2, union 4; noise: pred {0,4}, truth {0,1}
    assert o["signal"] == pytest.approx(0.5)
    assert o["noise"] == pytest.approx(1 / 3)
    assert o["mean"] == pytest.approx((0.5 + 1 / 3) / 2)


def test_eval_cli_writes_report(tmp_path, capsys):
    """`specdiff eval` on a random tiny model and 4 synthetic frames: JSON, Markdown, PNGs."""
    import json

    from gr_specdiff.cli import main

    model = tmp_path / "rnd"
    assert main(["export", "--random", "--config", "tiny", "--out", str(model)]) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--model", str(model) + ".ts", "--data", "synthetic", "--frames", "4",
                 "--batch", "2", "--out", str(out), "--sweep-steps"]) == 0
    rep = json.loads((out / "metrics.json").read_text())
    assert rep["frames"] == 4 and rep["latency"]["ms_per_frame"] > 0
    assert 0 <= rep["metrics"]["global_accuracy"] <= 1
    assert rep["per_snr"] and rep["per_snr"][0]["frames"] == 4
    assert "mean IoU" in (out / "report.md").read_text()
    for png in ("gallery.png", "confusion.png", "per_snr.png"):
        assert (out / png).stat().st_size > 1000
    assert main(["eval", "--model", "energy", "--data", "synthetic", "--frames", "2",
                 "--out", str(tmp_path / "energy")]) == 0
    rep = json.loads((tmp_path / "energy" / "metrics.json").read_text())
    assert 0 <= rep["occupancy_iou"]["mean"] <= 1
    assert main(["eval", "--model", str(model) + ".ts", "--data", "synthetic", "--frames", "2",
                 "--precision", "bfloat16", "--out", str(tmp_path / "bf16")]) == 0
    rep = json.loads((tmp_path / "bf16" / "metrics.json").read_text())
    assert rep["precision"] in ("bfloat16", "float32")  # float32 on a CPU without bfloat16
    assert main(["eval", "--model", "energy", "--data", "synthetic", "--frames", "2",
                 "--precision", "bfloat16", "--out", str(tmp_path / "bad")]) == 1
    assert "--precision applies to exported models" in capsys.readouterr().err


def test_per_snr_bins_keep_noise_free_frames_apart():
    """Noise-free frames (the paper protocol records 100 dB) land in an open last bin of their
    own, not mixed into the 30..50 dB bin."""
    from gr_specdiff.evaluate import _markdown, evaluate

    class Frames:
        snrs = [100.0, 35.0, -8.0, -10.0, 30.0]

        def __len__(self):
            return len(self.snrs)

        def __getitem__(self, i):
            return np.zeros((3, 8, 8), np.float32), np.full((8, 8), i % 4, np.int64), i

        def meta(self, i):
            return {"snr_db": self.snrs[i]}

    rep = evaluate(lambda x: (np.zeros((len(x), 8, 8), np.uint8), None), Frames(), batch=2)
    bins = {(b["snr_lo"], b["snr_hi"]): b["frames"] for b in rep["per_snr"]}
    assert bins == {(-10.0, -5.0): 2, (30.0, 50.0): 2, (50.0, None): 1}  # [lo, hi) bins
    header = {"model": "zeros", "data": "frames", "latency": {"batch": 2, "ms_per_frame": 1.0}}
    assert "| >= 50 | 1 |" in _markdown({**rep, **header})


def test_per_rate_keeps_each_rate_confusion():
    """Per sample rate, the report keeps the confusion matrix and per-class accuracy, so a gap
    between rates can be read as detection (vs noise) or classification (NR vs LTE) errors."""
    from gr_specdiff.evaluate import evaluate

    class Frames:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.zeros((3, 8, 8), np.float32), np.full((8, 8), 1 + i % 2, np.int64), i

        def meta(self, i):
            return {"snr_db": 10.0, "sample_rate": (61.44e6, 20e6)[i % 2]}

    rep = evaluate(lambda x: (np.ones((len(x), 8, 8), np.uint8), None), Frames(), batch=3)
    fast, slow = rep["per_rate"]
    assert (fast["sample_rate"], slow["sample_rate"]) == (61.44e6, 20e6)
    assert fast["confusion_matrix"][1][1] == 128 and slow["confusion_matrix"][2][1] == 128
    assert fast["per_class_accuracy"]["NR"] == 1.0 and slow["per_class_accuracy"]["LTE"] == 0.0
