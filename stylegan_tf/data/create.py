"""create_from_images: a user's (messy, scraped) image folder -> the official multi-level TFRecords."""
import collections
import json
import os
import time

import numpy as np

from stylegan_tf.data import images as imlib
from stylegan_tf.data import interrupts
from stylegan_tf.data.tfrecords import DatasetError

JUNK_FILES = {"thumbs.db", "desktop.ini"}  # OS litter, ignored like hidden files
OFFICIAL_SEED = 123


class CreateSummary:
    """What create_from_images did; str() is the one-line summary the CLI prints."""

    def __init__(self, path, kept, skipped, resolution, channels, label_names, seconds):
        self.path, self.kept, self.skipped = path, kept, skipped
        self.resolution, self.channels, self.label_names, self.seconds = resolution, channels, label_names, seconds
        self.by_kind = dict(collections.Counter(s["kind"] for s in skipped).most_common())

    def __str__(self):
        why = ", ".join(f"{k}: {n}" for k, n in self.by_kind.items())
        labels = f", {len(self.label_names)} classes" if self.label_names else ""
        return (f"kept {self.kept} images, skipped {len(self.skipped)}{f' ({why})' if why else ''}; "
                f"wrote {self.resolution}x{self.resolution}x{self.channels}{labels} to {self.path} "
                f"in {self.seconds:.1f}s")


def list_files(image_dir, exclude=None):
    """(sorted relative paths of candidate files, [skip records]); walks recursively, ignores hidden
    files/folders and the folder `exclude` (an output dataset inside the image folder), and never
    follows links out of the folder (or into folders: no loops)."""
    root = os.path.realpath(image_dir)
    exclude = os.path.realpath(exclude) if exclude else None
    files, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(image_dir, followlinks=False):
        keep = []
        for d in dirnames:
            if d.startswith(".") or os.path.realpath(os.path.join(dirpath, d)) == exclude:
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                rel = os.path.relpath(os.path.join(dirpath, d), image_dir).replace(os.sep, "/")
                skipped.append({"path": rel, "kind": "link", "reason": "link to a folder, not followed"})
                continue
            keep.append(d)
        dirnames[:] = sorted(keep)
        for name in filenames:
            if name.startswith(".") or name.lower() in JUNK_FILES:
                continue
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, image_dir).replace(os.sep, "/")
            if os.path.islink(p):
                target = os.path.realpath(p)
                if not target.startswith(root + os.sep):
                    skipped.append({"path": rel, "kind": "link", "reason": "link to a file outside the folder"})
                    continue
                if not os.path.isfile(target):
                    skipped.append({"path": rel, "kind": "link", "reason": "broken link"})
                    continue
            elif not os.path.isfile(p):
                skipped.append({"path": rel, "kind": "unreadable", "reason": "not a regular file"})
                continue
            files.append(rel)
    files.sort()
    return files, skipped


def _default_resolution(sizes):
    median = float(np.median([min(w, h) for w, h in sizes]))
    if median < 4:
        raise DatasetError(f"images are too small to train on (median short side {median:.0f} px)")
    return int(min(1024, 2 ** int(np.floor(np.log2(median)))))


@interrupts.stop_on_signals()
def create_from_images(tfrecord_dir, image_dir, resolution=None, channels=3, transform="center-crop",
                       resample="lanczos", alpha_bg="white", pad_color="black", wide_aspect=4 / 3,
                       min_size=None, allow_upscale=False, max_pixels=imlib.DEFAULT_MAX_PIXELS, shuffle=True,
                       seed=OFFICIAL_SEED, labels_from_subdirs=False, max_images=None, dedupe=False,
                       workers=None, overwrite=False, progress=True):
    """Convert every usable image under `image_dir` into a dataset at `tfrecord_dir`; returns CreateSummary.

    Records are written in `np.random.RandomState(seed).shuffle` order of the sorted usable files (the
    original's order when every file is usable), or sorted with shuffle=False. Files that cannot be
    used are skipped with a reason (`skipped.json`). Raises DatasetError for bad options or when no
    image is usable, FileExistsError when the target exists and `overwrite` is False. Ctrl-C or SIGTERM
    (data/interrupts.py) stops the worker processes, removes the unfinished dataset and raises KeyboardInterrupt.
    """
    from stylegan_tf.data.tfrecords import (DatasetWriter, check_output, dataset_bytes, explain_disk_full,
                                            labels_path, output_dir, write_metadata)
    from stylegan_tf.data.workers import Workers

    start = time.time()
    image_dir, tfrecord_dir = os.fspath(image_dir), os.path.abspath(os.fspath(tfrecord_dir))
    if not os.path.isdir(image_dir):
        raise DatasetError(f"{image_dir}: image folder not found")
    if channels not in (1, 3):
        raise DatasetError(f"--channels must be 1 or 3, got {channels}")
    if transform not in imlib.TRANSFORMS:
        raise DatasetError(f"--transform must be one of {', '.join(imlib.TRANSFORMS)}, got {transform!r}")
    if resample not in imlib.RESAMPLE:
        raise DatasetError(f"--resample must be one of {', '.join(imlib.RESAMPLE)}, got {resample!r}")
    if resolution is not None and (resolution < 4 or resolution > 8192 or resolution & (resolution - 1)):
        raise DatasetError(f"--resolution must be a power of two in 4..8192, got {resolution}")
    if not wide_aspect or wide_aspect < 1:
        raise DatasetError(f"--wide-aspect must be >= 1 (width/height), got {wide_aspect}")
    if max_images is not None and max_images < 1:
        raise DatasetError(f"--max-images must be >= 1, got {max_images}")
    try:
        alpha_rgb, pad_rgb = imlib.parse_color(alpha_bg, "--alpha-bg"), imlib.parse_color(pad_color, "--pad-color")
    except ValueError as e:
        raise DatasetError(str(e)) from None
    src_real, dst_real = os.path.realpath(image_dir), os.path.realpath(tfrecord_dir)
    if dst_real == src_real or src_real.startswith(dst_real + os.sep):
        raise DatasetError(f"{tfrecord_dir}: the output folder must not contain the image folder")
    check_output(tfrecord_dir, overwrite)

    files, skipped = list_files(image_dir, exclude=tfrecord_dir)
    if labels_from_subdirs:
        at_root = [f for f in files if "/" not in f]
        skipped += [{"path": f, "kind": "no-class-folder",
                     "reason": "not inside a class subfolder (--labels-from-subdirs)"} for f in at_root]
        files = [f for f in files if "/" in f]
    if not files:
        raise DatasetError(f"{image_dir}: no files to read ({len(skipped)} ignored); point at a folder of images")

    def bar(it, total, desc):
        if not progress:
            return it
        from tqdm import tqdm
        return tqdm(it, total=total, desc=desc, unit="img", dynamic_ncols=True, smoothing=0.1)

    with Workers(workers) as pool:
        # Pass 1, headers only: sizes, content type, pixel limit, duplicates. The shuffle order is drawn
        # over the files that survive it, so it matches the original's order for a clean folder.
        tasks = [(i, os.path.join(image_dir, f), max_pixels, dedupe) for i, f in enumerate(files)]
        probed = {}
        for i, info, skip in bar(pool.imap(imlib.probe_task, tasks, chunksize=32), len(tasks), "scanning"):
            if skip:
                skipped.append({"path": files[i], "kind": skip[0], "reason": skip[1]})
            else:
                probed[i] = info
        seen = {}
        for i in sorted(probed):
            digest = probed[i][2]
            if dedupe and digest in seen:
                skipped.append({"path": files[i], "kind": "duplicate", "reason": f"same bytes as {seen[digest]}"})
                del probed[i]
            elif dedupe:
                seen[digest] = files[i]
        if not probed:
            raise DatasetError(_nothing_usable(image_dir, skipped))
        if resolution is None:
            resolution = _default_resolution([probed[i][:2] for i in probed])
        opts = {"resolution": int(resolution), "channels": int(channels), "transform": transform,
                "resample": resample, "alpha_bg": alpha_rgb, "pad_color": pad_rgb, "wide_aspect": float(wide_aspect),
                "min_size": int(resolution if min_size is None else min_size), "allow_upscale": bool(allow_upscale),
                "max_pixels": int(max_pixels or 0)}
        candidates = []
        for i in sorted(probed):
            try:
                if transform != "center-crop-wide":
                    imlib.check_size(*probed[i][:2], opts)
                candidates.append(i)
            except imlib.SkipImage as e:
                skipped.append({"path": files[i], "kind": e.kind, "reason": e.reason})
        if not candidates:
            raise DatasetError(_nothing_usable(image_dir, skipped))
        order = np.arange(len(candidates))
        if shuffle:
            np.random.RandomState(seed).shuffle(order)
        if max_images is not None:
            order = order[:max_images]

        # Pass 2: decode and resize in the workers; this process only writes records, in order.
        name = os.path.basename(tfrecord_dir)
        kept = []
        with explain_disk_full(tfrecord_dir, dataset_bytes(len(order), resolution, channels)), \
                interrupts.guarded(output_dir(tfrecord_dir, overwrite)) as tmp:
            with DatasetWriter(tmp, name, resolution, channels) as writer:
                tasks = [(int(candidates[k]), os.path.join(image_dir, files[candidates[k]]), opts) for k in order]
                for i, pyramid, skip in bar(pool.imap(imlib.load_task, tasks, chunksize=4), len(tasks), "images"):
                    if skip:
                        skipped.append({"path": files[i], "kind": skip[0], "reason": skip[1]})
                        continue
                    writer.add(pyramid)
                    kept.append(files[i])
                if not kept:
                    raise DatasetError(_nothing_usable(image_dir, skipped))
                label_names = None
                if labels_from_subdirs:
                    classes = [f.split("/", 1)[0] for f in kept]
                    label_names = sorted(set(classes))
                    index = {c: k for k, c in enumerate(label_names)}
                    writer.write_labels(np.eye(len(label_names), dtype=np.float32)[[index[c] for c in classes]])
            skipped.sort(key=lambda s: s["path"])
            summary = CreateSummary(tfrecord_dir, len(kept), skipped, resolution, channels, label_names,
                                    time.time() - start)
            _write_json(os.path.join(tmp, "skipped.json"),
                        {"count": len(skipped), "by_kind": summary.by_kind, "files": skipped})
            _write_json(os.path.join(tmp, "files.json"), kept)
            write_metadata(tmp, "stylegan_tf dataset_tool.py create_from_images", {
                "name": name, "count": len(kept), "resolution": int(resolution),
                "channels": int(channels), "levels": [resolution >> k for k in range(int(np.log2(resolution)) - 1)],
                "label_size": 0 if label_names is None else len(label_names), "label_names": label_names,
                "labels_file": os.path.basename(labels_path(tmp, name)) if label_names else None,
                "source": os.path.abspath(image_dir),
                "options": {"transform": transform, "resample": resample, "channels": int(channels),
                            "alpha_bg": list(alpha_rgb), "pad_color": list(pad_rgb), "wide_aspect": float(wide_aspect),
                            "min_size": opts["min_size"], "allow_upscale": bool(allow_upscale),
                            "max_pixels": opts["max_pixels"], "shuffle": bool(shuffle), "seed": int(seed),
                            "labels_from_subdirs": bool(labels_from_subdirs), "max_images": max_images,
                            "dedupe": bool(dedupe)},
                "skipped": len(skipped), "files_file": "files.json", "seconds": round(time.time() - start, 2),
            })
    summary.seconds = time.time() - start
    return summary


def _nothing_usable(image_dir, skipped):
    kinds = collections.Counter(s["kind"] for s in skipped).most_common()
    why = ", ".join(f"{k}: {n}" for k, n in kinds)
    return f"{image_dir}: no usable images ({len(skipped)} files skipped: {why})"


def _write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
