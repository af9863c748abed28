# SPDX-License-Identifier: GPL-3.0-or-later
"""Every example flowgraph compiles with grcc against grc/*.block.yml; the headless one runs,
and the Qt scene example starts (offscreen) and runs without errors for a few seconds."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.grc"))
sys.path.insert(0, str(Path(__file__).parent))

pytestmark = [pytest.mark.gnuradio,
              pytest.mark.skipif(shutil.which("grcc") is None, reason="grcc not installed")]


def _env():
    env = dict(os.environ, GRC_BLOCKS_PATH=str(ROOT / "grc"), QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "python"), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("grc")
    res = subprocess.run(["grcc", "-o", str(out), *map(str, EXAMPLES)], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return out


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"scene_waterfall", "sigmf_playback", "usrp_live", "hackrf_live"} <= names


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_compiles(compiled, name):
    py = compiled / f"{name}.py"
    assert py.exists()
    src = py.read_text()
    assert "import gr_specdiff" in src
    compile(src, str(py), "exec")


def test_block_yamls_load_cleanly():
    res = subprocess.run(["grcc", "--help"], env=_env(), capture_output=True, text=True)
    assert res.returncode == 0
    import yaml

    for yml in (ROOT / "grc").glob("*.block.yml"):
        d = yaml.safe_load(yml.read_text())
        name = yml.name[len("gr_specdiff_"):-len(".block.yml")]
        assert d["id"] == f"gr_specdiff_{name}"
        assert d["category"] == "[SpecDiff]"
        assert f"gr_specdiff.{name}(" in d["templates"]["make"]
        assert d["documentation"] and d["file_format"] == 1
        assert (ROOT / "python" / "gr_specdiff" / "blocks" / f"{name}.py").exists()


def test_sigmf_playback_runs_headless(compiled, tmp_path):
    from qa_sigmf import write_recording
    from runtime_fixtures import export_threshold_model, tone_frames

    model = export_threshold_model(tmp_path / "m.ts", frame_seconds=0.0015)
    iq = (0.05 * tone_frames(4000, 1e6, 200e3)).astype(np.complex64)
    rec = write_recording(str(tmp_path / "rec"), iq)
    out = tmp_path / "annotated.sigmf-meta"
    res = subprocess.run([sys.executable, str(compiled / "sigmf_playback.py"), "-r", rec,
                          "-o", str(out), "-m", str(model)], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    meta = json.loads(out.read_text())
    assert meta["global"]["core:sample_rate"] == 1e6
    labels = {a["core:label"] for a in meta["annotations"]}
    assert "NR" in labels
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_scene_waterfall_starts_offscreen(compiled, tmp_path):
    from runtime_fixtures import export_threshold_model

    export_threshold_model(tmp_path / "specdiff_default.ts", sample_rates=[20e6],
                           frame_seconds=0.04)
    env = dict(_env(), GR_SPECDIFF_MODELS=str(tmp_path))
    proc = subprocess.Popen([sys.executable, str(compiled / "scene_waterfall.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=20)
        pytest.fail(f"the Qt flowgraph exited early ({proc.returncode}):\n{out[-3000:]}")
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:  # a loaded machine may need long to tear a Qt flowgraph down
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert "Traceback" not in out, out[-3000:]
