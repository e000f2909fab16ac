#!/usr/bin/env python
"""Train StyleGAN (NVIDIA's schedule, losses and loop), or DCGAN / MSG-GAN / MSG-StyleGAN, with Keras `fit`.

    python train.py                                   # the built-in demo: small faces in <= 10 min on a CPU
    python train.py --data datasets/ffhq --outdir results --mirror
    python train.py --data datasets/mine --resume auto # continue after a Colab disconnect
    python train.py --data datasets/ffhq --dry-run    # print the resolved options and the schedule table
    python train.py --arch dcgan --data datasets/wikiart --resolution 64 --minibatch 128 --latent-size 128 \
        --lrate 0.001                                 # WikiArtGAN's plain-Keras DCGAN recipe
"""
import dataclasses
import os
import sys

from stylegan_tf import cli, supervise

# Fields that are command-line switches rather than valued flags: field -> (flag, value stored when given).
SWITCHES = {"mirror": ("--mirror", True), "mixed_precision": ("--mixed-precision", True),
            "dry_run": ("--dry-run", True), "progress": ("--no-progress", False)}


def _show(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _help(field, demo):
    """The flag's help: what it does, its default, and the demo's value where the demo changes it."""
    from stylegan_tf.training.options import help_text

    if field.name == "progress":
        return "no progress bars"
    default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
    shown = field.metadata.get("unset") if default in (None, []) else _show(default)
    text = f"{help_text(field)} (default: {shown}"
    if field.name in demo:
        text += f"; demo: {_show(demo[field.name])}"
    return text + ")"


def _metavar(field):
    if "metavar" in field.metadata:
        return field.metadata["metavar"]
    if field.name.endswith("kimg"):
        return "KIMG"
    return {int: "N", float: "X"}.get(field.type, field.name.split("_")[-1].upper())


def make_parser():
    """train.py's flags, built from `TrainingOptions`: its fields are the one definition of every option and
    default, and `DEMO_OPTIONS` of what the demo changes."""
    from stylegan_tf.training.options import DEMO_OPTIONS, TrainingOptions

    p = cli.Parser(
        description="Train StyleGAN with the official schedule (or another --arch) through Keras fit.",
        epilog="Defaults are the official StyleGAN (FFHQ) ones. Without --data, train.py trains the built-in demo "
               "(small faces in under ten minutes on a 2-core CPU), which changes the defaults marked 'demo:' above; "
               "flags you give still win.")
    for field in dataclasses.fields(TrainingOptions):
        if not field.metadata.get("help") and field.name not in SWITCHES:
            continue
        if field.name in SWITCHES:
            flag, value = SWITCHES[field.name]
            p.add_argument(flag, dest=field.name, action="store_const", const=value, default=None,
                           help=_help(field, DEMO_OPTIONS))
        elif field.name == "metrics":
            p.add_argument("--metrics", metavar=_metavar(field), help=_help(field, DEMO_OPTIONS))
        else:
            p.add_argument("--" + field.name.replace("_", "-"), dest=field.name, type=field.type, default=None,
                           metavar=_metavar(field), help=_help(field, DEMO_OPTIONS))
    return p


def parse_args(argv=None):
    return make_parser().parse_args(argv)


def build_options(args):
    """The options of the flags given: the architecture's defaults (the resumed network's and its run's options
    with --resume FILE; the demo's without --data) under them, exactly as `stylegan_tf.training.train` does."""
    from stylegan_tf.training import resolve_options

    return resolve_options(**vars(args))


def main(argv=None):
    code = supervise.run_supervised(__file__, argv)  # a JAX worker of several trains in a child (distributed.md)
    if code is not None:
        return code
    cli.quiet_tensorflow(cli.verbose(argv))  # before parse_args: building the parser imports TensorFlow
    args = parse_args(argv)
    # A failed run (a disk error, a damaged dataset) is one line and exit code 2, as a usage error; Ctrl-C 130.
    code = cli.run("train.py", lambda: _train(args), errors=cli.USER_ERRORS + (RuntimeError,))
    from stylegan_tf.training.distributed import end_process
    return end_process(code)    # a multi-worker TensorFlow process ends here (docs/distributed.md)


def _train(args):
    from stylegan_tf.training import OptionsError, training_loop

    try:
        opts = build_options(args)
        result = training_loop(opts)
    except OptionsError as e:
        # Every bad option at once, one line each.
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
