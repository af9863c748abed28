# SPDX-License-Identifier: GPL-3.0-or-later
"""`specdiff sense` and `specdiff live` end to end (subprocess, offscreen Qt)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

pytestmark = pytest.mark.gnuradio


def specdiff(*args, timeout=120):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "gr_specdiff.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from qa_sigmf import write_recording
    from runtime_fixtures import export_threshold_model, tone_frames

    d = tmp_path_factory.mktemp("cli")
    model = export_threshold_model(d / "m.ts", frame_seconds=0.0015)
    iq = (0.05 * tone_frames(4000, 1e6, 200e3)).astype(np.complex64)
    rec = write_recording(str(d / "rec"), iq, "ci16_le")
    raw = d / "raw.cu8"
    np.clip(np.round(iq.view(np.float32) * 127 + 128), 0, 255).astype(np.uint8).tofile(raw)
    return d, str(model), rec, str(raw)


def test_sense_recording(setup):
    d, model, rec, _ = setup
    res = specdiff("sense", rec, "--model", model, "--device", "cpu", "--out", str(d / "o"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "NR" in res.stdout and "padded" in res.stdout
    meta = json.loads((d / "o" / "rec.sigmf-meta").read_text())
    assert any(a["core:label"] == "NR" for a in meta["annotations"])
    assert (d / "o" / "rec.png").stat().st_size > 1000


def test_sense_raw_and_errors(setup):
    d, model, _, raw = setup
    res = specdiff("sense", raw, "--rate", "1e6", "--format", "cu8", "--freq", "915e6",
                   "--model", model, "--out", str(d / "raw"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "915.2" in res.stdout  # the tone at +200 kHz, in absolute MHz
    res = specdiff("sense", raw, "--model", model, "--out", str(d / "x"))
    assert res.returncode == 1 and "--format" in res.stderr
    res = specdiff("sense", raw, "--rate", "2e6", "--format", "cu8", "--model", model)
    assert res.returncode == 1 and "does not match the model" in res.stderr
    res = specdiff("sense", str(d / "missing.sigmf-meta"), "--model", model)
    assert res.returncode == 1 and "not found" in res.stderr
    res = specdiff("sense", raw, "--rate", "1e6", "--format", "cu8",
                   "--model", str(d / "nomodel.ts"))
    assert res.returncode == 1 and "nomodel" in res.stderr


def test_live_recording_screenshot(setup):
    d, model, rec, _ = setup
    png = d / "live.png"
    res = specdiff("live", "--recording", rec, "--model", model, "--seconds", "3",
                   "--screenshot", str(png))
    assert res.returncode == 0, res.stderr[-2000:]
    assert png.stat().st_size > 5000
    assert "frames analysed" in res.stdout
