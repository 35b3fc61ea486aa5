"""The four networks: shapes, gradients, attention, dilation, sizes, validation and FLOPs."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from rdanet_gan.models import PoolingSwitches, build_model, count_flops
from rdanet_gan.models.blocks import (
    DilatedConv2D,
    SubsampledConv2D,
    attention_gate,
    dilated_module,
    normalize,
    with_dilated_conv2d,
)

SIZE = 32
SEGMENTERS = ("rdau-net", "unet", "segnet")


@functools.cache
def tiny(name: str, **options) -> keras.Model:
    """A width-4, 32×32 network, built once per module (tests only read it or take gradients)."""
    keras.utils.set_random_seed(0)
    channels = 2 if name == "critic" else 1
    return build_model(name, input_shape=(SIZE, SIZE, channels), base_width=4, **options)


def random_batch(n: int = 2, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, SIZE, SIZE, channels), dtype=np.float32)


@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmenter_outputs_a_probability_map(name):
    model = tiny(name)
    probabilities = np.asarray(model(random_batch(3), training=False))
    assert probabilities.shape == (3, SIZE, SIZE, 1)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert probabilities.std() > 0, "a constant map: the output is not connected to the image"
    assert model.layers[-1].name == "mask"


def test_critic_outputs_one_unbounded_score_per_image():
    critic = tiny("critic")
    scores = np.asarray(critic(random_batch(3, channels=2), training=False))
    assert scores.shape == (3, 1)
    assert critic.layers[-1].name == "score"
    assert critic.get_layer("score").activation is keras.activations.linear
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in critic.layers)


@pytest.mark.parametrize("name, options", [
    ("rdau-net", {}),
    ("unet", {"norm": "batch"}),
    ("segnet", {}),
    ("critic", {"norm": "layer"}),
])
def test_gradient_reaches_every_trainable_weight(name, options):
    model = tiny(name, **options)
    inputs = random_batch(4, channels=model.input.shape[-1])
    target_weights = tf.constant(np.random.default_rng(1).standard_normal((4, *model.output.shape[1:]), "float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(inputs, training=True) * target_weights)
    gradients = tape.gradient(loss, model.trainable_weights)
    for weight, gradient in zip(model.trainable_weights, gradients):
        assert gradient is not None, f"{weight.path}: no gradient"
        gradient = np.asarray(gradient)
        assert np.all(np.isfinite(gradient)), f"{weight.path}: non-finite gradient"
        assert np.any(gradient != 0), f"{weight.path}: zero gradient"


def test_attention_gate_scales_the_skip_by_coefficients_that_follow_the_gating():
    skip_input, gating_input = keras.Input((8, 8, 4)), keras.Input((8, 8, 6))
    gated = attention_gate(skip_input, gating_input, inter_channels=3, name="att")
    keras.utils.set_random_seed(0)
    gate = keras.Model([skip_input, gating_input], gated)
    probe = keras.Model(gate.inputs, [gate.output, gate.get_layer("att_coeff").output])

    rng = np.random.default_rng(0)
    skip = rng.standard_normal((2, 8, 8, 4), "float32")
    gated_a, coeff_a = map(np.asarray, probe([skip, rng.standard_normal((2, 8, 8, 6), "float32")]))
    _, coeff_b = map(np.asarray, probe([skip, rng.standard_normal((2, 8, 8, 6), "float32")]))

    assert coeff_a.shape == (2, 8, 8, 1)
    for coeff in (coeff_a, coeff_b):
        assert np.all((coeff >= 0) & (coeff <= 1))
    np.testing.assert_allclose(gated_a, skip * coeff_a, rtol=1e-6)
    assert np.abs(coeff_a - coeff_b).max() > 1e-3, "the coefficients ignore the gating signal"


def test_rdau_net_exposes_an_attention_map_per_decoder_level():
    model = tiny("rdau-net")
    names = [f"att{level}_coeff" for level in range(1, 6)]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    for level, coeff in enumerate(probe(random_batch(1), training=False), start=1):
        side = SIZE // 2 ** (level - 1)
        assert coeff.shape == (1, side, side, 1)
        assert np.all((np.asarray(coeff) >= 0) & (np.asarray(coeff) <= 1))


def test_dilated_module_is_a_cascade_at_the_requested_rates_summed():
    model = tiny("rdau-net")
    rates = (1, 2, 4, 8, 16, 32)
    convs = [model.get_layer(f"dilated_r{rate}") for rate in rates]
    for rate, conv in zip(rates, convs):
        assert conv.dilation_rate == (rate, rate)
        assert conv.filters == 8 * 4
    assert convs[0].input is model.get_layer("enc6_add").output
    for previous, conv in itertools.pairwise(convs):
        assert conv.input is previous.output, f"{conv.name} does not follow {previous.name}"
    summed = model.get_layer("dilated_sum").input
    assert [tensor.name for tensor in summed] == [conv.output.name for conv in convs]

    inputs = keras.Input((4, 4, 8))
    custom = keras.Model(inputs, dilated_module(inputs, 6, (1, 3), "d"))
    assert [(layer.name, layer.dilation_rate, layer.filters) for layer in custom.layers[1:3]] == [
        ("d_r1", (1, 1), 6),
        ("d_r3", (3, 3), 6),
    ]


def assert_same_outputs_and_gradients(fast: layers.Layer, plain: layers.Layer, x: tf.Tensor) -> None:
    """``fast`` with ``plain``'s weights gives the same outputs, input gradients and weight gradients."""
    fast.build(x.shape)
    plain.build(x.shape)
    plain.set_weights(fast.get_weights())
    results = []
    for layer in (fast, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y**2)
        results.append([y, *tape.gradient(loss, [x, *layer.trainable_weights])])
    for a, b in zip(*results):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("size", "padding", "stride"), [(8, "same", 2), (7, "same", 2), (9, "valid", 2), (8, "same", 1)])
def test_subsampled_conv_matches_a_strided_pointwise_conv2d_in_outputs_and_gradients(size, padding, stride):
    keras.utils.set_random_seed(0)
    x = tf.constant(np.random.default_rng(size).normal(size=(3, size, size, 8)).astype("float32"))
    assert_same_outputs_and_gradients(
        SubsampledConv2D(6, 1, strides=stride, padding=padding), layers.Conv2D(6, 1, strides=stride, padding=padding), x
    )


def test_width_8_rdau_net_trains_in_float32_without_xla_at_small_batches():
    # TF 2.21's oneDNN crashed the process here on AVX-512 CPUs (the strided 1x1 shortcut from 8 channels).
    script = (
        "import numpy as np, keras\n"
        "from rdanet_gan.models import build_rdau_net\n"
        "m = build_rdau_net(input_shape=(64, 64, 1), base_width=8)\n"
        "m.compile(optimizer='adam', loss='binary_crossentropy', jit_compile=False)\n"
        "x = np.random.default_rng(0).random((3, 64, 64, 1), dtype=np.float32)\n"
        "for _ in range(2):\n"
        "    m.train_on_batch(x, (x > 0.5).astype('float32'))\n"
        "print('trained')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]


@pytest.mark.parametrize(("size", "rate"), [(4, 4), (4, 32), (5, 4), (8, 4), (4, 2)])
def test_dilated_conv_skipping_padding_taps_matches_conv2d_in_outputs_and_gradients(size, rate):
    keras.utils.set_random_seed(0)
    x = tf.constant(np.random.default_rng(size + rate).normal(size=(2, size, size, 8)).astype("float32"))
    assert_same_outputs_and_gradients(
        DilatedConv2D(6, 3, dilation_rate=rate, padding="same", activation="relu"),
        layers.Conv2D(6, 3, dilation_rate=rate, padding="same", activation="relu"),
        x,
    )


def _plain_dilated_model() -> keras.Model:
    """A model as files saved before ``DilatedConv2D`` hold it: plain dilated ``Conv2D`` layers, one nested."""
    keras.utils.set_random_seed(0)
    inner_input = keras.Input((4, 4, 8))
    inner = keras.Model(inner_input, layers.Conv2D(8, 3, dilation_rate=8, padding="same", name="r8")(inner_input))
    image = keras.Input((4, 4, 8))
    x = layers.Conv2D(8, 3, dilation_rate=2, padding="same", activation="relu", name="r2")(image)
    x = layers.Conv2D(8, 3, dilation_rate=4, padding="same", activation="relu", name="r4")(x)
    return keras.Model(image, layers.Conv2D(8, 3, padding="same", name="plain")(inner(x)))


def test_plain_dilated_convolutions_become_dilated_conv2d_with_the_same_outputs():
    model = _plain_dilated_model()
    faster = with_dilated_conv2d(model)
    assert [type(faster.get_layer(name)) for name in ("r2", "r4", "plain")] == [DilatedConv2D, DilatedConv2D, layers.Conv2D]
    assert type(faster.layers[-2].get_layer("r8")) is DilatedConv2D  # nested models too
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 8)).astype("float32")
    np.testing.assert_allclose(np.asarray(faster(x)), np.asarray(model(x)), atol=1e-5)
    assert with_dilated_conv2d(faster) is faster  # nothing left to change: the model itself


def test_pooling_switches_mark_the_first_maximum_of_each_window_with_and_without_xla():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 3, (2, 6, 8, 3)).astype("float32")  # many ties
    expected = np.zeros_like(values)
    for b, row, col, channel in np.ndindex(2, 3, 4, 3):
        window = values[b, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2, channel]
        winner_row, winner_col = divmod(int(np.argmax(window)), 2)
        expected[b, 2 * row + winner_row, 2 * col + winner_col, channel] = 1
    switches = PoolingSwitches()
    np.testing.assert_array_equal(np.asarray(switches(values)), expected)
    compiled = tf.function(switches, jit_compile=True, autograph=False)
    np.testing.assert_array_equal(np.asarray(compiled(tf.constant(values))), expected)


def test_segnet_unpools_each_value_to_the_winner_of_its_encoder_pooling():
    model = tiny("segnet")
    names = ("enc1_relu2", "unpool1", "unpool1_switched")  # pooled map, its upsampling, the unpooled map
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    encoder, upsampled, unpooled = map(np.asarray, probe(random_batch(2), training=False))

    expected = np.zeros_like(upsampled)
    for b, row, col, channel in np.ndindex(2, SIZE // 2, SIZE // 2, encoder.shape[-1]):
        window = encoder[b, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2, channel]
        winner_row, winner_col = divmod(int(np.argmax(window)), 2)
        position = (b, 2 * row + winner_row, 2 * col + winner_col, channel)
        expected[position] = upsampled[position]
    np.testing.assert_array_equal(unpooled, expected)
    assert np.count_nonzero(unpooled) > 0

    assert not any(isinstance(layer, PoolingSwitches) for layer in tiny("segnet", unpooling="upsample").layers)


def test_outputs_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for name, channels in (("rdau-net", 1), ("critic", 2)):
            model = build_model(name, input_shape=(SIZE, SIZE, channels), base_width=4)
            assert model.layers[-2].compute_dtype == "float16"
            output = model(random_batch(1, channels=channels), training=False)
            assert output.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("norm, layer_name, groups", [
    ("batch", "x_bn1", None),
    ("group", "x_gn1", 8),
    ("instance", "x_in1", 16),
    ("layer", "x_ln1", 1),
])
def test_normalize_builds_the_requested_normalisation(norm, layer_name, groups):
    inputs = keras.Input((8, 8, 16))
    layer = keras.Model(inputs, normalize(inputs, norm, "x", "1")).layers[-1]
    assert layer.name == layer_name
    if groups is None:
        assert isinstance(layer, layers.BatchNormalization) and layer.momentum == 0.9
    else:
        assert isinstance(layer, layers.GroupNormalization) and layer.groups == groups


def test_models_use_the_requested_normalisation():
    def norm_types(model):
        return {type(layer) for layer in model.layers} & {layers.BatchNormalization, layers.GroupNormalization}

    assert norm_types(tiny("rdau-net")) == {layers.BatchNormalization}
    assert norm_types(tiny("rdau-net", norm="instance")) == {layers.GroupNormalization}
    assert norm_types(tiny("unet")) == set()
    assert norm_types(tiny("critic", norm="layer")) == {layers.GroupNormalization}


@pytest.mark.parametrize("name, options, message", [
    ("rdau-net", {"input_shape": (48, 48, 1)}, "multiples of 32"),
    ("unet", {"input_shape": (40, 40, 1)}, "multiples of 16"),
    ("unet", {"input_shape": (40, 40, 1), "depth": 3}, None),
    ("segnet", {"input_shape": (16, 16, 1)}, "multiples of 32"),
    ("critic", {"input_shape": (32, 32, 2), "depth": 6}, "multiples of 64"),
    ("rdau-net", {"norm": "layer"}, "norm must be one of"),
    ("critic", {"norm": "batch"}, "norm must be one of 'none', 'layer'"),
    ("segnet", {"unpooling": "bilinear"}, "unpooling must be one of"),
    ("unet", {"dropout": 1.0}, "dropout"),
    ("rdau-net", {"dilation_rates": (1, 1)}, "distinct"),
])
def test_builders_reject_bad_options(name, options, message):
    options = {"input_shape": (SIZE, SIZE, 2 if name == "critic" else 1), "base_width": 4, **options}
    if message is None:
        assert build_model(name, **options).output.shape[1:3] == (40, 40)
        return
    with pytest.raises(ValueError, match=message):
        build_model(name, **options)


def test_build_model_rejects_an_unknown_name_listing_the_valid_ones():
    with pytest.raises(ValueError, match="'resnet'.*rdau-net, unet, segnet, critic"):
        build_model("resnet")


def conv_params(c_in: int, c_out: int, kernel: int = 3, bias: bool = True) -> int:
    return kernel * kernel * c_in * c_out + (c_out if bias else 0)


def test_parameter_counts_at_the_paper_setting():
    counts = {name: build_model(name).count_params() for name in ("rdau-net", "unet", "segnet", "critic")}

    widths = [64, 128, 256, 512, 1024]
    unet = conv_params(1, 64) + conv_params(64, 64)
    for c_in, c_out in itertools.pairwise(widths):
        unet += conv_params(c_in, c_out) + conv_params(c_out, c_out)  # encoder and bottleneck
        unet += conv_params(c_out, c_in, kernel=2) + conv_params(2 * c_in, c_in) + conv_params(c_in, c_in)
    unet += conv_params(64, 1, kernel=1)
    assert counts["unet"] == unet

    vgg = [(1, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
           (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    decoder = [(c_out, c_in) for c_in, c_out in reversed(vgg[1:])]  # the mirror, ending 64 → 64
    segnet = sum(conv_params(a, b, bias=False) + 4 * b for a, b in vgg + decoder) + conv_params(64, 1)
    assert counts["segnet"] == segnet

    critic_widths = [2, 32, 64, 128, 256, 512]
    critic = sum(conv_params(a, b) + conv_params(b, b) for a, b in itertools.pairwise(critic_widths)) + 513
    assert counts["critic"] == critic

    assert counts["rdau-net"] == 24_041_798
    assert abs(counts["rdau-net"] / 24.1e6 - 1) < 0.005, "the paper reports about 24.1 M"


def test_count_flops_matches_a_hand_count():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same")(inputs)  # 8·8·4 outputs × 3·3·3 taps = 6912 MACs
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(6, 3, strides=2, padding="same")(x)  # 4·4·6 × 3·3·4 = 3456
    x = layers.Conv2D(6, 3, dilation_rate=2, groups=2, padding="same")(x)  # 4·4·6 × 3·3·3 = 2592
    x = layers.Conv2DTranspose(2, 2, strides=2)(x)  # 4·4·6 inputs × 2·2·2 = 768
    x = layers.Flatten()(x)
    outputs = layers.Dense(5)(x)  # 128 × 5 = 640
    model = keras.Model(inputs, outputs)
    assert count_flops(model) == 2 * (6912 + 3456 + 2592 + 768 + 640)

    outer_inputs = keras.Input((8, 8, 3))
    outer = keras.Model(outer_inputs, model(outer_inputs))
    assert count_flops(outer) == count_flops(model)


def test_count_flops_refuses_a_layer_it_cannot_model():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layers.SeparableConv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="SeparableConv2D"):
        count_flops(model)


def test_count_flops_counts_a_depthwise_convolution_per_output_value():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layers.DepthwiseConv2D(3, strides=2, padding="same")(inputs))
    assert count_flops(model) == 2 * 3 * 3 * (4 * 4 * 3)  # a 3×3 window per output value, one channel each
