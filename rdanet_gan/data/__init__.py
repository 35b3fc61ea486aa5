"""Data: BUSI-style readers, decoding, leakage-aware splits, the tf.data pipeline, phantoms.

Reading a dataset goes folder -> :class:`Record` list (:func:`find_records`)
-> split (:func:`make_split`, saved as JSON) -> arrays (:func:`load_arrays`)
-> batches (:func:`make_dataset`); :func:`prepare_data` does all but the
last step in one call. Names load on first use: reading and splitting need no TensorFlow.
"""

import lazy_loader

from rdanet_gan.options import AUGMENTATION_PRESETS

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "augment": ["Augmentation", "augment_example"],
        "decode": ["ArraySet", "load_arrays", "load_record", "read_image", "read_mask", "read_record"],
        "duplicates": ["DUPLICATE_THRESHOLD", "find_near_duplicates", "read_signatures"],
        "inspection": ["format_inspection", "inspect_dataset"],
        "phantom": ["make_phantoms"],
        "pipeline": ["make_dataset"],
        "prepare": ["DataSplits", "load_normal_scans", "prepare_data"],
        "records": ["DatasetScan", "Record", "detect_layout", "find_records", "scan_dataset", "select"],
        "split": ["add_lesion_free", "load_split", "make_split", "save_split"],
    },
)

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
