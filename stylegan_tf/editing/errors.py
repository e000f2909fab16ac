"""The editing package's user-facing error: a GenerateError (a ValueError), so generate.py prints it as one line."""
from stylegan_tf.generate.errors import GenerateError


class EditError(GenerateError):
    """Bad attribute name, a labeler or directions file that does not fit the network, a bad image."""
