# SPDX-License-Identifier: GPL-3.0-or-later
"""Runtime helpers shared by the GNU Radio blocks and the headless CLI (no GNU Radio here).

* :func:`default_model_path` finds a shipped model (:func:`resolve_model_path` by name).
* :func:`open_model` loads an exported model (``gr_specdiff.model.export.load_model``) and
  checks a sample rate against its card (:func:`check_sample_rate`).
* :func:`detections` turns a class map into detected signals (connected components),
  :func:`occupancy` into per-class occupancy of each frequency bin.
* :class:`FrameBuffer` cuts a stream delivered in arbitrary chunks into exact frames.
* :class:`InferenceWorker` runs frames on a worker thread behind a bounded queue with a
  ``drop`` (live) or ``block`` (playback) policy.
* :func:`pad_frame` pads a short tail with noise at the recording's own noise level.
* :func:`render_overlay_png` draws spectrogram + class mask + boxes (matplotlib, headless).
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from gr_specdiff import CLASS_COLORS, CLASSES, NOISE
from gr_specdiff import spectrogram as sg

DEFAULT_MODEL_NAME = "specdiff_default.ts"
#: Display colours (RGB 0..255) per class index; noise is transparent in overlays.
#: Relative tolerance when matching a stream's sample rate against the model card.
RATE_TOLERANCE = 1e-3
POLICIES = ("drop", "block")


# --------------------------------------------------------------------------- model
def default_model_path(name: str = DEFAULT_MODEL_NAME) -> Path:
    """Where the default model lives: ``$GR_SPECDIFF_MODELS``, ``<repo>/models``, then
    ``<prefix>/share/gr_specdiff/models``. Returns the first candidate that exists, else the
    repo candidate (so the error message names a sensible path)."""
    here = Path(__file__).resolve()
    candidates = []
    env = os.environ.get("GR_SPECDIFF_MODELS")
    if env:
        candidates.append(Path(env) / name)
    repo = here.parents[2] / "models"
    candidates.append(repo / name)
    # Installed: <prefix>/lib/python3/dist-packages/gr_specdiff/runtime.py -> <prefix>.
    for parent in here.parents:
        if parent.name in ("lib", "lib64", "local"):
            candidates.append(parent.parent / "share" / "gr_specdiff" / "models" / name)
            break
    import sys
    candidates.append(Path(sys.prefix) / "share" / "gr_specdiff" / "models" / name)
    for c in candidates:
        if c.exists():
            return c
    return repo / name


def resolve_model_path(path) -> Path:
    """``''``/``None``/``'default'`` -> :func:`default_model_path`; a bare name ``NAME`` or
    ``specdiff_NAME`` that is no file here -> the shipped ``specdiff_NAME.ts``; else the path
    itself."""
    name = "" if path is None else str(path).strip()
    if name in ("", "default"):
        return default_model_path()
    local = Path(name).exists() or Path(f"{name}.ts").exists()
    if name.isidentifier() and not local:  # no directory, no suffix: a shipped model's name
        stem = name if name.startswith("specdiff_") else f"specdiff_{name}"
        return default_model_path(f"{stem}.ts")
    return Path(os.path.expanduser(name))


def open_model(path, device: str = "auto", flips=(), precision: str = "float32"):
    """Load an exported model (``flips``: test-time views, ``precision``: float32 or
    bfloat16, see ``export.load_model``); errors are ``ValueError`` (``ModelLoadError``) with
    the path."""
    if device not in ("auto", "cuda", "cpu"):
        raise ValueError(f"device must be auto, cuda or cpu, got {device!r}")
    from gr_specdiff.model.export import load_model, model_files

    p = resolve_model_path(path)
    if not p.exists() and not model_files(p)[0].exists():
        raise ValueError(
            f"model file {p} does not exist: pass a model path (e.g. models/<name>.ts made by "
            "`specdiff export`) or set $GR_SPECDIFF_MODELS")
    return load_model(p, device=device, flips=parse_flips(flips), precision=precision)


def parse_flips(flips) -> tuple[str, ...]:
    """Test-time flips as blocks and command lines give them: a sequence of names or one
    string of names separated by spaces, commas or '+' (``"frequency+time"``); ``""`` or
    ``"none"`` = none. Unknown names raise ``ValueError`` naming them."""
    from gr_specdiff.model.pipeline import check_flips

    if isinstance(flips, str):
        flips = [f for f in flips.replace(",", " ").replace("+", " ").split() if f != "none"]
    return check_flips(flips)


def card_sample_rates(card: dict) -> list[float]:
    return [float(r) for r in (card.get("sample_rates") or [])]


def card_rate_channel(card: dict) -> bool:
    """Whether the card's model takes the sample-rate plane (``spectrogram.model_input``)."""
    return bool((card.get("spectrogram") or {}).get("rate_channel", False))


def check_sample_rate(card: dict, sample_rate: float) -> str | None:
    """``None`` when the model was trained for ``sample_rate``, else the reason why not."""
    rates = card_sample_rates(card)
    if not rates or card.get("any_sample_rate"):
        return None
    if any(abs(sample_rate - r) <= RATE_TOLERANCE * r for r in rates):
        return None
    listed = ", ".join(f"{r / 1e6:g}" for r in rates)
    return (f"sample rate {sample_rate / 1e6:g} MS/s does not match the model "
            f"'{card.get('name', '?')}', trained for {listed} MS/s: resample the stream to a "
            "supported rate or use a model trained for this rate (labels would be wrong)")


def check_frame_seconds(card: dict, frame_seconds: float) -> str | None:
    """``None`` when ``frame_seconds`` (0 = the card's) is the frame length the model was
    trained on, else why not: the image's time axis then changes under the model (the
    default model on 120 ms frames at 20 MS/s: 51 % mean IoU instead of 68 %,
    docs/RESULTS.md)."""
    trained = float(card.get("frame_seconds", sg.FRAME_SECONDS))
    if not frame_seconds or frame_seconds <= 0 or abs(frame_seconds - trained) <= 0.01 * trained:
        return None
    return (f"frame_seconds {frame_seconds * 1e3:g} ms differs from the {trained * 1e3:g} ms "
            "the model was trained on: each image row spans a different time, expect lower "
            "accuracy (0 = the model's frame length)")


def frame_length(card: dict, sample_rate: float, frame_seconds: float = 0.0) -> int:
    """Samples per frame: ``frame_seconds`` (>0) or the card's, at ``sample_rate``."""
    secs = frame_seconds if frame_seconds and frame_seconds > 0 else float(
        card.get("frame_seconds", sg.FRAME_SECONDS))
    n = int(round(secs * sample_rate))
    if n < sg.MIN_SAMPLES:
        raise ValueError(
            f"a {secs * 1e3:g} ms frame at {sample_rate / 1e6:g} MS/s is {n} samples; "
            f"the spectrogram needs at least {sg.MIN_SAMPLES}")
    return n


# --------------------------------------------------------------------------- detections
@dataclass
class Detection:
    """One detected signal: a connected component of one class in the class map."""

    class_index: int
    label: str
    f_lower: float  # Hz, baseband (relative to the tuned centre)
    f_upper: float
    t_start: float  # s, stream time (frame time + row time)
    t_stop: float
    sample_start: int  # absolute stream sample
    sample_count: int
    confidence: float
    snr_db: float
    row_start: int  # pixel bounding box, inclusive start, exclusive stop
    row_stop: int
    col_start: int
    col_stop: int
    n_pixels: int
    frame: int = 0

    @property
    def bandwidth(self) -> float:
        return self.f_upper - self.f_lower

    def to_dict(self, center_freq: float = 0.0) -> dict:
        # Not asdict(): it deep-copies (17 us a detection against 2 us).
        d = {k: getattr(self, k) for k in _DETECTION_ATTRS}
        d["bandwidth"] = self.bandwidth
        d["freq_lower_edge"] = center_freq + self.f_lower
        d["freq_upper_edge"] = center_freq + self.f_upper
        return d


_DETECTION_ATTRS = tuple(f.name for f in fields(Detection))

#: The numeric fields of a detection message (docs/BLOCKS.md), floats then integers.
DETECTION_FLOAT_FIELDS = ("f_lower", "f_upper", "bandwidth", "freq_lower_edge",
                          "freq_upper_edge", "t_start", "t_stop", "confidence", "snr_db")
DETECTION_INT_FIELDS = ("class_index", "sample_start", "sample_count", "frame", "row_start",
                        "row_stop", "col_start", "col_stop")
DETECTION_FIELDS = DETECTION_FLOAT_FIELDS + DETECTION_INT_FIELDS


def detection_columns(dets: list[Detection], center_freq: float = 0.0) -> dict:
    """A frame's detections as one float64 array per field, in detection order: the
    ``frames`` message's detection table (one f64 vector per field instead of a dict per
    detection: 20x cheaper to build, 100x to read, bench_messages.py). Integer fields are
    exact in float64 (< 2**53); f64 also keeps the table readable by ``pmt.to_python``,
    which has no 64-bit integer vectors."""
    cols = {k: np.array([getattr(d, k) for d in dets], np.float64)
            for k in ("f_lower", "f_upper", "t_start", "t_stop", "confidence", "snr_db")
            + DETECTION_INT_FIELDS}
    cols["bandwidth"] = cols["f_upper"] - cols["f_lower"]
    cols["freq_lower_edge"] = center_freq + cols["f_lower"]
    cols["freq_upper_edge"] = center_freq + cols["f_upper"]
    return {k: cols[k] for k in DETECTION_FIELDS}


def detection_rows(table: dict, classes=CLASSES) -> list[dict]:
    """The inverse of :func:`detection_columns`: one dict per detection, with ``class`` named
    from ``class_index``. Raises ValueError when columns are missing or of unequal length."""
    missing = [k for k in DETECTION_FIELDS if k not in table]
    if missing:
        raise ValueError(f"detection table lacks {missing}")
    cols = {k: np.asarray(table[k]).ravel() for k in DETECTION_FIELDS}
    n = {len(v) for v in cols.values()}
    if len(n) != 1:
        raise ValueError(f"detection table columns differ in length: {sorted(n)}")
    floats = [cols[k].astype(float).tolist() for k in DETECTION_FLOAT_FIELDS]
    ints = [np.rint(cols[k]).astype(np.int64).tolist() for k in DETECTION_INT_FIELDS]
    rows = []
    for i in range(n.pop()):
        row = {k: v[i] for k, v in zip(DETECTION_FLOAT_FIELDS, floats)}
        row.update({k: v[i] for k, v in zip(DETECTION_INT_FIELDS, ints)})
        ci = row["class_index"]
        row["class"] = classes[ci] if 0 <= ci < len(classes) else str(ci)
        rows.append(row)
    return rows


def detections(class_map, geo: sg.Geometry, *, confidence=None, features=None,
               frame_offset: int = 0, t0: float = 0.0, n_valid: int | None = None,
               min_pixels: int = 4, classes=CLASSES, frame: int = 0) -> list[Detection]:
    """Connected components (8-connected) per non-noise class of a 256 x 256 class map.

    ``geo`` maps rows to samples and columns to Hz; ``frame_offset`` is the stream sample of
    row 0 and ``t0`` its time. Rows beyond ``n_valid`` samples (padding) are ignored.
    The SNR estimate is in-band: mean power of the component's cells in the ``mean``
    feature channel above the noise floor, minus the floor (dB), from ``features``.
    """
    from scipy import ndimage

    cmap = np.asarray(class_map)
    if cmap.shape != (sg.N_ROWS, sg.N_COLS):
        raise ValueError(f"class map must be {sg.N_ROWS}x{sg.N_COLS}, got {cmap.shape}")
    edges = geo.row_sample_edges
    n_valid = geo.n_samples if n_valid is None else int(min(n_valid, geo.n_samples))
    valid_rows = int(np.searchsorted(edges[:-1], n_valid, side="left"))
    if valid_rows < sg.N_ROWS:
        cmap = cmap.copy()
        cmap[valid_rows:] = NOISE
    conf = None if confidence is None else np.asarray(confidence, np.float32)
    mean_lin = None
    if features is not None:
        mean_db = np.asarray(features)[0] * (sg.DB_HIGH - sg.DB_LOW) + sg.DB_LOW
        mean_lin = 10.0 ** (mean_db / 10.0)
    cw = geo.col_width
    out = []
    structure = np.ones((3, 3), bool)
    for c in np.unique(cmap):
        c = int(c)
        if c == NOISE or c >= len(classes):
            continue
        labels, n = ndimage.label(cmap == c, structure=structure)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        conf_sum = (np.bincount(labels.ravel(), weights=conf.ravel(), minlength=n + 1)
                    if conf is not None else None)
        snr_sum = (np.bincount(labels.ravel(), weights=mean_lin.ravel(), minlength=n + 1)
                   if mean_lin is not None else None)
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None or sizes[k] < min_pixels:
                continue
            r0, r1 = sl[0].start, sl[0].stop
            c0, c1 = sl[1].start, sl[1].stop
            s0 = int(edges[r0])
            s1 = int(min(edges[r1], n_valid))
            snr = float("nan")
            if snr_sum is not None:
                excess = snr_sum[k] / sizes[k] - 1.0
                snr = float(10 * math.log10(max(excess, 1e-3)))
            out.append(Detection(
                class_index=c, label=classes[c],
                f_lower=float((c0 - sg.N_COLS // 2 - 0.5) * cw),
                f_upper=float((c1 - 1 - sg.N_COLS // 2 + 0.5) * cw),
                t_start=t0 + s0 / geo.sample_rate, t_stop=t0 + s1 / geo.sample_rate,
                sample_start=frame_offset + s0, sample_count=s1 - s0,
                confidence=float(conf_sum[k] / sizes[k]) if conf_sum is not None else 1.0,
                snr_db=snr, row_start=r0, row_stop=r1, col_start=c0, col_stop=c1,
                n_pixels=int(sizes[k]), frame=frame))
    out.sort(key=lambda d: (d.sample_start, d.f_lower))
    return out


def occupancy(class_map, n_classes: int = len(CLASSES), n_valid_rows: int = sg.N_ROWS):
    """(n_classes, 256) float32: share of the frame's (valid) rows each bin holds class c."""
    cmap = np.asarray(class_map)[: max(1, n_valid_rows)]
    out = np.empty((n_classes, cmap.shape[1]), np.float32)
    for c in range(n_classes):
        out[c] = (cmap == c).mean(axis=0)
    return out


# --------------------------------------------------------------------------- framing
class FrameBuffer:
    """Cuts a sample stream into frames of exactly ``frame_len`` samples.

    ``push(samples, offset)`` accepts chunks of any size (``offset`` is the stream index of
    the chunk's first sample) and returns the completed frames as ``(start_offset, array)``.
    ``reset(offset)`` drops a partial frame (e.g. at a retune) and restarts framing there.
    """

    def __init__(self, frame_len: int, dtype=np.complex64):
        if frame_len <= 0:
            raise ValueError(f"frame length must be positive, got {frame_len}")
        self.frame_len = int(frame_len)
        self.dtype = dtype
        self._buf = np.empty(self.frame_len, dtype)
        self._fill = 0
        self._start: int | None = None
        self.discarded = 0  # samples thrown away by reset()

    @property
    def fill(self) -> int:
        return self._fill

    @property
    def start(self) -> int | None:
        return self._start

    def partial(self) -> np.ndarray:
        return self._buf[: self._fill].copy()

    def reset(self, offset: int | None = None) -> int:
        dropped = self._fill
        self.discarded += dropped
        self._fill = 0
        self._start = offset
        return dropped

    def push(self, samples, offset: int) -> list[tuple[int, np.ndarray]]:
        x = np.asarray(samples)
        done = []
        i = 0
        n = len(x)
        while i < n:
            if self._fill == 0:
                self._start = offset + i
            k = min(n - i, self.frame_len - self._fill)
            self._buf[self._fill: self._fill + k] = x[i: i + k]
            self._fill += k
            i += k
            if self._fill == self.frame_len:
                done.append((self._start, self._buf))
                self._buf = np.empty(self.frame_len, self.dtype)
                self._fill = 0
                self._start = None
        return done


class ChunkPacer:
    """How long a Python stream block should pause (GIL released) before returning from
    ``work()``.

    Each call costs ~0.1-0.2 ms of gateway overhead and takes the GIL from the inference
    thread. Two cases make GNU Radio call far too often:

    * no new input while the block holds an item back for frames in flight: the scheduler
      calls again at once, ~16,000 times a second (measured; it slowed inference 3-5x):
      pause ``seconds`` (the caller ends the pause early when a result arrives);
    * a fast source handing a few thousand samples per call: pause until about ``seconds``
      of signal has accumulated, but never for more than 3/4 of the largest chunk ever seen,
      which the upstream buffer has proved it can hold, so a small buffer never makes the
      source block.
    """

    def __init__(self, sample_rate: float, seconds: float = 1e-3):
        self.sample_rate = float(sample_rate)
        self.seconds = float(seconds)
        self.max_chunk = 0

    def delay(self, n: int, holding: bool = False) -> float:
        """Seconds to pause after a call that brought ``n`` new samples; ``holding``: the
        block keeps input unconsumed while frames are in flight."""
        if n <= 0:
            return self.seconds if holding else 0.0
        self.max_chunk = max(self.max_chunk, int(n))
        if self.sample_rate <= 0 or self.seconds <= 0:
            return 0.0
        target = min(self.sample_rate * self.seconds, 0.75 * self.max_chunk)
        return max(0.0, (target - n) / self.sample_rate)


def pad_frame(iq, frame_len: int, seed: int = 0) -> np.ndarray:
    """Pad ``iq`` to ``frame_len`` samples with complex white noise at its own noise level.

    Zeros would wreck the front end's noise-floor estimate; the level is the 20th percentile
    of 256-point Hann periodogram cells (robust to signals filling most of the band)."""
    x = np.asarray(iq, np.complex64)
    x = np.where(np.isfinite(x), x, 0).astype(np.complex64)
    n = len(x)
    if n >= frame_len:
        return x[:frame_len]
    if n >= sg.NFFT:
        segs = x[: n // sg.NFFT * sg.NFFT].reshape(-1, sg.NFFT) * sg.hann_window()
        p = np.abs(np.fft.fft(segs, axis=-1)) ** 2
        w2 = float(np.sum(sg.hann_window().astype(np.float64) ** 2))
        var = float(np.quantile(p, 0.2)) / (-math.log(0.8) * w2)
    elif n:
        var = float(np.quantile(np.abs(x) ** 2, 0.2)) / -math.log(0.8)
    else:
        var = 1e-6
    if not var > 0:
        var = max(float(np.mean(np.abs(x) ** 2)) if n else 0.0, 1e-12)
    rng = np.random.default_rng(seed)
    m = frame_len - n
    noise = (rng.standard_normal(m) + 1j * rng.standard_normal(m)) * math.sqrt(var / 2)
    return np.concatenate([x, noise.astype(np.complex64)])


# --------------------------------------------------------------------------- worker
class InferenceWorker:
    """Runs ``process(job)`` on one worker thread behind a bounded queue.

    ``policy='drop'``: :meth:`submit` never waits; when ``depth`` jobs are already waiting
    the oldest is dropped (counted, ``on_drop(job)`` called) so latency stays bounded.
    ``policy='block'``: :meth:`submit` waits for room (back-pressure, every job processed in
    order). Results go to ``on_result(job, result)`` and errors to ``on_error(job, exc)``,
    both on the worker thread.
    """

    def __init__(self, process, *, policy: str = "drop", depth: int = 2, on_result=None,
                 on_drop=None, on_error=None, name: str = "specdiff-worker"):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if depth < 1:
            raise ValueError(f"queue depth must be >= 1, got {depth}")
        self.process, self.policy, self.depth = process, policy, int(depth)
        self.on_result, self.on_drop, self.on_error = on_result, on_drop, on_error
        self._q: collections.deque = collections.deque()
        self._cv = threading.Condition()
        self._busy = False
        self._stop = False
        self.submitted = self.processed = self.dropped = self.errors = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job, timeout: float | None = None) -> bool:
        """Queue ``job``; returns False if it (block policy: timed out) was not queued."""
        dropped = None
        with self._cv:
            if self._stop:
                return False
            if self.policy == "block":
                if not self._cv.wait_for(lambda: len(self._q) < self.depth or self._stop,
                                         timeout):
                    return False
            elif len(self._q) >= self.depth:
                dropped = self._q.popleft()
                self.dropped += 1
            self._q.append(job)
            self.submitted += 1
            self._cv.notify_all()
        if dropped is not None and self.on_drop is not None:
            self.on_drop(dropped)
        return True

    def pending(self) -> int:
        with self._cv:
            return len(self._q) + (1 if self._busy else 0)

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: (not self._q and not self._busy) or self._stop,
                                     timeout)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._q or self._stop)
                if self._stop:
                    return
                job = self._q.popleft()
                self._busy = True
                self._cv.notify_all()
            try:
                result = self.process(job)
                if self.on_result is not None:
                    self.on_result(job, result)
            except Exception as exc:  # noqa: BLE001 - reported, never kills the thread
                self.errors += 1
                if self.on_error is not None:
                    self.on_error(job, exc)
            finally:
                with self._cv:
                    self._busy = False
                    self.processed += 1
                    self._cv.notify_all()


@dataclass
class FrameJob:
    """One frame handed from the stream thread to the worker."""

    index: int
    offset: int  # stream sample of the first sample
    iq: np.ndarray
    sample_rate: float
    center_freq: float
    rx_time: float  # s (stream time of the first sample)
    n_valid: int  # real samples (the rest is padding)
    t_complete: float  # time.monotonic() when the frame was complete


@dataclass
class FrameResult:
    job: FrameJob
    spec: sg.Spectrogram
    class_map: np.ndarray  # uint8 (256, 256)
    confidence: np.ndarray | None
    detections: list
    occupancy: np.ndarray  # (n_classes, 256)
    features_s: float
    inference_s: float
    latency_s: float


def analyse_frame(model, job: FrameJob, classes=CLASSES, min_pixels: int = 4) -> FrameResult:
    """Features -> model -> detections/occupancy for one frame (the worker's ``process``)."""
    t0 = time.monotonic()
    spec = sg.compute_features(job.iq, job.sample_rate)
    t1 = time.monotonic()
    x = sg.model_input(spec.features[None], job.sample_rate,
                       card_rate_channel(getattr(model, "card", {}) or {}))
    class_map, conf = model(x)
    class_map = np.asarray(class_map)[0].astype(np.uint8, copy=False)
    conf = None if conf is None else np.asarray(conf)[0].astype(np.float32, copy=False)
    t2 = time.monotonic()
    dets = detections(class_map, spec.geometry, confidence=conf, features=spec.features,
                      frame_offset=job.offset, t0=job.rx_time, n_valid=job.n_valid,
                      min_pixels=min_pixels, classes=classes, frame=job.index)
    valid_rows = int(np.searchsorted(spec.geometry.row_sample_edges[:-1], job.n_valid))
    occ = occupancy(class_map, len(classes), valid_rows)
    return FrameResult(job, spec, class_map, conf, dets, occ, t1 - t0, t2 - t1,
                       time.monotonic() - job.t_complete)


def format_table(dets, center_freq: float = 0.0) -> str:
    """Human-readable detections table; ``dets``: Detection objects or detection dicts."""
    head = (f"{'#':>4} {'class':<6} {'f_lower MHz':>13} {'f_upper MHz':>13} {'BW MHz':>8} "
            f"{'t_start s':>10} {'dur ms':>8} {'conf':>5} {'SNR dB':>6}")
    lines = [head, "-" * len(head)]
    for i, d in enumerate(dets):
        if isinstance(d, Detection):
            d = {**d.to_dict(center_freq), "class": d.label}
        lo = d.get("freq_lower_edge", center_freq + d["f_lower"])
        hi = d.get("freq_upper_edge", center_freq + d["f_upper"])
        lines.append(
            f"{i:>4} {d['class']:<6} {lo / 1e6:>13.4f} {hi / 1e6:>13.4f} "
            f"{(hi - lo) / 1e6:>8.3f} {d['t_start']:>10.4f} "
            f"{(d['t_stop'] - d['t_start']) * 1e3:>8.2f} {d.get('confidence', 1.0):>5.2f} "
            f"{d.get('snr_db', float('nan')):>6.1f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- rendering
def overlay_lut(opacity: float = 0.45) -> np.ndarray:
    """(256 classes, 256 grey levels, 3) uint8: grey blended with each class colour."""
    grey = np.arange(256, dtype=np.float32)
    lut = np.repeat(np.repeat(grey[None, :, None], 3, axis=2), 256, axis=0)
    for c, col in CLASS_COLORS.items():
        if c != NOISE:
            lut[c] = grey[:, None] * (1 - opacity) + np.asarray(col, np.float32) * opacity
    return np.round(lut).astype(np.uint8)


def blend_overlay(db_image, class_map, opacity: float = 0.45, db_range=(0.0, 40.0), lut=None):
    """RGB uint8 image: grey-scale dB image with per-class colours blended at ``opacity``."""
    lo, hi = db_range
    scale = 255.0 / max(hi - lo, 1e-6)
    g = np.clip((np.asarray(db_image, np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    if lut is None:
        lut = overlay_lut(opacity)
    return lut[np.asarray(class_map, np.uint8), g]


def render_overlay_png(path, frames: list[dict], max_frames: int = 16, title: str = "",
                       opacity: float = 0.45) -> Path:
    """PNG of up to ``max_frames`` frames (``frames`` messages as Python dicts: ``db_image``,
    ``class_map``, ``center_freq``, ``sample_rate``, ``rx_time``, ``detections``), time
    downwards, with the class mask blended, boxes and bandwidth labels (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    frames = list(frames)[:max_frames]
    if not frames:
        raise ValueError("no frames to render")
    db = np.concatenate([np.asarray(f["db_image"], np.float32).reshape(256, 256)
                         for f in frames])
    cm = np.concatenate([np.asarray(f["class_map"], np.uint8).reshape(256, 256)
                         for f in frames])
    rgb = blend_overlay(db, cm, opacity)
    first, last = frames[0], frames[-1]
    fc, fs = float(first["center_freq"]), float(first["sample_rate"])
    t0 = float(first["rx_time"])
    n_last = int(last.get("n_samples", 0)) + int(last.get("padded", 0))
    t_end = float(last["rx_time"]) + n_last / fs - t0
    f0, f1 = (fc - fs / 2) / 1e6, (fc + fs / 2) / 1e6
    fig, ax = plt.subplots(figsize=(9, 3 + 2.2 * min(len(frames), 4)), dpi=100)
    ax.imshow(rgb, aspect="auto", extent=(f0, f1, t_end * 1e3, 0), interpolation="nearest")
    dets = [d for f in frames for d in (f.get("detections") or [])]
    # Boxes for the 300 largest detections, labels for the 30 largest (readable PNG).
    dets.sort(key=lambda d: -(d["t_stop"] - d["t_start"]) * (d["f_upper"] - d["f_lower"]))
    for k, d in enumerate(dets[:300]):
        y0, y1 = (d["t_start"] - t0) * 1e3, (d["t_stop"] - t0) * 1e3
        x0, x1 = (fc + d["f_lower"]) / 1e6, (fc + d["f_upper"]) / 1e6
        col = np.array(CLASS_COLORS.get(int(d.get("class_index", 0)), (255,) * 3)) / 255
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=col, lw=1.2))
        if k < 30:
            ax.text(x0, y0, f"{d['class']} {(x1 - x0):.2f} MHz", color=col, fontsize=7,
                    va="top", clip_on=True,
                    bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0})
    ax.set_xlabel("frequency (MHz)")
    ax.set_ylabel("time (ms)")
    ax.legend(handles=[Patch(color=np.array(CLASS_COLORS[c]) / 255, label=CLASSES[c])
                       for c in range(1, len(CLASSES))], loc="upper right", fontsize=8)
    ax.set_title(title or f"{len(frames)} frame(s), centre {fc / 1e6:g} MHz, {fs / 1e6:g} MS/s")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
