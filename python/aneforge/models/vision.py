"""Vision models from torchvision-named state dicts (and Hugging Face ResNet/ViT directories,
whose names are mapped onto torchvision's): ResNet-18/34/50, ViT-B/16 and MobileNetV2, each compiled for a
flexible batch. Batch norm is folded into the convolutions by the compiler."""
from __future__ import annotations

import numpy as np

from ..compiler.build import compile as _compile
from ..graph import functional as _F
from ..graph.tensor import Tensor
from ._files import Weights, named, state_dict_arrays

RESNETS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True)}


class ImageModel:
    """A compiled vision model: ``model(pixel_values)`` (N, 3, H, W) float32, any batch, returns
    the logits (or the last hidden state for a backbone)."""

    def __init__(self, net, name: str, image_size: int):
        self.net, self.name, self.image_size = net, name, image_size

    def __call__(self, pixel_values) -> np.ndarray:
        x = np.asarray(pixel_values, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        want = (3, self.image_size, self.image_size)
        if x.ndim != 4 or x.shape[1:] != want:
            raise ValueError(f"{self.name} takes images (batch, {', '.join(map(str, want))}), got {x.shape}")
        return self.net(x)

    def summary(self, file=None) -> str:
        return self.net.summary(file)


# ---- ResNet ----

def _init_resnet(depth: int, num_classes: int, seed: int) -> dict:
    """torchvision's initialisation: kaiming-normal convs (fan_out), BN at identity, the
    classifier uniform in +-1/sqrt(fan_in)."""
    blocks, bottleneck = RESNETS[depth]
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(name, cout, cin, k):
        sd[name + ".weight"] = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cout * k * k))).astype(np.float32)

    def bn(name, c):
        sd.update({name + ".weight": np.ones(c, np.float32), name + ".bias": np.zeros(c, np.float32),
                   name + ".running_mean": np.zeros(c, np.float32), name + ".running_var": np.ones(c, np.float32)})

    conv("conv1", 64, 3, 7), bn("bn1", 64)
    cin, exp = 64, 4 if bottleneck else 1
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
        for b in range(n):
            p = f"layer{stage + 1}.{b}"
            stride = 2 if stage > 0 and b == 0 else 1
            if bottleneck:
                conv(p + ".conv1", width, cin, 1), bn(p + ".bn1", width)
                conv(p + ".conv2", width, width, 3), bn(p + ".bn2", width)
                conv(p + ".conv3", width * exp, width, 1), bn(p + ".bn3", width * exp)
            else:
                conv(p + ".conv1", width, cin, 3), bn(p + ".bn1", width)
                conv(p + ".conv2", width, width, 3), bn(p + ".bn2", width)
            if stride != 1 or cin != width * exp:
                conv(p + ".downsample.0", width * exp, cin, 1), bn(p + ".downsample.1", width * exp)
            cin = width * exp
    bound = 1 / np.sqrt(cin)
    sd["fc.weight"] = rng.uniform(-bound, bound, (num_classes, cin)).astype(np.float32)
    sd["fc.bias"] = rng.uniform(-bound, bound, num_classes).astype(np.float32)
    return sd


def build_resnet(w: Weights, blocks, bottleneck: bool, x: Tensor, head: bool = True) -> Tensor:
    """The torchvision ResNet topology on x (N, 3, H, W), weights by torchvision's names."""
    def conv_bn(h, conv, bn, stride, relu=True):
        weight = w(conv + ".weight")
        y = named(_F.conv2d(h, weight, stride=stride, padding=weight.shape[2] // 2), conv)
        y = _F.batch_norm(y, w(bn + ".running_mean"), w(bn + ".running_var"), w(bn + ".weight"), w(bn + ".bias"),
                          eps=1e-5)
        return y.relu() if relu else y

    h = _F.max_pool2d(conv_bn(x, "conv1", "bn1", 2), 3, 2, 1)
    for stage, n in enumerate(blocks):
        for b in range(n):
            p = f"layer{stage + 1}.{b}"
            stride = 2 if stage > 0 and b == 0 else 1
            if bottleneck:
                y = conv_bn(h, p + ".conv1", p + ".bn1", 1)
                y = conv_bn(y, p + ".conv2", p + ".bn2", stride)
                y = conv_bn(y, p + ".conv3", p + ".bn3", 1, relu=False)
            else:
                y = conv_bn(h, p + ".conv1", p + ".bn1", stride)
                y = conv_bn(y, p + ".conv2", p + ".bn2", 1, relu=False)
            sc = conv_bn(h, p + ".downsample.0", p + ".downsample.1", stride, relu=False) if w.has(p + ".downsample.0.weight") else h
            h = (y + sc).relu()
    pooled = h.mean(dim=(2, 3))
    return named(_F.linear(pooled, w("fc.weight"), w("fc.bias")), "fc") if head else pooled


def _resnet(depth, state_dict, image_size, num_classes, seed, options):
    blocks, bottleneck = RESNETS[depth]
    sd = _init_resnet(depth, num_classes, seed) if state_dict is None else state_dict_arrays(state_dict)
    w = Weights(sd, f"resnet{depth} state dict")
    x = _F.input((None, 3, image_size, image_size), name="pixel_values")
    net = _compile(build_resnet(w, blocks, bottleneck, x), **options)
    return ImageModel(net, f"resnet{depth}", image_size)


def resnet18(state_dict=None, *, image_size=224, num_classes=1000, seed=0, **compile_options):
    """ResNet-18 from a torchvision-named state dict (NumPy arrays or torch tensors), or
    initialised as torchvision does from ``seed``. Compile options pass to af.compile."""
    return _resnet(18, state_dict, image_size, num_classes, seed, compile_options)


def resnet34(state_dict=None, *, image_size=224, num_classes=1000, seed=0, **compile_options):
    """ResNet-34; see resnet18."""
    return _resnet(34, state_dict, image_size, num_classes, seed, compile_options)


def resnet50(state_dict=None, *, image_size=224, num_classes=1000, seed=0, **compile_options):
    """ResNet-50 (bottleneck blocks, stride on the 3x3 conv as torchvision); see resnet18."""
    return _resnet(50, state_dict, image_size, num_classes, seed, compile_options)


def hf_resnet_to_torchvision(sd: dict) -> dict:
    """Hugging Face ResNetForImageClassification names -> torchvision's."""
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            continue
        n = k.removeprefix("resnet.")
        n = n.replace("embedder.embedder.convolution", "conv1").replace("embedder.embedder.normalization", "bn1")
        if n.startswith("encoder.stages."):
            parts = n.split(".")  # encoder stages s layers l (layer k | shortcut) (convolution|normalization) param
            s, layer = int(parts[2]), int(parts[4])
            p = f"layer{s + 1}.{layer}"
            if parts[5] == "shortcut":
                n = f"{p}.downsample.{'0' if parts[6] == 'convolution' else '1'}.{parts[7]}"
            else:
                k_ = int(parts[6]) + 1
                n = f"{p}.{'conv' if parts[7] == 'convolution' else 'bn'}{k_}.{parts[8]}"
        n = n.replace("classifier.1.", "fc.")
        out[n] = v
    return out


def load_hf_resnet(path, tensors, cfg, options):
    depths, layer_type = cfg.get("depths"), cfg.get("layer_type", "bottleneck")
    if layer_type not in ("basic", "bottleneck") or not isinstance(depths, list) or len(depths) != 4:
        raise ValueError(f"{path}: ResNet with layer_type {layer_type!r} and depths {depths!r} is not supported")
    if cfg.get("hidden_act", "relu") != "relu" or cfg.get("downsample_in_first_stage") or cfg.get("downsample_in_bottleneck"):
        raise ValueError(f"{path}: only the torchvision ResNet layout (relu, stride on the 3x3 conv) is supported")
    sd = hf_resnet_to_torchvision(tensors)
    size = int(cfg.get("image_size", 224))
    x = _F.input((None, cfg.get("num_channels", 3), size, size), name="pixel_values")
    w = Weights(sd, path)
    y = build_resnet(w, depths, layer_type == "bottleneck", x, head=w.has("fc.weight"))
    return ImageModel(_compile(y, **options), "ResNet", size)


# ---- ViT ----

def _init_vit(seed: int, num_classes: int, dim=768, layers=12, mlp=3072, patch=16, size=224) -> dict:
    """torchvision's ViT initialisation (truncated-normal patch projection, xavier-uniform
    attention and MLP weights, normal(0.02) position embedding, zero class token and head)."""
    rng = np.random.default_rng(seed)
    n = (size // patch) ** 2 + 1

    def xavier(shape):
        bound = np.sqrt(6.0 / (shape[0] + shape[1]))
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    fan_in = 3 * patch * patch
    sd = {"conv_proj.weight": np.clip(rng.standard_normal((dim, 3, patch, patch)), -2, 2).astype(np.float32) * np.sqrt(1 / fan_in),
          "conv_proj.bias": np.zeros(dim, np.float32), "class_token": np.zeros((1, 1, dim), np.float32),
          "encoder.pos_embedding": (rng.standard_normal((1, n, dim)) * 0.02).astype(np.float32),
          "encoder.ln.weight": np.ones(dim, np.float32), "encoder.ln.bias": np.zeros(dim, np.float32),
          "heads.head.weight": np.zeros((num_classes, dim), np.float32), "heads.head.bias": np.zeros(num_classes, np.float32)}
    for i in range(layers):
        p = f"encoder.layers.encoder_layer_{i}."
        sd.update({p + "ln_1.weight": np.ones(dim, np.float32), p + "ln_1.bias": np.zeros(dim, np.float32),
                   p + "ln_2.weight": np.ones(dim, np.float32), p + "ln_2.bias": np.zeros(dim, np.float32),
                   p + "self_attention.in_proj_weight": xavier((3 * dim, dim)),
                   p + "self_attention.in_proj_bias": np.zeros(3 * dim, np.float32),
                   p + "self_attention.out_proj.weight": xavier((dim, dim)),
                   p + "self_attention.out_proj.bias": np.zeros(dim, np.float32),
                   p + "mlp.0.weight": xavier((mlp, dim)), p + "mlp.0.bias": (rng.standard_normal(mlp) * 1e-6).astype(np.float32),
                   p + "mlp.3.weight": xavier((dim, mlp)), p + "mlp.3.bias": (rng.standard_normal(dim) * 1e-6).astype(np.float32)})
    return sd


def build_vit(w: Weights, x: Tensor, heads: int, layers: int, patch: int, eps: float, head: bool = True) -> Tensor:
    """The ViT encoder (pre-norm, class token, learned positions) on x, torchvision names."""
    pw = w("conv_proj.weight")
    dim = pw.shape[0]
    # The patch projection as pixel_unshuffle + a 1x1 conv: the engine's kernels are at most
    # 15 wide, and (c, i, j) is the order of both the unshuffled channels and the weight.
    t = named(_F.conv2d(_F.pixel_unshuffle(x, patch), pw.reshape(dim, -1, 1, 1), w("conv_proj.bias")), "conv_proj")  # (N, D, H/p, W/p)
    n_patches = t.shape[2] * t.shape[3]
    t = t.flatten(2).transpose(1, 2)                               # (N, P, D)
    cls = t[:, :1] * 0.0 + w("class_token").reshape(1, 1, dim)   # the class token, once per image
    t = _F.cat([cls, t], dim=1)
    t = t + w("encoder.pos_embedding").reshape(1, n_patches + 1, dim)
    hd = dim // heads
    for i in range(layers):
        p = f"encoder.layers.encoder_layer_{i}."
        h = _F.layer_norm(t, (dim,), w(p + "ln_1.weight"), w(p + "ln_1.bias"), eps)
        wqkv, bqkv = w(p + "self_attention.in_proj_weight"), w(p + "self_attention.in_proj_bias")

        def proj(j, h=h, wqkv=wqkv, bqkv=bqkv):
            y = named(_F.linear(h, wqkv[j * dim:(j + 1) * dim], bqkv[j * dim:(j + 1) * dim]),
                      p + "self_attention.in_proj." + "qkv"[j])
            return y.reshape(-1, n_patches + 1, heads, hd).transpose(1, 2)

        a = _F.scaled_dot_product_attention(proj(0), proj(1), proj(2)).transpose(1, 2).reshape(-1, n_patches + 1, dim)
        t = t + named(_F.linear(a, w(p + "self_attention.out_proj.weight"), w(p + "self_attention.out_proj.bias")),
                      p + "self_attention.out_proj")
        h = _F.layer_norm(t, (dim,), w(p + "ln_2.weight"), w(p + "ln_2.bias"), eps)
        h = named(_F.linear(h, w(p + "mlp.0.weight"), w(p + "mlp.0.bias")), p + "mlp.0")
        h = named(_F.linear(_F.gelu(h), w(p + "mlp.3.weight"), w(p + "mlp.3.bias")), p + "mlp.3")
        t = t + h
    t = _F.layer_norm(t, (dim,), w("encoder.ln.weight"), w("encoder.ln.bias"), eps)
    return named(_F.linear(t[:, 0], w("heads.head.weight"), w("heads.head.bias")), "heads.head") if head else t


def vit_b_16(state_dict=None, *, image_size=224, num_classes=1000, seed=0, **compile_options):
    """ViT-B/16 from a torchvision-named state dict, or initialised as torchvision does."""
    sd = _init_vit(seed, num_classes, size=image_size) if state_dict is None else state_dict_arrays(state_dict)
    w = Weights(sd, "vit_b_16 state dict")
    x = _F.input((None, 3, image_size, image_size), name="pixel_values")
    net = _compile(build_vit(w, x, heads=12, layers=12, patch=16, eps=1e-6), **compile_options)
    return ImageModel(net, "vit_b_16", image_size)


def hf_vit_to_torchvision(sd: dict, layers: int) -> dict:
    """Hugging Face ViT names (both the transformers 4 and 5 layouts) -> torchvision's."""
    g = {k.removeprefix("vit."): v for k, v in sd.items()}
    out = {"conv_proj.weight": g["embeddings.patch_embeddings.projection.weight"],
           "conv_proj.bias": g["embeddings.patch_embeddings.projection.bias"],
           "class_token": g["embeddings.cls_token"], "encoder.pos_embedding": g["embeddings.position_embeddings"],
           "encoder.ln.weight": g["layernorm.weight"], "encoder.ln.bias": g["layernorm.bias"]}
    if "classifier.weight" in g:
        out["heads.head.weight"], out["heads.head.bias"] = g["classifier.weight"], g["classifier.bias"]
    for i in range(layers):
        new = f"layers.{i}."
        old = f"encoder.layer.{i}."
        if new + "attention.q_proj.weight" in g:
            q, k, v, o = (new + f"attention.{n}_proj" for n in "qkvo")
            ln1, ln2, fc1, fc2 = new + "layernorm_before", new + "layernorm_after", new + "mlp.fc1", new + "mlp.fc2"
        else:
            q, k, v = (old + f"attention.attention.{n}" for n in ("query", "key", "value"))
            o, ln1, ln2 = old + "attention.output.dense", old + "layernorm_before", old + "layernorm_after"
            fc1, fc2 = old + "intermediate.dense", old + "output.dense"
        p = f"encoder.layers.encoder_layer_{i}."
        out[p + "self_attention.in_proj_weight"] = np.concatenate([g[q + ".weight"], g[k + ".weight"], g[v + ".weight"]])
        out[p + "self_attention.in_proj_bias"] = np.concatenate([g[q + ".bias"], g[k + ".bias"], g[v + ".bias"]])
        out.update({p + "self_attention.out_proj.weight": g[o + ".weight"], p + "self_attention.out_proj.bias": g[o + ".bias"],
                    p + "ln_1.weight": g[ln1 + ".weight"], p + "ln_1.bias": g[ln1 + ".bias"],
                    p + "ln_2.weight": g[ln2 + ".weight"], p + "ln_2.bias": g[ln2 + ".bias"],
                    p + "mlp.0.weight": g[fc1 + ".weight"], p + "mlp.0.bias": g[fc1 + ".bias"],
                    p + "mlp.3.weight": g[fc2 + ".weight"], p + "mlp.3.bias": g[fc2 + ".bias"]})
    return out


def load_hf_vit(path, tensors, cfg, options):
    for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "patch_size", "image_size"):
        if not isinstance(cfg.get(k), int) or cfg[k] < 1:
            raise ValueError(f"{path}: config needs a positive integer {k!r}, got {cfg.get(k)!r}")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{path}: hidden_act {cfg.get('hidden_act')!r} is not supported (gelu)")
    try:
        sd = hf_vit_to_torchvision(tensors, cfg["num_hidden_layers"])
    except KeyError as e:
        raise ValueError(f"{path}: missing tensor {e.args[0]!r}") from None
    size = cfg["image_size"]
    x = _F.input((None, cfg.get("num_channels", 3), size, size), name="pixel_values")
    w = Weights(sd, path)
    y = build_vit(w, x, cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["patch_size"],
                  float(cfg.get("layer_norm_eps", 1e-12)), head="heads.head.weight" in sd)
    return ImageModel(_compile(y, **options), "ViT", size)


# ---- MobileNetV2 ----

# torchvision's inverted-residual settings: expansion t, output channels c, blocks n, stride s.
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


def _mobilenet_v2_blocks():
    """(prefix, input channels, expansion, output channels, stride) of each inverted residual."""
    cin, i = 32, 1
    for t, c, n, s in MOBILENET_V2:
        for b in range(n):
            yield f"features.{i}", cin, t, c, s if b == 0 else 1
            cin, i = c, i + 1


def _init_mobilenet_v2(num_classes: int, seed: int) -> dict:
    """torchvision's initialisation: kaiming-normal convs (fan_out), BN at identity, the
    classifier normal(0, 0.01) with a zero bias."""
    rng = np.random.default_rng(seed)
    sd = {}

    def conv_bn(name, cout, cin_per_group, k, bn):
        sd[name + ".weight"] = (rng.standard_normal((cout, cin_per_group, k, k)) * np.sqrt(2.0 / (cout * k * k))).astype(np.float32)
        sd.update({bn + ".weight": np.ones(cout, np.float32), bn + ".bias": np.zeros(cout, np.float32),
                   bn + ".running_mean": np.zeros(cout, np.float32), bn + ".running_var": np.ones(cout, np.float32)})

    conv_bn("features.0.0", 32, 3, 3, "features.0.1")
    for p, cin, t, cout, _ in _mobilenet_v2_blocks():
        hidden, j = cin * t, 0
        if t != 1:
            conv_bn(f"{p}.conv.0.0", hidden, cin, 1, f"{p}.conv.0.1")
            j = 1
        conv_bn(f"{p}.conv.{j}.0", hidden, 1, 3, f"{p}.conv.{j}.1")
        conv_bn(f"{p}.conv.{j + 1}", cout, hidden, 1, f"{p}.conv.{j + 2}")
    conv_bn("features.18.0", 1280, 320, 1, "features.18.1")
    sd["classifier.1.weight"] = (rng.standard_normal((num_classes, 1280)) * 0.01).astype(np.float32)
    sd["classifier.1.bias"] = np.zeros(num_classes, np.float32)
    return sd


def build_mobilenet_v2(w: Weights, x: Tensor, head: bool = True) -> Tensor:
    """The torchvision MobileNetV2 topology (width 1.0) on x (N, 3, H, W): inverted residuals
    of 1x1 expansion, 3x3 depthwise and 1x1 projection convs, each with batch norm, ReLU6
    after the first two."""
    def conv_bn(h, conv, bn, stride=1, groups=1, relu6=True):
        weight = w(conv + ".weight")
        y = named(_F.conv2d(h, weight, stride=stride, padding=weight.shape[2] // 2, groups=groups), conv)
        y = _F.batch_norm(y, w(bn + ".running_mean"), w(bn + ".running_var"), w(bn + ".weight"), w(bn + ".bias"),
                          eps=1e-5)
        return _F.relu6(y) if relu6 else y

    h = conv_bn(x, "features.0.0", "features.0.1", stride=2)
    for p, cin, t, cout, stride in _mobilenet_v2_blocks():
        y, j = h, 0
        if t != 1:
            y, j = conv_bn(h, f"{p}.conv.0.0", f"{p}.conv.0.1"), 1
        y = conv_bn(y, f"{p}.conv.{j}.0", f"{p}.conv.{j}.1", stride=stride, groups=cin * t)
        y = conv_bn(y, f"{p}.conv.{j + 1}", f"{p}.conv.{j + 2}", relu6=False)
        h = h + y if stride == 1 and cin == cout else y
    pooled = conv_bn(h, "features.18.0", "features.18.1").mean(dim=(2, 3))
    return named(_F.linear(pooled, w("classifier.1.weight"), w("classifier.1.bias")), "classifier.1") if head else pooled


def mobilenet_v2(state_dict=None, *, image_size=224, num_classes=1000, seed=0, **compile_options):
    """MobileNetV2 (width 1.0) from a torchvision-named state dict (NumPy arrays or torch
    tensors), or initialised as torchvision does from ``seed``. Compile options pass to
    af.compile."""
    sd = _init_mobilenet_v2(num_classes, seed) if state_dict is None else state_dict_arrays(state_dict)
    x = _F.input((None, 3, image_size, image_size), name="pixel_values")
    net = _compile(build_mobilenet_v2(Weights(sd, "mobilenet_v2 state dict"), x), **compile_options)
    return ImageModel(net, "mobilenet_v2", image_size)
