"""load_network / save_network: our `.keras` files (Networks container, training snapshots, a lone Generator)
and NVIDIA's official `.pkl` files (through the restricted unpickler in official_pickle)."""
import importlib
import os
import sys
import zipfile

from stylegan_tf.atomic import atomic_path


class NetworkFileError(ValueError):
    """A file that is not a network we can load. The message is one line naming the file."""


def _register_classes():
    import stylegan_tf.networks  # noqa: F401  (registers the network classes with Keras)
    try:  # the training model (issue 4) is a registered class too; optional so inference works without it
        importlib.import_module("stylegan_tf.training")
    except ImportError:
        pass


def _is_pickle(path):
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def load_network(path):
    """`.keras` file or official `.pkl` -> object with `.G`, `.D`, `.Gs` (D may be None for a lone generator)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such network file")
    if _is_pickle(path):
        from stylegan_tf.official_pickle import load_official_pickle
        return load_official_pickle(path)
    if not zipfile.is_zipfile(path):
        raise NetworkFileError(f"{path}: not a network file (expected a .keras file or an official StyleGAN .pkl)")
    with zipfile.ZipFile(path) as archive:
        is_keras = "config.json" in archive.namelist()
    if not is_keras:
        raise NetworkFileError(f"{path}: a zip archive but not a Keras network file (expected a .keras file or an "
                               "official StyleGAN .pkl)")
    if not path.endswith(".keras"):  # Keras refuses any other suffix, with a long message about SavedModels
        raise NetworkFileError(f"{path}: a Keras network file must end in .keras; rename it")
    _register_classes()
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
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m stylegan_tf.network_io SRC.pkl DST.keras", file=sys.stderr)
        return 2
    try:
        print(convert_network(argv[0], argv[1]))
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
