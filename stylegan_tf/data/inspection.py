"""Look at a dataset: info, extract (PNGs), grid (one preview picture), compare (two datasets)."""
import os
import shutil

import numpy as np

from stylegan_tf.data.reader import open_dataset
from stylegan_tf.data.tfrecords import DatasetError, human_size, verify_level


def describe(path, verify=True):
    """A few lines for `dataset_tool.py info`.

    open_dataset checks names, shapes and per-level counts from the file sizes; with `verify` every
    record of every level is also read, its checksums checked and its shape decoded (verify_level), so
    bytes damaged in place are found and named by file and record."""
    info = open_dataset(path)
    if verify:
        for r, level in info.levels.items():
            n = verify_level(level, (info.num_channels, r, r))
            if n != info.num_images:
                raise DatasetError(f"{level}: {n} records read, {info.num_images} expected; recreate the dataset")
    size = sum(os.path.getsize(os.path.join(info.path, f)) for f in os.listdir(info.path)
               if os.path.isfile(os.path.join(info.path, f)))
    lines = [
        f"dataset     {info.path}",
        f"images      {info.num_images}",
        f"resolution  {info.resolution}x{info.resolution}, {info.num_channels} channel(s)",
        # open_dataset has counted the records of every level and refused unequal counts.
        "levels      " + ", ".join(f"{r}:{info.num_images}" for r in info.levels)
        + (" (all equal, every record verified)" if verify else " (all equal by file size; not read: --quick)"),
        f"labels      {info.label_size}" + (f" ({', '.join(info.label_names)})" if info.label_names else ""),
        f"on disk     {human_size(size)}",
    ]
    if info.attributes:
        lines.append(f"attributes  {', '.join(info.attributes)}")
    meta = info.metadata
    if meta.get("skipped"):
        lines.append(f"skipped     {meta['skipped']} source files (see skipped.json)")
    if meta.get("source"):
        lines.append(f"source      {meta['source']}")
    return "\n".join(lines)


def _resolution_for(info, level):
    level = int(level or 0)
    if level < 0 or (info.resolution >> level) not in info.levels:
        raise DatasetError(f"--level {level} is out of range: this dataset has levels 0..{len(info.levels) - 1}")
    return info.resolution >> level


def _check_new_file(path, overwrite, flag):
    if os.path.isdir(path):
        raise DatasetError(f"{flag}: {path} is a folder; give a file name")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it or choose another {flag}")


def _disk_full(e, path, when, then):
    """One DatasetError for a full disk (`path`: disk full `when` (free space); `then`), or None."""
    from stylegan_tf.atomic import is_disk_full
    if not is_disk_full(e):
        return None
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else path).free
    return DatasetError(f"{path}: disk full{when} ({human_size(free)} free); {then}")


def extract(path, out_dir, level=0, max_images=None, overwrite=False):
    """Write the images (of level `level`: 0 = full resolution, 1 = half, ...) as PNGs; returns the count.

    Files are named img00000000.png, ...; existing files of those names are replaced only with `overwrite`
    (checked before any is written). Each PNG is written atomically."""
    from stylegan_tf.image_grid import save_image
    info = open_dataset(path)
    res = _resolution_for(info, level)
    total = info.num_images if max_images is None else min(int(max_images), info.num_images)
    names = [f"img{i:08d}.png" for i in range(total)]
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise DatasetError(f"{out_dir} is a file; give a folder for the PNGs")
    if os.path.isdir(out_dir) and not overwrite:
        clash = sorted(set(names) & set(os.listdir(out_dir)))
        if clash:
            more = f" and {len(clash) - 1} more of the files extract writes" if len(clash) > 1 else ""
            raise FileExistsError(f"{out_dir} already holds {clash[0]}{more}; pass --overwrite to replace "
                                  f"them or choose another output folder")
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    try:
        for batch in info.iterate_uint8(resolution=res, max_images=max_images, batch_size=64):
            for image in batch:
                save_image(image, os.path.join(out_dir, names[n]))
                n += 1
    except OSError as e:
        error = _disk_full(e, out_dir, f" after {n} of {total} PNGs",
                           f"the {n} written are whole: free some space and rerun with --overwrite")
        if error is None:
            raise
        raise error from None
    return n


def grid(path, out_png, count=64, level=0, pad=0, overwrite=False):
    """Save the first `count` images tiled in one picture; returns its (rows, cols).

    An existing `out_png` is replaced only with `overwrite` (checked before reading the dataset)."""
    from stylegan_tf.image_grid import grid_shape, make_grid, save_image
    _check_new_file(out_png, overwrite, "OUT.png")
    info = open_dataset(path)
    res = _resolution_for(info, level)
    images = np.concatenate(list(info.iterate_uint8(resolution=res, max_images=count, batch_size=count)))
    shape = grid_shape(len(images))
    try:
        save_image(make_grid(images, shape, pad=pad), out_png)
    except OSError as e:
        error = _disk_full(e, out_png, "", "nothing was written: free some space and run again")
        if error is None:
            raise
        raise error from None
    return shape


def compare(path_a, path_b):
    """Record-by-record comparison: dict with counts of identical images and labels."""
    a, b = open_dataset(path_a), open_dataset(path_b)
    result = {"images_a": a.num_images, "images_b": b.num_images, "identical_images": 0,
              "identical_labels": 0, "compared": min(a.num_images, b.num_images),
              "same_shape": (a.resolution, a.num_channels) == (b.resolution, b.num_channels)}
    if not result["same_shape"]:
        return result
    ita, itb = a.iterate_uint8(batch_size=256, with_labels=True), b.iterate_uint8(batch_size=256, with_labels=True)
    for (xa, la), (xb, lb) in zip(ita, itb):
        n = min(len(xa), len(xb))
        result["identical_images"] += int(np.sum(np.all((xa[:n] == xb[:n]).reshape(n, -1), axis=1)))
        if la.shape[1] == lb.shape[1]:
            result["identical_labels"] += int(np.sum(np.all(la[:n] == lb[:n], axis=1)))
    return result
