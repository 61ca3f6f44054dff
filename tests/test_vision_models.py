"""Vision models against references in float32: torchvision-named state dicts against plain
PyTorch (tests/torch_vision_refs.py), Hugging Face directories written by transformers against
transformers; without weights, torchvision's initialisation."""
import numpy as np
import pytest
import torch

import aneforge as af
import torch_vision_refs as R

transformers = pytest.importorskip("transformers")


def _cos(a, b):
    return af.testing.cosine(a, b)


@pytest.mark.parametrize("depth,size", [(18, 224), (34, 64), (50, 96)])
def test_resnet_from_a_torchvision_state_dict(depth, size, rng):
    ref_model = R.resnet(depth)
    model = getattr(af.models, f"resnet{depth}")(ref_model.state_dict(), image_size=size)
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    got = model(x)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x)).numpy()
    for g, r in zip(got, ref):
        assert _cos(g, r) >= 0.9999
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert model.net.compile_for(2).num_layers < 3 * depth  # batch norm folded into the convs


def test_vit_b_16_from_a_torchvision_state_dict(rng):
    ref_model = R.vit_b_16()
    model = af.models.vit_b_16(ref_model.state_dict())
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x)).numpy()
    assert _cos(model(x), ref) >= 0.9999


def test_without_weights_torchvision_initialisation_from_a_seed(rng):
    a, b = af.models.resnet18(image_size=64, seed=3), af.models.resnet18(image_size=64, seed=3)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(a(x), af.models.resnet18(image_size=64, seed=4)(x))
    v = af.models.vit_b_16(image_size=32, num_classes=10)
    np.testing.assert_array_equal(v(rng.standard_normal((1, 3, 32, 32)).astype(np.float32)), 0)  # zero head


def test_hf_resnet_directory(tmp_path, rng):
    for layer_type, depths in (("basic", [2, 1, 1, 1]), ("bottleneck", [1, 2, 1, 1])):
        cfg = transformers.ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 64, 32] if layer_type == "basic"
                                        else [256, 512, 128, 64], depths=depths, layer_type=layer_type, num_labels=7,
                                        image_size=64)
        torch.manual_seed(0)
        m = transformers.ResNetForImageClassification(cfg).eval()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.2, 0.2)
                    mod.running_var.uniform_(0.5, 1.5)
        d = tmp_path / layer_type
        m.save_pretrained(d)
        x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
        with torch.no_grad():
            ref = m(pixel_values=torch.from_numpy(x)).logits.numpy()
        assert _cos(af.load(d)(x), ref) >= 0.9999, layer_type


def test_hf_vit_directory(tmp_path, rng):
    cfg = transformers.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                 image_size=32, patch_size=8, num_labels=5)
    torch.manual_seed(0)
    m = transformers.ViTForImageClassification(cfg).eval()
    m.save_pretrained(tmp_path / "vit")
    x = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = m(pixel_values=torch.from_numpy(x)).logits.numpy()
    got = af.load(tmp_path / "vit")(x)
    for g, r in zip(got, ref):
        assert _cos(g, r) >= 0.9999
    with pytest.raises(ValueError, match=r"takes images \(batch, 3, 32, 32\)"):
        af.load(tmp_path / "vit")(np.zeros((1, 3, 30, 30), np.float32))


def test_hf_vit_directory_in_the_transformers_4_layout(tmp_path, rng):
    from safetensors.numpy import load_file, save_file
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                                 image_size=16, patch_size=8, num_labels=3)
    torch.manual_seed(1)
    m = transformers.ViTForImageClassification(cfg).eval()
    d = tmp_path / "vit4"
    m.save_pretrained(d)
    sd = load_file(d / "model.safetensors")
    if "vit.layers.0.attention.q_proj.weight" in sd:  # written in the transformers 5 layout: rename to 4's
        old = {"attention.q_proj": "attention.attention.query", "attention.k_proj": "attention.attention.key",
               "attention.v_proj": "attention.attention.value", "attention.o_proj": "attention.output.dense",
               "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
        renamed = {}
        for k, v in sd.items():
            n = k.replace("vit.layers.", "vit.encoder.layer.")
            for a, b in old.items():
                n = n.replace(a, b)
            renamed[n] = v
        save_file(renamed, d / "model.safetensors")
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        ref = m(pixel_values=torch.from_numpy(x)).logits.numpy()
    assert _cos(af.load(d)(x), ref) >= 0.9999


def test_vision_programs_are_equivalent_on_the_mil_backend(tmp_path, rng):
    m = R.resnet(18)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    sim = af.models.resnet18(m.state_dict(), image_size=64)(x)
    mil = af.models.resnet18(m.state_dict(), image_size=64, backend="mil")(x)
    assert np.abs(sim - mil).max() <= 2e-3 and _cos(sim, mil) >= 0.99999
    cfg = transformers.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                 image_size=32, patch_size=8)
    torch.manual_seed(0)
    transformers.ViTForImageClassification(cfg).save_pretrained(tmp_path / "vit")
    xv = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    a, b = af.load(tmp_path / "vit")(xv), af.load(tmp_path / "vit", backend="mil")(xv)
    assert np.abs(a - b).max() <= 2e-3 and _cos(a, b) >= 0.99999
