"""Scores by subgroup of the lesion scans (class, lesion size): each group pooled as if scored alone."""

from __future__ import annotations

import numpy as np
import pytest

from rdanet_gan.evaluation.scoring import score_predictions
from rdanet_gan.evaluation.subgroups import SIZE_GROUPS, lesion_size, subgroup_markdown, subgroup_scores
from tests.test_benchmarks import load_benchmark

SHAPE = (20, 20)  # 400 pixels: a 2x2 lesion is 1 % of the scan, 5x5 6 %, 8x8 16 %


def _square(size: int, shift: int = 0) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[2 + shift : 2 + shift + size, 3 : 3 + size] = True
    return mask


@pytest.fixture
def scored():
    """Six scans: benign small / medium / large, malignant medium / large (all predicted off by one row),
    and one lesion-free normal scan with a false alarm."""
    cases = [("benign/a.png", 2), ("benign/b.png", 5), ("benign/c.png", 8), ("malignant/d.png", 5), ("malignant/e.png", 8)]
    truths = [_square(size) for _, size in cases] + [np.zeros(SHAPE, bool)]
    predictions = [_square(size, shift=1) for _, size in cases] + [_square(3)]
    ids = [case for case, _ in cases] + ["normal/f.png"]
    return ids, predictions, truths


def test_each_subgroup_is_pooled_as_its_scans_alone_and_lesion_free_scans_belong_to_none(scored):
    ids, predictions, truths = scored
    breakdown = subgroup_scores(score_predictions(predictions, truths, ids=ids))
    assert list(breakdown["class"]) == ["benign", "malignant"]  # no "normal": its scan has no lesion
    assert list(breakdown["lesion_size"]) == [name for _, name in SIZE_GROUPS]
    members = {
        ("class", "benign"): [0, 1, 2],
        ("class", "malignant"): [3, 4],
        ("lesion_size", SIZE_GROUPS[1][1]): [1, 3],
        ("lesion_size", SIZE_GROUPS[2][1]): [2, 4],
    }
    for (kind, name), indices in members.items():
        scores = breakdown[kind][name]
        alone = score_predictions([predictions[i] for i in indices], [truths[i] for i in indices])
        assert scores["lesion_scans"] == len(indices)
        for metric in ("dice", "precision", "sensitivity"):
            assert scores[metric] == pytest.approx(alone.pooled[metric])
        assert scores["dice_per_image"] == pytest.approx(alone.summary["dice"]["mean"])
    assert breakdown["lesion_size"][SIZE_GROUPS[0][1]]["dice"] == pytest.approx(2 * 2 / (4 + 4))  # 2x2 off by one row


def test_lesion_scans_reported_empty_are_counted_and_layouts_without_classes_have_no_class_rows(scored):
    _, predictions, truths = scored
    predictions[2] = np.zeros(SHAPE, bool)  # the large benign lesion missed
    for ids in ([f"scan{i}.png" for i in range(6)], [f"images/scan{i}.png" for i in range(6)]):  # no class: no rows
        assert subgroup_scores(score_predictions(predictions, truths, ids=ids))["class"] == {}
    breakdown = subgroup_scores(score_predictions(predictions, truths, ids=[f"original/{i}.png" for i in range(6)]))
    large = breakdown["lesion_size"][SIZE_GROUPS[2][1]]
    assert large["reported_empty"] == 1 and large["sensitivity"] == pytest.approx(56 / 128)  # 7 of 8 rows of e found
    table = subgroup_markdown(breakdown)
    assert len(table.splitlines()) == 2 + 3 and "| size: large (>= 10 %) | 2 |" in table


def test_size_groups_follow_the_share_of_the_scan():
    row = {"height": 100, "width": 100}
    assert [lesion_size({**row, "true_pixels": pixels}) for pixels in (199, 200, 999, 1000)] == [
        SIZE_GROUPS[0][1], SIZE_GROUPS[1][1], SIZE_GROUPS[1][1], SIZE_GROUPS[2][1]
    ]


def test_the_benchmark_breaks_down_recorded_evaluations_and_refuses_other_files(scored, tmp_path, capsys):
    ids, predictions, truths = scored
    summary = tmp_path / "summary.json"
    score_predictions(predictions, truths, ids=ids).write_json(summary)
    module = load_benchmark("subgroups")
    assert module.main([str(summary)]) == 0
    assert "| class: malignant | 2 |" in capsys.readouterr().out
    (tmp_path / "other.json").write_text("{}")
    assert module.main([str(tmp_path / "other.json")]) == 2
    err = capsys.readouterr().err
    assert "other.json" in err and "not an evaluation JSON file" in err and len(err.strip().splitlines()) == 1
