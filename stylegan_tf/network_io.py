"""load_network / save_network: our `.keras` files (Networks container, training snapshots, a lone Generator)
and NVIDIA's official `.pkl` files (through the restricted unpickler in official_pickle)."""
import importlib
import importlib.util
import json
import os
import re
import sys
import zipfile
import zlib

from stylegan_tf.atomic import atomic_path


class NetworkFileError(ValueError):
    """A file that is not a network we can load. The message is one line naming the file."""


# The names of training snapshots (training/snapshot.py writes them; generate.py's timelapse and curves read
# them): network-snapshot-KKKKKK.keras, or, when that name is taken by another snapshot of the same whole kimg,
# network-snapshot-KKKKKK.III.keras (III = the images past KKKKKK thousand), then -2, -3, ... for repeats.
SNAPSHOT_RE = re.compile(r"^network-snapshot-(\d{6,})(?:\.(\d{3}))?(?:-(\d+))?\.keras$")

# A module path of this package, as Keras records it for each class in a `.keras` file's config.json.
_OUR_MODULE = re.compile(r"stylegan_tf(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _recorded_modules(config):
    """The modules that a `.keras` config records for its objects (`module` next to `class_name`), nested
    objects included."""
    found, stack = set(), [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("module"), str) and "class_name" in node:
                found.add(node["module"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _import_recorded_classes(config):
    """Register the classes a `.keras` file holds by importing the modules that define them.

    Keras finds a custom class only in its registry, which `register_keras_serializable` fills when the
    class's module is imported; Keras imports recorded modules itself only for its own packages. Each class
    registers itself where it is defined (networks, the training model), and the file says which modules
    those are, so importing them here lets any of our saved objects load (a training snapshot included)
    without this module depending on the packages above it. Only modules of this package are imported: a
    crafted file cannot make us import anything else. A module that does not exist here (a file from another
    version) is skipped; looking it up still imports its parent packages, so a class that moved within its
    package (which imports its classes) is found, and otherwise Keras names the class it cannot find.
    """
    for module in sorted(_recorded_modules(config)):
        if not _OUR_MODULE.fullmatch(module) or "__main__" in module.split("."):
            continue
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:  # a parent package that does not exist
            spec = None
        if spec is not None:
            importlib.import_module(module)


def register_classes_of(path):
    """Import the modules of this package whose classes the `.keras` file at `path` holds (see
    `_import_recorded_classes`), so that `keras.saving.load_model` finds them in a fresh process."""
    with zipfile.ZipFile(path) as archive:
        _import_recorded_classes(json.loads(archive.read("config.json")))


def _is_pickle(path):
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _starts_like_zip(path):
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_network(path):
    """`.keras` file or official `.pkl` -> object with `.G`, `.D`, `.Gs` (D may be None for a lone generator)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such network file")
    if _is_pickle(path):
        from stylegan_tf.official_pickle import load_official_pickle
        return load_official_pickle(path)
    if not zipfile.is_zipfile(path):
        if _starts_like_zip(path):  # a zip's directory is at its end: a cut file has the start but not that
            raise NetworkFileError(f"{path}: damaged network file (an incomplete zip archive: truncated?)")
        raise NetworkFileError(f"{path}: not a network file (expected a .keras file or an official StyleGAN .pkl)")
    try:
        with zipfile.ZipFile(path) as archive:
            is_keras = "config.json" in archive.namelist()
            config = json.loads(archive.read("config.json")) if is_keras else None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:  # bad CRC, cut or garbled config
        raise NetworkFileError(f"{path}: damaged network file ({type(e).__name__}: {e})") from None
    if not is_keras:
        raise NetworkFileError(f"{path}: a zip archive but not a Keras network file (expected a .keras file or an "
                               "official StyleGAN .pkl)")
    if not path.endswith(".keras"):  # Keras refuses any other suffix, with a long message about SavedModels
        raise NetworkFileError(f"{path}: a Keras network file must end in .keras; rename it")
    _import_recorded_classes(config)
    import keras
    from stylegan_tf.networks import Generator, Networks
    try:
        obj = keras.saving.load_model(path, compile=False)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NetworkFileError(f"{path}: could not load the network ({msg})") from None
    if all(hasattr(obj, a) for a in ("G", "D", "Gs")):
        return obj
    if isinstance(obj, Generator):
        return Networks(obj, None, obj)
    raise NetworkFileError(f"{path}: holds a {type(obj).__name__}, not StyleGAN networks")


def open_network(path, flag="--network", error=NetworkFileError):
    """`load_network` for a tool: any failure to read the file becomes one `error` line naming `flag` and the
    file. Users pass the wrong file (a dataset, a half-downloaded pickle, a metrics log) far more often than a
    broken network, so every reader error means the same thing to them; an ImportError is a broken
    installation, not a bad file, and keeps its traceback.

    Args:
        path: a `.keras` file or an official `.pkl`.
        flag: the option that named the file, for the message.
        error: the exception class the tool reports as one line (a ValueError subclass).

    Example:
        nets = open_network(args.network, "--network", GenerateError)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"{flag}: {path} does not exist (give a .keras snapshot or an official .pkl)")
    try:
        return load_network(path)
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - a wrong, damaged or hostile file: whatever the reader raised
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        if path in detail:
            raise error(f"{flag}: {detail}") from None
        raise error(f"{flag}: {path} is not a StyleGAN network file ({detail})") from None


def save_network(nets, path):
    """Write `nets` (Networks, the training model, anything with .G/.D/.Gs, or a Generator) as a `.keras` file,
    atomically: a crash never leaves a half-written file at `path`."""
    from stylegan_tf.networks import Generator, Networks
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: network files must end in .keras")
    if isinstance(nets, Generator):
        nets = Networks(nets, None, nets)
    elif not isinstance(nets, Networks):
        nets = Networks(nets.G, nets.D, nets.Gs)
    with atomic_path(path, suffix=".keras") as tmp:
        nets.save(tmp)
    return path


def convert_network(src, dst):
    """Official pickle (or any loadable network file) -> our `.keras` format, once."""
    return save_network(load_network(src), dst)


def main(argv=None):
    """python -m stylegan_tf.network_io SRC.pkl DST.keras"""
    from stylegan_tf import cli
    argv = sys.argv[1:] if argv is None else argv
    cli.quiet_tensorflow(cli.verbose(argv))
    prog = "python -m stylegan_tf.network_io"
    parser = cli.Parser(prog=prog, description="convert an official StyleGAN .pkl (or any network file we read) "
                                               "to our .keras format")
    parser.add_argument("src", metavar="SRC", help="the network file to read")
    parser.add_argument("dst", metavar="DST.keras", help="the .keras file to write")
    args = parser.parse_args(argv)

    def convert():
        print(convert_network(args.src, args.dst))
        return 0
    return cli.run(prog, convert)


if __name__ == "__main__":
    sys.exit(main())
