"""Pictures from a trained generator: images by seed, the paper's figures, interpolation videos, walks.

`generate.py` is the command line; each subcommand is one function in `commands`. The building blocks
(`seeds`, `sampling`, `figures`, `video`, `walks`, `noise`) work on any object with the inference API
of `stylegan_tf.load_network(path).Gs`."""
from stylegan_tf.generate.errors import GenerateError  # noqa: F401
from stylegan_tf.generate.seeds import parse_seeds, seed_to_z, seeds_to_z  # noqa: F401
