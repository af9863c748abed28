# SPDX-License-Identifier: GPL-3.0-or-later
"""Every model shipped in models/ loads, matches its card, and really segments a scene.

A broken, truncated or untrained model can never ship silently: the sha256 in the card must
match the file, and the model must segment freshly generated high-SNR NR + LTE + radar scenes
(seeds never used for training) at its highest, lowest and a middle sample rate, with a mean
IoU above ``MIN_MEAN_IOU``. Measured on these three scenes (docs/RESULTS.md): the shipped
default model 0.706 (stage 14; stage 13: 0.704, stage 12: 0.702), the shipped lite model
0.684 (lite stage L9; stage 8: 0.681, stage 7: 0.681), an "all noise" guess 0.169 (a randomly
initialised one: 0.119 on the version 1 labels).

``models/paper_protocol/`` holds the model trained on the seed authors' protocol for the
comparison with the paper (not installed, not loaded by the blocks): it must segment fresh
paper-protocol scenes with mean IoU above ``MIN_MEAN_IOU_PAPER``. Measured: 0.979; the
realistic default model 0.218, "all noise" 0.126.
"""

from pathlib import Path

import numpy as np
import pytest

from gr_specdiff import spectrogram
from gr_specdiff.evaluate import confusion_matrix, metrics_from_confusion
from gr_specdiff.model.export import load_model, sha256_file
from gr_specdiff.scene import LTESpec, NRSpec, RadarSpec, SceneSpec, generate

MODELS = Path(__file__).resolve().parents[1] / "models"
SHIPPED = sorted(MODELS.glob("specdiff_*.yaml"))
MIN_MEAN_IOU = 0.5
MIN_MEAN_IOU_PAPER = 0.8
PAPER_PROTOCOL = sorted((MODELS / "paper_protocol").glob("*.yaml"))
SNR_DB = 20.0
SCENE_SEEDS = (901, 902, 903)
#: Narrow carriers, so NR, LTE and radar all fit even at 15.36 MS/s.
SCENE = SceneSpec(nr=[NRSpec(snr_db=SNR_DB, params={"scs_khz": 30, "bw_mhz": 10})],
                  lte=[LTESpec(snr_db=SNR_DB, params={"bw_mhz": 3})],
                  radar=[RadarSpec(snr_db=SNR_DB)])


def test_a_default_model_ships():
    assert (MODELS / "specdiff_default.ts").is_file(), "models/specdiff_default.ts is missing"
    assert (MODELS / "specdiff_default.yaml").is_file(), "models/specdiff_default.yaml is missing"


def test_the_lite_model_ships_under_its_name_and_is_lighter():
    """``--model lite`` (CLI, GRC) must find a shipped model with fewer parameters than the
    default: it is what a weak CPU runs live."""
    from gr_specdiff.runtime import resolve_model_path

    lite, default = resolve_model_path("lite"), resolve_model_path("")
    assert lite == MODELS / "specdiff_lite.ts" and lite.is_file()
    params = {p: load_model(p, device="cpu").card["model"]["parameters"] for p in (lite, default)}
    assert params[lite] < params[default], params


@pytest.fixture(scope="module", params=SHIPPED, ids=lambda p: p.stem)
def shipped(request):
    return load_model(request.param, device="cpu")


def test_card_matches_file(shipped):
    card = shipped.card
    assert card["sha256"] == sha256_file(MODELS / f"{card['name']}.ts")
    assert card["spectrogram"]["version"] == spectrogram.VERSION
    assert list(card["classes"]) == ["noise", "NR", "LTE", "radar"]
    assert card["sample_rates"], "the card must list the sample rates the model was trained on"


def test_segments_fresh_high_snr_scene(shipped):
    rates = sorted(set(shipped.sample_rates))
    cm = np.zeros((4, 4), np.int64)
    for seed, rate in zip(SCENE_SEEDS, (rates[-1], rates[0], rates[len(rates) // 2])):
        scene = generate(np.random.default_rng(seed), sample_rate=rate,
                         frame_seconds=shipped.frame_seconds, spec=SCENE)
        assert {s.kind for s in scene.signals} == {"NR", "LTE", "radar"}
        class_map, confidence = shipped(shipped.input(scene.features(), rate))
        assert class_map.shape == (1, 256, 256) and confidence.shape == (1, 256, 256)
        cm += confusion_matrix(class_map[0], scene.class_map)
    report = metrics_from_confusion(cm)
    assert report["mean_iou"] > MIN_MEAN_IOU, report


@pytest.mark.parametrize("card_path", PAPER_PROTOCOL, ids=lambda p: p.stem)
def test_paper_protocol_model_segments_paper_scenes(card_path):
    model = load_model(card_path, device="cpu")
    assert model.card["sha256"] == sha256_file(card_path.with_suffix(".ts"))
    assert model.frame_seconds < 0.003  # 3 radar PRIs, not our 40 ms frames
    cm = np.zeros((4, 4), np.int64)
    for seed in SCENE_SEEDS:
        scene = generate(np.random.default_rng(seed), 61.44e6, spec=SCENE, preset="paper")
        class_map, _ = model(model.input(scene.features(), 61.44e6))
        cm += confusion_matrix(class_map[0], scene.class_map)
    report = metrics_from_confusion(cm)
    assert report["mean_iou"] > MIN_MEAN_IOU_PAPER, report
