# SPDX-License-Identifier: GPL-3.0-or-later
"""``segmenter``: complex IQ in -> per-frame class maps, detections and occupancy out.

See ``docs/BLOCKS.md`` for the message schema. Threading: ``general_work`` only copies
samples into frames; features and inference run on an :class:`InferenceWorker`. With
``policy='drop'`` work() never waits for the model (the oldest queued frame is dropped and
counted); with ``policy='block'`` a full queue back-pressures the source (every frame is
processed, deterministic playback). After a call with little or no new input, work() waits
up to 1 ms (or until the next result), so that fast sources hand it larger chunks
(``runtime.ChunkPacer``) and the scheduler does not spin on a held item. The worker
posts to ``_wake`` after each frame so the scheduler runs work() again to emit stream
outputs; the last input item stays unconsumed until no frame is in flight, so a finishing
stream never strands queued frames.
"""

from __future__ import annotations

import collections
import math
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from gr_specdiff import CLASSES
from gr_specdiff import runtime as rt
from gr_specdiff.blocks.pmt_arrays import to_uvector

TAG_RX_TIME = "rx_time"
TAG_RX_RATE = "rx_rate"
TAG_RX_FREQ = "rx_freq"
TAG_EOS = "specdiff_eos"
TAG_DETECTION = "specdiff_detection"
TAG_FRAME = "specdiff_frame"
#: Non-noise classes get one occupancy output each (port order = class index - 1).
OCC_CLASSES = tuple(range(1, len(CLASSES)))


def _rx_time_to_float(value) -> float | None:
    """UHD-style ``(uint64 secs, double frac)`` tuple (or a plain number) -> seconds."""
    if pmt.is_tuple(value) and pmt.length(value) == 2:
        return float(pmt.to_uint64(pmt.tuple_ref(value, 0))) + float(
            pmt.to_double(pmt.tuple_ref(value, 1)))
    if pmt.is_number(value):
        return float(pmt.to_double(value)) if pmt.is_real(value) else float(
            pmt.to_long(value))
    return None


def _float_to_rx_time(t: float):
    secs = math.floor(t)
    return pmt.make_tuple(pmt.from_uint64(int(secs)), pmt.from_double(t - secs))


_DET_FLOATS = tuple(pmt.intern(k) for k in rt.DETECTION_FLOAT_FIELDS)
_DET_INTS = tuple(pmt.intern(k) for k in rt.DETECTION_INT_FIELDS)
_DET_CLASS = pmt.intern("class")


def detection_pmt(d: rt.Detection, center_freq: float):
    """One detection as a PMT dict (the ``detections`` port and pass-through tags), built with
    typed constructors (2x faster than ``pmt.to_pmt`` on a Python dict)."""
    msg = pmt.dict_add(pmt.make_dict(), _DET_CLASS, pmt.intern(d.label))
    row = d.to_dict(center_freq)
    for key, name in zip(_DET_FLOATS, rt.DETECTION_FLOAT_FIELDS):
        msg = pmt.dict_add(msg, key, pmt.from_double(float(row[name])))
    for key, name in zip(_DET_INTS, rt.DETECTION_INT_FIELDS):
        msg = pmt.dict_add(msg, key, pmt.from_long(int(row[name])))
    return msg


def detection_table_pmt(dets: list[rt.Detection], center_freq: float):
    """A frame's detections as a PMT dict of uniform vectors, one per field (the ``frames``
    message's ``detections``; ``runtime.detection_rows`` turns it back into dicts)."""
    msg = pmt.make_dict()
    for key, col in rt.detection_columns(dets, center_freq).items():
        msg = pmt.dict_add(msg, pmt.intern(key), to_uvector(col))
    return msg


class segmenter(gr.basic_block):
    """SpecDiff segmenter. Parameters (GRC names): model_path, device, samp_rate,
    center_freq, policy, queue_depth, frame_seconds, occupancy, passthrough,
    send_confidence, strict_rate, min_pixels."""

    FRAMES_PORT = pmt.intern("frames")
    DETECTIONS_PORT = pmt.intern("detections")
    COMMAND_PORT = pmt.intern("command")
    #: Internal: the worker posts here after each frame so the scheduler runs work() again.
    WAKE_PORT = pmt.intern("_wake")
    IQ_PORT = len(OCC_CLASSES)

    def __init__(self, model_path="", device="auto", samp_rate=61.44e6, center_freq=0.0,
                 policy="drop", queue_depth=2, frame_seconds=0.0, occupancy=True,
                 passthrough=False, send_confidence=False, strict_rate=True, min_pixels=4,
                 flips="", precision="float32"):
        # Fixed port layout (GRC port keys must not move): occupancy NR, LTE, radar on
        # ports 0..2, the IQ pass-through on port 3. Outputs are optional, but GNU Radio
        # needs connected outputs to be contiguous (0..k-1).
        out_types = [(np.float32, 256)] * len(OCC_CLASSES) + (
            [np.complex64] if passthrough else [])
        gr.basic_block.__init__(
            self, name="specdiff_segmenter", in_sig=[np.complex64],
            out_sig=gr.py_io_signature(0, len(out_types), out_types))
        if policy not in rt.POLICIES:
            raise ValueError(f"policy must be 'drop' or 'block', got {policy!r}")
        if int(queue_depth) < 1:
            raise ValueError(f"queue_depth must be >= 1, got {queue_depth}")
        self.policy = policy
        self.passthrough = bool(passthrough)
        self.occupancy_enabled = bool(occupancy)
        self.send_confidence = bool(send_confidence)
        self.strict_rate = bool(strict_rate)
        self.min_pixels = int(min_pixels)
        self.frame_seconds = float(frame_seconds)
        self.model = self._load(model_path, device, flips, precision)
        self.card = dict(getattr(self.model, "card", {}) or {})
        self.sample_rate = float(samp_rate)
        self.center_freq = float(center_freq)
        frame_reason = rt.check_frame_seconds(self.card, self.frame_seconds)
        if frame_reason:
            self.logger.warn(frame_reason)
        self._rate_ok = True
        self.n_unrated = 0  # samples seen before any sample rate was known
        if self.sample_rate > 0:
            reason = rt.check_sample_rate(self.card, self.sample_rate)
            if reason and self.strict_rate:
                raise ValueError(f"segmenter: {reason}")
            if reason:
                self.logger.warn(f"{reason} (strict_rate is off: continuing)")
            self._fb = rt.FrameBuffer(rt.frame_length(self.card, self.sample_rate,
                                                      self.frame_seconds))
        else:  # samp_rate 0: wait for an rx_rate tag (SigMF / SDR sources send one)
            self._fb = None
        self._pacer = rt.ChunkPacer(self.sample_rate)
        self._progress = threading.Event()  # set by the worker after each frame
        self._t_ref, self._off_ref = 0.0, 0  # stream time of sample _off_ref
        self._frame_index = 0
        self._lock = threading.Lock()
        self._ready = collections.deque()  # FrameResult for stream outputs (occupancy)
        self._pt = collections.deque()  # pass-through segments: [start, array, state, tags]
        self._pt_tags = collections.deque()  # input tags waiting to be copied to output 0
        self._pt_jobs = {}  # frame index -> pass-through entry
        self.n_nonfinite = 0
        self._held = 0
        self.n_rejected = 0
        self.n_frames_out = 0
        self.latencies = collections.deque(maxlen=1000)
        self._last_drop_log = 0.0
        self._worker = rt.InferenceWorker(
            self._process, policy=policy, depth=int(queue_depth), on_result=self._on_result,
            on_drop=self._on_drop, on_error=self._on_error)
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self.message_port_register_out(self.FRAMES_PORT)
        self.message_port_register_out(self.DETECTIONS_PORT)
        self.message_port_register_in(self.COMMAND_PORT)
        self.set_msg_handler(self.COMMAND_PORT, self.handle_command)
        self.message_port_register_in(self.WAKE_PORT)
        self.set_msg_handler(self.WAKE_PORT, self._on_wake)
        if self.passthrough and self.occupancy_enabled:
            # One noutput_items serves all outputs: give the vector ports room for a full
            # IQ chunk, or they would throttle the pass-through to a few samples per call.
            for port in range(len(OCC_CLASSES)):
                self.set_min_output_buffer(port, 8192)

    # ------------------------------------------------------------------ set-up
    def _load(self, model_path, device, flips, precision):
        if callable(model_path) and hasattr(model_path, "card"):
            if rt.parse_flips(flips) or precision != "float32":
                raise ValueError("segmenter: flips and precision apply when the block loads "
                                 "its model; load this one with load_model(..., flips=..., "
                                 "precision=...)")
            return model_path  # an already loaded model (tests, benchmarks)
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise ValueError("segmenter: device 'cuda' requested but CUDA is not "
                                 "available (torch.cuda.is_available() is False); use "
                                 "device 'auto' or 'cpu'")
        elif device == "auto":
            import torch

            if not torch.cuda.is_available():
                self.logger.warn("device auto: no CUDA device, the model runs on the CPU")
        model = rt.open_model(model_path, device=device, flips=flips, precision=precision)
        views = f", flips {'+'.join(model.flips)}" if getattr(model, "flips", None) else ""
        if getattr(model, "precision", "float32") != "float32":
            views += f", {model.precision}"
        self.logger.info(f"model {rt.resolve_model_path(model_path)} on "
                         f"{getattr(model, 'device', device)}{views}")
        if str(getattr(model, "device", "cpu")) == "cpu":
            import os

            import torch

            cores = os.cpu_count() or 1
            if cores > 1 and torch.get_num_threads() >= cores:
                # Leave a core to the stream threads, or a CPU-bound model starves work()
                # and stalls the source (an SDR would overflow).
                torch.set_num_threads(cores - 1)
                self.logger.info(f"CPU inference on {cores - 1} of {cores} cores")
        model.warm_up()
        return model

    @property
    def frame_len(self) -> int:
        return self._fb.frame_len if self._fb is not None else 0

    def dropped_frames(self) -> int:
        return self._worker.dropped

    def processed_frames(self) -> int:
        return self._worker.processed

    def stop(self):
        self._worker.stop()
        return True

    # ------------------------------------------------------------------ messages in
    def handle_command(self, msg):
        """``command`` port: dict with ``freq`` (Hz) and/or ``rate`` (S/s); else dropped."""
        try:
            if not pmt.is_dict(msg):
                raise ValueError("expected a PMT dict")
            cmd = pmt.to_python(msg)
            if not isinstance(cmd, dict) or not ({"freq", "rate"} & set(cmd)):
                raise ValueError("expected key 'freq' or 'rate'")
            if "freq" in cmd:
                self.center_freq = float(cmd["freq"])
            if "rate" in cmd:
                self._set_rate(float(cmd["rate"]), None)
        except Exception as exc:  # noqa: BLE001 - log and drop, never raise into GR
            self.logger.warn(f"command port: dropped malformed message ({exc}): "
                             f"{pmt.write_string(msg)[:200]}")

    def _on_wake(self, msg):
        """No-op: receiving a message makes the scheduler call general_work() again."""

    def _wake(self):
        self._progress.set()
        try:
            self.to_basic_block()._post(self.WAKE_PORT, pmt.PMT_T)
        except Exception:  # noqa: BLE001 - flowgraph already torn down
            pass

    # ------------------------------------------------------------------ worker side
    def _process(self, job):
        if job.n_valid < len(job.iq):
            pass  # padding was applied by the stream side
        return rt.analyse_frame(self.model, job, CLASSES, self.min_pixels)

    def _on_drop(self, job):
        with self._lock:
            entry = self._pt_jobs.pop(job.index, None)
            if entry is not None:
                entry[2] = "ready"
        self._wake()
        now = time.monotonic()
        if now - self._last_drop_log > 5.0:
            self._last_drop_log = now
            self.logger.warn(f"inference is slower than real time: {self._worker.dropped} "
                             "frame(s) dropped so far (policy 'drop')")

    def _on_error(self, job, exc):
        with self._lock:
            entry = self._pt_jobs.pop(job.index, None)
            if entry is not None:
                entry[2] = "ready"
        self.logger.error(f"frame {job.index}: analysis failed: {exc}")
        self._wake()

    def _on_result(self, job, res: rt.FrameResult):
        self.n_nonfinite += res.spec.n_nonfinite
        if res.spec.n_nonfinite:
            self.logger.warn(f"frame {job.index}: {res.spec.n_nonfinite} NaN/Inf samples "
                             "replaced by 0")
        self.latencies.append(res.latency_s)
        # One dict per detection costs ~35 us (~100 a busy frame, on the thread that runs the
        # model): built only when someone takes them, once for both messages and tags.
        dets = []
        if self.passthrough or self._has_subscribers(self.DETECTIONS_PORT):
            dets = [detection_pmt(d, job.center_freq) for d in res.detections]
        self._publish(res, dets)
        with self._lock:
            if self.occupancy_enabled:
                self._ready.append(res)
            entry = self._pt_jobs.pop(job.index, None)
            if entry is not None:
                entry[3] = [(d.sample_start, dp) for d, dp in zip(res.detections, dets)]
                entry[2] = "ready"
        self._wake()

    def _has_subscribers(self, port) -> bool:
        return pmt.length(self.message_subscribers(port)) > 0

    def _publish(self, res: rt.FrameResult, detections: list):
        job = res.job
        d = {
            "frame": int(job.index), "offset": int(job.offset),
            "n_samples": int(job.n_valid), "padded": int(len(job.iq) - job.n_valid),
            "rx_time": float(job.rx_time), "center_freq": float(job.center_freq),
            "sample_rate": float(job.sample_rate), "rows": 256, "cols": 256,
            "classes": list(CLASSES),
            "noise_floor_db": float(res.spec.noise_floor_db),
            "nonfinite": int(res.spec.n_nonfinite),
            "latency": float(res.latency_s), "inference_s": float(res.inference_s),
            "features_s": float(res.features_s),
            "dropped": int(self._worker.dropped),
        }
        msg = pmt.to_pmt(d)
        images = {"class_map": np.asarray(res.class_map, np.uint8),
                  "db_image": rt.sg.to_db_image(res.spec.features).astype(np.float32)}
        if self.send_confidence and res.confidence is not None:
            images["confidence"] = np.asarray(res.confidence, np.float32)
        for key, img in images.items():
            msg = pmt.dict_add(msg, pmt.intern(key), to_uvector(img))
        msg = pmt.dict_add(msg, pmt.intern("detections"),
                           detection_table_pmt(res.detections, job.center_freq))
        for dp in detections:
            self.message_port_pub(self.DETECTIONS_PORT, dp)
        self.message_port_pub(self.FRAMES_PORT, msg)

    # ------------------------------------------------------------------ stream side
    def _set_rate(self, rate, offset):
        if not (rate > 0 and math.isfinite(rate)):
            self.logger.warn(f"ignoring invalid sample rate {rate}")
            return
        if rate == self.sample_rate and self._rate_ok and self._fb is not None:
            return
        reason = rt.check_sample_rate(self.card, rate)
        self.sample_rate = rate
        self._pacer.sample_rate = rate
        if reason and self.strict_rate:
            self.logger.error(f"{reason}; frames are skipped until the rate is supported")
            self._rate_ok = False
        else:
            if reason:
                self.logger.warn(reason)
            self._rate_ok = True
        self._discard_partial(offset)
        self._fb = rt.FrameBuffer(rt.frame_length(self.card, rate, self.frame_seconds))

    def _discard_partial(self, offset):
        if self._fb is None:
            return
        if self._fb.fill and self.passthrough:
            self._pt.append([self._fb.start, self._fb.partial(), "ready", []])
        self._fb.reset(offset)

    def _handle_tag(self, tag, offset):
        key = pmt.symbol_to_string(tag.key) if pmt.is_symbol(tag.key) else ""
        try:
            if key == TAG_RX_RATE:
                self._set_rate(float(pmt.to_double(tag.value)), offset)
            elif key == TAG_RX_FREQ:
                f = float(pmt.to_double(tag.value))
                if f != self.center_freq:
                    self._discard_partial(offset)
                    self.center_freq = f
            elif key == TAG_RX_TIME:
                t = _rx_time_to_float(tag.value)
                if t is None:
                    raise ValueError("not a (secs, frac) tuple")
                if self._fb is not None and self._fb.fill:
                    expected = self._t_ref + (offset - self._off_ref) / self.sample_rate
                    if abs(t - expected) > 1.5 / self.sample_rate:
                        self._discard_partial(offset)  # time discontinuity (overflow)
                self._t_ref, self._off_ref = t, offset
        except Exception as exc:  # noqa: BLE001 - a bad tag must not stop the stream
            self.logger.warn(f"ignoring malformed '{key}' tag at {offset}: {exc}")

    def _submit(self, start, frame, n_valid):
        idx = self._frame_index
        self._frame_index += 1
        if not self._rate_ok:
            self.n_rejected += 1
            if self.passthrough:
                self._pt.append([start, frame, "ready", []])
            return
        if n_valid < len(frame):
            frame = rt.pad_frame(frame[:n_valid], len(frame), seed=idx)
            self.logger.info(f"frame {idx}: last {n_valid} samples padded with "
                             f"{len(frame) - n_valid} samples of noise")
        job = rt.FrameJob(idx, int(start), frame, self.sample_rate, self.center_freq,
                          self._t_ref + (start - self._off_ref) / self.sample_rate,
                          int(n_valid), time.monotonic())
        if self.passthrough:
            entry = [start, frame[:n_valid], "wait", []]
            with self._lock:
                self._pt.append(entry)
                self._pt_jobs[idx] = entry
        self._worker.submit(job)

    def _push(self, x, offset):
        if self._fb is None:
            if not self.n_unrated:
                self.logger.error("samp_rate is 0 and no rx_rate tag arrived: samples are "
                                  "ignored until the sample rate is known")
            self.n_unrated += len(x)
            return
        for start, frame in self._fb.push(x, offset):
            self._submit(start, frame, len(frame))

    def forecast(self, noutput_items, ninputs):
        return [1] * ninputs

    def _pt_backlog(self) -> int:
        return sum(len(e[1]) for e in self._pt)

    def _pending_out(self) -> bool:
        with self._lock:
            return bool(self._pt) or (self.occupancy_enabled and bool(self._ready))

    def general_work(self, input_items, output_items):
        x = input_items[0]
        if self.passthrough and len(output_items) <= self.IQ_PORT:
            self.logger.warn("IQ pass-through enabled but output 3 is not connected: disabled")
            self.passthrough = False
            with self._lock:
                self._pt.clear()
                self._pt_jobs.clear()
            self._pt_tags.clear()
        skip = self._held  # items already analysed but left unconsumed (see below)
        n = len(x)
        if self.passthrough:
            # Bounded pass-through backlog: the output waits for inference, so allow the
            # queued frames plus two; beyond that the downstream itself is too slow.
            limit = (self._worker.depth + 3) * max(self.frame_len, 1 << 16)
            n = max(skip, min(n, skip + limit - self._pt_backlog()))
        base = self.nitems_read(0)
        if n > skip:
            tags = sorted(self.get_tags_in_window(0, skip, n), key=lambda t: t.offset)
            pos = skip
            for tag in tags:
                rel = tag.offset - base
                if rel > pos:
                    self._push(x[pos:rel], base + pos)
                    pos = rel
                if self.passthrough:
                    self._pt_tags.append(tag)
                key = pmt.symbol_to_string(tag.key) if pmt.is_symbol(tag.key) else ""
                if key == TAG_EOS:
                    self._push(x[pos:rel + 1], base + pos)
                    pos = rel + 1
                    self._flush_partial()
                    continue
                self._handle_tag(tag, tag.offset)
            if pos < n:
                self._push(x[pos:n], base + pos)
        self._emit(output_items)
        # The scheduler calls us again only while input is available (or a message arrives:
        # the worker posts to WAKE_PORT after every frame). Keep the last item unconsumed
        # until every queued frame is analysed and its outputs produced, so the end of a
        # stream does not end the block with frames still in flight.
        self._held = 1 if (n > 0 and (self._worker.pending() or self._pending_out())) else 0
        self.consume(0, n - self._held)
        pause = self._pacer.delay(n - skip, holding=bool(self._held))  # see rt.ChunkPacer
        if pause:
            self._progress.wait(pause)  # GIL released; a result or a drop ends it early
            self._progress.clear()
        return gr.WORK_CALLED_PRODUCE

    def _flush_partial(self):
        """Pad and analyse a partial frame (end of stream: ``specdiff_eos`` tag)."""
        if self._fb is not None and self._fb.fill:
            start, part = self._fb.start, self._fb.partial()
            self._fb.reset(None)
            self._submit(start, np.concatenate(
                [part, np.zeros(self._fb.frame_len - len(part), np.complex64)]), len(part))

    def _emit(self, output_items):
        if self.passthrough and len(output_items) > self.IQ_PORT:
            self._emit_passthrough(output_items[self.IQ_PORT])
        outs = output_items[: len(OCC_CLASSES)]
        if self.occupancy_enabled and outs:
            room = min(len(o) for o in outs)
            k = 0
            while k < room:
                with self._lock:
                    if not self._ready:
                        break
                    res = self._ready.popleft()
                job = res.job
                for j, o in enumerate(outs):
                    o[k] = res.occupancy[OCC_CLASSES[j]]
                    off = self.nitems_written(j) + k
                    self.add_item_tag(j, off, pmt.intern(TAG_RX_TIME),
                                      _float_to_rx_time(job.rx_time))
                    self.add_item_tag(j, off, pmt.intern(TAG_RX_FREQ),
                                      pmt.from_double(job.center_freq))
                    self.add_item_tag(j, off, pmt.intern(TAG_FRAME), pmt.from_uint64(job.index))
                k += 1
            for j in range(len(outs)):
                self.produce(j, k)
        elif self.occupancy_enabled:
            with self._lock:
                self._ready.clear()  # outputs not connected

    def _emit_passthrough(self, out):
        room = len(out)
        done = 0
        port = self.IQ_PORT
        w0 = self.nitems_written(port)
        while done < room:
            with self._lock:
                if not self._pt or self._pt[0][2] != "ready":
                    break
                entry = self._pt[0]
            start, arr, _, det_tags = entry
            k = min(room - done, len(arr))
            out[done:done + k] = arr[:k]
            lo, hi = w0 + done, w0 + done + k
            while self._pt_tags and self._pt_tags[0].offset < hi:
                t = self._pt_tags.popleft()
                if t.offset >= lo:
                    self.add_item_tag(port, t.offset, t.key, t.value)
            for s, val in det_tags:
                if lo <= s < hi:
                    self.add_item_tag(port, s, pmt.intern(TAG_DETECTION), val)
            done += k
            if k == len(arr):
                with self._lock:
                    self._pt.popleft()
            else:
                entry[1] = arr[k:]
        self.produce(port, done)
