"""Activation family."""
import math

import numpy as np

from ..registry import op

_erf = np.frompyfunc(math.erf, 1, 1)

A = "activation"


def _channel(a, name, rank):
    v = a.f(name)
    return v.reshape((-1,) + (1,) * (rank - 2)) if v.ndim == 1 else v


def keep_nans(y, x):
    """y where x is not NaN, x (its NaN, bit for bit) where it is: what np.where(np.isnan(x), x, y)
    gives, in place on y, without a pass when x holds no NaN."""
    x = np.broadcast_to(x, y.shape)
    nan = np.isnan(x)
    if nan.any():
        y[nan] = x[nan]
    return y


# np.maximum(-0.0, +0.0) is +0.0 on x86-64 and arm64 NumPy; checked once, fixed where not
_MAX_GIVES_NEG_ZERO = bool(np.signbit(np.maximum(np.full(64, -0.0, np.float32), np.float32(0))).any())


@op("relu", family=A)
def relu(a):
    x = a.f("x")
    y = np.asarray(np.maximum(x, x.dtype.type(0)))  # -0 -> +0; NaNs are put back below
    if _MAX_GIVES_NEG_ZERO:
        y[y == 0] = 0
    return keep_nans(y, x)


@op("relu6", family=A)
def relu6(a):
    x = a.f("x")
    return np.where(np.isnan(x), x, np.clip(x, 0, 6))


@op("sigmoid", family=A)
def sigmoid(a):
    return 1 / (1 + np.exp(-a.f("x")))


@op("silu", family=A)
def silu(a):
    x = a.f("x")
    return x / (1 + np.exp(-x))


@op("tanh", family=A)
def tanh(a):
    return np.tanh(a.f("x"))


@op("softplus", family=A)
def softplus(a):
    x = a.f("x")
    return np.logaddexp(np.float32(0), x)


@op("softplus_parametric", family=A)
def softplus_parametric(a):
    x = a.f("x")
    alpha, beta = _channel(a, "alpha", x.ndim), _channel(a, "beta", x.ndim)
    return alpha * np.logaddexp(np.float32(0), beta * x)


@op("softsign", family=A)
def softsign(a):
    x = a.f("x")
    return x / (1 + np.abs(x))


@op("softmax", family=A)
def softmax(a):
    x = a.f("x")
    ax = a.axis("axis", x.ndim, -1)
    # exp(x - max) / sum: a row holding NaN or +inf is NaN throughout, as in torch
    e = np.exp(x - np.max(x, axis=ax, keepdims=True))
    return e / np.sum(e, axis=ax, keepdims=True)


@op("elu", family=A)
def elu(a):
    x = a.f("x")
    return np.where(x > 0, x, a.float("alpha", 1.0) * np.expm1(x))


@op("leaky_relu", family=A)
def leaky_relu(a):
    x = a.f("x")
    return np.where(x >= 0, x, np.float32(a.float("alpha", 0.01)) * x)


@op("gelu", family=A)
def gelu(a):
    x = a.f("x").astype(np.float64)
    mode = a.str("mode", "EXACT")
    if mode == "EXACT":
        y = 0.5 * x * (1 + _erf(x / np.sqrt(2)).astype(np.float64)) if x.size else x
    elif mode == "TANH_APPROXIMATION":
        y = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    elif mode == "SIGMOID_APPROXIMATION":
        y = x / (1 + np.exp(-1.702 * x))
    else:
        a.fail(f"unknown gelu mode '{mode}'")
    return np.where(np.isneginf(x), 0.0, y)  # the limit at -inf (the formula gives -inf * 0)


@op("linear_activation", family=A)
def linear_activation(a):
    return np.float32(a.float("alpha")) * a.f("x") + np.float32(a.float("beta", 0.0))


@op("scaled_tanh", family=A)
def scaled_tanh(a):
    return np.float32(a.float("alpha", 1.0)) * np.tanh(np.float32(a.float("beta", 1.0)) * a.f("x"))


@op("sigmoid_hard", family=A)
def sigmoid_hard(a):
    x = a.f("x")
    y = np.float32(a.float("alpha", 0.2)) * x + np.float32(a.float("beta", 0.5))
    return np.where(np.isnan(y), y, np.clip(y, 0, 1))


@op("clamped_relu", family=A)
def clamped_relu(a):
    x = a.f("x")
    alpha, beta = np.float32(a.float("alpha")), np.float32(a.float("beta"))
    return np.where(np.isnan(x), x, np.where(x >= 0, np.minimum(beta, x), np.minimum(beta, alpha * x)))


@op("thresholded_relu", family=A)
def thresholded_relu(a):
    x = a.f("x")
    return np.where(x >= np.float32(a.float("alpha", 1.0)), x, 0)  # NaN >= alpha is false: 0


@op("prelu", family=A)
def prelu(a):
    x = a.f("x")
    alpha = _channel(a, "alpha", x.ndim)
    return np.where(x > 0, x, alpha * x)
