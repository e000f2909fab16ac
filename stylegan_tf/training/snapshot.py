"""Network snapshots: atomic writes that never replace another snapshot, damage checks, retention, and the
`--resume auto` lookup."""
import json
import os
import re
import zipfile
import zlib

from stylegan_tf.atomic import atomic_path
from stylegan_tf.network_io import SNAPSHOT_RE, register_classes_of

OPTIONS_FILE = "training_options.json"


class SnapshotError(ValueError):
    """A snapshot that cannot be resumed from; the message is one line naming the file and the damage."""


def snapshot_name(kimg):
    return f"network-snapshot-{int(kimg):06d}.keras"


def new_snapshot_path(run_dir, nimg):
    """A path in `run_dir` for a snapshot at `nimg` images that no existing file has: a resumed run with a
    longer --total-kimg reaches a whole kimg that an earlier snapshot is already named after."""
    return unused_path(run_dir, "network-snapshot-", nimg, ".keras")


def unused_path(run_dir, prefix, nimg, ext):
    """`<prefix>KKKKKK<ext>` (whole kimg), else `<prefix>KKKKKK.III<ext>` (the images past it), else `...-N`:
    the first that does not exist, so a file written earlier (a snapshot, a fakes grid) is never replaced."""
    base = f"{prefix}{nimg // 1000:06d}"
    for name in (base + ext, f"{base}.{nimg % 1000:03d}{ext}"):
        if not os.path.lexists(os.path.join(run_dir, name)):
            return os.path.join(run_dir, name)
    n = 2
    while os.path.lexists(os.path.join(run_dir, f"{base}.{nimg % 1000:03d}-{n}{ext}")):
        n += 1
    return os.path.join(run_dir, f"{base}.{nimg % 1000:03d}-{n}{ext}")


def save_snapshot(model, path):
    """Write `model` as a .keras file at `path`; a crash at any point leaves no partial file at `path`. An
    existing `path` is refused, never replaced (the run-dir lock keeps other writers out between the check
    and the rename)."""
    if os.path.lexists(path):
        raise FileExistsError(f"{path}: a snapshot of that name exists; snapshots are never replaced")
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def snapshot_damage(path):
    """What is wrong with the .keras file at `path` as a zip archive (one phrase), or None if it reads back
    whole. Every member is read, so a flipped byte anywhere is found by its CRC."""
    try:
        if not zipfile.is_zipfile(path):
            return ("truncated or not a .keras file (no complete zip archive; a copy or download cut short?)"
                    if os.path.getsize(path) else "empty file")
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                return "a zip archive without config.json, not a Keras snapshot"
            bad = archive.testzip()
            if bad is not None:
                return f"corrupted: {bad} fails its CRC check"
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:
        return f"corrupted zip archive ({str(e).strip() or type(e).__name__})"
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    return None


def snapshot_config(path):
    """The training model's config (G, D, Gs, training_state, ...) from snapshot `path`'s config.json, read
    without loading any weights; None when the file holds no readable Keras config.

    Example:
        >>> snapshot_config("results/00000-sgan-faces-64-1gpu/network-snapshot-000040.keras")["training_state"]
        {'loop': {...}, 'options': {...}, 'fingerprint': '...', 'resolution': 64}
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, zlib.error, EOFError):
        return None
    config = config.get("config") if isinstance(config, dict) else None
    return config if isinstance(config, dict) else None


def load_snapshot(path):
    """The `StyleGAN` training model of snapshot `path`. Raises SnapshotError (one line naming the file and
    what is wrong) for a damaged file, or a file that is not a training snapshot."""
    import keras
    from stylegan_tf.training.model import StyleGAN

    damage = snapshot_damage(path)
    if damage:
        raise SnapshotError(f"{path}: {damage}")
    try:
        # An architecture's classes (e.g. MSG's) register when their module is imported: the file names them.
        register_classes_of(path)
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:      # Keras raises many types for a bad file; any of them means "cannot resume"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SnapshotError(f"{path}: cannot be loaded ({msg[:200]})") from None
    if not isinstance(model, StyleGAN):
        raise SnapshotError(f"{path}: holds a {type(model).__name__}, not a training snapshot (no optimizer "
                            "state); give a network-snapshot-*.keras from a run directory")
    return model


def list_snapshots(run_dir):
    """[(kimg, path)] of the snapshots in `run_dir`, oldest first (by kimg, then by mtime)."""
    if not os.path.isdir(run_dir):
        return []
    out = []
    for name in os.listdir(run_dir):
        m = SNAPSHOT_RE.match(name)
        if m:
            path = os.path.join(run_dir, name)
            out.append((int(m.group(1)), os.path.getmtime(path), name, path))
    out.sort()
    return [(k, p) for k, _, _, p in out]


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


def resume_candidates(outdir, fingerprint):
    """[(run_dir, [snapshot paths, newest first])] of the runs under `outdir` with this options fingerprint
    (as given on the command line or as really trained), newest run first; runs without snapshots left out."""
    if not os.path.isdir(outdir):
        return []
    runs = []
    for name in os.listdir(outdir):
        m = re.match(r"^(\d+)-", name)
        path = os.path.join(outdir, name)
        if m and os.path.isdir(path):
            runs.append((int(m.group(1)), path))
    out = []
    for _, run_dir in sorted(runs, reverse=True):
        opts = read_run_options(run_dir)
        if not isinstance(opts, dict) or fingerprint not in (opts.get("fingerprint"),
                                                             opts.get("requested_fingerprint")):
            continue
        snaps = [p for _, p in reversed(list_snapshots(run_dir))]
        if snaps:
            out.append((run_dir, snaps))
    return out


def find_resume(outdir, fingerprint):
    """The newest run under `outdir` with this options fingerprint that has a snapshot:
    (run_dir, latest snapshot path), or (None, None). Whether that snapshot loads is not checked."""
    runs = resume_candidates(outdir, fingerprint)
    return (runs[0][0], runs[0][1][0]) if runs else (None, None)
