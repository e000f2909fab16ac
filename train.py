#!/usr/bin/env python
"""Train StyleGAN (NVIDIA's schedule, losses and loop) with Keras `fit`.

    python train.py                                   # the built-in demo: small faces in <= 10 min on a CPU
    python train.py --data datasets/ffhq --outdir results --mirror
    python train.py --data datasets/mine --resume auto # continue after a Colab disconnect
    python train.py --data datasets/ffhq --dry-run    # print the resolved options and the schedule table
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The demo: a 32x32 network trained at full resolution from the start (no growing: at this budget a fade
# would last ~500 steps, too few for a new block to leave its random initialisation) for 32 kimg, so that a
# fresh machine shows faces within ~10 minutes on a 2-core CPU. R1 gamma 50 (not 10) gave more varied faces
# with less noise speckle at this size; docs/training.md has the measurements.
DEMO = dict(resolution=32, total_kimg=32.0, minibatch=16, lrate=0.002, gamma=50.0, lod_initial_resolution=32,
            tick_kimg=4.0, fmap_base=256, fmap_max=64, latent_size=64, dlatent_size=64, mapping_layers=4,
            mapping_fmaps=64, snap_ticks=4, mirror=True, g_smoothing_kimg=1.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Train StyleGAN with the official schedule through Keras fit.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--data", help="dataset folder made by dataset_tool.py (default: build and train the demo dataset)")
    a("--outdir", default="results", help="where run directories NNNNN-desc are created")
    a("--config", default="stylegan", help="stylegan (= configF), configB..configE (paper Table 1), progan")
    a("--resolution", type=int, help="train at this resolution of the dataset (default: its full resolution)")
    a("--total-kimg", type=float, help="length of training in thousands of real images (default 25000)")
    a("--mirror", action="store_true", default=None, help="augment with random left-right mirroring")
    a("--loss", help="logistic (StyleGAN + R1), wgan-gp, wgan, wgan-div, hinge (default logistic)")
    a("--gamma", type=float, help="R1 weight for the logistic loss (default 10)")
    a("--gpus", type=int, help="number of GPUs (MirroredStrategy) (default 1)")
    a("--batch-preset", choices=["1gpu", "2gpu", "4gpu", "8gpu"], help="official minibatch table (default: --gpus)")
    a("--minibatch", type=int, help="one global minibatch for every resolution (overrides the preset)")
    a("--lrate", type=float, help="one learning rate for every resolution (overrides the official dict)")
    a("--lod-initial-resolution", type=int, help="resolution training starts at (default 8)")
    a("--lod-training-kimg", type=float, help="kimg per level before fading in the next (default 600)")
    a("--lod-transition-kimg", type=float, help="kimg of each fade-in (default 600)")
    a("--tick-kimg", type=float, help="one tick length for every resolution (default: official per-resolution)")
    a("--g-smoothing-kimg", type=float, help="half-life of Gs, the running average of G, in kimg (default 10)")
    a("--snap-ticks", type=int, help="network snapshot every N ticks (default 10)")
    a("--image-snap-ticks", type=int, help="fakes grid every N ticks (default 1)")
    a("--snap-minutes", type=float, help="also snapshot at least every M minutes (for Colab)")
    a("--keep-snapshots", type=int, help="keep only the N newest snapshots")
    a("--metrics", help="comma-separated metrics run on every snapshot, e.g. fid50k")
    a("--resume", help="'auto' (newest run with the same data and options), a .keras snapshot or an official .pkl")
    a("--resume-kimg", type=float, help="where the schedule starts when fine-tuning an official .pkl")
    a("--seed", type=int, help="random seed (default 1000)")
    a("--mixed-precision", action="store_true", default=None,
      help="fp16 with loss scaling on GPU, bf16 on CPU (default fp32)")
    a("--fmap-base", type=int, help="feature maps: nf(stage) = min(fmap_base / 2**stage, fmap_max) (default 8192)")
    a("--fmap-max", type=int, help="largest number of feature maps (default 512)")
    a("--latent-size", type=int, help="size of z (default 512)")
    a("--dlatent-size", type=int, help="size of w (default 512)")
    a("--mapping-layers", type=int, help="layers of the mapping network (default 8)")
    a("--mapping-fmaps", type=int, help="width of the mapping network (default 512)")
    a("--grid", help="fakes grid size as COLSxROWS, e.g. 8x4")
    a("--no-progress", action="store_true", help="no progress bars")
    a("--dry-run", action="store_true", help="print the resolved options and the schedule table, then exit")
    return p.parse_args(argv)


def build_options(args):
    from stylegan_tf.training import TrainingOptions

    given = {k: v for k, v in vars(args).items() if v is not None and k not in ("no_progress", "metrics")}
    kw = {}
    if args.data is None:
        kw.update(DEMO)            # the demo config; explicit flags still win
    kw.update(given)
    kw["progress"] = not args.no_progress
    kw["dry_run"] = bool(args.dry_run)
    if args.metrics:
        kw["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    return TrainingOptions(**kw)


def main(argv=None):
    args = parse_args(argv)
    from stylegan_tf.training import OptionsError, training_loop

    try:
        opts = build_options(args)
        result = training_loop(opts)
    except (OptionsError, ValueError, OSError, RuntimeError) as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            print(f"train.py: error: {line}", file=sys.stderr)
        return 2
    if opts.dry_run:
        print(result)
        return 0
    print(f"Done: {result.run_dir}" + (f" (last fakes: {os.path.basename(result.last_fakes)})"
                                        if getattr(result, "last_fakes", None) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
