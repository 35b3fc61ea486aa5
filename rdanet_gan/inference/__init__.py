"""Prediction: a segmenter file and scans in, lesion masks (and overlays) out.

One module, one job:

* ``settings``: :class:`InferenceSettings` (threshold, flip TTA, clean-up, presence level) and
  ``MODEL.inference.json``, the file that keeps them beside their model;
* ``refine``: a probability map to a mask (threshold, largest region with its holes filled);
* ``predict``: probabilities from a segmenter (batches, flip TTA, one scan at its own size) and
  :func:`segment_image`;
* ``model_files``: loading a segmenter safely, the shipped models checked against their manifest;
* ``litert``: LiteRT exports, written from a Keras segmenter and run without TensorFlow;
* ``scans``: which files are scans, reading one; ``outputs``: where masks go, the rules that protect
  files, writing a mask; ``overlay``: drawing a scan with its lesion outlines (matplotlib);
* ``segment``: segmenting scan files, each written or skipped with its reason.

Nothing here imports :mod:`rdanet_gan.evaluation` or :mod:`rdanet_gan.training`; evaluation builds
on this package. Names load on first use: the command line's help reads the scan suffixes without
loading an image library.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "litert": ["LiteRTSegmenter", "export_litert"],
        "model_files": ["load_segmenter", "load_shipped", "open_segmenter", "verify_shipped"],
        "outputs": ["output_paths", "protected_files", "write_mask"],
        "overlay": ["plot_overlay"],
        "predict": [
            "network_probability",
            "predict_probabilities",
            "predict_probability",
            "predict_with_flips",
            "resize_to",
            "segment_image",
        ],
        "refine": ["binarize", "clean_mask"],
        "scans": ["SEGMENT_SUFFIXES", "find_scans", "read_scan", "refuse_degenerate"],
        "segment": ["segment_files"],
        "settings": ["InferenceSettings", "inference_file", "model_settings", "read_inference", "settings_problem"],
    },
)
