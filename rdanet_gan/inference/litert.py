"""LiteRT (TFLite) exports of a Keras segmenter: written here, and run without TensorFlow.

LiteRT runs the network through XNNPACK, faster on a CPU than TensorFlow (``benchmarks/throughput.py
--prediction``), and ``ai-edge-litert`` imports in a fraction of a second. An export holds the network up to
its logits (signature ``serve``, output ``logits``); the sigmoid runs here in float32, so that an int8
network does not round probabilities to steps of 1/256 (presence levels such as 0.999 need the tail).
A ``.tflite`` file is a flat buffer of operators and weights: loading it runs no Python code.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rdanet_gan.errors import ModelFileError
from rdanet_gan.fileio import atomic_path
from rdanet_gan.native_logs import stderr_silenced

QUANTIZATIONS = ("float32", "float16", "int8")
"""``float32``: the Keras network as it is; ``float16``: its weights stored in half precision (half the file,
computed in float32); ``int8``: weights and activations in 8 bits, their ranges calibrated on scans."""
SIGNATURE, OUTPUT = "serve", "logits"
CALIBRATION_SCANS = 100  # scans int8 calibration reads (the ranges of the activations settle well before)


def export_litert(
    model: Any, path: str | os.PathLike, quantization: str = "float32", calibration: np.ndarray | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` (a segmenter ending in the sigmoid layer ``mask``) as a LiteRT file.

    ``calibration`` (training scans, ``(N, H, W, 1)`` in [0, 1]) sets the int8 ranges, and ``int8`` needs it.
    """
    with litert_converter(model, quantization, calibration) as converter:
        try:
            with stderr_silenced():
                flat = converter.convert()
        except Exception as error:  # noqa: BLE001 - the converter's errors are pages of MLIR; the user needs one line
            missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(error))))
            reason = f"no LiteRT kernel for {', '.join(missing)}" if missing else str(error).splitlines()[0]
            raise ModelFileError(model.name, f"LiteRT cannot convert this network ({reason})") from None
    with atomic_path(path, overwrite) as tmp:
        tmp.write_bytes(flat)
    return Path(path)


@contextlib.contextmanager
def litert_converter(model: Any, quantization: str = "float32", calibration: np.ndarray | None = None) -> Iterator[Any]:
    """The ``tf.lite.TFLiteConverter`` of ``model``'s logits, set for ``quantization``, valid inside the block.

    Goes through a SavedModel: converting a Keras 3 model from concrete functions gave NaN outputs, silently.
    """
    import keras
    import tensorflow as tf

    from rdanet_gan.models.blocks import sigmoid_mask_layer

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, not {quantization!r}")
    if quantization == "int8" and (calibration is None or len(calibration) == 0):
        raise ValueError("int8 quantization needs calibration scans")
    mask = sigmoid_mask_layer(model)
    if mask is None:
        raise ModelFileError(model.name, "cannot export: no sigmoid output layer named 'mask'")
    logits = keras.Model(model.input, mask.input, name=f"{model.name}_logits")
    archive = keras.export.ExportArchive()
    archive.track(logits)
    spec = keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32")
    archive.add_endpoint(SIGNATURE, lambda images: {OUTPUT: logits(images, training=False)}, [spec])
    with tempfile.TemporaryDirectory(prefix="rdanet-export-") as saved:
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8":  # one scan at a time
            scans = calibration[:CALIBRATION_SCANS]
            converter.representative_dataset = lambda: ([np.asarray(scan, np.float32)[None]] for scan in scans)
        yield converter


class LiteRTSegmenter:
    """A LiteRT export used like the Keras segmenter it came from (``predict``, calls, shapes), on ``threads``
    cores (default: all this process may use), by ``ai_edge_litert`` when installed, else by TensorFlow."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(self.path, "no such model file")
        try:
            threads = threads or len(os.sched_getaffinity(0))
            interpreter = _interpreter_class()(model_path=str(self.path), num_threads=threads)
            signatures = interpreter.get_signature_list()
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(self.path, f"not a readable LiteRT model ({str(error).splitlines()[0]})") from None
        if OUTPUT not in signatures.get(SIGNATURE, {}).get("outputs", []):
            why = f"not an rdanet_gan export: no '{SIGNATURE}' signature with a '{OUTPUT}' output"
            raise ModelFileError(self.path, why)
        self._runner = interpreter.get_signature_runner(SIGNATURE)
        (self._input,) = signatures[SIGNATURE]["inputs"]
        shape = tuple(int(side) for side in self._runner.get_input_details()[self._input]["shape_signature"][1:])
        if len(shape) != 3 or shape[2] != 1 or min(shape) < 1:
            raise ModelFileError(self.path, f"not a segmenter: input {shape}, expected (H, W, 1)")
        self.input_shape = self.output_shape = (None, *shape)
        self.name = self.path.stem

    def __call__(self, images: np.ndarray, training: bool = False) -> np.ndarray:
        """Lesion probabilities of a batch of scans, ``(N, H, W, 1)`` in [0, 1]."""
        logits = self._runner(**{self._input: np.ascontiguousarray(images, dtype=np.float32)})[OUTPUT]
        return (1.0 / (1.0 + np.exp(-logits.astype(np.float32)))).astype(np.float32)

    def predict(self, images: np.ndarray, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """As ``keras.Model.predict``: probabilities of any number of scans, ``batch_size`` at a time."""
        images = np.asarray(images, dtype=np.float32)
        if len(images) == 0:
            return np.zeros((0, *self.output_shape[1:]), np.float32)
        return np.concatenate([self(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])


def _interpreter_class() -> type:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        class Interpreter(tf.lite.Interpreter):
            """TensorFlow's interpreter, without the deprecation notice (pointing to ai-edge-litert) it gives."""

            def __init__(self, *args, **kwargs):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    super().__init__(*args, **kwargs)

    return Interpreter


def export_agreement(model: Any, export: LiteRTSegmenter, scans: np.ndarray | None = None, count: int = 8) -> float:
    """Largest absolute difference between the probabilities of ``model`` and its ``export`` on ``count`` scans
    (the first of ``scans``, or seeded uniform noise): a check that the conversion kept the network."""
    if scans is None or len(scans) == 0:
        scans = np.random.default_rng(0).random((count, *model.input_shape[1:]), dtype=np.float32)
    scans = np.asarray(scans[:count], np.float32)
    reference = np.asarray(model.predict(scans, verbose=0), np.float32)
    return float(np.abs(export.predict(scans) - reference).max())
