# SPDX-License-Identifier: GPL-3.0-or-later
"""Determinism of scenes, SigMF export/import, and the ``specdiff scene`` command."""

import json

import numpy as np
import pytest

from gr_specdiff.scene import LTESpec, NRSpec, RadarSpec, SceneSpec, generate
from gr_specdiff.scene.sigmf_io import read_recording, scene_annotations, write_recording


def test_same_seed_same_bytes_different_seed_different_frame():
    a = generate(np.random.default_rng(42), 15.36e6, 0.01)
    b = generate(np.random.default_rng(42), 15.36e6, 0.01)
    c = generate(np.random.default_rng(43), 15.36e6, 0.01)
    assert a.iq.tobytes() == b.iq.tobytes()
    assert np.array_equal(a.masks, b.masks) and np.array_equal(a.class_map, b.class_map)
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    assert a.iq.tobytes() != c.iq.tobytes()


def _scene():
    spec = SceneSpec(nr=[NRSpec(snr_db=10, params={"scs_khz": 30, "bw_mhz": 20})],
                     lte=[LTESpec(snr_db=5, params={"bw_mhz": 5})],
                     radar=[RadarSpec(snr_db=20, params={"kind": "lfm"})])
    return generate(np.random.default_rng(9), 30.72e6, 0.005, spec)


@pytest.mark.parametrize("datatype", ["cf32_le", "ci16_le"])
def test_sigmf_round_trip_validates(tmp_path, datatype):
    from sigmf import sigmffile

    sc = _scene()
    center = 2.8e9
    meta_path = write_recording(tmp_path / "rec.sigmf-meta", sc.iq, sc.sample_rate, center,
                                scene_annotations(sc, center), {"specdiff:seed": 9},
                                datatype=datatype)
    f = sigmffile.fromfile(str(meta_path))  # checks the sha512 too
    f.validate()
    assert {"name": "specdiff", "version": "1.0.0", "optional": True} in f.get_global_field(
        "core:extensions")
    iq, rate, cf, ann, glob = read_recording(meta_path)
    assert rate == sc.sample_rate and cf == center and glob["specdiff:seed"] == 9
    if datatype == "cf32_le":
        assert iq.tobytes() == sc.iq.tobytes()
    else:
        peak = np.abs(sc.iq.view(np.float32)).max()
        assert np.abs(iq - sc.iq).max() < 2 * peak / 32767
    assert sorted(a["core:label"] for a in ann) == sorted(s.kind for s in sc.signals)
    by_label = {a["core:label"]: a for a in ann}
    for s in sc.signals:
        a = by_label[s.kind]
        assert a["core:freq_lower_edge"] == pytest.approx(center + s.f_lower)
        assert a["core:freq_upper_edge"] == pytest.approx(center + s.f_upper)
        assert a["core:sample_start"] == s.sample_start
        assert a["specdiff:snr_db"] == pytest.approx(s.snr_db)
        assert a["specdiff:params"]["f_center"] == pytest.approx(s.params["f_center"])


def test_read_other_datatypes_and_corrupt_metadata(tmp_path):
    x = (np.arange(8, dtype=np.uint8) * 30).astype(np.uint8)
    (tmp_path / "u.sigmf-data").write_bytes(x.tobytes())
    meta = {"global": {"core:datatype": "cu8", "core:sample_rate": 2e6, "core:version": "1.0.0"},
            "captures": [{"core:sample_start": 0, "core:frequency": 1e9}], "annotations": []}
    (tmp_path / "u.sigmf-meta").write_text(json.dumps(meta))
    iq, rate, cf, _, _ = read_recording(tmp_path / "u.sigmf-meta")
    assert len(iq) == 4 and iq[0] == np.complex64((0 - 127.5) / 128 + 1j * (30 - 127.5) / 128)
    meta["global"]["core:datatype"] = "ci8"
    (tmp_path / "u.sigmf-meta").write_text(json.dumps(meta))
    iq, *_ = read_recording(tmp_path / "u.sigmf-meta")
    assert iq[1] == np.complex64(60 / 128 + 1j * 90 / 128)
    assert iq[3] == np.complex64((180 - 256) / 128 + 1j * (210 - 256) / 128)
    for bad in ("{not json", json.dumps({"global": {"core:datatype": "rf64_be"}}),
                json.dumps({"global": {"core:datatype": "cf32_le", "core:sample_rate": -1}}),
                json.dumps({"nothing": 1})):
        (tmp_path / "u.sigmf-meta").write_text(bad)
        with pytest.raises(ValueError):
            read_recording(tmp_path / "u.sigmf-meta")
    with pytest.raises(FileNotFoundError):
        read_recording(tmp_path / "missing.sigmf-meta")


def test_scene_command_writes_recording(tmp_path, capsys):
    from gr_specdiff.cli import main

    out = tmp_path / "s.sigmf-meta"
    rc = main(["scene", "--nr", "scs_khz=15,bw_mhz=10,snr_db=12", "--radar", "kind=asr",
               "--rate", "15.36e6", "--frame-seconds", "0.005", "--seed", "2",
               "--out", str(out)])
    assert rc == 0 and out.exists()
    _, rate, cf, ann, _ = read_recording(out)
    assert rate == 15.36e6 and cf == 2.8e9
    assert sorted(a["core:label"] for a in ann) == ["NR", "radar"]
    nr_ann = next(a for a in ann if a["core:label"] == "NR")
    assert nr_ann["specdiff:snr_db"] == 12 and nr_ann["specdiff:params"]["n_rb"] == 52
    assert main(["scene", "--nr", "oops", "--out", str(out)]) == 1
