"""Data: BUSI-style readers, decoding, leakage-aware splits, the tf.data pipeline, phantoms.

Reading a dataset goes folder -> :class:`Record` list (:func:`find_records`)
-> split (:func:`make_split`, saved as JSON) -> arrays (:func:`load_arrays`)
-> batches (:func:`make_dataset`); :func:`prepare_data` does all but the
last step in one call.
"""

from __future__ import annotations

from rdanet_gan.data.augment import AUGMENTATION_PRESETS, Augmentation, augment_example
from rdanet_gan.data.decode import (
    ArraySet,
    load_arrays,
    load_record,
    read_image,
    read_mask,
    read_record,
)
from rdanet_gan.data.duplicates import (
    DUPLICATE_THRESHOLD,
    find_near_duplicates,
    read_signatures,
)
from rdanet_gan.data.inspection import format_inspection, inspect_dataset
from rdanet_gan.data.phantom import make_phantoms
from rdanet_gan.data.pipeline import make_dataset
from rdanet_gan.data.prepare import DataSplits, load_normal_scans, prepare_data
from rdanet_gan.data.records import (
    DatasetScan,
    Record,
    detect_layout,
    find_records,
    scan_dataset,
    select,
)
from rdanet_gan.data.split import add_lesion_free, load_split, make_split, save_split

__all__ = [
    "AUGMENTATION_PRESETS",
    "DUPLICATE_THRESHOLD",
    "ArraySet",
    "Augmentation",
    "DataSplits",
    "DatasetScan",
    "Record",
    "add_lesion_free",
    "augment_example",
    "detect_layout",
    "find_near_duplicates",
    "find_records",
    "format_inspection",
    "inspect_dataset",
    "load_arrays",
    "load_normal_scans",
    "load_record",
    "load_split",
    "make_dataset",
    "make_phantoms",
    "make_split",
    "prepare_data",
    "read_image",
    "read_mask",
    "read_record",
    "read_signatures",
    "save_split",
    "scan_dataset",
    "select",
]
