# SPDX-License-Identifier: GPL-3.0-or-later
"""``sigmf_source``: play a SigMF recording (or a raw IQ file) with its metadata as tags.

Tags: ``rx_rate`` and ``rx_freq`` at sample 0 and at every capture segment start
(``core:frequency``), ``rx_time`` from ``core:datetime`` (else 0 s), and — unless
repeating — ``specdiff_eos`` on the last sample, so the segmenter pads and analyses a
partial last frame. Datatypes: whatever the ``sigmf`` package reads (cf32_le, ci16_le,
ci8, cu8, ...), converted to complex64 full scale.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pmt
from gnuradio import gr

RAW_FORMATS = ("cf32_le", "ci16_le", "ci8", "cu8", "cf32", "ci16", "cu16_le", "ci32_le")


def _parse_datetime(text) -> float | None:
    if not text:
        return None
    try:
        t = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


def open_recording(path, datatype="", samp_rate=0.0, center_freq=0.0):
    """``sigmf.SigMFFile`` for a ``.sigmf-meta`` (or ``.sigmf-data``) path, or for a raw file
    described by ``datatype``/``samp_rate``/``center_freq``. Errors are ``ValueError``."""
    from sigmf import sigmffile

    p = Path(str(path)).expanduser()
    if p.suffix == ".sigmf-data" and p.with_suffix(".sigmf-meta").exists():
        p = p.with_suffix(".sigmf-meta")
    if p.suffix == ".sigmf-meta":
        if not p.exists():
            raise ValueError(f"SigMF metadata {p} not found")
        data = p.with_suffix(".sigmf-data")
        if not data.exists():
            raise ValueError(f"SigMF dataset {data} not found next to {p.name}")
        try:
            return sigmffile.fromfile(str(p), skip_checksum=True)
        except Exception as exc:  # noqa: BLE001 - sigmf raises many types
            raise ValueError(f"cannot read SigMF recording {p}: {exc}") from exc
    if not p.exists():
        raise ValueError(f"recording {p} not found")
    if not datatype or not samp_rate:
        raise ValueError(f"{p} is not a .sigmf-meta file: give its format (cf32_le, ci16_le, "
                         "ci8, cu8) and sample rate (--format, --rate)")
    if datatype not in RAW_FORMATS:
        raise ValueError(f"unsupported format {datatype!r}; use one of {', '.join(RAW_FORMATS)}")
    meta = sigmffile.SigMFFile(data_file=str(p), skip_checksum=True, global_info={
        "core:datatype": datatype, "core:sample_rate": float(samp_rate),
        "core:version": "1.0.0"})
    meta.add_capture(0, metadata={"core:frequency": float(center_freq)})
    return meta


class sigmf_source(gr.sync_block):
    """SigMF playback source (see module docstring)."""

    def __init__(self, path="", repeat=False, datatype="", samp_rate=0.0, center_freq=0.0,
                 eos_tag=True):
        gr.sync_block.__init__(self, name="specdiff_sigmf_source", in_sig=None,
                               out_sig=[np.complex64])
        self.meta = open_recording(path, datatype, samp_rate, center_freq)
        g = self.meta.get_global_info()
        self.samp_rate = float(g.get("core:sample_rate") or samp_rate or 0)
        if not self.samp_rate > 0:
            raise ValueError(f"{path}: core:sample_rate missing; give samp_rate")
        if int(self.meta.get_global_field("core:num_channels") or 1) != 1:
            raise ValueError(f"{path}: only single-channel recordings are supported")
        self.n_samples = int(self.meta.sample_count)
        if self.n_samples <= 0:
            raise ValueError(f"{path}: the recording holds no samples")
        self.repeat = bool(repeat)
        self.eos_tag = bool(eos_tag)
        self.captures = []  # (sample_start, frequency, time)
        for cap in self.meta.get_captures() or [{"core:sample_start": 0}]:
            freq = cap.get("core:frequency", center_freq)
            self.captures.append((int(cap.get("core:sample_start", 0)),
                                  float(freq or 0.0), _parse_datetime(cap.get("core:datetime"))))
        self.center_freq = self.captures[0][1]
        self._pos = 0
        self._emitted = 0
        # Large chunks: a Python block downstream (the segmenter) pays ~0.3 ms per work()
        # call, so GNU Radio's default ~8k-sample buffers cap it near 25 MS/s.
        self.set_min_output_buffer(1 << 18)

    def _tag_captures(self, lo, hi, base):
        for start, freq, t in self.captures:
            if lo <= start < hi:
                off = base + start - lo
                if start == 0:
                    self.add_item_tag(0, off, pmt.intern("rx_rate"),
                                      pmt.from_double(self.samp_rate))
                self.add_item_tag(0, off, pmt.intern("rx_freq"), pmt.from_double(freq))
                if t is None and start == 0:
                    t = 0.0
                if t is not None:
                    secs = int(t)
                    self.add_item_tag(0, off, pmt.intern("rx_time"), pmt.make_tuple(
                        pmt.from_uint64(secs), pmt.from_double(t - secs)))

    def work(self, input_items, output_items):
        out = output_items[0]
        if self._pos >= self.n_samples:
            if not self.repeat:
                return -1
            self._pos = 0
        k = min(len(out), self.n_samples - self._pos)
        out[:k] = self.meta.read_samples(self._pos, k)
        base = self.nitems_written(0)
        self._tag_captures(self._pos, self._pos + k, base)
        self._pos += k
        if self._pos >= self.n_samples and self.eos_tag and not self.repeat:
            self.add_item_tag(0, base + k - 1, pmt.intern("specdiff_eos"), pmt.PMT_T)
        return k
