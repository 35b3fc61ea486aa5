"""How much a random split of BUSI leaks: test scans with a near-duplicate in the training set.

The paper's split (538 / 50 / 57) was most likely random. This measures, over
many random splits of the same sizes, how many of the 57 test scans have a
near-duplicate (a re-saved crop, another frame of the same lesion) among the
training scans, at several correlation thresholds, and the same count for a
leakage-aware split file (``rdanet_gan/weights/split.json``: 0 at the split's threshold
by construction). The file's scans that are not lesion scans of the dataset
(BUSI's ``normal/``, which a split may list) are left out of its count and
counted apart.

    python benchmarks/split_leakage.py --data BUSI_DIR [--split rdanet_gan/weights/split.json] [--splits 1000] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rdanet_gan.data import DUPLICATE_THRESHOLD, find_records, load_split, read_signatures
from rdanet_gan.data.duplicates import correlations
from rdanet_gan.data.split import listed_case_ids
from rdanet_gan.errors import RdanetError
from rdanet_gan.fileio import write_json

THRESHOLDS = (0.99, 0.95, DUPLICATE_THRESHOLD)
TEST, VALIDATION = 57, 50


def leaked(similar: np.ndarray, test: np.ndarray, train: np.ndarray) -> int:
    """Test scans with at least one near-duplicate among the training scans."""
    return int(similar[np.ix_(test, train)].any(axis=1).sum())


def measure(data: str | Path, split: str | Path | None, splits: int, seed: int = 0) -> dict:
    """Leaked test scans per threshold: over ``splits`` random splits, and for the split file.

    ``split_file_skipped`` counts the split file's scans that are not lesion
    scans of ``data`` (e.g. ``normal/``), which its count leaves out.
    """
    records = find_records(data)
    correlation = correlations(read_signatures(records))
    np.fill_diagonal(correlation, 0.0)
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(len(records)) for _ in range(splits)]
    results = {"scans": len(records), "random_splits": splits, "test_scans": TEST, "thresholds": {}}
    position = {record.case_id: index for index, record in enumerate(records)}
    chosen = load_split(split) if split else None
    if chosen:
        results["split_file_skipped"] = sum(case_id not in position for case_id in listed_case_ids(chosen))
        test, train = (
            np.array([position[case_id] for case_id in chosen[key] if case_id in position], dtype=int)
            for key in ("test", "train")
        )
    for threshold in THRESHOLDS:
        similar = correlation > threshold
        counts = np.array([leaked(similar, order[:TEST], order[TEST + VALIDATION :]) for order in orders])
        entry = {"random_mean": float(counts.mean()), "random_min": int(counts.min()), "random_max": int(counts.max())}
        if chosen:
            entry["split_file"] = leaked(similar, test, train)
        results["thresholds"][f"{threshold:.2f}"] = entry
    return results


def markdown(results: dict, split: str | None) -> str:
    lines = [
        f"| correlation above | random splits: test scans with a near-duplicate in training (of {TEST}) "
        + (f"| `{split}` |" if split else "|"),
        "|---:|---:|" + ("---:|" if split else ""),
    ]
    for threshold, entry in results["thresholds"].items():
        row = f"| {threshold} | {entry['random_mean']:.1f} (min {entry['random_min']}, max {entry['random_max']}) |"
        lines.append(row + (f" {entry['split_file']} |" if split else ""))
    if results.get("split_file_skipped"):
        skipped = results["split_file_skipped"]
        lines.append(f"\n`{split}` lists {skipped} scans that are not lesion scans of the dataset (e.g. normal/): not counted.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="BUSI folder")
    parser.add_argument("--split", help="a split file to measure too (e.g. rdanet_gan/weights/split.json)")
    parser.add_argument("--splits", type=int, default=1000, help="random splits to draw (default: 1000)")
    parser.add_argument("--json", help="also write the numbers as JSON to this file")
    args = parser.parse_args(argv)
    try:
        results = measure(args.data, args.split, args.splits)
    except RdanetError as error:  # a missing or unreadable dataset or split file: one line
        print(f"split_leakage: error: {error}", file=sys.stderr)
        return 2
    print(markdown(results, args.split))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
