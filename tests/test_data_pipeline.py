"""The tf.data pipeline: batches, determinism per (seed, epoch), and the augmentations."""

from __future__ import annotations

import dataclasses
import math

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from rdanet_gan.data import Augmentation, augment_example, make_dataset, make_phantoms
from rdanet_gan.data.augment import affine_matrix, transform

SIZE = 32
COUNT = 10
NO_AUGMENTATION = Augmentation(False, False, False, False)


@pytest.fixture(scope="module")
def phantoms() -> tuple[np.ndarray, np.ndarray]:
    return make_phantoms(COUNT, image_size=SIZE, seed=0)


@pytest.fixture(scope="module")
def numbered() -> np.ndarray:
    """Example ``i`` is filled with ``i / COUNT``, so a batch shows which examples it holds."""
    return np.arange(COUNT, dtype=np.float32)[:, None, None, None] / COUNT * np.ones((1, 4, 4, 1), np.float32)


def batches(dataset: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(images.numpy(), masks.numpy()) for images, masks in dataset]


def order(dataset: tf.data.Dataset) -> list[int]:
    """The example numbers of an epoch over ``numbered`` data."""
    return [round(value * COUNT) for images, _ in dataset for value in images.numpy()[:, 0, 0, 0]]


def assert_same(first: list, second: list) -> None:
    assert len(first) == len(second)
    for (image_a, mask_a), (image_b, mask_b) in zip(first, second):
        np.testing.assert_array_equal(image_a, image_b)
        np.testing.assert_array_equal(mask_a, mask_b)


def test_evaluation_batches_keep_order_and_values(phantoms):
    images, masks = phantoms
    found = batches(make_dataset(images, masks, batch_size=4))
    assert [len(batch_images) for batch_images, _ in found] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([image for image, _ in found]), images)
    np.testing.assert_array_equal(np.concatenate([mask for _, mask in found]), masks)


def test_training_batches_have_the_right_shape_dtype_and_range(phantoms):
    dataset = make_dataset(*phantoms, batch_size=4, training=True)
    assert dataset.cardinality() == 3
    for images, masks in batches(dataset):
        assert images.shape[1:] == masks.shape[1:] == (SIZE, SIZE, 1)
        assert images.dtype == masks.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 1
        assert set(np.unique(masks)) <= {0.0, 1.0}
        assert masks.sum(axis=(1, 2, 3)).min() > 0  # lesions may move but stay in view


def test_same_seed_and_epoch_give_identical_batches(phantoms):
    first = batches(make_dataset(*phantoms, batch_size=4, training=True, seed=3, epoch=tf.Variable(2)))
    second = batches(make_dataset(*phantoms, batch_size=4, training=True, seed=3, epoch=tf.Variable(2)))
    assert_same(first, second)
    other_seed = batches(make_dataset(*phantoms, batch_size=4, training=True, seed=4, epoch=tf.Variable(2)))
    assert not np.array_equal(first[0][0], other_seed[0][0])


def test_each_epoch_is_a_new_permutation(numbered):
    epoch = tf.Variable(0)
    dataset = make_dataset(
        numbered, numbered, batch_size=3, training=True, augmentation=NO_AUGMENTATION, epoch=epoch
    )
    orders = []
    for number in range(3):
        epoch.assign(number)
        orders.append(order(dataset))
    assert all(sorted(found) == list(range(COUNT)) for found in orders)
    assert len({tuple(found) for found in orders}) == 3
    assert orders[0] != list(range(COUNT))


def test_without_epoch_variable_every_iteration_replays_epoch_zero(numbered):
    dataset = make_dataset(
        numbered, numbered, batch_size=3, training=True, augmentation=NO_AUGMENTATION, seed=5
    )
    with_variable = make_dataset(
        numbered,
        numbered,
        batch_size=3,
        training=True,
        augmentation=NO_AUGMENTATION,
        seed=5,
        epoch=tf.Variable(0),
    )
    assert order(dataset) == order(dataset) == order(with_variable)


def test_jumping_to_an_epoch_replays_what_an_uninterrupted_run_saw(phantoms):
    epoch = tf.Variable(0, dtype=tf.int64)
    uninterrupted = make_dataset(*phantoms, batch_size=4, training=True, seed=1, epoch=epoch)
    epoch_zero = batches(uninterrupted)
    epoch.assign(1)
    epoch_one = batches(uninterrupted)

    resumed = make_dataset(
        *phantoms, batch_size=4, training=True, seed=1, epoch=tf.Variable(1, dtype=tf.int64)
    )
    assert_same(batches(resumed), epoch_one)
    assert not np.array_equal(epoch_zero[0][0], epoch_one[0][0])


def test_keras_fit_reads_the_epoch_when_each_epoch_starts(numbered):
    seen = []

    class Recorder(keras.Model):
        """Records the example numbers of every training batch."""

        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

        def train_step(self, data):
            images, _ = data
            seen.extend(round(value * COUNT) for value in images.numpy()[:, 0, 0, 0])
            return {"seen": tf.reduce_sum(images)}

    class SetEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            variable.assign(epoch)

    variable = tf.Variable(0, dtype=tf.int64)
    dataset = make_dataset(
        numbered, numbered, 4, training=True, augmentation=NO_AUGMENTATION, seed=2, epoch=variable
    )
    model = Recorder()
    model.compile(run_eagerly=True)
    model.fit(dataset, epochs=3, callbacks=[SetEpoch()], shuffle=False, verbose=0)
    for number in range(3):
        variable.assign(number)
        assert seen[number * COUNT : (number + 1) * COUNT] == order(dataset)


def test_no_augmentation_only_shuffles(phantoms):
    images, masks = phantoms
    found = batches(
        make_dataset(images, masks, batch_size=COUNT, training=True, augmentation=NO_AUGMENTATION)
    )
    shuffled_images, shuffled_masks = found[0]
    positions = [
        next(i for i in range(COUNT) if np.array_equal(image, images[i])) for image in shuffled_images
    ]
    assert sorted(positions) == list(range(COUNT))
    np.testing.assert_array_equal(shuffled_masks, masks[positions])


def test_geometric_augmentation_moves_image_and_mask_together():
    square = np.zeros((1, SIZE, SIZE, 1), np.float32)
    square[0, 8:20, 10:26] = 1.0
    dataset = make_dataset(
        square.repeat(6, axis=0),
        square.repeat(6, axis=0),
        batch_size=6,
        training=True,
        augmentation=Augmentation(flip=True, affine=True, intensity=False, speckle=False),
    )
    images, masks = batches(dataset)[0]
    assert not all(np.array_equal(mask, square[0]) for mask in masks)  # something moved
    # The mask went through the image's exact interpolation, then a threshold.
    np.testing.assert_array_equal(masks, (images >= 0.5).astype(np.float32))


def test_flip_is_horizontal_only():
    rng = np.random.default_rng(0)
    image = rng.random((1, SIZE, SIZE, 1)).astype(np.float32)
    dataset = make_dataset(
        image.repeat(16, axis=0),
        image.repeat(16, axis=0) > 0.5,
        batch_size=16,
        training=True,
        augmentation=Augmentation(flip=True, affine=False, intensity=False, speckle=False),
    )
    images, _ = batches(dataset)[0]
    flipped = [np.array_equal(found, image[0, :, ::-1]) for found in images]
    kept = [np.array_equal(found, image[0]) for found in images]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 0 < sum(flipped) < 16


def test_affine_matrix_matches_opencv_rotation_zoom_and_shift():
    rng = np.random.default_rng(1)
    smooth = cv2.GaussianBlur(rng.random((SIZE, SIZE)).astype(np.float32), (0, 0), 3)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())  # full contrast: errors show
    angle, scale, shift = 0.15, 1.08, (1.5, -2.0)
    ours = transform(
        tf.constant(smooth[..., None]),
        affine_matrix(SIZE, tf.constant(angle), tf.constant(scale), tf.constant(shift)),
    )[..., 0].numpy()
    centre = (SIZE - 1) / 2
    # OpenCV's positive angle turns counter-clockwise on screen (y down); ours turns clockwise.
    forward = cv2.getRotationMatrix2D((centre, centre), -math.degrees(angle), scale)
    forward[:, 2] += shift
    expected = cv2.warpAffine(smooth, forward, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0)
    np.testing.assert_allclose(ours[6:-6, 6:-6], expected[6:-6, 6:-6], atol=1e-4)


def test_intensity_and_speckle_change_the_image_only(phantoms):
    images, masks = phantoms
    seed = tf.constant([4, 2], tf.int64)
    image, mask = tf.constant(images[0]), tf.constant(masks[0])
    geometric = Augmentation(flip=True, affine=True, intensity=False, speckle=False)
    plain_image, plain_mask = augment_example(image, mask, seed, geometric)
    full_image, full_mask = augment_example(image, mask, seed, Augmentation())
    np.testing.assert_array_equal(full_mask, plain_mask)  # the same geometric draw
    assert not np.allclose(full_image, plain_image)
    assert 0 <= full_image.numpy().min() and full_image.numpy().max() <= 1


def test_make_dataset_rejects_mismatched_arrays(phantoms):
    images, masks = phantoms
    with pytest.raises(ValueError, match="one shape"):
        make_dataset(images, masks[:, :16])


@pytest.mark.parametrize(
    ("spec", "stages"),
    [
        ("paper", "flip"),
        ("standard", "flip,affine,intensity,speckle"),
        ("strong", "flip,affine,intensity,speckle,elastic,crop"),
        ("none", "none"),
        ("elastic, flip", "flip,elastic"),
    ],
)
def test_augmentation_presets_and_stage_lists_round_trip(spec, stages):
    augmentation = Augmentation.parse(spec)
    on = [name for name, value in dataclasses.asdict(augmentation).items() if value]
    assert (",".join(on) or "none") == stages
    assert Augmentation.parse(stages) == augmentation
    assert Augmentation.parse("standard") == Augmentation()  # the dataclass defaults are the standard preset


def test_an_unknown_augmentation_stage_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'.*presets? \\(none, paper, standard, strong\\)"):
        Augmentation.parse("flip,rotate")


@pytest.mark.parametrize("stage", ["elastic", "crop"])
def test_elastic_and_crop_move_image_and_mask_together_and_are_seeded(stage):
    square = np.zeros((SIZE, SIZE, 1), np.float32)
    square[8:20, 10:26] = 1.0
    only = Augmentation.parse(stage)
    results = [augment_example(tf.constant(square), tf.constant(square), tf.constant([s, 1], tf.int64), only) for s in range(6)]
    images = np.stack([image.numpy() for image, _ in results])
    masks = np.stack([mask.numpy() for _, mask in results])
    assert not all(np.array_equal(mask, square) for mask in masks)  # something moved
    np.testing.assert_array_equal(masks, (images >= 0.5).astype(np.float32))  # same warp, then a threshold
    again = augment_example(tf.constant(square), tf.constant(square), tf.constant([0, 1], tf.int64), only)[0]
    np.testing.assert_array_equal(again.numpy(), images[0])
    if stage == "crop":  # a zoom into the scan: the lesion can only grow
        assert np.mean([mask.sum() for mask in masks]) > square.sum()


def test_new_stages_leave_the_draws_of_the_standard_ones_unchanged(phantoms):
    """Runs started before elastic and crop existed (four sub-seeds) resume with the same augmentation."""
    seed = tf.constant([4, 2], tf.int64)
    four = tf.random.experimental.stateless_split(seed, num=4)
    six = tf.random.experimental.stateless_split(seed, num=6)
    np.testing.assert_array_equal(four, six[:4])
    images, masks = phantoms
    standard = augment_example(tf.constant(images[0]), tf.constant(masks[0]), seed, Augmentation())
    strong = augment_example(tf.constant(images[0]), tf.constant(masks[0]), seed, Augmentation.parse("strong"))
    assert not np.array_equal(strong[0], standard[0])
