"""The ``tf.data`` input pipeline: in-memory arrays to (image, mask) batches.

A training dataset's order and augmentation are a pure function of
(``seed``, epoch, position): each epoch's iterator reads the ``epoch``
variable when it starts, then derives the shuffle and one augmentation seed
per position with stateless ops. Keras ``fit`` makes a new iterator over a
finite dataset every epoch, so a callback that sets ``epoch`` at
``on_epoch_begin`` makes a resumed run see exactly the batches of an
uninterrupted one. No ``tf.data`` shuffle state is involved.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from rdanet_gan.data.augment import Augmentation, augment_example


def make_dataset(
    images: np.ndarray,
    masks: np.ndarray,
    batch_size: int = 32,
    training: bool = False,
    augmentation: Augmentation | None = None,
    seed: int = 0,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
    """Batches of ``(image, mask)``, float32 ``[B, S, S, 1]``.

    ``training=True`` reshuffles every epoch and applies ``augmentation``
    (``None`` means :class:`Augmentation` defaults; pass
    ``Augmentation(False, False, False, False)`` to only shuffle). ``epoch``
    (an integer variable) selects the epoch's shuffle and augmentation; when
    ``None`` every iteration replays epoch 0. Evaluation datasets
    (``training=False``) keep the array order and are never augmented.
    """
    images = np.asarray(images, np.float32)
    masks = np.asarray(masks, np.float32)
    if images.ndim != 4 or images.shape[-1] != 1 or masks.shape != images.shape:
        raise ValueError(
            f"expected images and masks of one shape [N, S, S, 1], got {images.shape} and {masks.shape}"
        )
    if not training:
        dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch_size)
        return dataset.cache().prefetch(tf.data.AUTOTUNE)
    augmentation = Augmentation() if augmentation is None else augmentation
    count = len(images)
    with tf.device("/CPU:0"):  # host memory, where tf.data runs
        image_table, mask_table = tf.constant(images), tf.constant(masks)

    def epoch_plan(_: tf.Tensor) -> tf.data.Dataset:
        """The epoch's order of examples and one augmentation seed per position."""
        epoch_number = tf.cast(epoch.value() if epoch is not None else 0, tf.int64)
        epoch_key = tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), epoch_number)
        shuffle_seed, augment_seed = tf.unstack(tf.random.experimental.stateless_split(epoch_key, num=2))
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), shuffle_seed)
        example_seeds = tf.random.stateless_uniform(
            [count, 2], augment_seed, minval=None, maxval=None, dtype=tf.int64
        )
        return tf.data.Dataset.from_tensor_slices((order, example_seeds))

    def load_example(index: tf.Tensor, example_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = tf.gather(image_table, index), tf.gather(mask_table, index)
        return augment_example(image, mask, example_seed, augmentation)

    dataset = tf.data.Dataset.range(1).flat_map(epoch_plan)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(count))
    dataset = dataset.map(load_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
