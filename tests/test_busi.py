"""The real BUSI dataset (``RDANET_BUSI_DIR``): reading, merged masks, the split and a batch."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from rdanet_gan.data import (
    DUPLICATE_THRESHOLD,
    Record,
    find_records,
    load_arrays,
    make_dataset,
    make_split,
    read_mask,
    read_signatures,
    select,
)

BENIGN, MALIGNANT = 437, 210


@pytest.fixture(scope="module")
def records(busi_dir: Path) -> list[Record]:
    return find_records(busi_dir)


@pytest.fixture(scope="module")
def signatures(records: list[Record]) -> np.ndarray:
    """Duplicate signatures of the 647 lesion scans: BUSI is decoded once per module."""
    return read_signatures(records)


@pytest.fixture(scope="module")
def split(records: list[Record], busi_dir: Path, signatures: np.ndarray) -> dict[str, list[str]]:
    return make_split(records, busi_dir, seed=0, signatures=signatures)


def test_647_lesion_scans_and_every_normal_scan(records, busi_dir):
    assert Counter(record.label for record in records) == {"benign": BENIGN, "malignant": MALIGNANT}
    # BUSI's full release has 133 lesion-free scans, older copies fewer: the count follows the folder.
    scans = {path.stem for path in (busi_dir / "normal").glob("*.png") if "_mask" not in path.stem}
    assert scans
    normal = [record for record in find_records(busi_dir, include_normal=True) if record.label == "normal"]
    assert {record.image.stem for record in normal} == scans
    assert not any(read_mask(record.masks).any() for record in normal)  # lesion-free: every mask empty


def test_multi_mask_scans_are_the_union_of_their_files(records):
    several = [record for record in records if len(record.masks) > 1]
    assert len(several) == 17  # 18 extra mask files: benign (195) has two
    assert sum(len(record.masks) - 1 for record in several) == 18
    grew = 0
    for record in several:
        files = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0 for path in record.masks]
        union = read_mask(record.masks)
        np.testing.assert_array_equal(union, np.logical_or.reduce(files))
        grew += union.sum() > files[0].sum()
    assert (
        grew == len(several) - 1
    )  # every extra file adds lesion area, but benign (58)_mask_1 lies inside _mask


def test_signatures_reproduce_the_documented_duplicate_counts(signatures):
    correlation = signatures @ signatures.T
    upper = correlation[np.triu_indices(len(signatures), k=1)]
    # The dataset README: 85 pairs above 0.99, 168 above 0.95, 216 above 0.90.
    for threshold, documented in ((0.99, 85), (0.95, 168), (0.90, 216)):
        assert abs(int((upper > threshold).sum()) - documented) <= 2, threshold


def test_known_near_duplicates_pass_the_threshold(records, signatures):
    index = {record.case_id: position for position, record in enumerate(records)}
    for first, second in (("benign (1).png", "benign (318).png"), ("benign (108).png", "benign (114).png")):
        correlation = signatures[index[f"benign/{first}"]] @ signatures[index[f"benign/{second}"]]
        assert correlation > DUPLICATE_THRESHOLD, (first, second)


def test_split_counts_and_stratification(split):
    assert {side: len(case_ids) for side, case_ids in split.items()} == {
        "train": 540,
        "validation": 50,
        "test": 57,
    }
    for side in ("validation", "test"):
        benign = sum(case_id.startswith("benign/") for case_id in split[side])
        assert abs(benign - len(split[side]) * BENIGN / (BENIGN + MALIGNANT)) <= 1, side


def test_no_near_duplicate_pair_straddles_the_split(records, signatures, split):
    side = {case_id: name for name, case_ids in split.items() for case_id in case_ids}
    first, second = np.nonzero(np.triu(signatures @ signatures.T > DUPLICATE_THRESHOLD, k=1))
    assert len(first) > 200
    for a, b in zip(first, second):
        assert side[records[a].case_id] == side[records[b].case_id], (records[a].case_id, records[b].case_id)


def test_same_seed_same_split(records, busi_dir, signatures, split):
    assert make_split(records, busi_dir, seed=0, signatures=signatures) == split
    assert make_split(records, busi_dir, seed=1, signatures=signatures)["test"] != split["test"]


def test_first_training_batch_is_well_formed_and_reproducible(records, split):
    arrays = load_arrays(select(records, split["train"][:32]), image_size=128)
    assert len(set(arrays.native_shapes)) > 1  # BUSI scans come in many sizes

    def first_batch():
        dataset = make_dataset(arrays.images, arrays.masks, batch_size=32, training=True, seed=0)
        images, masks = next(iter(dataset))
        return images.numpy(), masks.numpy()

    images, masks = first_batch()
    assert images.shape == masks.shape == (32, 128, 128, 1)
    assert images.dtype == masks.dtype == np.float32
    assert 0 <= images.min() < 0.05 and 0.95 < images.max() <= 1
    assert set(np.unique(masks)) == {0.0, 1.0}
    again_images, again_masks = first_batch()
    np.testing.assert_array_equal(images, again_images)
    np.testing.assert_array_equal(masks, again_masks)


def test_the_committed_split_is_the_one_seed_0_makes(split):
    """rdanet_gan/weights/split.json, on which the shipped models are trained and scored, is reproducible from the data."""
    committed = json.loads((Path(__file__).resolve().parents[1] / "rdanet_gan" / "weights" / "split.json").read_text())
    assert {part: committed[part] for part in ("train", "validation", "test")} == split


def test_post_processing_never_drops_a_training_lesion(records, split):
    """MIN_LESION_FRACTION (0.1 % of the scan) is set from the training split: its smallest lesion covers 0.27 %."""
    from rdanet_gan.inference.refine import MIN_LESION_FRACTION

    masks = load_arrays(select(records, split["train"]), image_size=128).masks
    smallest = float((masks > 0.5).mean(axis=(1, 2, 3)).min())
    assert smallest == pytest.approx(0.0027, abs=5e-5)
    assert smallest > 2 * MIN_LESION_FRACTION
