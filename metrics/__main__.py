"""python -m stylegan_tf.metrics --network PATH --data DIR --metrics fid50k,kid50k,swd16k [options]

From a checkout without installing: `python -m metrics ...` in the repository root.
"""
import os
import sys

if __package__ == "metrics":
    # Run from a checkout as `python -m metrics`: make this folder the `stylegan_tf.metrics` package
    # (setup.py maps it there when installed) unless an installed one is importable.
    try:
        import stylegan_tf.metrics  # noqa: F401
    except ImportError:
        import stylegan_tf
        sys.modules["stylegan_tf.metrics"] = sys.modules["metrics"]
        stylegan_tf.metrics = sys.modules["metrics"]

from stylegan_tf import cli  # noqa: E402  (after the package alias above)

PROG = "python -m stylegan_tf.metrics"


def build_parser():
    p = cli.Parser(
        prog=PROG,
        description="Evaluate a StyleGAN network: FID / KID / IS (FID-Inception, comparable with NVIDIA's "
                    "numbers), PPL (LPIPS-VGG16), precision/recall (VGG16) and SWD (no weights needed). Results are printed and appended to metric-<name>.jsonl "
                    "beside the network file.")
    p.add_argument("--network", required=True, help="network file: our .keras snapshot or an official .pkl")
    p.add_argument("--data", required=True, help="dataset folder (dataset_tool.py output) the network was trained on")
    p.add_argument("--metrics", default="fid50k",
                   help="comma-separated: fid50k, fid10k, fid50k_full, kid50k, kid50k_full, swd16k, is50k, "
                        "pr50k3, ppl_wend, ppl_zfull, ppl_wend_crop, ppl2_wend, ppl10k_wend ... (default fid50k)")
    p.add_argument("--mirror", action="store_true", help="mirror reals at random (if training used --mirror)")
    p.add_argument("--num", type=int, default=None,
                   help="override the image count of every metric (quick look; not comparable with papers)")
    p.add_argument("--batch", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--inception", default=None,
                   help="FID-Inception weights (.pth or converted .weights.h5); default: $STYLEGAN_TF_INCEPTION "
                        "or the cache folder ($STYLEGAN_TF_CACHE, else ~/.cache/stylegan_tf; downloaded on "
                        "first use). 'keras-applications' uses keras.applications.InceptionV3: NOT comparable "
                        "with published FIDs")
    p.add_argument("--vgg16", default=None,
                   help="torchvision's vgg16-397923af.pth (LPIPS of ppl_*, features of pr*); default: "
                        "$STYLEGAN_TF_VGG16 or the cache folder (downloaded on first use)")
    p.add_argument("--lpips", default=None,
                   help="the LPIPS v0.1 VGG heads (the lpips package's weights/v0.1/vgg.pth), or 'vgg16.pth,vgg.pth'; "
                        "default: $STYLEGAN_TF_LPIPS, the cache folder, the installed lpips package, else downloaded")
    p.add_argument("--inception-mode", choices=("tf1", "pytorch"), default="tf1",
                   help="preprocessing: tf1 (TTUR / NVIDIA, default) or pytorch (pytorch-fid)")
    p.add_argument("--seed", type=int, default=0, help="seed of latents, mirroring and subsets (default 0)")
    p.add_argument("--report-dir", default=None,
                   help="where metric-<name>.jsonl goes (default: the network file's folder; if it cannot be "
                        "written, <cache>/metric-reports); 'none' to skip")
    p.add_argument("--no-cache", action="store_true", help="recompute real statistics instead of using the cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None):
    cli.quiet_tensorflow(cli.verbose(argv))
    args = build_parser().parse_args(argv)
    from stylegan_tf.metrics.inception import InceptionWeightsError
    from stylegan_tf.metrics.vgg16 import WeightsError
    return cli.run(PROG, lambda: _evaluate(args), errors=cli.USER_ERRORS + (InceptionWeightsError, WeightsError))


def _evaluate(args):
    from stylegan_tf.metrics import inception, metric_base, vgg16
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    if args.num is not None and args.num < 2:
        raise ValueError(f"--num must be >= 2, got {args.num}")
    names = metric_base.parse_metric_names(args.metrics)
    if not names:
        raise ValueError("--metrics is empty; e.g. --metrics fid50k,swd16k")
    if not os.path.isfile(args.network):
        raise FileNotFoundError(f"--network {args.network}: file not found")
    if not os.path.isdir(args.data):
        raise FileNotFoundError(f"--data {args.data}: dataset folder not found")
    if args.inception not in (None, "keras-applications") and not os.path.isfile(args.inception):
        raise FileNotFoundError(f"--inception {args.inception}: file not found")
    for flag, value in (("--vgg16", args.vgg16), ("--lpips", args.lpips)):
        for path in (value.split(",") if value else []):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{flag} {path}: file not found")
    try:
        # The default weights now (downloaded if need be), not after the metrics before fid have run.
        metric_base.prepare_metrics(names, inception=args.inception, progress=not args.no_progress,
                                    lpips=args.lpips, vgg16=args.vgg16)
    except inception.InceptionWeightsMissing as e:
        raise inception.InceptionWeightsMissing(f"{e}; or pass --inception PATH") from None
    except vgg16.WeightsMissing as e:
        flags = " and ".join(f"{flag} PATH" for flag in e.flag.split())
        raise vgg16.WeightsMissing(f"{e}; or pass {flags}", e.flag) from None
    report_dir = args.report_dir
    if report_dir is None:
        report_dir = os.path.dirname(os.path.abspath(args.network))
    elif report_dir.lower() == "none":
        report_dir = None

    def show(record):
        # Printed the moment it exists: writing the report, or the next metric, may still fail.
        print(metric_base.format_results(record), flush=True)

    metric_base.calc_metrics(
        args.network, names, args.data, mirror=args.mirror, batch_size=args.batch, report_dir=report_dir,
        progress=not args.no_progress, num_images=args.num, inception=args.inception,
        inception_mode=args.inception_mode, seed=args.seed, use_cache=not args.no_cache, on_result=show,
        lpips=args.lpips, vgg16=args.vgg16)
    return 0


if __name__ == "__main__":
    sys.exit(main())
