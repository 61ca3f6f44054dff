"""Layers with named parameters in PyTorch's names and layouts (``state_dict()`` /
``load_state_dict()`` exchange weights with ``torch.nn`` modules), built on af ops and
``af.parameter`` so ``af.compile_train_step`` trains them.

    model = af.nn.Sequential(af.nn.Conv2d(1, 16, 3, padding=1), af.nn.ReLU(), af.nn.Flatten(),
                             af.nn.Linear(16 * 28 * 28, 10))
    logits = model(af.input((64, 1, 28, 28), name="x"))
    step = af.compile_train_step(af.cross_entropy(logits, y), model.parameters(), af.optim.Adam())

Initialisation follows torch.nn (kaiming-uniform weights, uniform biases, ones/zeros for
norms); give ``seed=`` to a layer, or call ``af.nn.manual_seed``, for repeatable values.
``model.train()`` / ``model.eval()`` switch Dropout and BatchNorm2d as in PyTorch; build the
graph after choosing the mode (the graph is what was built).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..graph.state import BUFFERS as _BUFFERS, buffer, noise, parameter
from ..graph.tensor import Tensor
from ..graph import functional as _F

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Linear", "Conv1d", "Conv2d", "ConvTranspose2d",
           "BatchNorm2d", "LayerNorm", "GroupNorm", "RMSNorm", "Embedding", "Dropout", "MultiheadAttention", "ReLU",
           "ReLU6", "GELU", "SiLU", "Hardswish", "Identity", "Flatten", "Upsample", "MaxPool2d", "AvgPool2d",
           "manual_seed"]

_rng = np.random.default_rng(0)


def _sync_buffer(name, value):
    for entry in _BUFFERS.values():
        if entry[1] == name:
            entry[0] = value


def manual_seed(seed: int) -> None:
    """Seeds the initialisation of layers built afterwards (as torch.manual_seed)."""
    global _rng
    _rng = np.random.default_rng(seed)


def _uniform(shape, bound):
    return _rng.uniform(-bound, bound, size=shape).astype(np.float32)


class Module:
    """Base of the layers: named parameters (af.parameter tensors), sub-modules, buffers,
    train/eval mode, ``state_dict`` in PyTorch's names."""

    def __init__(self):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_prefix", "")

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self._modules[name] = value
            object.__setattr__(value, "_child", True)
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, value) -> None:
        """Declares the trainable parameter ``name`` holding ``value`` (an array); ``self.p(name)``
        is its tensor in ``forward``, and it appears in ``parameters()`` and ``state_dict()``
        under the module's path, as in PyTorch:

            class Scale(af.nn.Module):
                def __init__(self, n):
                    super().__init__()
                    self.register_parameter("gain", np.ones(n, np.float32))

                def forward(self, x):
                    return x * self.p("gain")
        """
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"register_parameter: name must be a non-empty string without '.', got {name!r}")
        self._params[name] = np.asarray(value, np.float32)

    _param = register_parameter  # the layers' own spelling

    def register_buffer(self, name: str, value) -> None:
        """Declares non-trainable state ``name`` (running statistics): in ``state_dict()``,
        fed by ``af.buffer`` tensors the layer makes in ``forward``."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"register_buffer: name must be a non-empty string without '.', got {name!r}")
        self._buffers[name] = np.asarray(value, np.float32)

    def _tensors(self):
        """The af.parameter tensors, made on first use under their full names."""
        if not hasattr(self, "_made"):
            object.__setattr__(self, "_made", {})
        for n, v in self._params.items():
            if n not in self._made:
                self._made[n] = parameter(v, name=(self._prefix + n).replace(".", "_"))
        return self._made

    def p(self, name) -> Tensor:
        return self._tensors()[name]

    def named_modules(self, prefix=""):
        yield prefix, self
        for n, m in self._modules.items():
            yield from m.named_modules(f"{prefix}{n}.")

    def _set_prefixes(self):
        for prefix, m in self.named_modules():
            object.__setattr__(m, "_prefix", prefix)

    def parameters(self) -> list:
        """The parameter tensors, for af.compile_train_step (made on first use)."""
        self._set_prefixes()
        return [t for _, m in self.named_modules() for t in m._tensors().values()]

    def named_parameters(self):
        self._set_prefixes()
        return [(f"{pre}{n}", t) for pre, m in self.named_modules() for n, t in m._tensors().items()]

    def feeds(self) -> dict:
        """{graph input name: current value} of the parameters and buffers, to run a graph
        built from this module (``af.compile(model(x))(X)`` uses them by default)."""
        self._set_prefixes()
        out = {}
        for pre, m in self.named_modules():
            for n, v in list(m._params.items()) + list(m._buffers.items()):
                out[(pre + n).replace(".", "_")] = np.asarray(v, np.float32)
        return out

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Current values in PyTorch's names: parameters, then buffers (running statistics)."""
        out = OrderedDict()
        for pre, m in self.named_modules():
            for n, v in m._params.items():
                out[pre + n] = v.copy()
            for n, v in m._buffers.items():
                out[pre + n] = np.asarray(v).copy()
        return out

    def load_state_dict(self, state, strict=True):
        """Takes a dict of arrays (or torch tensors) in PyTorch's names and shapes; with
        ``strict`` every name must match both ways. Load before building the graph."""
        own = self.state_dict()
        given = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v, np.float32)
                 for k, v in state.items() if not k.endswith("num_batches_tracked")}
        missing, unexpected = sorted(set(own) - set(given)), sorted(set(given) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for pre, m in self.named_modules():
            for store in (m._params, m._buffers):
                for n in store:
                    if pre + n not in given:
                        continue
                    v = given[pre + n]
                    if v.shape != np.shape(store[n]):
                        raise ValueError(f"load_state_dict: {pre + n} has shape {v.shape}, the layer "
                                         f"expects {np.shape(store[n])}")
                    if getattr(m, "_made", {}).get(n) is not None:
                        raise RuntimeError(f"load_state_dict: {pre + n} is already in a graph; load before "
                                           "calling the model")
                    store[n] = v.copy()

    def update_from(self, step) -> None:
        """Copies the trained values out of a train step (``step.parameters()``) into this
        module, so ``state_dict()`` returns them."""
        values = {**step.parameters(), **step.buffers()}
        for pre, m in self.named_modules():
            for n in list(m._params):
                key = (pre + n).replace(".", "_")
                if key in values:
                    m._params[n] = np.asarray(values[key], np.float32)
                    made = getattr(m, "_made", {}).get(n)
                    if made is not None:  # graphs already built default to the trained value
                        made._train_entry[0] = m._params[n]
            for n in list(m._buffers):
                key = (pre + n).replace(".", "_")
                if key in values:
                    m._buffers[n] = np.asarray(values[key], np.float32)
                    _sync_buffer(key, m._buffers[n])

    def train(self, mode=True):
        for _, m in self.named_modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, *args, **kwargs):
        if not getattr(self, "_child", False):  # the root names every parameter by its path
            self._set_prefixes()
        return self.forward(*args, **kwargs)

    def forward(self, *args):
        raise NotImplementedError


class Sequential(Module):
    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Module):
    """Modules in a list, named by their index (``layers.0.weight``), as torch.nn.ModuleList."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: {type(module).__name__} is not an af.nn.Module")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """Modules by name, as torch.nn.ModuleDict."""

    def __init__(self, modules=None):
        super().__init__()
        for k, m in dict(modules or {}).items():
            self[k] = m

    def __setitem__(self, key, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: {type(module).__name__} is not an af.nn.Module")
        setattr(self, key, module)

    def __getitem__(self, key):
        return self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        bound = 1 / math.sqrt(in_features)
        self._param("weight", _uniform((out_features, in_features), bound))
        self.has_bias = bias
        if bias:
            self._param("bias", _uniform((out_features,), bound))

    def forward(self, x):
        return _F.linear(x, self.p("weight"), self.p("bias") if self.has_bias else None)


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        super().__init__()
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        fan_in = in_channels // groups * k[0] * k[1]
        bound = 1 / math.sqrt(fan_in)
        self._param("weight", _uniform((out_channels, in_channels // groups, *k), bound))
        self.has_bias = bias
        if bias:
            self._param("bias", _uniform((out_channels,), bound))
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x):
        return _F.conv2d(x, self.p("weight"), self.p("bias") if self.has_bias else None, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, groups=self.groups)


class Conv1d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True):
        super().__init__()
        bound = 1 / math.sqrt(in_channels // groups * kernel_size)
        self._param("weight", _uniform((out_channels, in_channels // groups, kernel_size), bound))
        self.has_bias = bias
        if bias:
            self._param("bias", _uniform((out_channels,), bound))
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    def forward(self, x):
        return _F.conv1d(x, self.p("weight"), self.p("bias") if self.has_bias else None, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, groups=self.groups)


class ConvTranspose2d(Module):
    """Weights (in_channels, out_channels / groups, kH, kW), PyTorch's layout."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1):
        super().__init__()
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        bound = 1 / math.sqrt(out_channels // groups * k[0] * k[1])
        self._param("weight", _uniform((in_channels, out_channels // groups, *k), bound))
        self.has_bias = bias
        if bias:
            self._param("bias", _uniform((out_channels,), bound))
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation

    def forward(self, x):
        return _F.conv_transpose2d(x, self.p("weight"), self.p("bias") if self.has_bias else None, stride=self.stride,
                                   padding=self.padding, output_padding=self.output_padding, groups=self.groups,
                                   dilation=self.dilation)


class BatchNorm2d(Module):
    """Training mode normalises by the batch statistics and updates running_mean/var (buffers
    the train step keeps resident, torch's momentum rule); eval mode uses the running ones."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.eps, self.momentum, self.affine = eps, momentum, affine
        if affine:
            self._param("weight", np.ones(num_features, np.float32))
            self._param("bias", np.zeros(num_features, np.float32))
        self._buffers["running_mean"] = np.zeros(num_features, np.float32)
        self._buffers["running_var"] = np.ones(num_features, np.float32)

    def forward(self, x):
        c = x.shape[1]
        shape = (1, c) + (1,) * (len(x.shape) - 2)
        w = self.p("weight").reshape(shape) if self.affine else None
        b = self.p("bias").reshape(shape) if self.affine else None
        if not self.training:  # the running stats as inputs (Module.feeds() gives their values)
            rm, rv = (buffer(self._buffers[k], name=(self._prefix + k).replace(".", "_")).cast(x.dtype)
                      for k in ("running_mean", "running_var"))
            y = _F.batch_norm(x, rm, rv, eps=self.eps)
            return y * w + b if self.affine else y
        axes = (0,) + tuple(range(2, len(x.shape)))
        xf = x.cast("fp32")
        mean = _F.mean(xf, dim=axes, keepdim=True)
        var = _F.mean(_F.square(xf - mean), dim=axes, keepdim=True)
        y = ((xf - mean) * _F.rsqrt(var + self.eps)).cast(x.dtype)
        n = int(np.prod([x.shape[a] for a in axes]))
        m = self.momentum
        for key, stat in (("running_mean", mean), ("running_var", var * (n / max(n - 1, 1)))):
            name = (self._prefix + key).replace(".", "_")
            old = buffer(self._buffers[key], name=name)
            buffer.update(old, old * (1 - m) + stat.reshape((c,)) * m)
        return y * w + b if self.affine else y


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        self.shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.affine, self.has_bias = eps, elementwise_affine, elementwise_affine and bias
        if elementwise_affine:
            self._param("weight", np.ones(self.shape, np.float32))
            if bias:
                self._param("bias", np.zeros(self.shape, np.float32))

    def forward(self, x):
        return _F.layer_norm(x, self.shape, self.p("weight") if self.affine else None,
                             self.p("bias") if self.has_bias else None, eps=self.eps)


class GroupNorm(Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        self.groups, self.eps, self.affine = num_groups, eps, affine
        if affine:
            self._param("weight", np.ones(num_channels, np.float32))
            self._param("bias", np.zeros(num_channels, np.float32))

    def forward(self, x):
        return _F.group_norm(x, self.groups, self.p("weight") if self.affine else None,
                             self.p("bias") if self.affine else None, eps=self.eps)


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True):
        super().__init__()
        self.shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps, self.affine = eps, elementwise_affine
        if elementwise_affine:
            self._param("weight", np.ones(self.shape, np.float32))

    def forward(self, x):
        return _F.rms_norm(x, self.shape, self.p("weight") if self.affine else None, eps=self.eps)


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self._param("weight", _rng.standard_normal((num_embeddings, embedding_dim)).astype(np.float32))

    def forward(self, ids):
        return _F.embedding(ids, self.p("weight"))


class Dropout(Module):
    """Zeroes each entry with probability p in training mode and scales the rest by 1/(1-p),
    as torch. The engine has no random numbers: the train step feeds fresh uniform noise of
    the activation's shape each call (an extra input the step fills itself)."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.prob = p

    def forward(self, x):
        if not self.training or self.prob == 0.0:
            return x
        u = noise(tuple(x.shape), name=(self._prefix + "noise").replace(".", "_") or "dropout_noise")
        keep = (u >= self.prob).cast(x.dtype)
        return x * keep * (1.0 / (1.0 - self.prob))

    def __repr__(self):
        return f"Dropout(p={self.prob})"


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention's parameters (in_proj_weight (3E, E), in_proj_bias,
    out_proj.weight/bias), call and masks; ``batch_first`` as torch (default False: (L, N, E)).
    The attention runs as one fused sdpa; with need_weights=True (torch's default) the weights
    are computed beside it, averaged over heads unless average_attn_weights=False."""

    def __init__(self, embed_dim, num_heads, bias=True, batch_first=False):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.batch_first, self.has_bias = embed_dim, num_heads, batch_first, bias
        bound = math.sqrt(6 / (embed_dim + 3 * embed_dim))  # xavier_uniform on (3E, E), as torch
        self._param("in_proj_weight", _uniform((3 * embed_dim, embed_dim), bound))
        if bias:
            self._param("in_proj_bias", np.zeros(3 * embed_dim, np.float32))
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if bias:
            self.out_proj._params["bias"] = np.zeros(embed_dim, np.float32)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        """torch's call and masks: a bool ``attn_mask`` or ``key_padding_mask`` marks positions
        NOT attended (True = masked, as torch.nn.MultiheadAttention; the opposite of sdpa's
        bool mask); a float one is added to the scores. Returns (output, weights or None)."""
        E, H = self.embed_dim, self.num_heads
        if not self.batch_first:
            query, key, value = (t.permute(1, 0, 2) for t in (query, key, value))
        w = self.p("in_proj_weight")
        b = self.p("in_proj_bias") if self.has_bias else None
        parts = []
        for i, t in enumerate((query, key, value)):
            wi = w[i * E:(i + 1) * E]
            bi = b[i * E:(i + 1) * E] if b is not None else None
            y = _F.linear(t, wi, bi)  # (N, L, E)
            n, length = y.shape[0], y.shape[1]
            parts.append(y.reshape(n, length, H, E // H).permute(0, 2, 1, 3))
        n, L, S = parts[0].shape[0], parts[0].shape[2], parts[1].shape[2]
        additive = None  # everything as one additive mask (N or 1, 1, L, S): 0 or -65504

        def as_additive(m, shape):
            m = _F.as_tensor(m)
            if m.dtype == "bool":
                return m.cast(parts[0].dtype).reshape(shape) * -65504.0
            return m.cast(parts[0].dtype).reshape(shape)
        if attn_mask is not None:
            am = _F.as_tensor(attn_mask)
            additive = as_additive(am, (1, 1, L, S) if len(am.shape) == 2 else (n, H, L, S))
        if key_padding_mask is not None:
            kp = as_additive(key_padding_mask, (n, 1, 1, S))
            additive = kp if additive is None else additive + kp
        if is_causal and additive is not None:
            causal = np.triu(np.full((L, S), -65504.0, np.float32), 1)
            additive = additive + causal
            is_causal = False
        o = _F.sdpa(*parts, attn_mask=additive, is_causal=is_causal)  # (N, H, L, E/H)
        o = self.out_proj(o.permute(0, 2, 1, 3).reshape(n, L, E))
        o = o if self.batch_first else o.permute(1, 0, 2)
        if not need_weights:
            return o, None
        scores = _F.matmul(parts[0], parts[1].transpose(-2, -1)) * (1.0 / math.sqrt(E // H))
        if additive is not None:
            scores = scores + additive
        elif is_causal:
            scores = scores + np.triu(np.full((L, S), -65504.0, np.float32), 1)
        weights = _F.softmax(scores, dim=-1)  # (N, H, L, S)
        return o, (_F.mean(weights, dim=1) if average_attn_weights else weights)


class ReLU(Module):
    def forward(self, x):
        return x.relu()


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return _F.gelu(x, approximate=self.approximate)


class SiLU(Module):
    def forward(self, x):
        return _F.silu(x)


class ReLU6(Module):
    def forward(self, x):
        return _F.relu6(x)


class Hardswish(Module):
    def forward(self, x):
        return _F.hardswish(x)


class Identity(Module):
    def __init__(self, *args, **kwargs):  # PyTorch's Identity ignores its arguments too
        super().__init__()

    def forward(self, x):
        return x


class Upsample(Module):
    """Upsampling by a whole ``scale_factor`` (or to ``size``, a whole multiple of the input):
    mode "nearest" or "bilinear" (``align_corners`` as in PyTorch)."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"Upsample: mode must be 'nearest' or 'bilinear', got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.size is not None:
            oh, ow = (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)
            if oh % h or ow % w or oh // h != ow // w:
                raise ValueError(f"Upsample: size {(oh, ow)} is not one whole multiple of the input {(h, w)}")
            factor = oh // h
        else:
            factor = self.scale_factor
            if isinstance(factor, (tuple, list)):
                if len(set(factor)) != 1:
                    raise ValueError(f"Upsample: scale_factor {factor} must be the same for both dimensions")
                factor = factor[0]
            if float(factor) != int(factor):
                raise ValueError(f"Upsample: scale_factor must be a whole number, got {factor}")
            factor = int(factor)
        if self.mode == "nearest":
            return _F.upsample_nearest(x, factor)
        return _F.upsample_bilinear(x, factor, align_corners=bool(self.align_corners))


class Flatten(Module):
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return _F.flatten(x, self.start_dim, self.end_dim)


class _Pool2d(Module):
    _op = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.k, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return getattr(_F, self._op)(x, self.k, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    _op = "max_pool2d"


class AvgPool2d(_Pool2d):
    _op = "avg_pool2d"
