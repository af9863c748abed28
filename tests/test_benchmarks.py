# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark scripts (benchmarks/): each starts and explains itself, and the pieces of
their arithmetic that a report's numbers rest on are checked on cases with a known answer.
The full runs are benchmarks, not tests (docs/RESULTS.md gives their commands)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
#: The runnable ones (the rest are helpers they import).
SCRIPTS = [p for p in BENCHMARKS if '__name__ == "__main__"' in p.read_text()]


def _load(name: str):
    path = next(p for p in BENCHMARKS if p.stem == name)
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_answers_help(script):
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_class_bias_fit_undoes_a_shifted_class():
    """A model whose log-probabilities for one class were pushed down by 1.5 predicts it too
    rarely; the fitted bias pushes it back up and gives back the IoU the shift took."""
    cb = _load("class_bias")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (6, 256, 256)).astype(np.uint8)
    logits = rng.normal(0.0, 1.0, (6, 4, 256, 256)) + 2.0 * np.eye(4)[labels].transpose(0, 3, 1, 2)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    shifted = logp.copy()
    shifted[:, 2] -= 1.5
    fair = cb.scores(logp.astype(np.float16), labels, np.zeros(4))["mean_iou"]
    before = cb.scores(shifted.astype(np.float16), labels, np.zeros(4))["mean_iou"]
    bias = cb.fit_bias(shifted.astype(np.float16), labels)
    after = cb.scores(shifted.astype(np.float16), labels, bias)["mean_iou"]
    assert bias[0] == 0 and bias[2] > 1.0
    assert before < fair - 0.02 and after > fair - 0.005


def test_pixel_evidence_sees_strong_pixels_and_not_weak_ones():
    """A labelled pixel above the clean noise's 99th percentile is visible, one at the noise
    level is not; noise beside a signal (its leakage) is kept out of the reference, so a
    bright skirt next to a carrier does not hide the carrier."""
    pe = _load("pixel_evidence")
    rng = np.random.default_rng(0)
    feats = rng.uniform(0.0, 0.2, (3, 256, 256)).astype(np.float32)
    labels = np.zeros((256, 256), np.uint8)
    labels[100:110, 50:90] = 1                  # a carrier: strong in its left half only
    feats[0, 100:110, 50:70] = 0.6
    feats[:2, 100:110, 90:98] = 0.9             # its skirt, labelled noise, brighter still
    visible = pe.visible_mask(feats, labels, noise_class=0, ignore=255)
    assert visible[100:110, 50:70].all()
    assert visible[100:110, 70:90].mean() < 0.1
    assert visible[labels == 0].mean() < 0.05
    assert pe.visible_mask(feats, np.ones_like(labels), 0, 255) is None  # no noise to refer to


def test_carrier_vote_gives_each_column_or_run_one_carrier_class():
    """NR/LTE pixels take their column's (or their run of columns') more probable carrier
    class; noise and radar pixels, and so detection, are left as they were."""
    cv = _load("carrier_vote")
    NOISE, NR, LTE, RADAR = range(4)
    truth = np.array([[NR, NR, NOISE, NR, LTE, LTE],
                      [NR, NR, NOISE, NR, LTE, LTE],
                      [LTE, LTE, NOISE, NR, LTE, LTE],
                      [RADAR, RADAR, NOISE, LTE, LTE, LTE]])
    probs = np.full((4, 4, 6), 0.05)
    np.put_along_axis(probs, truth[None], 0.85, axis=0)
    logp = np.log(probs)
    # Columns 0-1 and 3-5 are two runs (column 2 is noise between them).
    by_column, by_run = cv.vote(logp, "column"), cv.vote(logp, "run")
    assert (by_column[:3, :2] == NR).all() and (by_column[:, 3] == NR).all()
    assert (by_column[:, 4:] == LTE).all()
    assert (by_run[:3, :2] == NR).all() and (by_run[:, 3:] == LTE).all()
    for voted in (by_column, by_run):
        assert (voted[3, :2] == RADAR).all() and (voted[:, 2] == NOISE).all()
    with pytest.raises(ValueError, match="column or run"):
        cv.vote(logp, "row")


def test_extent_oracle_paints_whole_carrier_columns():
    """The extent oracle fills every row of each column a carrier class labels and keeps
    radar as labelled, so it finds every carrier pixel and pays only in false alarms."""
    pe = _load("pixel_evidence")
    labels = np.zeros((8, 8), np.uint8)
    labels[::2, 1:3] = 1                       # NR in every other row (TDD)
    labels[3, 5:7] = 2                         # LTE in one row
    labels[6, 0] = 3                           # a radar pulse
    out = pe.extent_oracle(labels)
    assert (out[:, 1:3] == 1).all() and (out[:, 5:7] == 2).all()
    assert out[6, 0] == 3 and (out[:, [0, 3, 4, 7]][labels[:, [0, 3, 4, 7]] == 0] == 0).all()
