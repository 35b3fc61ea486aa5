"""Prediction: a segmenter file and scans in, lesion masks (and overlays) out.

Never imports :mod:`rdanet_gan.evaluation` or :mod:`rdanet_gan.training` (evaluation builds on this package).
Names load on first use: the command line's help reads the scan suffixes without loading an image library.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "litert": ["LiteRTSegmenter", "export_litert"],
        "model_files": ["load_segmenter", "load_shipped", "open_segmenter", "verify_shipped"],
        "outputs": ["SEGMENTATION_COLUMNS", "output_paths", "protected_files", "write_mask", "write_segmentation_table"],
        "overlay": ["plot_overlay"],
        "predict": [
            "network_probability",
            "predict_probabilities",
            "predict_probability",
            "predict_with_flips",
            "resize_to",
            "ScanSegmentation",
            "segment_image",
            "segment_scan",
        ],
        "refine": ["binarize", "clean_mask"],
        "scans": ["SEGMENT_SUFFIXES", "find_scans", "read_scan", "refuse_degenerate"],
        "segment": ["segment_files"],
        "settings": ["InferenceSettings", "inference_file", "model_settings", "read_inference", "settings_problem"],
    },
)
