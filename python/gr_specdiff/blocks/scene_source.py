# SPDX-License-Identifier: GPL-3.0-or-later
"""``scene_source``: the synthetic NR / LTE / radar scene generator as a GNU Radio source.

Streams consecutive generated frames (``frame_seconds`` each) and tags sample 0 with
``rx_rate``, ``rx_freq`` and ``rx_time``; every frame's truth (signals) is published on the
``truth`` message port. ``throttle`` paces the output to real time (no hardware needed).
"""

from __future__ import annotations

import time

import numpy as np
import pmt
from gnuradio import gr


def _truth_dict(scene, index, offset, center_freq):
    sigs = []
    for s in getattr(scene, "signals", []) or []:
        sigs.append({
            "class": str(getattr(s, "kind", "")),
            "f_lower": float(s.f_lower), "f_upper": float(s.f_upper),
            "freq_lower_edge": center_freq + float(s.f_lower),
            "freq_upper_edge": center_freq + float(s.f_upper),
            "sample_start": int(offset + s.sample_start), "sample_count": int(s.sample_count),
            "snr_db": float(getattr(s, "snr_db", float("nan"))),
        })
    return {"frame": int(index), "offset": int(offset), "signals": sigs}


MIXES = ("random", "nr", "lte", "radar", "nr+lte", "all")


def build_spec(mix="random", snr_db=None, center_freq=None):
    """``SceneSpec`` for a named mix (``random`` -> None: the training distribution)."""
    from gr_specdiff import scene as sc

    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if mix == "random":
        return None
    snr = None if snr_db is None or (isinstance(snr_db, float) and snr_db != snr_db) else float(
        snr_db)
    kinds = {"nr": ["nr"], "lte": ["lte"], "radar": ["radar"], "nr+lte": ["nr", "lte"],
             "all": ["nr", "lte", "radar"]}[mix]
    kw = {k: [{"nr": sc.NRSpec, "lte": sc.LTESpec, "radar": sc.RadarSpec}[k](snr_db=snr)]
          for k in kinds}
    if center_freq is not None:
        kw["center_freq"] = float(center_freq)
    return sc.SceneSpec(**kw)


class scene_source(gr.sync_block):
    """Synthetic scene source. ``mix`` picks the signals (``random`` = the training
    distribution), ``snr_db`` fixes their SNR (None = drawn), ``spec`` (a ``SceneSpec``)
    overrides both; ``n_frames`` 0 = endless; ``n_unique`` > 0 generates that many scenes
    and then loops them (the generator is slower than real time at 61.44 MS/s)."""

    TRUTH_PORT = pmt.intern("truth")

    def __init__(self, samp_rate=20e6, center_freq=2.8e9, frame_seconds=0.04, seed=0,
                 mix="random", snr_db=None, throttle=True, n_frames=0, n_unique=0, spec=None,
                 scale=1.0):
        gr.sync_block.__init__(self, name="specdiff_scene_source", in_sig=None,
                               out_sig=[np.complex64])
        if not samp_rate > 0:
            raise ValueError(f"samp_rate must be positive, got {samp_rate}")
        if not frame_seconds > 0:
            raise ValueError(f"frame_seconds must be positive, got {frame_seconds}")
        from gr_specdiff import scene as _scene

        self._generate = _scene.generate
        self.samp_rate = float(samp_rate)
        self.center_freq = float(center_freq)
        self.frame_seconds = float(frame_seconds)
        self.spec = spec if spec is not None else build_spec(mix, snr_db, center_freq)
        self.n_unique = int(n_unique)
        self._cache = []
        self.throttle = bool(throttle)
        self.n_frames = int(n_frames)
        self.scale = float(scale)
        self._rng = np.random.default_rng(int(seed))
        self._frame = None
        self._pos = 0
        self._index = 0
        self._t0 = None
        self.scenes = []  # the last few scenes (tests compare detections with their truth)
        self.message_port_register_out(self.TRUTH_PORT)
        # Large chunks: a Python block downstream (the segmenter) pays ~0.3 ms per work()
        # call, so GNU Radio's default ~8k-sample buffers cap it near 25 MS/s.
        self.set_min_output_buffer(1 << 18)

    def _next_frame(self) -> bool:
        if self.n_frames and self._index >= self.n_frames:
            return False
        if self.n_unique and len(self._cache) >= self.n_unique:
            scene = self._cache[self._index % self.n_unique]
        else:
            scene = self._generate(self._rng, self.samp_rate, self.frame_seconds, self.spec)
            if self.n_unique:
                self._cache.append(scene)
        offset = self._index * int(round(self.samp_rate * self.frame_seconds))
        self._frame = (np.asarray(scene.iq, np.complex64) * self.scale)
        self._pos = 0
        self.scenes.append(scene)
        del self.scenes[:-8]
        self.message_port_pub(self.TRUTH_PORT, pmt.to_pmt(
            _truth_dict(scene, self._index, offset, self.center_freq)))
        self._index += 1
        return True

    def work(self, input_items, output_items):
        out = output_items[0]
        if self._frame is None or self._pos >= len(self._frame):
            try:
                more = self._next_frame()
            except ValueError as exc:  # e.g. a mix whose signals do not fit the sample rate
                self.logger.error(f"cannot generate a scene: {exc}; the stream ends here")
                return -1  # an exception would kill the block's thread and hang the flowgraph
            if not more:
                return -1
        if self._t0 is None:
            # The stream's clock starts with its first sample, after the first scene exists:
            # started before, the throttle would burst to make up the generation time.
            self._t0 = time.monotonic()
            for key, val in (("rx_rate", pmt.from_double(self.samp_rate)),
                             ("rx_freq", pmt.from_double(self.center_freq)),
                             ("rx_time", pmt.make_tuple(pmt.from_uint64(0),
                                                        pmt.from_double(0.0)))):
                self.add_item_tag(0, 0, pmt.intern(key), val)
        if self.throttle:
            ahead = self.nitems_written(0) / self.samp_rate - (time.monotonic() - self._t0)
            # Sleep until due, then produce. Returning 0 instead makes GNU Radio wait until
            # downstream consumes before calling a source again: ~210 ms stalls, after which
            # the buffered frames arrived as one burst that a live segmenter's queue dropped.
            if ahead > 0.005:
                time.sleep(min(ahead, 0.1))
        k = min(len(out), len(self._frame) - self._pos)
        out[:k] = self._frame[self._pos:self._pos + k]
        self._pos += k
        return k
