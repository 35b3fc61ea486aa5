"""Training-time augmentation of ultrasound scans, in-graph and stateless.

Every random draw comes from ``tf.random.stateless_*`` with a seed passed in,
so an augmented example is a pure function of (image, mask, seed): a run can
be replayed exactly, epoch by epoch. Geometric transforms move the image and
its mask together; masks are re-binarised after interpolation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import keras
import tensorflow as tf

from rdanet_gan.options import AUGMENTATION_PRESETS

MAX_ROTATION_DEGREES = 10.0
MAX_SCALE_CHANGE = 0.1  # zoom factor in [0.9, 1.1]
MAX_SHIFT_FRACTION = 0.05  # of the image side
MAX_BRIGHTNESS_SHIFT = 0.1
MAX_CONTRAST_FACTOR = 1.25  # contrast factor in [1/1.25, 1.25]
MAX_GAMMA = 1.25  # gamma exponent in [1/1.25, 1.25]
MAX_SPECKLE_STD = 0.1
ELASTIC_GRID = 4  # control points per side of the random displacement field
ELASTIC_MAX_STD = 0.03  # of the image side, standard deviation of the control-point moves
MAX_CROP_ZOOM = 1.4  # a random crop keeps 1/1.4 to all of the field of view


@dataclass
class Augmentation:
    """Which augmentations the training pipeline applies (by default the ``standard`` preset's four).

    ``flip`` is horizontal only: the probe's left and right are symmetric, but
    a vertical flip would put the posterior acoustic shadow above the lesion,
    a scan no probe can produce. ``affine`` is a small rotation (±10°), zoom
    (0.9–1.1) and shift (±5 %); ``intensity`` jitters brightness, contrast
    and gamma (gain and dynamic-range settings differ between machines);
    ``speckle`` multiplies by ``1 + N(0, σ²)`` noise, σ ≤ 0.1 (the "speckle"
    noise of ``skimage.util.random_noise``). ``elastic`` warps by a smooth
    random displacement field (tissue compressed by the probe); ``crop`` zooms
    into a random window of 1/1.4 to all of the scan, a lesion seen larger.
    Off by default, the two are the ``strong`` preset's additions.
    """

    flip: bool = True
    affine: bool = True
    intensity: bool = True
    speckle: bool = True
    elastic: bool = False
    crop: bool = False

    @classmethod
    def parse(cls, spec: str) -> Augmentation:
        """An augmentation from a preset name (see ``AUGMENTATION_PRESETS``) or stage names joined by commas."""
        names = AUGMENTATION_PRESETS.get(spec, spec)
        stages = [name.strip() for name in names.split(",") if name.strip() and name.strip() != "none"]
        valid = [field.name for field in dataclasses.fields(cls)]
        unknown = [name for name in stages if name not in valid]
        if unknown:
            raise ValueError(
                f"unknown augmentation {unknown[0]!r}: use a preset ({', '.join(AUGMENTATION_PRESETS)}) "
                f"or stages joined by commas ({', '.join(valid)})"
            )
        return cls(**{name: name in stages for name in valid})


def augment_example(
    image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, augmentation: Augmentation
) -> tuple[tf.Tensor, tf.Tensor]:
    """Augment one ``[S, S, 1]`` image and its binary mask with the stateless ``seed`` (shape [2]).

    Each stage draws from its own sub-seed, so turning one stage off leaves
    the draws of the others unchanged.
    """
    flip_seed, affine_seed, intensity_seed, speckle_seed, elastic_seed, crop_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=6)
    )
    both = tf.concat([image, mask], axis=-1)
    if augmentation.flip:
        both = tf.image.stateless_random_flip_left_right(both, flip_seed)
    if augmentation.crop:
        both = _random_crop(both, crop_seed)
    if augmentation.affine:
        both = _random_affine(both, affine_seed)
    if augmentation.elastic:
        both = _random_elastic(both, elastic_seed)
    image, mask = both[..., :1], tf.cast(both[..., 1:] >= 0.5, tf.float32)
    if augmentation.intensity:
        image = _random_intensity(image, intensity_seed)
    if augmentation.speckle:
        image = _random_speckle(image, speckle_seed)
    return tf.clip_by_value(image, 0.0, 1.0), mask


def affine_matrix(size: int, angle: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor) -> tf.Tensor:
    """The 8 projective parameters that rotate by ``angle`` (radians), zoom by ``scale``
    about the image centre and then move by ``shift`` (x, y pixels).

    ``ImageProjectiveTransformV3`` maps each output pixel back to the input,
    so this is the inverse of that motion.
    """
    centre = (size - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    moved_x, moved_y = centre + shift[0], centre + shift[1]
    row_x = [cos, sin, centre - cos * moved_x - sin * moved_y]
    row_y = [-sin, cos, centre + sin * moved_x - cos * moved_y]
    return tf.stack([*row_x, *row_y, 0.0, 0.0])


def transform(images: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """Apply ``matrix`` to ``[H, W, C]`` images, bilinear, zero outside (the scan's black border)."""
    size = tf.shape(images)[:2]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images[None],
        transforms=matrix[None],
        output_shape=size,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]


def _random_affine(both: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    size = both.shape[0]
    draws = tf.random.stateless_uniform([4], seed, minval=-1.0, maxval=1.0)
    angle = draws[0] * math.radians(MAX_ROTATION_DEGREES)
    scale = 1.0 + draws[1] * MAX_SCALE_CHANGE
    shift = draws[2:] * MAX_SHIFT_FRACTION * size
    return transform(both, affine_matrix(size, angle, scale, shift))


def _random_crop(both: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Zoom by a factor in [1, 1.4] about a random point that keeps the window inside the scan."""
    size = both.shape[0]
    zoom_seed, shift_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    scale = tf.random.stateless_uniform([], zoom_seed, minval=1.0, maxval=MAX_CROP_ZOOM)
    shift = tf.random.stateless_uniform([2], shift_seed, minval=-1.0, maxval=1.0) * (scale - 1.0) * (size - 1) / 2.0
    return transform(both, affine_matrix(size, tf.constant(0.0), scale, shift))


def _random_elastic(both: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Warp by a displacement field: random moves of a coarse grid of control points, upsampled bicubically."""
    size = both.shape[0]
    strength_seed, field_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    std = tf.random.stateless_uniform([], strength_seed, maxval=ELASTIC_MAX_STD) * size
    coarse = tf.random.stateless_normal([1, ELASTIC_GRID, ELASTIC_GRID, 2], field_seed) * std
    field = tf.image.resize(coarse, [size, size], method="bicubic")[0]
    rows, cols = tf.meshgrid(tf.range(size, dtype=tf.float32), tf.range(size, dtype=tf.float32), indexing="ij")
    coordinates = tf.stack([rows + field[..., 0], cols + field[..., 1]])
    channels = [
        keras.ops.image.map_coordinates(both[..., c], coordinates, order=1, fill_mode="constant", fill_value=0.0)
        for c in range(both.shape[-1])
    ]
    return tf.stack(channels, axis=-1)


def _random_intensity(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    draws = tf.random.stateless_uniform([3], seed, minval=-1.0, maxval=1.0)
    image = image + draws[0] * MAX_BRIGHTNESS_SHIFT
    mean = tf.reduce_mean(image)
    image = (image - mean) * MAX_CONTRAST_FACTOR ** draws[1] + mean
    return tf.clip_by_value(image, 0.0, 1.0) ** (MAX_GAMMA ** draws[2])


def _random_speckle(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    strength_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    strength = tf.random.stateless_uniform([], strength_seed, maxval=MAX_SPECKLE_STD)
    return image * (1.0 + strength * tf.random.stateless_normal(tf.shape(image), noise_seed))
