"""Import NVIDIA's official StyleGAN (v1) network pickles without TF1 and without NVIDIA's code.

A snapshot pickle holds (G, D, Gs), each a `dnnlib.tflib.network.Network` whose state is a plain dict:
`static_kwargs`, `components` (mapping, synthesis), `variables` [(name, ndarray)], and the network's source
text, which we never execute. The unpickler below (a `safe_pickle.RestrictedUnpickler`) resolves only the
Network class (to a passive state holder) and the few numpy functions that rebuild arrays; any other global
makes it stop with `UnsafePickleError`, so a crafted pickle cannot run code.
"""
import os
import pickle

import numpy as np

from stylegan_tf.safe_pickle import RestrictedUnpickler, UnsafePickleError


class OfficialNetworkState:
    """What a `dnnlib.tflib.network.Network` unpickles to here: its state, nothing callable."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or "variables" not in state:
            raise pickle.UnpicklingError("network state is not a dict with 'variables'")
        self.version = state.get("version")
        self.name = str(state.get("name", ""))
        self.static_kwargs = dict(state.get("static_kwargs") or {})
        self.components = dict(state.get("components") or {})
        self.build_func_name = state.get("build_func_name")
        self.variables = {str(k): np.asarray(v) for k, v in state["variables"]}

    def __repr__(self):
        return f"OfficialNetworkState({self.name!r}, {self.build_func_name!r}, {len(self.variables)} variables)"


class _PlainDict(dict):
    """Stand-in for dnnlib's EasyDict (a dict subclass) should a pickle contain one."""


class _NetworkUnpickler(RestrictedUnpickler):
    # dnnlib's two classes are replaced by passive holders of their state; numpy's array globals are allowed
    # by the base class, everything else is refused.
    substitutes = {("dnnlib.tflib.network", "Network"): OfficialNetworkState,
                   ("dnnlib.util", "EasyDict"): _PlainDict}


def read_official_pickle(path):
    """path -> (G, D, Gs) as OfficialNetworkState. Raises a one-line error naming the file otherwise."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            obj = _NetworkUnpickler(f, source=path, kind="StyleGAN network pickle").load()
        except UnsafePickleError:
            raise
        except Exception as e:  # truncated file, not a pickle, bad state: all one clear message
            raise ValueError(f"{path}: not a readable StyleGAN network pickle ({type(e).__name__}: {e})") from None
    if isinstance(obj, OfficialNetworkState):
        obj = (None, None, obj)
    if not (isinstance(obj, tuple) and len(obj) == 3 and isinstance(obj[2], OfficialNetworkState)
            and all(o is None or isinstance(o, OfficialNetworkState) for o in obj)):
        raise ValueError(f"{path}: expected an official StyleGAN pickle holding (G, D, Gs), got {type(obj).__name__}")
    return obj


# -- hyper-parameters ---------------------------------------------------------------------------------------------
_G_KEYS = ("resolution", "num_channels", "label_size", "latent_size", "dlatent_size", "mapping_layers",
           "mapping_fmaps", "mapping_lrmul", "mapping_nonlinearity", "normalize_latents", "fmap_base", "fmap_decay",
           "fmap_max", "use_styles", "const_input_layer", "use_noise", "nonlinearity", "use_wscale",
           "use_pixel_norm", "use_instance_norm", "fused_scale", "blur_filter", "truncation_psi",
           "truncation_cutoff", "dlatent_avg_beta", "style_mixing_prob")
_D_KEYS = ("resolution", "num_channels", "label_size", "fmap_base", "fmap_decay", "fmap_max", "nonlinearity",
           "use_wscale", "mbstd_group_size", "mbstd_num_features", "fused_scale", "blur_filter")
# The official G_synthesis default is 1024 and D_basic's is 32/1 channel; G_style has no default of its own.
_G_DEFAULTS = {"resolution": 1024, "num_channels": 3}
_D_DEFAULTS = {"resolution": 32, "num_channels": 1}


def _kwargs(state, keys, defaults):
    kw = dict(defaults)
    kw.update({k: v for k, v in state.static_kwargs.items() if k in keys})
    if "use_noise" in kw:
        kw["use_noise"] = bool(kw["use_noise"])
    return kw


def generator_kwargs(state):
    return _kwargs(state, _G_KEYS, _G_DEFAULTS)


def discriminator_kwargs(state):
    return _kwargs(state, _D_KEYS, _D_DEFAULTS)


# -- variables -----------------------------------------------------------------------------------------------------
def _nchw_to_nhwc(a):
    return np.transpose(a, [0, 2, 3, 1])


def generator_variable_map(G):
    """[(keras variable, official name, component, transform)] for every variable of our Generator."""
    syn, mp = G.synthesis, G.mapping
    out = [(G.lod, "lod", None, None), (G.dlatent_avg, "dlatent_avg", None, None)]
    if mp.label_concat is not None:
        out.append((mp.label_concat.weight, "LabelConcat/weight", "mapping", None))
    for i, (dense, bias) in enumerate(zip(mp.dense_layers, mp.biases)):
        out += [(dense.weight, f"Dense{i}/weight", "mapping", None), (bias.bias, f"Dense{i}/bias", "mapping", None)]
    for i, buf in enumerate(syn.noise_buffers):
        out.append((buf, f"noise{i}", "synthesis", _nchw_to_nhwc))
    if syn.const_input_layer:
        out.append((syn.input_layer.const, "4x4/Const/const", "synthesis", _nchw_to_nhwc))
    else:
        out.append((syn.input_layer.weight, "4x4/Dense/weight", "synthesis", None))
    for i, ep in enumerate(syn.epilogues):
        res = i // 2 + 2
        r = 2 ** res
        if i == 0:
            scope = "4x4/Const" if syn.const_input_layer else "4x4/Dense"
        elif i == 1:
            scope = "4x4/Conv"
        else:
            scope = f"{r}x{r}/" + ("Conv0_up" if i % 2 == 0 else "Conv1")
        if i >= 1:
            out.append((syn.convs[i - 1].weight, f"{scope}/weight", "synthesis", None))
        if ep.noise is not None:
            out.append((ep.noise.weight, f"{scope}/Noise/weight", "synthesis", None))
        out.append((ep.bias.bias, f"{scope}/bias", "synthesis", None))
        if ep.style_mod is not None:
            out += [(ep.style_mod.dense.weight, f"{scope}/StyleMod/weight", "synthesis", None),
                    (ep.style_mod.bias.bias, f"{scope}/StyleMod/bias", "synthesis", None)]
    L = syn.resolution_log2
    for res, torgb in zip(range(2, L + 1), syn.torgbs):
        out += [(torgb.conv.weight, f"ToRGB_lod{L - res}/weight", "synthesis", None),
                (torgb.bias.bias, f"ToRGB_lod{L - res}/bias", "synthesis", None)]
    return out


def discriminator_variable_map(D):
    out = [(D.lod, "lod", None, None)]
    for k, frgb in enumerate(D.fromrgbs):
        out += [(frgb.conv.weight, f"FromRGB_lod{k}/weight", None, None),
                (frgb.bias.bias, f"FromRGB_lod{k}/bias", None, None)]
    for block in D.blocks:
        s = block.name
        out += [(block.conv0.weight, f"{s}/Conv0/weight", None, None),
                (block.conv0_bias.bias, f"{s}/Conv0/bias", None, None),
                (block.conv1.weight, f"{s}/Conv1_down/weight", None, None),
                (block.conv1_bias.bias, f"{s}/Conv1_down/bias", None, None)]
    fb = D.final_block
    out += [(fb.conv.weight, "4x4/Conv/weight", None, None), (fb.conv_bias.bias, "4x4/Conv/bias", None, None),
            (fb.dense0.weight, "4x4/Dense0/weight", None, None),
            (fb.dense0_bias.bias, "4x4/Dense0/bias", None, None),
            (fb.dense1.weight, "4x4/Dense1/weight", None, None),
            (fb.dense1_bias.bias, "4x4/Dense1/bias", None, None)]
    return out


def _assign(var_map, state, source):
    used = {None: set()}
    for var, name, comp, transform in var_map:
        holder = state if comp is None else state.components.get(comp)
        if holder is None or name not in holder.variables:
            where = state.name if comp is None else f"{state.name}/{comp}"
            raise ValueError(f"{source}: network {where!r} has no variable {name!r}; "
                             f"the pickle does not match its static_kwargs")
        value = holder.variables[name].astype(np.float32)
        if transform is not None:
            value = transform(value)
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"{source}: variable {state.name}/{name} has shape {list(value.shape)}, "
                             f"expected {list(var.shape)}")
        var.assign(value)
        used.setdefault(comp, set()).add(name)
    # Anything left over means an architecture we do not reproduce: say so instead of returning a wrong net.
    for comp, holder in [(None, state)] + list(state.components.items()):
        extra = sorted(set(holder.variables) - used.get(comp, set()) - {"lod"})
        if extra:
            raise ValueError(f"{source}: network {state.name!r} has variables this importer does not know: "
                             f"{', '.join(extra[:5])}")


def _build(state, source, cls, build_func, kwargs, variable_map):
    if state.build_func_name not in (None, build_func):
        raise ValueError(f"{source}: {state.name!r} was built by {state.build_func_name!r}; only StyleGAN's "
                         f"{build_func} is supported")
    net = cls(**kwargs(state), name=state.name or build_func[0])
    _assign(variable_map(net), state, source)
    return net


def build_generator(state, source="<pickle>"):
    from stylegan_tf.networks import Generator
    return _build(state, source, Generator, "G_style", generator_kwargs, generator_variable_map)


def build_discriminator(state, source="<pickle>"):
    from stylegan_tf.networks import Discriminator
    return _build(state, source, Discriminator, "D_basic", discriminator_kwargs, discriminator_variable_map)


def load_official_pickle(path):
    """Official (G, D, Gs) pickle -> Networks container with our Keras networks and their own weights."""
    from stylegan_tf.networks import Networks
    path = os.fspath(path)
    g, d, gs = read_official_pickle(path)
    Gs = build_generator(gs, path)
    G = build_generator(g, path) if g is not None else None
    D = build_discriminator(d, path) if d is not None else None
    return Networks(G if G is not None else Gs, D, Gs)
