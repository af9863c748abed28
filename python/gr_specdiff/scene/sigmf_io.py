# SPDX-License-Identifier: GPL-3.0-or-later
"""SigMF recordings: write IQ + truth annotations, read them back (cf32_le, ci16_le, ci8, cu8).

``write_recording`` writes ``BASE.sigmf-data`` and ``BASE.sigmf-meta`` through the ``sigmf``
package (so the file validates against the schema); ``read_recording`` parses any recording of
the supported datatypes and raises ``ValueError`` with a clear message for corrupt metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

EXTENSION = {"name": "specdiff", "version": "1.0.0", "optional": True}
_DTYPES = {"cf32_le": (np.dtype("<f4"), 1.0, 0.0), "ci16_le": (np.dtype("<i2"), 32768.0, 0.0),
           "ci8": (np.dtype("i1"), 128.0, 0.0), "cu8": (np.dtype("u1"), 128.0, 127.5)}


def base_path(path: str | Path) -> Path:
    """``X.sigmf-meta`` / ``X.sigmf-data`` / ``X`` -> ``X``."""
    p = Path(path)
    if p.name.endswith((".sigmf-meta", ".sigmf-data")):
        return p.with_name(p.name[: -len(".sigmf-meta")])
    return p


def write_recording(path_base, iq, sample_rate: float, center_freq: float, annotations,
                    extra_global: dict | None = None, datatype: str = "cf32_le") -> Path:
    """Write a SigMF recording; returns the ``.sigmf-meta`` path.

    ``annotations``: dicts with SigMF keys (``core:sample_start`` required, ``core:sample_count``,
    ``core:label``, ``core:freq_lower_edge``/``upper_edge`` in absolute Hz, and any
    ``specdiff:*`` extension keys). ``datatype`` cf32_le (default) or ci16_le (scaled so the
    largest component is 0.9 of full scale; the scale is stored as ``specdiff:scale``).
    """
    from sigmf import SigMFFile

    base = base_path(path_base)
    base.parent.mkdir(parents=True, exist_ok=True)
    data_path = base.with_name(base.name + ".sigmf-data")
    meta_path = base.with_name(base.name + ".sigmf-meta")
    x = np.asarray(iq).astype(np.complex64, copy=False).ravel()
    extra = dict(extra_global or {})
    if datatype == "cf32_le":
        x.astype("<c8").tofile(data_path)
    elif datatype == "ci16_le":
        peak = float(np.max(np.abs(x.view(np.float32)))) or 1.0
        scale = 0.9 * 32767 / peak
        v = np.round(x.view(np.float32) * scale).astype("<i2")
        v.tofile(data_path)
        extra["specdiff:scale"] = scale / 32768.0  # stored ints / 32768 = iq * this
    else:
        raise ValueError(f"write_recording supports cf32_le and ci16_le, not {datatype!r}")
    exts = list(extra.pop("core:extensions", []))
    if not any(e.get("name") == EXTENSION["name"] for e in exts):
        exts.append(dict(EXTENSION))
    global_info = {
        "core:datatype": datatype,
        "core:sample_rate": float(sample_rate),
        "core:extensions": exts,
        "core:recorder": "gr_specdiff",
    }
    global_info.update(extra)
    meta = SigMFFile(data_file=str(data_path), global_info=global_info)
    meta.add_capture(0, metadata={"core:frequency": float(center_freq)})
    for a in sorted(annotations, key=lambda a: a["core:sample_start"]):
        a = dict(a)
        start = int(a.pop("core:sample_start"))
        count = a.pop("core:sample_count", None)
        meta.add_annotation(start, None if count is None else int(count), metadata=a)
    meta.tofile(str(meta_path))  # validates against the SigMF schema
    return meta_path


def read_recording(meta_path):
    """Read a SigMF recording: ``(iq complex64, sample_rate, center_freq, annotations, global)``.

    ``center_freq`` is the first capture's ``core:frequency`` (0.0 if absent). Raises
    ``ValueError`` for corrupt/inconsistent metadata and ``FileNotFoundError`` for missing files.
    """
    base = base_path(meta_path)
    mpath = base.with_name(base.name + ".sigmf-meta")
    dpath = base.with_name(base.name + ".sigmf-data")
    if not mpath.exists():
        raise FileNotFoundError(f"no SigMF metadata file {mpath}")
    try:
        doc = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("global"), dict):
        raise ValueError(f"{mpath}: SigMF metadata needs a 'global' object")
    glob = doc["global"]
    dt = glob.get("core:datatype")
    if dt not in _DTYPES:
        raise ValueError(f"{mpath}: core:datatype {dt!r} not supported "
                         f"(supported: {', '.join(_DTYPES)})")
    rate = glob.get("core:sample_rate")
    if not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"{mpath}: core:sample_rate must be a positive number, got {rate!r}")
    if int(glob.get("core:num_channels", 1)) != 1:
        raise ValueError(f"{mpath}: only single-channel recordings are supported")
    captures = doc.get("captures", [])
    annotations = doc.get("annotations", [])
    if not isinstance(captures, list) or not isinstance(annotations, list):
        raise ValueError(f"{mpath}: 'captures' and 'annotations' must be lists")
    center = 0.0
    if captures:
        center = captures[0].get("core:frequency", 0.0)
        if not isinstance(center, (int, float)):
            raise ValueError(f"{mpath}: core:frequency must be a number, got {center!r}")
    for a in annotations:
        if not isinstance(a, dict) or not isinstance(a.get("core:sample_start"), int):
            raise ValueError(f"{mpath}: every annotation needs an integer core:sample_start")
    if not dpath.exists():
        raise FileNotFoundError(f"no SigMF data file {dpath}")
    dtype, scale, offset = _DTYPES[dt]
    raw = np.fromfile(dpath, dtype=dtype)
    if len(raw) % 2:
        raise ValueError(f"{dpath}: odd number of {dt} components (truncated file?)")
    if dt == "cf32_le":
        iq = raw.view("<c8").astype(np.complex64)
    else:
        v = (raw.astype(np.float32) - np.float32(offset)) / np.float32(scale)
        s = glob.get("specdiff:scale")
        if isinstance(s, (int, float)) and s > 0 and dt == "ci16_le":
            v = v / np.float32(s)  # undo our own ci16 scaling
        iq = v.view(np.complex64)
    return iq, float(rate), float(center), annotations, glob


def scene_annotations(scene, center_freq: float) -> list[dict]:
    """One SigMF annotation per signal of a ``Scene`` (truth in absolute Hz)."""
    out = []
    for s in scene.signals:
        out.append({
            "core:sample_start": int(s.sample_start),
            "core:sample_count": int(max(1, s.sample_count)),
            "core:label": s.kind,
            "core:freq_lower_edge": float(center_freq + s.f_lower),
            "core:freq_upper_edge": float(center_freq + s.f_upper),
            "core:generator": "gr_specdiff.scene",
            "specdiff:snr_db": float(s.snr_db),
            "specdiff:params": s.params,
        })
    return out
