"""Training curves: losses, D scores, regularizers and metric values against kimg, from a run's stats.jsonl
(one row per tick) and metric-*.jsonl (one record per evaluated snapshot), drawn with matplotlib.

matplotlib is an optional extra (`pip install -e ".[plot]"`): nothing else in the project needs it. It is used
through its object API on the Agg canvas, never pyplot, so it works without a display and leaves the backend
of a notebook that calls this alone.
"""
import math
import os

from stylegan_tf.atomic import atomic_path
from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.generate.output import check_writable
from stylegan_tf.generate.run_dir import METRIC_RE, STATS_FILE, check_run_dir, read_jsonl, snapshot_kimg

CURVE_EXTS = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
# stats.jsonl columns that describe the run's progress and speed rather than what the networks learn.
BOOKKEEPING = frozenset({"tick", "kimg", "lod", "resolution", "minibatch", "sec_per_tick", "sec_per_kimg",
                         "img_per_sec", "maintenance_sec", "peak_mem_gb", "total_sec", "timestamp"})
# The gradient penalties of the loss registry: R1 (logistic), GP (wgan-gp), the WGAN-div term.
REGULARIZERS = ("r1", "r2", "gp", "div")
# train.py --augment's: p and the mean sign of D(reals) (ADA's r_t), drawn even when p stays 0.
AUGMENTATION = ("aug_p", "ada_rt")
AUGMENTATION_PANEL = "Augmentation (p, r_t = E[sign(D(reals))])"
PANEL_HEIGHT_IN = 2.4
WIDTH_IN = 9.0
DPI = 110


def _panel(key):
    """Which panel a stats column goes to; None: not plotted."""
    if key in BOOKKEEPING:
        return None
    if key.endswith("_loss") or key == "loss":
        return "Losses"
    if key.endswith("_score") or key.endswith("_scores"):
        return "D scores (mean D output)"
    if key in REGULARIZERS:
        return "Gradient penalties (per-sample mean)"
    if key in AUGMENTATION:
        return AUGMENTATION_PANEL
    return "Other training values"


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_stats(run_dir):
    """stats.jsonl rows of `run_dir` that have a kimg, in kimg order ([] if the file is missing)."""
    path = os.path.join(run_dir, STATS_FILE)
    if not os.path.isfile(path):
        return []
    rows = [r for r in read_jsonl(path) if _number(r.get("kimg")) is not None]
    return sorted(rows, key=lambda r: float(r["kimg"]))


def read_metrics(run_dir):
    """{metric name: [(kimg, {result name: value})]} from the run's metric-*.jsonl, in kimg order.

    The kimg of a record comes from its snapshot's file name; records of networks that are not this run's
    snapshots (the metrics CLI on another file) have no place on the axis and are left out. A snapshot
    evaluated twice keeps its latest record."""
    out = {}
    for name in sorted(os.listdir(run_dir)):
        m = METRIC_RE.match(name)
        if not m or not os.path.isfile(os.path.join(run_dir, name)):
            continue
        by_snapshot = {}
        for record in read_jsonl(os.path.join(run_dir, name)):
            kimg = snapshot_kimg(record.get("snapshot"))
            results = record.get("results")
            if kimg is None or not isinstance(results, dict):
                continue
            values = {k: float(v) for k, v in results.items() if _number(v) is not None}
            if values:
                by_snapshot[record["snapshot"]] = (kimg, values)
        if by_snapshot:
            out[m.group(1)] = sorted(by_snapshot.values(), key=lambda kv: kv[0])
    return out


def curve_panels(stats, metrics):
    """[(title, {series name: ([kimg], [value])})] in drawing order: losses, D scores, gradient penalties,
    other values the run logged, then one panel per metric. Series that are zero throughout (e.g.
    `nonfinite_skips` of a healthy run) are left out."""
    panels = {}
    for row in stats:
        for key, value in row.items():
            value = _number(value)
            title = _panel(key)
            if title is None or value is None:
                continue
            xs, ys = panels.setdefault(title, {}).setdefault(key, ([], []))
            xs.append(float(row["kimg"]))
            ys.append(value)
    order = ["Losses", "D scores (mean D output)", "Gradient penalties (per-sample mean)", AUGMENTATION_PANEL,
             "Other training values"]
    result = []
    for title in order:
        series = {k: v for k, v in sorted(panels.get(title, {}).items())
                  if title == AUGMENTATION_PANEL or any(y != 0 and not math.isnan(y) for y in v[1])}
        if series:
            result.append((title, series))
    for metric, records in metrics.items():
        series = {}
        for kimg, values in records:
            for key, value in values.items():
                xs, ys = series.setdefault(key, ([], []))
                xs.append(kimg)
                ys.append(value)
        result.append((f"Metric {metric}", dict(sorted(series.items()))))
    return result


def resolution_changes(stats):
    """[(kimg, resolution)] where progressive growing moved to a new resolution (the kimg at which the
    first tick at that resolution began); [] for an architecture that trains at one resolution."""
    changes = []
    for prev, row in zip(stats, stats[1:]):
        a, b = _number(prev.get("resolution")), _number(row.get("resolution"))
        if a is not None and b is not None and a != b:
            changes.append((float(prev["kimg"]), int(b)))
    return changes


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GenerateError('curves needs matplotlib, an optional extra: pip install -e ".[plot]" '
                            "(or pip install matplotlib)") from None
    return Figure, FigureCanvasAgg


def plot_curves(run_dir, out="curves.png", overwrite=False):
    """Draw the training curves of `run_dir` into `out`: one panel each for the losses, the D scores, the
    gradient penalties (R1/GP/div) and any other values the run logged, then one per metric-*.jsonl, all
    against kimg; dotted lines mark where progressive growing reached a new resolution.

    Args:
        run_dir: a training run folder (any architecture: they share the layout).
        out: .png, .jpg, .svg or .pdf.
        overwrite: replace an existing `out`.

    Returns:
        [out]

    Example:
        >>> plot_curves("results/00000-sgan-faces-32-1gpu", "curves.png")  # doctest: +SKIP
        ['curves.png']
    """
    Figure, FigureCanvasAgg = _matplotlib()
    check_run_dir(run_dir)
    ext = os.path.splitext(os.fspath(out))[1].lower()
    if ext not in CURVE_EXTS:
        raise GenerateError(f"--out: {out} must end in one of {', '.join(CURVE_EXTS)}")
    check_writable([out], overwrite)
    stats = read_stats(run_dir)
    panels = curve_panels(stats, read_metrics(run_dir))
    if not panels:
        raise GenerateError(f"RUN_DIR: {run_dir} has no {STATS_FILE} rows or metric-*.jsonl records yet: nothing "
                            "to plot (training writes a stats row at the end of every tick)")

    fig = Figure(figsize=(WIDTH_IN, PANEL_HEIGHT_IN * len(panels) + 0.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    changes = resolution_changes(stats)
    for ax, (title, series) in zip(axes, panels):
        for name, (xs, ys) in series.items():
            ax.plot(xs, ys, label=name, linewidth=1.2, marker="o" if len(xs) < 20 else None, markersize=3)
        for kimg, res in changes:
            ax.axvline(kimg, color="0.6", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    for kimg, res in changes:
        axes[0].annotate(f"{res}\u00b2", (kimg, 1), xycoords=("data", "axes fraction"), xytext=(2, -2),
                         textcoords="offset points", fontsize=7, color="0.4", va="top")
    axes[-1].set_xlabel("kimg (thousands of real images shown to D)")
    fig.suptitle(os.path.basename(os.path.normpath(os.path.abspath(run_dir))), fontsize=11)
    with atomic_path(out, suffix=ext) as tmp:
        fig.savefig(tmp, format=ext.lstrip(".").replace("jpg", "jpeg"))
    return [os.fspath(out)]
