"""Synthetic B-mode phantoms: arrays, determinism, speed and the ultrasound features they mimic."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from rdanet_gan.data import make_phantoms


@pytest.fixture(scope="module")
def phantoms() -> tuple[np.ndarray, np.ndarray]:
    return make_phantoms(48, image_size=64, seed=0)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_arrays_have_the_promised_shape_dtype_and_range(size):
    images, masks = make_phantoms(12, image_size=size, seed=3)
    assert images.shape == masks.shape == (12, size, size, 1)
    assert images.dtype == masks.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert masks.sum(axis=(1, 2, 3)).min() > 0  # every phantom has a lesion


def test_phantoms_are_deterministic_and_extend_with_n():
    images, masks = make_phantoms(5, image_size=32, seed=7)
    again, again_masks = make_phantoms(3, image_size=32, seed=7)
    np.testing.assert_array_equal(images[:3], again)
    np.testing.assert_array_equal(masks[:3], again_masks)
    other, _ = make_phantoms(3, image_size=32, seed=8)
    assert not np.array_equal(images[:3], other)


def test_sixty_four_phantoms_take_well_under_a_second():
    start = time.perf_counter()
    make_phantoms(64, image_size=128, seed=0)
    assert time.perf_counter() - start < 1.0


def test_lesions_vary_in_size_and_position(phantoms):
    _, masks = phantoms
    areas = masks.mean(axis=(1, 2, 3))
    rows = [np.nonzero(mask[..., 0])[0].mean() for mask in masks]
    columns = [np.nonzero(mask[..., 0])[1].mean() for mask in masks]
    assert areas.max() > 4 * areas.min()
    assert np.std(rows) > 3 and np.std(columns) > 3  # pixels, of 64


def test_lesions_are_hypoechoic(phantoms):
    images, masks = phantoms
    for image, mask in zip(images[..., 0], masks[..., 0].astype(np.uint8)):
        surrounding = cv2.dilate(mask, np.ones((7, 7), np.uint8)) - mask
        assert image[mask > 0].mean() < 0.8 * image[surrounding > 0].mean()


def test_posterior_shadowing_and_enhancement_both_occur(phantoms):
    images, masks = phantoms
    differences = []
    for image, mask in zip(images[..., 0], masks[..., 0]):
        rows, columns = np.nonzero(mask)
        top, left, right = rows.max() + 2, columns.min(), columns.max() + 1
        width = right - left
        below = image[top : top + 10, left:right]
        beside = np.concatenate(
            [
                image[top : top + 10, max(left - width, 0) : left].ravel(),
                image[top : top + 10, right : right + width].ravel(),
            ]
        )
        differences.append(below.mean() - beside.mean())
    differences = np.array(differences)
    assert (differences < -0.05).mean() > 0.15  # acoustic shadow
    assert (differences > 0.05).mean() > 0.15  # posterior enhancement


def test_images_carry_fine_speckle(phantoms):
    images, _ = phantoms
    for image in images[..., 0]:
        fine_detail = image - cv2.GaussianBlur(image, (0, 0), 2)
        assert fine_detail.std() > 0.05
