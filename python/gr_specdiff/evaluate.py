# SPDX-License-Identifier: GPL-3.0-or-later
"""Segmentation metrics (pure functions) and the ``specdiff eval`` report.

Metrics follow the paper: per-class pixel accuracy (recall) averaged over the 4 classes
("mean accuracy"), per-class IoU and its mean ("mean IoU"), global pixel accuracy, and the
confusion matrix ``cm[true, pred]``. Pixels labelled ``IGNORE`` (255) are excluded. Classes
absent from both truth and prediction have undefined accuracy/IoU (NaN) and are left out of
the means (``nanmean``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from gr_specdiff import CLASS_COLORS, CLASSES, IGNORE, IGNORE_COLOR


def confusion_matrix(pred, target, n_classes: int = 4, ignore_index: int = IGNORE) -> np.ndarray:
    """``cm[i, j]`` = pixels of true class i predicted as j (int64), IGNORE pixels skipped."""
    p = np.asarray(pred).astype(np.int64).ravel()
    t = np.asarray(target).astype(np.int64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred and target sizes differ: {p.shape} vs {t.shape}")
    keep = (t != ignore_index) & (t >= 0) & (t < n_classes)
    p, t = p[keep], t[keep]
    p = np.clip(p, 0, n_classes - 1)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def metrics_from_confusion(cm: np.ndarray, class_names=CLASSES) -> dict:
    """Mean accuracy, mean IoU, per-class accuracy / IoU, global accuracy from ``cm``."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    true_n = cm.sum(axis=1)
    pred_n = cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(true_n > 0, tp / true_n, np.nan)
        union = true_n + pred_n - tp
        iou = np.where(union > 0, tp / union, np.nan)
    total = cm.sum()
    names = list(class_names)[: cm.shape[0]]

    def _f(v):
        return None if np.isnan(v) else float(v)

    return {
        "mean_accuracy": _f(np.nanmean(acc)) if np.any(~np.isnan(acc)) else None,
        "mean_iou": _f(np.nanmean(iou)) if np.any(~np.isnan(iou)) else None,
        "global_accuracy": float(tp.sum() / total) if total > 0 else None,
        "per_class_accuracy": {n: _f(a) for n, a in zip(names, acc)},
        "per_class_iou": {n: _f(a) for n, a in zip(names, iou)},
        "pixels": int(total),
        "confusion_matrix": cm.astype(np.int64).tolist(),
    }


def occupancy_iou(pred_signal, target, ignore_index: int = IGNORE) -> dict:
    """Noise-vs-signal IoU for occupancy-only detectors: pred_signal bool, target class map."""
    t = np.asarray(target)
    keep = t != ignore_index
    ps = np.asarray(pred_signal).astype(bool)[keep]
    ts = (t[keep] > 0)
    out = {}
    for name, a, b in (("signal", ps, ts), ("noise", ~ps, ~ts)):
        union = np.logical_or(a, b).sum()
        out[name] = float(np.logical_and(a, b).sum() / union) if union else None
    vals = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(vals)) if vals else None
    return out


# ----------------------------------------------------------------------------- eval report


def frame_snr(meta: dict) -> float | None:
    """A frame's SNR for the per-SNR curves: the scene's 'snr_db' or the mean of emitters'."""
    if not isinstance(meta, dict):
        return None
    for key in ("snr_db", "snr"):
        v = meta.get(key)
        if isinstance(v, (int, float)):
            return float(v)
    snrs = []
    for key in ("emitters", "signals", "components"):
        for e in meta.get(key, []) or []:
            if isinstance(e, dict):
                for k in ("snr_db", "snr"):
                    if isinstance(e.get(k), (int, float)):
                        snrs.append(float(e[k]))
    return float(np.mean(snrs)) if snrs else None


def _dataset_meta(ds, i: int) -> dict:
    for attr in ("meta", "frame_meta", "get_meta"):
        f = getattr(ds, attr, None)
        if callable(f):
            try:
                return f(i) or {}
            except Exception:  # noqa: BLE001 - meta is optional for the report
                return {}
    return {}


def _markdown(report: dict) -> str:
    m = report["metrics"]
    lines = [
        f"# Evaluation of `{report['model']}`",
        "",
        f"Data: `{report['data']}`, {report['frames']} frames, sampler steps "
        f"{report.get('steps')}.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| mean accuracy | {_pct(m['mean_accuracy'])} |",
        f"| mean IoU | {_pct(m['mean_iou'])} |",
        f"| global accuracy | {_pct(m['global_accuracy'])} |",
        f"| latency per frame (batch {report['latency']['batch']}) | "
        f"{report['latency']['ms_per_frame']:.1f} ms |",
        "",
        "| class | accuracy | IoU |",
        "|---|---|---|",
    ]
    for c in m["per_class_iou"]:
        acc, iou = m["per_class_accuracy"][c], m["per_class_iou"][c]
        lines.append(f"| {c} | {_pct(acc)} | {_pct(iou)} |")
    lines += ["", "Confusion matrix (rows: truth, columns: prediction):", ""]
    names = list(m["per_class_iou"])
    lines.append("| | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for n, row in zip(names, m["confusion_matrix"]):
        lines.append(f"| {n} | " + " | ".join(str(v) for v in row) + " |")
    # Breakdowns: (report key, first column title, first column text, extra column).
    breakdowns = (
        ("per_snr", "SNR bin (dB) | frames", lambda b: (
            f"{b['snr_lo']:.0f}..{b['snr_hi']:.0f}" if b["snr_hi"] is not None
            else f">= {b['snr_lo']:.0f}") + f" | {b['frames']}", None),
        ("per_rate", "sample rate (MS/s) | frames",
         lambda r: f"{r['sample_rate'] / 1e6:g} | {r['frames']}", None),
        ("vs_steps", "steps K", lambda r: f"{r['steps']}", "ms_per_frame"),
    )
    for key, title, first, extra in breakdowns:
        if not report.get(key):
            continue
        head = f"| {title} | mean acc | mean IoU |" + (" ms/frame |" if extra else "")
        lines += ["", head, "|---" * head.count(" | ") + "|---|"]
        for r in report[key]:
            tail = f" {r[extra]:.1f} |" if extra else ""
            lines.append(f"| {first(r)} | {_pct(r['mean_accuracy'])} | {_pct(r['mean_iou'])} |"
                         + tail)
    return "\n".join(lines) + "\n"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def predict_dataset(run_fn, ds, indices, batch: int = 8):
    """Run ``run_fn(features (B,3,H,W) np) -> (cls, conf)`` over ``ds[indices]``.

    Yields ``(index, features, labels, cls)`` per frame.
    """
    for start in range(0, len(indices), batch):
        idx = indices[start : start + batch]
        items = [ds[i] for i in idx]
        feats = np.stack([np.asarray(it[0], dtype=np.float32) for it in items])
        labels = np.stack([np.asarray(it[1]) for it in items])
        cls, _conf = run_fn(feats)
        for k, i in enumerate(idx):
            yield i, feats[k], labels[k], cls[k]


def evaluate(
    run_fn,
    ds,
    max_frames: int | None = None,
    batch: int = 8,
    snr_edges=(-20, -10, -5, 0, 5, 10, 15, 20, 30, 50, math.inf),
    gallery_snrs=(-10, 0, 10, 20),
) -> dict:
    """Metrics of ``run_fn`` on ``ds``: overall, per SNR bin and per sample rate. The gallery
    keeps the first frame within 3 dB of each of ``gallery_snrs`` (the paper's Fig. 4). The last
    SNR bin is open (``snr_hi`` None): it holds the paper protocol's noise-free frames (recorded
    as 100 dB) and realistic frames whose radar is far above the noise."""
    n = len(ds) if max_frames is None else min(len(ds), max_frames)
    indices = list(range(n))
    cm_total = np.zeros((4, 4), dtype=np.int64)
    per_bin: dict[int, np.ndarray] = {}
    bin_frames: dict[int, int] = {}
    per_rate: dict[float, np.ndarray] = {}
    rate_frames: dict[float, int] = {}
    gallery: dict[int, tuple] = {}
    t0 = time.perf_counter()
    for i, feat, lab, cls in predict_dataset(run_fn, ds, indices, batch):
        cm = confusion_matrix(cls, lab)
        cm_total += cm
        meta = _dataset_meta(ds, i)
        snr = frame_snr(meta)
        if snr is not None:
            # [lo, hi) bins: the paper protocol's SNRs sit exactly on the edges (-10, 0, 10 ...).
            b = int(np.clip(np.searchsorted(snr_edges, snr, side="right") - 1, 0,
                            len(snr_edges) - 2))
            per_bin[b] = per_bin.get(b, np.zeros((4, 4), dtype=np.int64)) + cm
            bin_frames[b] = bin_frames.get(b, 0) + 1
            for target in gallery_snrs:
                if target not in gallery and abs(snr - target) <= 3:
                    gallery[target] = (feat, lab, cls, snr)
        rate = meta.get("sample_rate")
        if rate:
            per_rate[rate] = per_rate.get(rate, np.zeros((4, 4), dtype=np.int64)) + cm
            rate_frames[rate] = rate_frames.get(rate, 0) + 1
    elapsed = time.perf_counter() - t0
    curves = []
    for b in sorted(per_bin):
        m = metrics_from_confusion(per_bin[b])
        curves.append(
            {
                "snr_lo": float(snr_edges[b]),
                "snr_hi": float(snr_edges[b + 1]) if math.isfinite(snr_edges[b + 1]) else None,
                "frames": bin_frames[b],
                "mean_accuracy": m["mean_accuracy"],
                "mean_iou": m["mean_iou"],
                "per_class_accuracy": m["per_class_accuracy"],
                "per_class_iou": m["per_class_iou"],
                "confusion_matrix": m["confusion_matrix"],
            }
        )
    rates = []
    for rate in sorted(per_rate, reverse=True):
        m = metrics_from_confusion(per_rate[rate])
        rates.append({"sample_rate": float(rate), "frames": rate_frames[rate],
                      "mean_accuracy": m["mean_accuracy"], "mean_iou": m["mean_iou"],
                      "per_class_accuracy": m["per_class_accuracy"],
                      "per_class_iou": m["per_class_iou"],
                      "confusion_matrix": m["confusion_matrix"]})
    return {
        "metrics": metrics_from_confusion(cm_total),
        "frames": n,
        "per_snr": curves,
        "per_rate": rates,
        "seconds": elapsed,
        "_gallery": [gallery[k] for k in sorted(gallery)],
    }


def measure_latency(run_fn, shape=(3, 256, 256), batch: int = 1, repeats: int = 5) -> float:
    """Median milliseconds per frame of ``run_fn`` on random features."""
    x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
    run_fn(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run_fn(x)
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times)) / batch


def _colorize(cls: np.ndarray) -> np.ndarray:
    """Class map -> RGB with the package palette (noise dark, IGNORE yellow)."""
    palette = np.array([CLASS_COLORS[c] for c in range(4)], np.float32) / 255
    palette[0] = (0.05, 0.05, 0.1)
    out = np.empty((*cls.shape, 3), dtype=np.float32)
    out[:] = np.array(IGNORE_COLOR, np.float32) / 255
    valid = cls < 4
    out[valid] = palette[cls[valid]]
    return out


def style_snr_axes(axes, titles) -> None:
    """Label a row of score-vs-SNR panels (Fig. 2 here, Fig. 3b in benchmarks) alike."""
    for ax, title in zip(axes, titles):
        ax.set_xlabel("in-band SNR (dB, mean over the frame's signals)")
        ax.set_title(title)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score")
    axes[-1].legend(loc="lower right")


def write_plots(report: dict, gallery, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if report.get("per_snr"):  # the paper's Fig. 2: per-class accuracy and IoU vs SNR
        bins = [b for b in report["per_snr"] if b["snr_hi"] is not None]
        mids = [(b["snr_lo"] + b["snr_hi"]) / 2 for b in bins]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
        for ax, kind, mean_key in zip(axes, ("accuracy", "IoU"), ("mean_accuracy", "mean_iou")):
            per_class = f"per_class_{kind.lower()}"
            for c, name in enumerate(CLASSES):
                vals = [(b.get(per_class) or {}).get(name) for b in bins]
                ax.plot(mids, [np.nan if v is None else v for v in vals], "o-", label=name,
                        color=np.array(CLASS_COLORS[c]) / 255 if c else "0.5")
            ax.plot(mids, [b[mean_key] or np.nan for b in bins], "k--", label=f"mean {kind}")
        style_snr_axes(axes, ("accuracy vs SNR", "IoU vs SNR"))
        fig.tight_layout()
        fig.savefig(out / "per_snr.png", dpi=110)
        plt.close(fig)
        written.append("per_snr.png")
    if report.get("vs_steps"):
        fig, ax = plt.subplots(figsize=(6, 4))
        ks = [r["steps"] for r in report["vs_steps"]]
        ax.plot(ks, [r["mean_accuracy"] for r in report["vs_steps"]], "o-", label="mean acc")
        ax.plot(ks, [r["mean_iou"] for r in report["vs_steps"]], "s-", label="mean IoU")
        ax.set_xlabel("DPM-Solver++ steps K")
        ax.set_ylabel("score")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "vs_steps.png", dpi=120)
        plt.close(fig)
        written.append("vs_steps.png")
    cm = np.asarray(report["metrics"]["confusion_matrix"], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    names = list(report["metrics"]["per_class_iou"])
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=120)
    plt.close(fig)
    written.append("confusion.png")
    if gallery:
        n = len(gallery)
        fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
        for r, (feat, lab, cls, snr) in enumerate(gallery):
            axes[r, 0].imshow(feat[1], aspect="auto", cmap="gray", vmin=0, vmax=1)
            axes[r, 0].text(4, 20, f"SNR {snr:+.0f} dB", color="w", fontsize=9)
            axes[r, 1].imshow(_colorize(lab), aspect="auto")
            axes[r, 2].imshow(_colorize(cls), aspect="auto")
            for c, title in enumerate(("input (peak power)", "truth", "prediction")):
                axes[r, c].set_title(title if r == 0 else "")
                axes[r, c].axis("off")
        fig.tight_layout()
        fig.savefig(out / "gallery.png", dpi=80)
        plt.close(fig)
        written.append("gallery.png")
    return written


def write_report(report: dict, out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gallery = report.pop("_gallery", [])
    plots = write_plots(report, gallery, out)
    report["plots"] = plots
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(_markdown(report))
    return out
