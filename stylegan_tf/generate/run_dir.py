"""A training run directory as `generate.py timelapse` and `curves` read it, for every architecture.

The writers are training/reporting.py (`fakesKKKKKK.png`, `stats.jsonl`), training/snapshot.py
(`network-snapshot-KKKKKK[.III][-N].keras`, whose pattern network_io.py defines for both) and
metrics/metric_base.py (`metric-<name>.jsonl`). The other names are repeated here rather than imported because
importing the training package loads TensorFlow (seconds), and these commands only read files;
tests/test_timelapse_curves.py checks that both sides agree on a real run.
"""
import json
import os
import re

from stylegan_tf.generate.errors import GenerateError
from stylegan_tf.network_io import SNAPSHOT_RE

OPTIONS_FILE = "training_options.json"
LOG_FILE = "log.txt"
STATS_FILE = "stats.jsonl"
# fakesKKKKKK.png is what training writes (whole kimg); the optional .III (images past KKKKKK thousand) and -N
# (repeat) follow the snapshot names, so a run whose grids are ever named like its snapshots still sorts right.
FAKES_RE = re.compile(r"^fakes(\d{6,})(?:\.(\d{3}))?(?:-(\d+))?\.png$")
METRIC_RE = re.compile(r"^metric-(.+)\.jsonl$")


def check_run_dir(run_dir, flag="RUN_DIR"):
    """Fail with one line unless `run_dir` is a folder that a training run wrote (any architecture).

    A run directory is recognised by what every run writes first (training_options.json, log.txt) or by
    what it writes as it trains (stats.jsonl, fakes*.png); NVIDIA's own run folders have the last three.

    Args:
        run_dir: the folder given on the command line.
        flag: how the message names the argument.

    Returns:
        `run_dir` as a str.

    Example:
        >>> check_run_dir("results/00000-sgan-faces-32-1gpu")   # doctest: +SKIP
        'results/00000-sgan-faces-32-1gpu'
    """
    run_dir = os.fspath(run_dir)
    if not os.path.exists(run_dir):
        raise GenerateError(f"{flag}: {run_dir} does not exist; give a training run folder such as "
                            "results/00000-...")
    if not os.path.isdir(run_dir):
        raise GenerateError(f"{flag}: {run_dir} is a file, not a training run folder (results/00000-...)")
    try:
        names = os.listdir(run_dir)
    except OSError as e:
        raise GenerateError(f"{flag}: cannot read {run_dir} ({e.strerror or e})") from None
    known = {OPTIONS_FILE, LOG_FILE, STATS_FILE}
    if not any(n in known or FAKES_RE.match(n) for n in names):
        raise GenerateError(f"{flag}: {run_dir} is not a training run folder (it has no {OPTIONS_FILE}, "
                            f"{LOG_FILE}, {STATS_FILE} or fakes*.png); give one of the results/NNNNN-... folders "
                            "that train.py writes")
    return run_dir


def kimg_of(match):
    """kimg of a FAKES_RE or SNAPSHOT_RE match: KKKKKK plus .III thousandths."""
    return int(match.group(1)) + (int(match.group(2)) / 1000.0 if match.group(2) else 0.0)


def _order(match):
    # Training time first; a repeat (-N, written by a resumed run at an already used kimg) after the original.
    return (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 1))


def fakes_grids(run_dir):
    """[(kimg, path)] of the run's fakes*.png grids in training order (numeric, so fakes1000000.png comes
    after fakes999999.png). Other files are ignored."""
    found = [(m, os.path.join(run_dir, n)) for n in os.listdir(run_dir) for m in [FAKES_RE.match(n)] if m]
    found.sort(key=lambda item: _order(item[0]))
    return [(kimg_of(m), path) for m, path in found]


def snapshot_kimg(name):
    """kimg of a snapshot file name (a path's basename is used), or None for another name."""
    m = SNAPSHOT_RE.match(os.path.basename(str(name or "")))
    return kimg_of(m) if m else None


def read_jsonl(path):
    """The JSON objects of a .jsonl file, one per line. A damaged *last* line is what a process killed in the
    middle of appending leaves, so it is dropped; a damaged line before it means the file is not ours or was
    edited, and fails with one line naming the file and line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            if i == last:
                break
            raise GenerateError(f"{path}:{i + 1}: not a JSON object line; is this the run's own file?")
        rows.append(row)
    return rows
