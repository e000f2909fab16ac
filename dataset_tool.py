#!/usr/bin/env python
"""Create and inspect StyleGAN datasets (the official multi-resolution TFRecord layout).

  python dataset_tool.py create_from_images DATASET_DIR IMAGE_DIR [--resolution 256] [--workers 8]
  python dataset_tool.py create_demo DATASET_DIR [--count 10000] [--resolution 64]
  python dataset_tool.py info DATASET_DIR
  python dataset_tool.py extract DATASET_DIR OUT_DIR [--level K] [--max N]
  python dataset_tool.py grid DATASET_DIR OUT.png
  python dataset_tool.py compare DATASET_A DATASET_B
  python dataset_tool.py create_mnist DATASET_DIR MNIST_DIR   (also create_cifar10)
"""
import argparse
import os
import sys

# Keep this module free of TensorFlow at import time: worker processes may import it (cli does not).
from stylegan_tf import cli
from stylegan_tf.data import interrupts

OVERWRITE_HELP = "replace an existing dataset (only a folder holding nothing but a dataset's own files)"


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _aspect(text):
    if ":" in text:
        w, h = text.split(":", 1)
        return float(w) / float(h)
    return float(text)


def build_parser():
    p = cli.Parser(prog="dataset_tool.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("create_from_images", help="convert a folder of images (any format, size, mode)")
    c.add_argument("tfrecord_dir", help="output dataset folder (created atomically)")
    c.add_argument("image_dir", help="folder of images, searched recursively")
    c.add_argument("--resolution", type=int, default=None,
                   help="output size, a power of two (default: largest power of two <= median short side, max 1024)")
    c.add_argument("--channels", type=int, choices=(1, 3), default=3, help="3 = RGB (default), 1 = grayscale")
    c.add_argument("--transform", default="center-crop",
                   choices=("center-crop", "center-crop-wide", "pad", "stretch"),
                   help="how to make images square (default center-crop)")
    c.add_argument("--resample", default="lanczos", choices=("lanczos", "box"), help="downsampling filter")
    c.add_argument("--alpha-bg", default="white", help="colour behind transparent pixels (default white)")
    c.add_argument("--pad-color", default="black", help="border colour for pad/center-crop-wide (default black)")
    c.add_argument("--wide-aspect", type=_aspect, default=4 / 3,
                   help="width:height kept by center-crop-wide (default 4:3)")
    c.add_argument("--min-size", type=int, default=None,
                   help="skip images smaller than this many px on the side that is scaled (default: resolution)")
    c.add_argument("--allow-upscale", action="store_true", help="keep (and upscale) images below --min-size")
    c.add_argument("--max-pixels", type=int, default=89_478_485,
                   help="skip images with more pixels (decompression bombs); 0 = no limit (default 89478485)")
    c.add_argument("--shuffle", type=int, choices=(0, 1), default=1, help="1 = official pre-shuffled order")
    c.add_argument("--seed", type=int, default=123, help="shuffle seed (default 123, as the original)")
    c.add_argument("--labels-from-subdirs", action="store_true",
                   help="one-hot class labels from the first-level subfolder names")
    c.add_argument("--max-images", type=_positive, default=None, help="use at most N images")
    c.add_argument("--dedupe", action="store_true", help="drop exact duplicate files")
    c.add_argument("--workers", type=_positive, default=None, help="decoding processes (default: all cores)")
    c.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    c.add_argument("--quiet", action="store_true", help="no progress bar")

    d = sub.add_parser("create_demo", help="the built-in procedural cartoon-face dataset")
    d.add_argument("tfrecord_dir")
    d.add_argument("--count", type=_positive, default=10000, help="number of faces (default 10000)")
    d.add_argument("--resolution", type=int, default=64, help="power of two in 8..1024 (default 64)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--label-attribute", default=None,
                   help="store this categorical attribute as one-hot labels (e.g. hair_color)")
    d.add_argument("--workers", type=_positive, default=None)
    d.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    d.add_argument("--quiet", action="store_true")

    for cmd, what in (("create_mnist", "MNIST (train-*-idx*-ubyte.gz)"),
                      ("create_cifar10", "CIFAR-10 (python or binary version)")):
        x = sub.add_parser(cmd, help=f"import a local copy of {what}, with one-hot labels")
        x.add_argument("tfrecord_dir")
        x.add_argument("source_dir")
        x.add_argument("--shuffle", type=int, choices=(0, 1), default=1)
        x.add_argument("--seed", type=int, default=123)
        x.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    i = sub.add_parser("info", help="count, resolution, levels, labels, size; reads and verifies every record")
    i.add_argument("tfrecord_dir")
    i.add_argument("--quick", action="store_true",
                   help="check the layout and counts from the file sizes only; do not read the records")

    e = sub.add_parser("extract", help="write the images as PNGs")
    e.add_argument("tfrecord_dir")
    e.add_argument("output_dir")
    e.add_argument("--level", type=int, default=0, help="0 = full resolution, 1 = half, ...")
    e.add_argument("--max", type=_positive, default=None, dest="max_images", help="at most N images")
    e.add_argument("--overwrite", action="store_true", help="replace PNGs of the same names in OUT_DIR")

    g = sub.add_parser("grid", help="save a preview grid of the first images")
    g.add_argument("tfrecord_dir")
    g.add_argument("output_png")
    g.add_argument("--count", type=_positive, default=64)
    g.add_argument("--level", type=int, default=0)
    g.add_argument("--overwrite", action="store_true", help="replace an existing OUT.png")

    m = sub.add_parser("compare", help="compare two datasets record by record")
    m.add_argument("tfrecord_dir_a")
    m.add_argument("tfrecord_dir_b")
    return p


def _remove_stale_temps(out_dir):
    """Delete what a killed earlier run left beside OUT (its hidden .partial folder), and say so."""
    from stylegan_tf.atomic import remove_stale_temps
    for path in remove_stale_temps(os.path.dirname(os.path.abspath(out_dir))):
        print(f"dataset_tool.py: cleaned up {path}, left by an interrupted run", file=sys.stderr)


def run(args):
    from stylegan_tf import data
    from stylegan_tf.data import inspection as inspect

    if args.command.startswith("create"):
        _remove_stale_temps(args.tfrecord_dir)
    if args.command == "create_from_images":
        summary = data.create_from_images(
            args.tfrecord_dir, args.image_dir, resolution=args.resolution, channels=args.channels,
            transform=args.transform, resample=args.resample, alpha_bg=args.alpha_bg, pad_color=args.pad_color,
            wide_aspect=args.wide_aspect, min_size=args.min_size, allow_upscale=args.allow_upscale,
            max_pixels=args.max_pixels, shuffle=bool(args.shuffle), seed=args.seed,
            labels_from_subdirs=args.labels_from_subdirs, max_images=args.max_images, dedupe=args.dedupe,
            workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
        print(summary)
    elif args.command == "create_demo":
        info = data.create_demo(args.tfrecord_dir, count=args.count, resolution=args.resolution, seed=args.seed,
                                label_attribute=args.label_attribute, overwrite=args.overwrite,
                                workers=args.workers, progress=not args.quiet)
        print(f"wrote {info.num_images} demo faces at {info.resolution}x{info.resolution} to {info.path}")
    elif args.command in ("create_mnist", "create_cifar10"):
        from stylegan_tf.data import importers
        info = getattr(importers, args.command)(args.tfrecord_dir, args.source_dir, shuffle=bool(args.shuffle),
                                                seed=args.seed, overwrite=args.overwrite)
        print(f"wrote {info.num_images} images at {info.resolution}x{info.resolution}x{info.num_channels} "
              f"with {info.label_size} classes to {info.path}")
    elif args.command == "info":
        print(inspect.describe(args.tfrecord_dir, verify=not args.quick))
    elif args.command == "extract":
        n = inspect.extract(args.tfrecord_dir, args.output_dir, level=args.level, max_images=args.max_images,
                            overwrite=args.overwrite)
        print(f"wrote {n} PNGs to {args.output_dir}")
    elif args.command == "grid":
        rows, cols = inspect.grid(args.tfrecord_dir, args.output_png, count=args.count, level=args.level,
                                  overwrite=args.overwrite)
        print(f"wrote a {rows}x{cols} grid to {args.output_png}")
    elif args.command == "compare":
        r = inspect.compare(args.tfrecord_dir_a, args.tfrecord_dir_b)
        if not r["same_shape"]:
            print("datasets differ in resolution or channels")
            return 1
        print(f"images: A {r['images_a']}, B {r['images_b']}; identical images {r['identical_images']} / "
              f"{r['compared']}; identical labels {r['identical_labels']} / {r['compared']}")
        same = r["images_a"] == r["images_b"] == r["identical_images"] == r["identical_labels"]
        return 0 if same else 1
    return 0


def main(argv=None):
    cli.quiet_tensorflow(cli.verbose(argv))
    args = build_parser().parse_args(argv)
    # The create commands build in a temporary folder that is removed; extract may have written some PNGs.
    interrupted = "interrupted; no dataset was written" if args.command.startswith("create") else "interrupted"
    with interrupts.stop_on_signals():  # SIGTERM too; a Ctrl-C that Python swallowed still stops the writers
        return cli.run("dataset_tool.py", lambda: run(args), interrupted=interrupted)


if __name__ == "__main__":
    sys.exit(main())
