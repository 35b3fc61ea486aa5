"""Look at a dataset folder before training on it: counts, sizes, duplicates, problems."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from rdanet_gan.data.decode import map_in_threads, read_record
from rdanet_gan.data.duplicates import DUPLICATE_THRESHOLD, group_signatures, signature
from rdanet_gan.data.records import Record, scan_dataset
from rdanet_gan.errors import DataError

EXAMPLES = 5  # how many multi-mask images and duplicate groups a report names


def inspect_dataset(root: str | Path, layout: str = "auto") -> dict:
    """Decode every scan of ``root`` (normal scans included) and summarise it as a JSON-ready dict.

    The report gives the layout, the number of scans per class, the scans
    with several mask files, the near-duplicate groups, the bad records
    (pairing and decoding problems), the range of image sizes and the
    lesion-area fraction of the scans that have a lesion.
    """
    scan = scan_dataset(root, layout, include_normal=True)
    decoded = list(map_in_threads(_measure_or_error, scan.records))
    good = [
        (record, found) for record, found in zip(scan.records, decoded) if not isinstance(found, DataError)
    ]
    problems = scan.problems + [found for found in decoded if isinstance(found, DataError)]
    shapes = np.array([found[0] for _, found in good]).reshape(-1, 2)
    fractions = np.array([found[1] for _, found in good])
    groups = group_signatures(np.stack([found[2] for _, found in good]), DUPLICATE_THRESHOLD) if good else []
    multi_mask = [record.case_id for record in scan.records if len(record.masks) > 1]
    lesions = fractions[fractions > 0]
    return {
        "root": str(scan.root),
        "layout": scan.layout,
        "images": len(scan.records),
        "counts": dict(sorted(Counter(record.label or "unlabelled" for record in scan.records).items())),
        "multi_mask_images": {"count": len(multi_mask), "examples": multi_mask[:EXAMPLES]},
        "near_duplicates": {
            "threshold": DUPLICATE_THRESHOLD,
            "groups": len(groups),
            "images": sum(len(group) for group in groups),
            # Copies filed under different classes: a label the dataset contradicts.
            "mixed_labels": sum(len({good[index][0].label for index in group}) > 1 for group in groups),
            "examples": [[good[index][0].case_id for index in group] for group in groups[:EXAMPLES]],
        },
        "bad_records": [str(problem) for problem in problems],
        "image_size": {
            "height": [int(shapes[:, 0].min()), int(shapes[:, 0].max())] if good else None,
            "width": [int(shapes[:, 1].min()), int(shapes[:, 1].max())] if good else None,
        },
        "lesion_fraction": {
            "min": float(lesions.min()) if lesions.size else None,
            "median": float(np.median(lesions)) if lesions.size else None,
            "max": float(lesions.max()) if lesions.size else None,
            "empty_masks": int((fractions == 0).sum()),
        },
    }


def format_inspection(report: dict) -> str:
    """The report of :func:`inspect_dataset` as a few lines of text."""
    counts = ", ".join(f"{count} {label}" for label, count in report["counts"].items())
    size = report["image_size"]
    fraction = report["lesion_fraction"]
    duplicates = report["near_duplicates"]
    multi_mask = report["multi_mask_images"]
    lines = [
        f"dataset: {report['root']} ({report['layout']} layout)",
        f"scans: {report['images']} ({counts or 'none'})",
    ]
    if size["height"] is not None:
        lines.append(
            f"image size: height {size['height'][0]}-{size['height'][1]}, width {size['width'][0]}-{size['width'][1]}"
        )
    if fraction["median"] is not None:
        lines.append(
            f"lesion area: {fraction['min']:.2%} / {fraction['median']:.2%} / {fraction['max']:.2%} "
            f"of the image (min / median / max); {fraction['empty_masks']} empty mask(s)"
        )
    lines.append(f"scans with several mask files (merged): {multi_mask['count']}")
    lines += [f"  {case_id}" for case_id in multi_mask["examples"]]
    lines.append(
        f"near-duplicate groups (correlation > {duplicates['threshold']}): "
        f"{duplicates['groups']} groups, {duplicates['images']} scans, {duplicates['mixed_labels']} "
        "with more than one class; kept on one side of every split"
    )
    lines += [f"  {' ~ '.join(group)}" for group in duplicates["examples"]]
    lines.append(f"bad records: {len(report['bad_records'])}")
    lines += [f"  {problem}" for problem in report["bad_records"]]
    return "\n".join(lines)


def _measure_or_error(record: Record) -> tuple[tuple[int, int], float, np.ndarray] | DataError:
    """A record's native size, lesion-area fraction and duplicate signature, or its problem."""
    try:
        image, mask = read_record(record)
    except DataError as error:
        return error
    return image.shape, float(mask.mean()), signature(image)
