"""Synthetic B-mode-like breast scans with exact lesion masks (numpy only).

Phantoms let every command run, and every test pass, without the dataset:
a smooth layered tissue background (skin, subcutaneous fat, glandular
tissue, striated chest-wall muscle) attenuated with depth, a hypoechoic
lesion with an irregular border, posterior acoustic shadowing or
enhancement below it, Rayleigh speckle and log compression. Phantom ``i``
depends only on ``(seed, i)``, so a longer run extends a shorter one.
"""

from __future__ import annotations

import math

import numpy as np

LOG_COMPRESSION_GAIN = 4.0


def make_phantoms(n: int, image_size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` phantoms: images ``[n, S, S, 1]`` float32 in [0, 1] and masks ``[n, S, S, 1]`` float32 {0, 1}."""
    images = np.empty((n, image_size, image_size, 1), np.float32)
    masks = np.empty((n, image_size, image_size, 1), np.float32)
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        images[index, ..., 0], masks[index, ..., 0] = _phantom(rng, image_size)
    return images, masks


def _phantom(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    # Pixel-centre coordinates in (0, 1); depth grows downwards, away from the probe.
    depth, lateral = ((np.mgrid[0:size, 0:size] + 0.5) / size).astype(np.float32)
    echo = _tissue(rng, depth, lateral)
    lesion, mask, below = _lesion(rng, depth, lateral, size)
    echo *= 1 - (1 - rng.uniform(0.05, 0.3)) * lesion  # hypoechoic lesion
    posterior = rng.uniform(0.3, 0.7) * (-1.0 if rng.random() < 0.5 else 1.0)  # shadow < 0 < enhancement
    echo *= 1 + posterior * below
    echo *= np.exp(-rng.uniform(0.3, 1.2) * depth)  # attenuation the gain did not fully compensate
    amplitude = echo * _rayleigh_speckle(rng, size)
    image = np.log1p(LOG_COMPRESSION_GAIN * amplitude) / math.log1p(LOG_COMPRESSION_GAIN)
    image /= max(np.percentile(image, 99.5), 1e-6)
    return np.clip(image, 0, 1), mask.astype(np.float32)


def _tissue(rng: np.random.Generator, depth: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """Mean echogenicity of the background: wavy layers with a smooth texture."""

    def boundary(mean_depth: float) -> np.ndarray:
        frequency, phase = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
        return mean_depth + rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * frequency * lateral + phase)

    skin_end = boundary(rng.uniform(0.03, 0.08))
    fat_end = boundary(rng.uniform(0.15, 0.35))
    gland_end = boundary(rng.uniform(0.65, 0.9))
    tilt, frequency = rng.uniform(-0.3, 0.3), rng.uniform(8, 16)
    striation = 1 + 0.3 * np.sin(2 * np.pi * frequency * (depth - tilt * lateral))
    skin, fat, gland, muscle = rng.uniform([0.8, 0.2, 0.55, 0.35], [1.0, 0.45, 0.9, 0.6]).tolist()
    echo = np.select(
        [depth < skin_end, depth < fat_end, depth < gland_end],
        [np.float32(skin), np.float32(fat), np.float32(gland)],
        muscle * striation,
    )
    return echo * np.exp(rng.uniform(0.1, 0.3) * _smooth_field(rng, depth, lateral))


def _smooth_field(
    rng: np.random.Generator, depth: np.ndarray, lateral: np.ndarray, waves: int = 6
) -> np.ndarray:
    """A random low-frequency field in about [-1, 1]: a sum of plane waves of 0.5-4 cycles per image."""
    field = np.zeros_like(depth)
    for _ in range(waves):
        frequency = rng.uniform(0.5, 4.0)
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        field += np.cos(2 * np.pi * frequency * (math.cos(angle) * lateral + math.sin(angle) * depth) + phase)
    return field / math.sqrt(waves / 2)


def _lesion(
    rng: np.random.Generator, depth: np.ndarray, lateral: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft lesion weight, exact mask and the posterior region below the lesion.

    The border is a polar radius with random low-frequency harmonics: smooth
    and oval for small amplitudes, lobulated for large ones.
    """
    # On a pixel centre, so that even the smallest lesion covers a pixel.
    centre_depth, centre_lateral = (
        (np.floor(rng.uniform([0.35, 0.3], [0.65, 0.7]) * size) + 0.5) / size
    ).tolist()
    radius = rng.uniform(0.07, 0.25)
    height_ratio = rng.uniform(0.55, 1.0)  # most lesions are wider than tall
    offset_depth, offset_lateral = (depth - centre_depth) / height_ratio, lateral - centre_lateral
    distance = np.hypot(offset_depth, offset_lateral)
    angle = np.arctan2(offset_depth, offset_lateral)
    border = np.ones_like(distance)
    for harmonic in range(2, 7):
        amplitude = rng.uniform(0, 0.3) / harmonic
        border += amplitude * np.cos(harmonic * angle + rng.uniform(0, 2 * np.pi))
    border *= radius
    mask = distance <= border
    lesion = 0.5 - 0.5 * np.tanh((distance - border) * size)  # about a pixel of blur at the edge
    beside = np.exp(-0.5 * (offset_lateral / (0.8 * radius)) ** 4)  # flat-topped across the lesion width
    below = beside * np.clip((depth - centre_depth) / radius, 0, 1) * (1 - lesion)
    return lesion, mask, below


def _rayleigh_speckle(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-mean Rayleigh amplitudes: the modulus of a slightly smoothed complex Gaussian field."""
    shape = (size, size)
    field = rng.standard_normal(shape, np.float32) + 1j * rng.standard_normal(shape, np.float32)
    for axis in (0, 1):  # a [1/4, 1/2, 1/4] blur along each axis: a grain of about two pixels
        field = 0.5 * field + 0.25 * (np.roll(field, 1, axis) + np.roll(field, -1, axis))
    amplitude = np.abs(field)
    return amplitude / amplitude.mean()
