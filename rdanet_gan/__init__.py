"""RDA-NET-GAN: breast-ultrasound lesion segmentation with an adversarially trained RDAU-Net.

The public API, what a user needs::

    import rdanet_gan as rg

    segmenter = rg.load_shipped()                                # the default model, hash-checked
    mask = rg.segment_image(segmenter, rg.read_scan("scan.png"))  # at the scan's own size
    data = rg.prepare_data("Dataset_BUSI_with_GT")              # or "phantom"
    model = rg.build_model("rdau-net")                            # "unet", "segnet", "critic"
    result = rg.train(rg.TrainConfig(model="rdanet-gan", data="phantom", epochs=2), "runs/demo")
    segmenter = rg.load_segmenter(result.final_model)            # safe mode
    evaluation = rg.evaluate_model(segmenter, data.test, rg.read_inference(result.final_model))

Everything else is imported from its subpackage: :mod:`rdanet_gan.data`,
:mod:`rdanet_gan.models`, :mod:`rdanet_gan.training`, :mod:`rdanet_gan.inference`
(prediction) and :mod:`rdanet_gan.evaluation` (scoring, calibration, figures).

Names load on first use (``lazy_loader``), so that ``import rdanet_gan``, the
command line's ``--help`` and the NumPy metrics do not load TensorFlow. The
package's custom Keras objects (the SegNet pooling-switches layer, the GAN, its
losses, metrics and optimizer) are registered as soon as Keras is imported,
before or after this package, so saved ``.keras`` files load with
``keras.models.load_model(path)`` in safe mode after ``import rdanet_gan``.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

import lazy_loader

__version__ = "0.1.0"

_SUBPACKAGES = ["data", "evaluation", "inference", "models", "training"]
__getattr__, __dir__, _names = lazy_loader.attach(
    __name__,
    submodules=_SUBPACKAGES,
    submod_attrs={
        "data": ["prepare_data"],
        "errors": ["DataError", "ModelFileError", "RdanetError"],
        "evaluation": ["EMPTY_MASK_POLICY", "Evaluation", "score_predictions", "table1_markdown"]
        + ["accuracy", "assd", "dice", "f1", "hd95", "iou", "mean_iou", "precision", "sensitivity", "specificity"],
        "evaluation.evaluate": ["evaluate_model"],
        "inference": ["InferenceSettings", "load_segmenter", "load_shipped", "read_inference", "read_scan", "segment_image"],
        "models": ["build_model"],
        "training": ["RDANetGAN", "TrainConfig", "train"],
    },
)
__all__ = [name for name in _names if name not in _SUBPACKAGES]

SEGMENTER_KERAS_OBJECTS = ("rdanet_gan.models.segnet",)
"""The modules whose import registers the custom Keras objects a segmenter file may hold (SegNet's layer)."""
KERAS_OBJECTS = (
    *SEGMENTER_KERAS_OBJECTS,
    "rdanet_gan.training.gan",
    "rdanet_gan.training.losses",
    "rdanet_gan.training.optimizers",
    "rdanet_gan.training.deep_supervision",
    "rdanet_gan.evaluation.keras_metrics",
)
"""The modules whose import registers the package's custom Keras objects."""


def load_model(path):
    """Deprecated alias of :func:`load_segmenter`, which names what it loads."""
    warnings.warn(
        "rdanet_gan.load_model is deprecated; use rdanet_gan.load_segmenter", DeprecationWarning, stacklevel=2
    )
    from rdanet_gan.inference.model_files import load_segmenter

    return load_segmenter(path)


def register_segmenter_objects_only() -> None:
    """Let ``import keras`` register only what a segmenter file may hold, not the training objects.

    For a process that only predicts (``rdanet-gan segment``): it then imports
    nothing of :mod:`rdanet_gan.training` or :mod:`rdanet_gan.evaluation`. No
    effect once Keras is imported.
    """
    for finder in sys.meta_path:
        if isinstance(finder, _AfterKeras):
            finder.modules = SEGMENTER_KERAS_OBJECTS


def _register_keras_objects(modules=KERAS_OBJECTS) -> None:
    for name in modules:
        importlib.import_module(name)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Registers the custom Keras objects right after the first ``import keras``, whoever imports it."""

    modules = KERAS_OBJECTS

    def find_spec(self, name, path, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_keras_objects(self.modules)

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKeras())
