"""Near-duplicate grouping and the stratified, leakage-aware split (synthetic data)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from busi_folders import write_busi_phantoms, write_normal_scans

from rdanet_gan.data import (
    Record,
    add_lesion_free,
    find_near_duplicates,
    find_records,
    load_normal_scans,
    load_split,
    make_phantoms,
    make_split,
    prepare_data,
    save_split,
)
from rdanet_gan.data.records import natural_key
from rdanet_gan.errors import DataError, OutputExistsError

BENIGN, MALIGNANT = 140, 60
GROUPS = [[3, 17], [5, 150, 151], [20, 21, 22, 23], [160, 199], [40, 41, 42, 43, 44, 45]]


def synthetic_records(root: Path) -> list[Record]:
    """200 records (140 benign, 60 malignant) that need no files: make_split gets signatures."""
    records = []
    for index in range(BENIGN + MALIGNANT):
        label = "benign" if index < BENIGN else "malignant"
        case_id = f"{label}/{label} ({index}).png"
        records.append(Record(image=root / case_id, masks=(), label=label, case_id=case_id))
    return records


def synthetic_signatures(count: int) -> np.ndarray:
    """Independent random unit vectors, except that each of GROUPS shares one (plus a little noise)."""
    rng = np.random.default_rng(0)
    signatures = rng.standard_normal((count, 1024))
    for group in GROUPS:
        signatures[group] = signatures[group[0]] + 0.05 * rng.standard_normal((len(group), 1024))
    signatures -= signatures.mean(axis=1, keepdims=True)
    return signatures / np.linalg.norm(signatures, axis=1, keepdims=True)


@pytest.fixture
def records(tmp_path) -> list[Record]:
    return synthetic_records(tmp_path)


@pytest.fixture
def signatures() -> np.ndarray:
    return synthetic_signatures(BENIGN + MALIGNANT)


def side_of(split: dict[str, list[str]]) -> dict[str, str]:
    return {case_id: side for side, case_ids in split.items() for case_id in case_ids}


def test_split_has_exact_counts_and_covers_every_record_once(records, signatures, tmp_path):
    split = make_split(records, tmp_path, n_test=20, n_validation=15, seed=3, signatures=signatures)
    assert list(split) == ["train", "validation", "test"]
    assert [len(split[side]) for side in split] == [165, 15, 20]
    everything = [case_id for case_ids in split.values() for case_id in case_ids]
    assert sorted(everything) == sorted(record.case_id for record in records)


def test_split_is_stratified_by_class(records, signatures, tmp_path):
    split = make_split(records, tmp_path, n_test=20, n_validation=15, seed=3, signatures=signatures)
    for side, size in (("test", 20), ("validation", 15)):
        benign = Counter(case_id.split("/")[0] for case_id in split[side])["benign"]
        assert abs(benign - size * BENIGN / (BENIGN + MALIGNANT)) <= 1, side


@pytest.mark.parametrize("seed", range(5))
def test_near_duplicate_groups_never_straddle_a_boundary(records, signatures, tmp_path, seed):
    split = make_split(records, tmp_path, n_test=20, n_validation=15, seed=seed, signatures=signatures)
    sides = side_of(split)
    for group in GROUPS:
        assert len({sides[records[index].case_id] for index in group}) == 1, group


def test_some_group_is_held_out_so_the_grouping_is_exercised(records, signatures, tmp_path):
    held_out_groups = 0
    for seed in range(10):
        sides = side_of(make_split(records, tmp_path, 20, 15, seed=seed, signatures=signatures))
        held_out_groups += sum(sides[records[group[0]].case_id] != "train" for group in GROUPS)
    assert held_out_groups > 0


def test_split_depends_on_seed_not_on_record_order(records, signatures, tmp_path):
    split = make_split(records, tmp_path, 20, 15, seed=7, signatures=signatures)
    order = np.random.default_rng(1).permutation(len(records))
    shuffled = make_split([records[i] for i in order], tmp_path, 20, 15, seed=7, signatures=signatures[order])
    assert shuffled == split
    assert make_split(records, tmp_path, 20, 15, seed=8, signatures=signatures)["test"] != split["test"]


def test_split_refuses_impossible_counts(records, signatures, tmp_path):
    with pytest.raises(DataError, match="cannot hold out 150 test \\+ 50 validation scans of 200"):
        make_split(records, tmp_path, n_test=150, n_validation=50, signatures=signatures)


def test_k_folds_test_every_scan_once_keep_groups_whole_and_classes_in_proportion(records, signatures, tmp_path):
    splits = [make_split(records, tmp_path, n_validation=15, seed=2, signatures=signatures, fold=(i, 4)) for i in range(1, 5)]
    tested = [case_id for split in splits for case_id in split["test"]]
    assert sorted(tested) == sorted(record.case_id for record in records)  # a partition: each scan tested once
    assert all(abs(len(split["test"]) - 50) <= 5 for split in splits)  # 200 / 4, give or take a group
    for split in splits:
        assert [len(split[side]) for side in ("validation",)] == [15] and not set(split["train"]) & set(split["test"])
        benign = sum(case_id.startswith("benign/") for case_id in split["test"])
        assert abs(benign - len(split["test"]) * BENIGN / (BENIGN + MALIGNANT)) <= 2
        sides = side_of(split)
        for group in GROUPS:
            assert len({sides[records[index].case_id] for index in group}) == 1, group
    again = make_split(records, tmp_path, n_validation=15, seed=2, signatures=signatures, fold=(3, 4))
    assert again == splits[2] and make_split(records, tmp_path, 57, 15, seed=3, signatures=signatures, fold=(3, 4)) != again


@pytest.mark.parametrize("fold", [(0, 4), (5, 4), (1, 1)])
def test_impossible_folds_are_refused(records, signatures, tmp_path, fold):
    with pytest.raises(ValueError, match=f"fold {fold[0]} of {fold[1]}: needs at least 2 folds, numbered from 1"):
        make_split(records, tmp_path, signatures=signatures, fold=fold)
    with pytest.raises(DataError, match="cannot make 201 folds of 200 scans") as caught:  # the data's limit
        make_split(records, tmp_path, signatures=signatures, fold=(1, 201))
    assert caught.value.path == str(tmp_path)


def test_split_with_too_large_near_duplicate_groups_names_the_dataset_folder(records, tmp_path):
    alike = np.ones((len(records), 1024)) / 32  # every scan a copy of every other: one group of 200
    with pytest.raises(DataError, match="near-duplicate groups are too large to hold out exactly 20 scans") as caught:
        make_split(records, tmp_path, n_test=20, n_validation=15, signatures=alike)
    assert caught.value.path == str(tmp_path)


def test_split_refuses_records_of_another_folder(records, signatures, tmp_path):
    with pytest.raises(DataError, match="not the scan"):
        make_split(records, tmp_path / "elsewhere", signatures=signatures)


def test_find_near_duplicates_groups_chains_of_crops_but_not_independent_phantoms():
    small, _ = make_phantoms(40, image_size=64, seed=5)
    scans = list(small[..., 0])
    assert find_near_duplicates(scans) == []
    large, _ = make_phantoms(1, image_size=256, seed=6)
    original = large[0, ..., 0]
    cropped, cropped_more = original[6:, 6:], original[12:, 12:]  # re-saved with a tighter crop
    assert find_near_duplicates([original, cropped_more]) == []  # too different on their own...
    assert find_near_duplicates(scans + [original, cropped, cropped_more]) == [[40, 41, 42]]  # ...chained


def test_make_split_reads_images_and_keeps_a_copied_scan_with_its_original(tmp_path):
    images = write_busi_phantoms(tmp_path, benign=8, malignant=5)
    copy = (images[0, 1:, 1:, 0] * 255).astype(np.uint8)  # re-saved one pixel tighter
    cv2.imwrite(str(tmp_path / "benign" / "benign (99).png"), copy)
    cv2.imwrite(str(tmp_path / "benign" / "benign (99)_mask.png"), np.zeros_like(copy))
    records = find_records(tmp_path)
    copies = {"benign/benign (0).png", "benign/benign (99).png"}
    held_out = 0
    for seed in range(12):
        sides = side_of(make_split(records, tmp_path, n_test=4, n_validation=3, seed=seed))
        assert len({sides[case_id] for case_id in copies}) == 1
        held_out += sides["benign/benign (0).png"] != "train"
    assert held_out > 0


def test_prepare_data_phantoms_need_no_files():
    data = prepare_data("phantom", image_size=32, seed=1)
    assert [len(data.train), len(data.validation), len(data.test)] == [48, 8, 8]
    assert data.train.images.shape == (48, 32, 32, 1)
    assert data.root is None and data.test.records == []
    assert data.split["test"][0] == "phantom/056"
    again = prepare_data(
        "phantom", {"train": ["phantom/003"], "validation": [], "test": []}, image_size=32, seed=1
    )
    np.testing.assert_array_equal(again.train.images[0], data.train.images[3])
    with pytest.raises(DataError, match="phantom/999"):
        prepare_data("phantom", {"train": ["phantom/999"], "validation": [], "test": []}, image_size=32)


def test_prepare_data_makes_saves_and_reloads_a_split(tmp_path):
    root = tmp_path / "busi"
    write_busi_phantoms(root, benign=14, malignant=8, size=48)
    data = prepare_data(root, image_size=32, seed=0)
    # The paper's held-out fractions (57 and 50 of 647) of 22 scans.
    assert [len(data.train), len(data.validation), len(data.test)] == [18, 2, 2]  # 1.7 and 1.9 rounded
    assert data.root == root.absolute()
    assert [record.case_id for record in data.test.records] == data.split["test"]
    save_split(data.split, tmp_path / "split.json")
    reloaded = prepare_data(root, tmp_path / "split.json", image_size=32)
    np.testing.assert_array_equal(reloaded.train.images, data.train.images)
    np.testing.assert_array_equal(reloaded.test.masks, data.test.masks)


def test_prepare_data_reads_the_normal_scans_a_split_lists(tmp_path):
    root = tmp_path / "busi"
    write_busi_phantoms(root, benign=14, malignant=8, size=48)
    (root / "normal").mkdir()
    cv2.imwrite(str(root / "normal" / "normal (1).png"), np.full((48, 48), 90, np.uint8))
    cv2.imwrite(str(root / "normal" / "normal (1)_mask.png"), np.zeros((48, 48), np.uint8))
    plain = prepare_data(root, image_size=32)
    split = {**plain.split, "test": plain.split["test"] + ["normal/normal (1).png"]}
    with_normal = prepare_data(root, split, image_size=32)
    assert with_normal.split == split and len(with_normal.test) == len(plain.test) + 1
    assert with_normal.test.masks[-1].sum() == 0


def test_split_json_round_trip_and_overwrite_protection(tmp_path):
    split = {"train": ["b/b (1).png", "b/b (2).png"], "validation": ["m/m (1).png"], "test": ["b/b (3).png"]}
    path = tmp_path / "split.json"
    save_split(split, path)
    assert load_split(path) == split
    with pytest.raises(OutputExistsError):
        save_split(split, path)
    save_split({**split, "test": []}, path, overwrite=True)
    assert load_split(path)["test"] == []


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"train": [], "test": []}), "needs exactly the lists train, validation, test"),
        (json.dumps(["a.png"]), "needs exactly the lists"),
        (
            json.dumps({"train": ["a.png"], "validation": [3], "test": []}),
            "'validation' must be a list of case ids",
        ),
        (
            json.dumps({"train": ["a.png"], "validation": [], "test": ["a.png"]}),
            "'a.png' is listed in both train and test",
        ),
    ],
)
def test_bad_split_file_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "split.json"
    path.write_text(content)
    with pytest.raises(DataError, match=problem) as caught:
        load_split(path)
    assert caught.value.path == str(path)


def test_missing_split_file(tmp_path):
    with pytest.raises(DataError, match="no such split file"):
        load_split(tmp_path / "absent.json")


def _lesion_free_folder(tmp_path):
    """A BUSI-layout folder with 22 lesion scans and 7 lesion-free ones: those records and a split."""
    write_busi_phantoms(tmp_path, benign=14, malignant=8, size=48)
    write_normal_scans(tmp_path, count=7)
    lesion_free = [record for record in find_records(tmp_path, include_normal=True) if record.label == "normal"]
    return lesion_free, prepare_data(tmp_path, image_size=32).split


def test_lesion_free_training_scans_join_train_and_the_rest_count_false_alarms(tmp_path):
    lesion_free, split = _lesion_free_folder(tmp_path)
    with_normal = add_lesion_free(split, lesion_free, count=3, seed=1)
    added = [case_id for case_id in with_normal["train"] if case_id.startswith("normal/")]
    assert len(added) == 3 and set(with_normal["train"]) == set(split["train"]) | set(added)
    assert with_normal["validation"] == split["validation"] and with_normal["test"] == split["test"]
    pair = {"normal/normal (1).png", "normal/normal (7).png"}  # a copy goes with its original
    sides = [pair & set(add_lesion_free(split, lesion_free, count=3, seed=seed)["train"]) for seed in range(6)]
    assert all(side in (set(), pair) for side in sides) and pair in sides
    assert add_lesion_free(split, lesion_free, count=3, seed=1) == with_normal  # reproducible
    held_out = load_normal_scans(tmp_path, image_size=32, split=with_normal)
    assert sorted(record.case_id for record in held_out.records) == sorted(
        record.case_id for record in lesion_free if record.case_id not in added
    )
    assert held_out.masks.sum() == 0 and len(load_normal_scans(tmp_path, image_size=32)) == 7

    data = prepare_data(tmp_path, with_normal, image_size=32)  # the trainer's view: lesion-free scans in train
    lesion_free_masks = [mask for record, mask in zip(data.train.records, data.train.masks) if record.label == "normal"]
    assert len(data.train) == len(with_normal["train"]) and len(lesion_free_masks) == 3
    assert not any(mask.any() for mask in lesion_free_masks)
    with pytest.raises(DataError, match="cannot add 7 of 7 unlisted lesion-free scans to train") as caught:
        add_lesion_free(split, lesion_free, count=7)
    assert caught.value.path == str(tmp_path)  # the dataset folder, not the word "split"
    everything = add_lesion_free(split, lesion_free, count=6)
    everything["test"] += [case_id for case_id in (r.case_id for r in lesion_free) if case_id not in everything["train"]]
    with pytest.raises(DataError, match="none is left to count false alarms on"):
        load_normal_scans(tmp_path, image_size=32, split=everything)


def test_lesion_free_validation_scans_are_others_than_the_training_ones(tmp_path):
    lesion_free, split = _lesion_free_folder(tmp_path)
    with_train = add_lesion_free(split, lesion_free, count=3, seed=1)
    both = add_lesion_free(with_train, lesion_free, count=2, side="validation", seed=1)
    trained = {case_id for case_id in both["train"] if case_id.startswith("normal/")}
    validated = {case_id for case_id in both["validation"] if case_id.startswith("normal/")}
    assert len(trained) == 3 and len(validated) == 2 and not trained & validated
    assert both["train"] == with_train["train"] and both["test"] == split["test"]
    assert len(load_normal_scans(tmp_path, image_size=32, split=both)) == 2  # the rest count false alarms
    # With the same seed, validation takes the scans training would have taken: test lesion-free scans stay put.
    assert add_lesion_free(split, lesion_free, 3, side="validation", seed=1)["validation"] == sorted(
        split["validation"] + sorted(trained), key=natural_key
    )
    data = prepare_data(tmp_path, both, image_size=32)
    assert len(data.validation) == len(split["validation"]) + 2 and data.validation.masks[-2:].sum() == 0
    with pytest.raises(DataError, match="cannot add 2 of 2 unlisted lesion-free scans to validation"):
        add_lesion_free(both, lesion_free, count=2, side="validation")
    with pytest.raises(ValueError, match="side must be"):
        add_lesion_free(split, lesion_free, count=1, side="test")
    with pytest.raises(ValueError, match="no lesion-free records"):
        add_lesion_free(split, [], count=1)
