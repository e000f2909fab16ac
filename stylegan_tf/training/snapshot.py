"""Network snapshots: atomic writes, retention, and the `--resume auto` lookup."""
import json
import os
import re

from stylegan_tf.atomic import atomic_path

SNAPSHOT_RE = re.compile(r"^network-snapshot-(\d{6,})\.keras$")
OPTIONS_FILE = "training_options.json"


def snapshot_name(kimg):
    return f"network-snapshot-{int(kimg):06d}.keras"


def save_snapshot(model, path):
    """Write `model` as a .keras file at `path`; a crash at any point leaves the previous file intact."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def list_snapshots(run_dir):
    """[(kimg, path)] of the complete snapshots in `run_dir`, oldest first (by kimg, then by mtime)."""
    if not os.path.isdir(run_dir):
        return []
    out = []
    for name in os.listdir(run_dir):
        m = SNAPSHOT_RE.match(name)
        if m:
            path = os.path.join(run_dir, name)
            out.append((int(m.group(1)), os.path.getmtime(path), path))
    out.sort()
    return [(k, p) for k, _, p in out]


def apply_retention(run_dir, keep):
    """Delete all but the `keep` newest snapshots of `run_dir`; returns the deleted paths."""
    if not keep:
        return []
    snaps = list_snapshots(run_dir)
    doomed = [p for _, p in snaps[:-keep]] if len(snaps) > keep else []
    for p in doomed:
        os.remove(p)
    return doomed


def read_run_options(run_dir):
    try:
        with open(os.path.join(run_dir, OPTIONS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def find_resume(outdir, fingerprint):
    """The newest run under `outdir` with this options fingerprint that has a snapshot:
    (run_dir, latest snapshot path), or (None, None)."""
    if not os.path.isdir(outdir):
        return None, None
    runs = []
    for name in os.listdir(outdir):
        m = re.match(r"^(\d+)-", name)
        path = os.path.join(outdir, name)
        if m and os.path.isdir(path):
            runs.append((int(m.group(1)), path))
    for _, run_dir in sorted(runs, reverse=True):
        opts = read_run_options(run_dir)
        if not opts or opts.get("fingerprint") != fingerprint:
            continue
        snaps = list_snapshots(run_dir)
        if snaps:
            return run_dir, snaps[-1][1]
    return None, None
