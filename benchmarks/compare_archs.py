#!/usr/bin/env python
"""Every registered architecture trained for the same kimg on the same dataset: a table and a fakes grid.

    python benchmarks/compare_archs.py --data ~/.cache/stylegan_tf/demo-faces-64 --resolution 32 --kimg 4
    python benchmarks/compare_archs.py --data datasets/anime --kimg 100 --archs dcgan,stylegan --minibatch 64

Each arch trains through `training_loop` (the same reader, loop and run directory as train.py) with its own
defaults and its demo-sized networks (train.py without --data: what a CPU user trains), one common minibatch.
Columns: trainable parameters of G and D; steady-state img/s and sec/kimg (ticks after the first, which holds
the tracing), wall seconds of the whole run (tracing included) and process CPU seconds; the SWD (x1e3, average
over the 16x16..RxR Laplacian levels, stylegan_tf.metrics) of N fakes of Gs against the first N reals. The floor
row is the SWD between the first N reals and the next N: no generator can be told apart from the data by more
than noise below it. Writes one fakes grid per arch side by side (the reals first) to --grid-out.
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def reals_uint8(info, resolution, count, offset=0):
    import numpy as np
    out, need = [], offset + count
    for batch in info.iterate_uint8(resolution=resolution, max_images=need, batch_size=256):
        out.append(batch)
    images = np.concatenate(out)[offset:need]
    if len(images) < count:
        raise SystemExit(f"compare_archs.py: error: --swd-images {count}: the dataset has only "
                         f"{len(images)} images past {offset}")
    return images


def fakes_uint8(Gs, count, seed, batch_size=64):
    import numpy as np
    from stylegan_tf.image_grid import to_uint8
    z = np.random.RandomState(seed).randn(count, Gs.latent_size).astype(np.float32)
    labels = None
    if Gs.label_size:
        labels = np.eye(Gs.label_size, dtype=np.float32)[np.arange(count) % Gs.label_size]
    return to_uint8(Gs.run(z, labels, truncation_psi=1.0, noise_mode="random", batch_size=batch_size))


def train_arch(arch, args, outdir):
    import numpy as np
    from stylegan_tf.training import TrainingOptions, training_loop
    tick = args.kimg / args.ticks
    opts = TrainingOptions.for_arch(
        arch, demo=True, data=args.data, outdir=outdir, resolution=args.resolution, total_kimg=args.kimg,
        minibatch=args.minibatch, tick_kimg=tick, snap_ticks=10 ** 6, image_snap_ticks=10 ** 6,
        mirror=args.mirror, progress=False, seed=args.seed, minibatch_repeats=1)
    t0, c0 = time.time(), cpu_seconds()
    result = training_loop(opts)
    wall, cpu = time.time() - t0, cpu_seconds() - c0
    rows = [json.loads(line) for line in open(os.path.join(result.run_dir, "stats.jsonl"), encoding="utf-8")]
    steady = rows[1:] or rows
    kimg = sum(r["kimg"] - p["kimg"] for p, r in zip(rows, rows[1:])) if len(rows) > 1 else rows[0]["kimg"]
    secs = sum(r["sec_per_tick"] for r in steady)
    G, D = result.model.G, result.model.D
    count = lambda net: int(sum(np.prod(v.shape) for v in net.trainable_weights))  # noqa: E731
    return dict(arch=arch, G_params=count(G), D_params=count(D), img_per_sec=kimg * 1000.0 / secs,
                sec_per_kimg=secs / kimg, wall_sec=wall, cpu_sec=cpu, run_dir=result.run_dir,
                Gs=result.model.Gs, first_tick_sec=rows[0]["sec_per_tick"])


def side_by_side(panels, path):
    """[(title, uint8 HWC grid)] -> one PNG with the titles above."""
    import numpy as np
    from PIL import Image, ImageDraw
    pad, title_h = 8, 18
    h = max(g.shape[0] for _, g in panels)
    w = sum(g.shape[1] for _, g in panels) + pad * (len(panels) + 1)
    canvas = Image.new("RGB", (w, h + title_h + 2 * pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    x = pad
    for title, grid in panels:
        grid = np.asarray(grid)
        if grid.ndim == 3 and grid.shape[2] == 1:
            grid = np.repeat(grid, 3, axis=2)
        canvas.paste(Image.fromarray(grid), (x, title_h + pad))
        draw.text((x, 3), title, fill=(0, 0, 0))
        x += grid.shape[1] + pad
    from stylegan_tf.atomic import atomic_path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        canvas.save(tmp, format="PNG")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="dataset folder (dataset_tool.py)")
    p.add_argument("--kimg", type=float, default=4.0, help="thousands of real images each arch trains on")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--minibatch", type=int, default=32, help="one minibatch for every arch")
    p.add_argument("--mirror", action="store_true", help="random left-right mirroring, as the demo trains")
    p.add_argument("--ticks", type=int, default=4, help="ticks per run (the first holds the tracing)")
    p.add_argument("--archs", default=None, help="comma-separated (default: every registered arch)")
    p.add_argument("--swd-images", type=int, default=2048)
    p.add_argument("--grid", default="6x6", help="fakes per arch as COLSxROWS")
    p.add_argument("--grid-out", default="compare-archs.png")
    p.add_argument("--json-out", default=None, help="also write the table as JSON")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--outdir", default=None, help="run directories (default: a temporary folder)")
    args = p.parse_args(argv)

    from stylegan_tf.data import open_dataset
    from stylegan_tf.image_grid import make_grid
    from stylegan_tf.metrics.sliced_wasserstein import swd
    from stylegan_tf.networks.archs import arch_names
    archs = args.archs.split(",") if args.archs else arch_names()
    unknown = [a for a in archs if a not in arch_names()]
    if unknown:
        p.error(f"--archs: unknown {', '.join(unknown)}; registered: {', '.join(arch_names())}")
    info = open_dataset(args.data)
    n = args.swd_images
    reals = reals_uint8(info, args.resolution, n)
    floor = swd(reals, reals_uint8(info, args.resolution, n, offset=n), seed=args.seed)["avg"]
    cols, rows = (int(v) for v in args.grid.split("x"))
    panels = [("reals", make_grid(reals[:cols * rows], (rows, cols)))]
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.outdir or tmp
        for arch in archs:
            print(f"== {arch}: {args.kimg:g} kimg at {args.resolution}x{args.resolution}, minibatch "
                  f"{args.minibatch}", flush=True)
            row = train_arch(arch, args, outdir)
            Gs = row.pop("Gs")
            fakes = fakes_uint8(Gs, n, args.seed)
            row["swd"] = swd(reals, fakes, seed=args.seed)["avg"]
            panels.append((arch, make_grid(fakes[:cols * rows], (rows, cols))))
            table.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "run_dir"}), flush=True)
    side_by_side(panels, args.grid_out)

    print(f"\n{args.kimg:g} kimg each, {args.resolution}x{args.resolution}, minibatch {args.minibatch}, "
          f"mirror {'on' if args.mirror else 'off'}, SWD over {n} images (x1e3, avg of levels)")
    head = f"| {'arch':<13}| {'G params':>9} | {'D params':>9} | {'img/s':>6} | {'sec/kimg':>8} | " \
           f"{'wall s':>6} | {'CPU s':>6} | {'SWD':>6} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in table:
        print(f"| {r['arch']:<13}| {r['G_params']:>9,} | {r['D_params']:>9,} | {r['img_per_sec']:>6.1f} | "
              f"{r['sec_per_kimg']:>8.1f} | {r['wall_sec']:>6.0f} | {r['cpu_sec']:>6.0f} | {r['swd']:>6.1f} |")
    print(f"| {'reals (floor)':<13}| {'':>9} | {'':>9} | {'':>6} | {'':>8} | {'':>6} | {'':>6} | {floor:>6.1f} |")
    print(f"\nGrid: {args.grid_out}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(dict(kimg=args.kimg, resolution=args.resolution, minibatch=args.minibatch, mirror=args.mirror,
                           swd_images=n, swd_floor=floor,
                           rows=[{k: v for k, v in r.items() if k != "run_dir"} for r in table]),
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
