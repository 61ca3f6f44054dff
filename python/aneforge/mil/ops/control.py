"""select (control-flow family), states (iOS18), attention (iOS18), activation quantization (iOS17)."""
import numpy as np

from ..registry import op
from .activation import softmax  # noqa: F401
from .elementwise import num


@op("select", family="control_flow")
def select(a):
    c = a.tensor("cond")
    return np.where(c.astype(bool), num(a, "a"), num(a, "b"))


@op("scaled_dot_product_attention", family="transformers", since=18)
def scaled_dot_product_attention(a):
    q, k, v = num(a, "query"), num(a, "key"), num(a, "value")
    s = q @ np.swapaxes(k, -1, -2) / np.float32(np.sqrt(q.shape[-1]))
    if a.has("attn_mask"):
        m = a.tensor("attn_mask")
        s = np.where(m, s, -np.inf) if m.dtype == np.bool_ else s + m.astype(np.float32)
    mx = np.max(s, axis=-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(mx), mx, 0))
    return (e / np.sum(e, axis=-1, keepdims=True)) @ v


@op("read_state", family="states", since=18)
def read_state(a):
    return a.tensor("input")


@op("coreml_update_state", family="states", since=18)
def coreml_update_state(a):
    a.states[a.op.inputs["state"][0][1]] = a.tensor("value")
    return a.tensor("value")


def _scale_and_zero_point(a, rank):
    """scale and zero_point, broadcast along `axis` when they are per-channel vectors."""
    ax = a.int("axis", None)
    scale = a.f("scale")
    zp = a.tensor("zero_point", None)
    zp = np.float32(0) if zp is None else zp.astype(np.float32)
    if scale.ndim == 1 and ax is not None:
        shape = [1] * rank
        shape[ax % rank] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if np.ndim(zp) == 1 else zp
    return scale, zp


@op("quantize", family="quantization", since=17)
def quantize(a):
    x = num(a, "input")
    scale, zp = _scale_and_zero_point(a, x.ndim)
    lo, hi = (-128, 127) if a.str("output_dtype") == "int8" else (0, 255)
    return np.clip(np.round(x / scale) + zp, lo, hi)


@op("dequantize", family="quantization", since=17)
def dequantize(a):
    x = a.tensor("input").astype(np.float32)
    scale, zp = _scale_and_zero_point(a, x.ndim)
    return (x - zp) * scale
