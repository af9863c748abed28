# SPDX-License-Identifier: GPL-3.0-or-later
"""``sigmf_annotation_sink``: write detections as SigMF annotations.

Input message port ``detections``: one PMT dict per detection as published by the
segmenter (``frames`` dicts, which carry their ``detections`` as a table, are accepted too).
Annotations: ``core:label``, ``core:freq_lower_edge``, ``core:freq_upper_edge``,
``core:sample_start``, ``core:sample_count``, ``specdiff:confidence``, ``specdiff:snr_db``.
The metadata file is written on stop() (and by :meth:`flush`). With ``recording`` set,
its global and capture metadata are copied; ``meta_path`` empty = next to the recording.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pmt
from gnuradio import gr

from gr_specdiff import CLASSES, __version__
from gr_specdiff import runtime as rt
from gr_specdiff.blocks.pmt_arrays import dict_to_python

REQUIRED = ("class", "sample_start", "sample_count", "freq_lower_edge", "freq_upper_edge")


def annotation_from_detection(d: dict) -> dict:
    """SigMF annotation dict from a detection dict (raises ValueError when malformed)."""
    missing = [k for k in REQUIRED if k not in d]
    if missing:
        raise ValueError(f"detection lacks {missing}")
    a = {
        "core:sample_start": int(d["sample_start"]),
        "core:sample_count": int(d["sample_count"]),
        "core:freq_lower_edge": float(d["freq_lower_edge"]),
        "core:freq_upper_edge": float(d["freq_upper_edge"]),
        "core:label": str(d["class"]),
        "core:generator": f"gr-specdiff {__version__}",
        "specdiff:confidence": float(d.get("confidence", 1.0)),
    }
    snr = d.get("snr_db")
    if snr is not None and snr == snr:
        a["specdiff:snr_db"] = float(snr)
    if a["core:sample_count"] < 0 or a["core:sample_start"] < 0:
        raise ValueError("negative sample_start/sample_count")
    return a


def write_meta(path, annotations, global_info=None, captures=None):
    """Write a SigMF metadata file (JSON) with ``annotations`` sorted by sample_start."""
    g = dict(global_info or {})
    g.setdefault("core:version", "1.0.0")
    g.setdefault("core:datatype", "cf32_le")
    ext = [e for e in g.get("core:extensions", []) if e.get("name") != "specdiff"]
    ext.append({"name": "specdiff", "version": __version__, "optional": True})
    g["core:extensions"] = ext
    meta = {"global": g, "captures": list(captures or [{"core:sample_start": 0}]),
            "annotations": sorted(annotations, key=lambda a: (a["core:sample_start"],
                                                             a["core:freq_lower_edge"]))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(path)
    return path


class sigmf_annotation_sink(gr.basic_block):
    """Collect detections and write them as SigMF annotations (see module docstring)."""

    IN_PORT = pmt.intern("detections")

    def __init__(self, meta_path="", recording="", samp_rate=0.0, center_freq=0.0,
                 datatype="cf32_le"):
        gr.basic_block.__init__(self, name="specdiff_sigmf_annotation_sink", in_sig=None,
                                out_sig=None)
        self.recording = str(recording or "")
        if not meta_path and not self.recording:
            raise ValueError("sigmf_annotation_sink: give meta_path or recording")
        self.global_info, self.captures = {}, None
        if self.recording:
            rec = Path(self.recording)
            if rec.suffix != ".sigmf-meta":
                rec = rec.with_suffix(".sigmf-meta")
            try:
                src = json.loads(rec.read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read recording metadata {rec}: {exc}") from exc
            self.global_info = dict(src.get("global", {}))
            self.captures = src.get("captures")
            self.annotations = list(src.get("annotations", []))
            self.meta_path = Path(meta_path) if meta_path else rec
        else:
            self.annotations = []
            self.meta_path = Path(meta_path)
            self.global_info = {"core:datatype": datatype}
            if samp_rate:
                self.global_info["core:sample_rate"] = float(samp_rate)
            self.captures = [{"core:sample_start": 0, "core:frequency": float(center_freq)}]
        self.n_received = self.n_dropped = 0
        self._lock = threading.Lock()
        self.message_port_register_in(self.IN_PORT)
        self.set_msg_handler(self.IN_PORT, self.handle_msg)

    def handle_msg(self, msg):
        try:
            d = dict_to_python(msg)
            if "detections" in d and "class" not in d:  # a frames message
                if not isinstance(d["detections"], dict):
                    raise ValueError("a frames message's detections must be a table")
                items = rt.detection_rows(d["detections"], list(d.get("classes", CLASSES)))
            else:
                items = [d]
            new = [annotation_from_detection(x) for x in items]
        except Exception as exc:  # noqa: BLE001 - log and drop
            self.n_dropped += 1
            self.logger.warn(f"dropped malformed detection message ({exc}): "
                             f"{pmt.write_string(msg)[:200]}")
            return
        with self._lock:
            self.annotations.extend(new)
            self.n_received += len(new)

    def flush(self):
        with self._lock:
            anns = list(self.annotations)
        return write_meta(self.meta_path, anns, self.global_info, self.captures)

    def stop(self):
        try:
            path = self.flush()
            self.logger.info(f"wrote {len(self.annotations)} annotation(s) to {path}")
        except OSError as exc:
            self.logger.error(f"cannot write {self.meta_path}: {exc}")
        return True
