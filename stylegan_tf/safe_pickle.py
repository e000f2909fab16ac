"""Restricted unpickling: read pickles that hold numpy arrays without letting them run code.

A pickle names the globals it needs and Python's unpickler imports and calls them; a crafted file can name
`os.system`. Both kinds of pickle we read (NVIDIA's network snapshots, CIFAR-10's data batches) only need the
few numpy functions that rebuild arrays, so the unpickler here resolves those and nothing else: any other
global stops it with `UnsafePickleError` before anything is executed. It lives on its own, below both the
network and the data code, so that neither has to import the other to share it.
"""
import pickle

# (module, name) pairs that rebuilding numpy arrays needs. numpy moved `core` to `_core` in 2.0, and pickles
# written by numpy 1.x (all of NVIDIA's) use the old spelling, so both are allowed.
NUMPY_ARRAY_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global that the kind of file it claims to be never contains; nothing was run."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves numpy's array globals, plus the stand-ins a subclass names in `substitutes`
    ({(module, name): class}: for classes of foreign code that we replace by passive holders of their state),
    and refuses every other global.

    `source` names the file in the refusal message; `kind` says what the file was expected to be. Latin-1
    decoding is what Python 2 pickles of numpy arrays need, and is harmless for Python 3 ones.
    """
    substitutes = {}

    def __init__(self, file, source="<pickle>", kind="pickle"):
        super().__init__(file, encoding="latin1")
        self.source = source
        self.kind = kind

    def find_class(self, module, name):
        if (module, name) in self.substitutes:
            return self.substitutes[(module, name)]
        if (module, name) in NUMPY_ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(f"{self.source}: refused to load: it asks for '{module}.{name}', which a "
                                f"{self.kind} never contains (nothing was executed)")

