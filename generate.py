#!/usr/bin/env python
"""Pictures from a trained StyleGAN: images by seed, the paper's figures, videos and latent walks.

  python generate.py images --network net.keras --seeds 0-9 --grid 2x5
  python generate.py style-mixing --network net.pkl --row-seeds 888,829 --col-seeds 639,701 --styles coarse
  python generate.py truncation --network net.keras --seeds 91,388 --psi 1,0.7,0.5,0,-0.5,-1
  python generate.py noise-detail | noise-components | uncurated | interpolate | z-walk | w-walk | convert
  python generate.py timelapse results/00000-... --out timelapse.gif   # a run's fakes grids, kimg stamped
  python generate.py curves results/00000-... --out curves.png         # losses, scores, metrics vs kimg
  python generate.py attributes train | directions | edit | project    # attribute editing (docs/editing.md)

A seed means what it means in NVIDIA's tools: z = np.random.RandomState(seed).randn(z_dim).
Run `python generate.py <command> --help` for each command's options.
"""
import argparse
import inspect
import sys

from stylegan_tf import cli


def _converters():
    """dest -> parser of the flag's text. Values are converted after argparse (not as its `type=`), so a
    bad value gives our one-line message naming the flag instead of argparse's generic one."""
    from stylegan_tf.generate import seeds as S
    from stylegan_tf.generate.errors import GenerateError

    def one(parse_list, flag, what):
        def parse(text):
            values = parse_list(text, flag)
            if len(values) != 1:
                raise GenerateError(f"{flag}: give one {what} (got '{text}')")
            return values[0]
        return parse

    def cutoff(text):
        if str(text).strip().lower() in ("none", "all"):
            return None
        try:
            value = int(text)
        except ValueError:
            raise GenerateError(f"--trunc-cutoff: '{text}' must be a layer count or 'none'") from None
        if value < 0:
            raise GenerateError("--trunc-cutoff must be >= 0")
        return value

    def crop(text):
        values = S.parse_int_list(text, "--crop")
        if len(values) != 4:
            raise GenerateError("--crop must be X,Y,W,H in pixels, e.g. 0,64,512,384")
        return values

    return {
        "seeds": lambda t: S.parse_seeds(t, "--seeds"),
        "row_seeds": lambda t: S.parse_seeds(t, "--row-seeds"),
        "col_seeds": lambda t: S.parse_seeds(t, "--col-seeds"),
        "seed": one(S.parse_seeds, "--seed", "seed"),
        "grid": S.parse_grid,
        "truncation_psi": one(S.parse_float_list, "--trunc", "number"),
        "truncation_cutoff": cutoff,
        "psis": lambda t: S.parse_float_list(t, "--psi"),
        "flips": lambda t: S.parse_int_list(t, "--flip"),
        "lods": lambda t: S.parse_int_list(t, "--lods"),
        "crop": crop,
        "dims": lambda t: S.parse_int_list(t, "--dims"),
        "values": lambda t: S.parse_linspace(t, "--scale"),
        "components": lambda t: S.parse_int_list(t, "--components"),
    }


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows a list default as the command line writes it (1,0.7,0.5) and None as 'none'."""

    def _expand_help(self, action):
        default = action.default
        if isinstance(default, (list, tuple)) or default is None:
            action = argparse.Action(action.option_strings, action.dest, default=(
                "none" if default is None else ",".join(map(str, default))), help=action.help,
                metavar=action.metavar, choices=action.choices)
        return super()._expand_help(action)


def _command_function(name):
    """The function that runs the generate.py command `name` (importing it does not load Keras)."""
    name = name.replace("-", "_")
    if name == "timelapse":
        from stylegan_tf.generate.timelapse import make_timelapse
        return make_timelapse
    if name == "curves":
        from stylegan_tf.generate.curves import plot_curves
        return plot_curves
    if name == "explore":
        from stylegan_tf.explore.command import explore
        return explore
    if name in ("attributes", "directions", "edit", "project"):
        from stylegan_tf.editing import commands as editing
        return getattr(editing, name)
    from stylegan_tf.generate import commands
    return getattr(commands, name)


def _take_defaults(parser, func):
    """Each option's default is `func`'s default for the parameter of its name (and so is what --help shows):
    the defaults are written once, in the command functions. Subcommands (attributes train) get them too."""
    params = inspect.signature(func).parameters
    defaults = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _take_defaults(child, func)
        param = params.get(action.dest)
        if param is not None and param.default is not inspect.Parameter.empty and not action.required:
            defaults[action.dest] = param.default
    parser.set_defaults(**defaults)


def build_parser():
    parser = cli.Parser(prog="generate.py", description=__doc__.split("\n\n")[0],
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=cli.Parser)

    def command(name, help_text, out=True, progress=True):
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        p.add_argument("--network", required=True, metavar="PATH",
                       help="our .keras snapshot/network or an official .pkl")
        if out:
            p.add_argument("--out", metavar="FILE", help="output file (default %(default)s)")
        p.add_argument("--overwrite", action="store_true", help="replace existing output files")
        if progress:
            p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
        return p

    def common(p, cls=True, batch=True, noise=True, trunc=True):
        if cls:
            p.add_argument("--class", dest="class_idx", type=int, metavar="N",
                           help="class index for a conditional network")
        if batch:
            p.add_argument("--batch", dest="batch_size", type=int, metavar="N",
                           help="images per batch (default %(default)s)")
        if noise:
            # Checked against layers.noise.NOISE_MODES when the command runs (importing it here loads Keras).
            p.add_argument("--noise-mode", metavar="MODE",
                           help="const: the network's stored noise; random: fresh (seeded) noise; none: no noise "
                                "(default %(default)s)")
        if trunc:
            p.add_argument("--trunc", dest="truncation_psi", metavar="PSI",
                           help="truncation psi (default %(default)s; 1 = none)")
            p.add_argument("--trunc-cutoff", dest="truncation_cutoff", metavar="N",
                           help="truncate only layers below this ('none': all layers; default %(default)s)")

    p = command("images", "one PNG per seed, optionally a grid", out=False)
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--outdir", metavar="DIR", help="output folder (default %(default)s)")
    p.add_argument("--grid", metavar="RxC", help="also write grid.png with ROWSxCOLS tiles")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="fp32: faithful; bf16: synthesis in bfloat16, 2-3x faster on CPUs with AMX, pixels differ "
                        "slightly (default %(default)s)")
    common(p)

    p = command("style-mixing", "paper Fig. 3: row seeds take the chosen layers from column seeds")
    p.add_argument("--row-seeds", required=True, metavar="LIST", help="seeds of the rows (left column)")
    p.add_argument("--col-seeds", required=True, metavar="LIST", help="seeds of the columns (top row)")
    p.add_argument("--styles", nargs="+", metavar="LAYERS",
                   help="layers copied from the column seed, one spec per row (cycled): coarse|middle|fine|"
                        "0-3|8-; or 'paper' for the paper's 3 coarse, 2 middle, 1 fine rows (default %(default)s)")
    common(p)

    p = command("truncation", "paper Fig. 8: one column per psi")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--psi", dest="psis", metavar="LIST", help="psi per column (default %(default)s)")
    common(p, trunc=False)

    p = command("noise-detail", "paper Fig. 4: same z, different noise, with the per-pixel std map")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--samples", type=int, metavar="N", help="noise draws per seed (default %(default)s)")
    common(p, noise=False, trunc=False)

    p = command("noise-components", "paper Fig. 5: noise in all / none / fine / coarse layers")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--flip", dest="flips", metavar="LIST", help="positions in --seeds to mirror left-right, e.g. 1")
    common(p, noise=False, trunc=False)

    p = command("uncurated", "paper Fig. 2: mosaic of random images at several sizes")
    p.add_argument("--seed", required=True, metavar="N")
    p.add_argument("--rows", type=int, metavar="N", help="rows of full-size images (default %(default)s)")
    p.add_argument("--lods", metavar="LIST",
                   help="column shrink factors as powers of 2 (default the paper's 0,1,2,2,3,3, "
                        "capped so tiles stay >= 8 px)")
    p.add_argument("--crop", metavar="X,Y,W,H", help="X,Y,W,H cut from each image first")
    common(p)

    p = command("interpolate", "video through seeds: slerp in Z or lerp in W (GIF, or MP4 with ffmpeg)")
    p.add_argument("--seeds", required=True, metavar="LIST", help="e.g. 0-9,20,100-105")
    p.add_argument("--space", choices=["z", "w"],
                   help="z, or w: a StyleGAN generator's learned W (default %(default)s)")
    p.add_argument("--frames-per-transition", type=int, metavar="N",
                   help="frames from one seed to the next (default %(default)s)")
    p.add_argument("--loop", action="store_true", help="return to the first seed (seamless loop)")
    p.add_argument("--fps", type=float, help="frames per second (default %(default)s)")
    p.add_argument("--size", type=int, metavar="PX", help="resize frames to SIZE x SIZE pixels")
    common(p)

    p = command("z-walk", "one row per z dimension, stepping its value")
    p.add_argument("--seed", required=True, metavar="N")
    p.add_argument("--dims", required=True, metavar="LIST", help="z dimensions, e.g. 0,10,20")
    p.add_argument("--scale", dest="values", default="-3:3:7", metavar="START:STOP:COUNT",
                   help="START:STOP:COUNT values (default %(default)s)")
    p.add_argument("--mode", choices=["set", "add"],
                   help="set the dimension to each value or add the value to it (default %(default)s)")
    common(p)

    p = command("w-walk", "one row per principal component of W, in its standard deviations")
    p.add_argument("--seed", required=True, metavar="N")
    p.add_argument("--components", required=True, metavar="LIST", help="e.g. 0,1,2")
    p.add_argument("--scale", dest="values", default="-3:3:7", metavar="START:STOP:COUNT",
                   help="START:STOP:COUNT in standard deviations (default %(default)s)")
    p.add_argument("--layers", help="layers to move: all|coarse|middle|fine|0-3 (default %(default)s)")
    p.add_argument("--samples", type=int, metavar="N", help="latents sampled for the PCA (default %(default)s)")
    common(p)

    p = command("convert", "official .pkl -> our .keras network file", out=False, progress=False)
    p.add_argument("--out", required=True, help="output .keras file")

    # The run-dir commands read a training run folder (any --arch), not a network.
    def run_dir_command(name, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        p.add_argument("run_dir", metavar="RUN_DIR", help="a training run folder (results/NNNNN-...)")
        p.add_argument("--out", metavar="FILE", help="output file (default %(default)s)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
        return p

    from stylegan_tf.generate.timelapse import MAX_DEFAULT_WIDTH
    p = run_dir_command("timelapse", "the run's fakes*.png grids in kimg order, kimg stamped on each frame "
                        "(GIF, or MP4 with ffmpeg)")
    p.add_argument("--fps", type=float, help="frames per second (default %(default)s)")
    p.add_argument("--size", type=int, metavar="PX",
                   help=f"frame width in pixels, height keeps the aspect ratio (default the grids' own width, "
                        f"at most {MAX_DEFAULT_WIDTH})")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")

    run_dir_command("curves", "losses, D scores, R1/GP and metric values vs kimg from stats.jsonl and "
                    "metric-*.jsonl (needs matplotlib: pip install -e \".[plot]\")")

    _editing_commands(sub, command)
    p = sub.add_parser("explore", help="the explorer in the browser: seeds, psi, style mixing, walks, attribute "
                       "sliders, your photo, your camera (docs/explore.md; needs pip install -e \".[app]\")",
                       description="serve the explorer until Ctrl-C", formatter_class=_HelpFormatter)
    p.add_argument("--network", metavar="PATH", help="network file (default: the newest snapshot under results/)")
    p.add_argument("--directions", metavar="FILE", help="directions file for the Edit tab's sliders")
    p.add_argument("--labeler", metavar="FILE", help="labeler that reads each picture's attributes")
    p.add_argument("--host", help="interface to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, help="TCP port (default %(default)s)")
    p.add_argument("--share", action="store_true", help="also a public gradio.live link (anyone with it can use the app)")
    for name, p in sub.choices.items():
        _take_defaults(p, _command_function(name))
    return parser


def _editing_commands(sub, command):
    """Attribute editing (stylegan_tf.editing, docs/editing.md): labeler, directions, edit, project."""
    p = sub.add_parser("attributes", help="attribute labeler: `attributes train` (docs/editing.md)",
                       description="a small image classifier/regressor that reads attributes from images")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=cli.Parser)
    t = actions.add_parser("train", help="train the labeler on a dataset's reals and their attributes",
                           description="train the labeler on a dataset's reals and their attributes; held-out "
                                       "accuracy (categorical) / R^2 (continuous) are printed and saved beside it",
                           formatter_class=_HelpFormatter)
    t.add_argument("--data", required=True, metavar="DIR", help="dataset folder (dataset_tool's or the demo's)")
    t.add_argument("--attributes", metavar="LIST",
                   help="e.g. smile,yaw,hair_color (default: every attribute the dataset and --labels have)")
    t.add_argument("--labels", metavar="CSV",
                   help="your own labels: header file,attr1,... (paths as in the dataset's files.json) or "
                        "index,attr1,... (record numbers); numeric columns are continuous, others categorical")
    t.add_argument("--resolution", type=int, metavar="N",
                   help="dataset level to train on = the resolution of the network it will label (default: the "
                        "dataset's full resolution)")
    t.add_argument("--out", metavar="FILE",
                   help="labeler file (default %(default)s; its held-out scores go beside it as .json)")
    t.add_argument("--epochs", type=int, metavar="N", help="training epochs (default %(default)s)")
    t.add_argument("--batch", dest="batch_size", type=int, metavar="N", help="minibatch (default %(default)s)")
    t.add_argument("--heldout", type=float, metavar="F",
                   help="fraction of images kept out to measure accuracy (default %(default)s)")
    t.add_argument("--max-images", type=int, metavar="N", help="use only the first N images")
    t.add_argument("--seed", type=int, help="split and initialisation seed (default %(default)s)")
    t.add_argument("--overwrite", action="store_true", help="replace existing output files")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")

    p = command("directions", "fit attribute directions in W: the two-layer predictor and a linear baseline")
    p.add_argument("--labeler", required=True, metavar="FILE", help="from `generate.py attributes train`")
    p.add_argument("--attributes", required=True, metavar="LIST",
                   help="e.g. smile,yaw or hair_color:blonde (one class of a categorical attribute)")
    p.add_argument("--samples", type=int, metavar="N", help="generated images labelled (default %(default)s)")
    p.add_argument("--heldout", type=float, metavar="F",
                   help="fraction of samples kept out to measure accuracy (default %(default)s)")
    p.add_argument("--hidden", type=int, metavar="N", help="two-layer predictor width (default %(default)s)")
    p.add_argument("--steps", type=int, metavar="N", help="its Adam steps (default %(default)s)")
    p.add_argument("--seed", type=int, help="RandomState seed of the sampled z (default %(default)s)")
    p.add_argument("--trunc", dest="truncation_psi", metavar="PSI",
                   help="sample from a truncated W (default %(default)s = none)")
    p.add_argument("--batch", dest="batch_size", type=int, metavar="N", help="images per batch (default %(default)s)")

    p = command("edit", "a grid of edits along an attribute: one row per seed (or w), one column per amount",
                progress=False)
    p.add_argument("--directions", required=True, metavar="FILE", help="from `generate.py directions`")
    p.add_argument("--attribute", required=True, metavar="NAME", help="the attribute to change, e.g. smile")
    p.add_argument("--amount", dest="amounts", metavar="START:STOP:COUNT",
                   help="amounts in standard deviations, START:STOP:COUNT or a list (default %(default)s)")
    rows = p.add_mutually_exclusive_group(required=True)
    rows.add_argument("--seeds", metavar="LIST", help="e.g. 1-4")
    rows.add_argument("--w", metavar="FILE", help="a w.npy (from `generate.py project`: its noise.npz is used)")
    p.add_argument("--mode", choices=["linear", "gradient"],
                   help="linear: w + a*n; gradient: descend the two-layer predictor to its target "
                        "(default %(default)s)")
    p.add_argument("--layers", help="layers edited: all|coarse|middle|fine|0-3 (default %(default)s)")
    p.add_argument("--labeler", metavar="FILE",
                   help="also read every edited image with this labeler and print how each attribute moved")
    p.add_argument("--steps", type=int, metavar="N", help="gradient mode's steps (default %(default)s)")
    p.add_argument("--no-hold-others", dest="hold_others", action="store_false",
                   help="let the directions file's other attributes move too (default: hold them)")
    p.add_argument("--trunc", dest="truncation_psi", metavar="PSI", help="for seeds (default %(default)s)")

    p = command("project", "find the w (and noise) that reproduce a photo, as NVIDIA's StyleGAN2 projector",
                out=False)
    p.add_argument("--out", metavar="DIR",
                   help="output folder: w.npy, noise.npz, target/reconstruction.png, progress.gif, projection.json "
                        "(default %(default)s); --overwrite replaces only a folder holding nothing else")
    p.add_argument("--image", required=True, metavar="FILE", help="any size/mode; centre-cropped and resized")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="refuse a larger photo before decoding it (default Pillow's decompression-bomb limit)")
    p.add_argument("--steps", type=int, metavar="N", help="optimisation steps (default %(default)s)")
    p.add_argument("--space", choices=["w", "w+"], help="w or w+ (one w per layer) (default %(default)s)")
    p.add_argument("--no-discriminator", dest="use_discriminator", action="store_false",
                   help="pixel and multi-scale loss only, without the discriminator's features")
    p.add_argument("--lpips", metavar="FILE[,FILE]",
                   help="LPIPS distance as NVIDIA's projector: torchvision's vgg16 .pth and LPIPS's vgg.pth "
                        "(read without running code from them); default: pixel + multi-scale + D features")
    p.add_argument("--seed", type=int, help="noise seed (default %(default)s)")


# Flags whose values may start with '-' (negative numbers): "--scale -3:3:7" must not read as a new flag.
_SIGNED = ("--scale", "--psi", "--trunc", "--amount")


def _join_signed(argv):
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _SIGNED and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and not argv[i + 1].startswith("--"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cli.quiet_tensorflow(cli.verbose(argv))
    args = vars(build_parser().parse_args(_join_signed(argv)))
    return cli.run("generate.py", lambda: _generate(args),
                   interrupted="interrupted; no partial files were left behind")


def _generate(args):
    for dest, convert in _converters().items():
        if isinstance(args.get(dest), str):
            args[dest] = convert(args[dest])
    for path in _command_function(args.pop("command"))(**args):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
