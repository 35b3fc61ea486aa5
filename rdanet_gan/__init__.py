"""RDA-Net-GAN: breast-ultrasound lesion segmentation with an adversarially trained RDAU-Net.

The small public API::

    import rdanet_gan as rg

    data = rg.prepare_data("Dataset_BUSI_with_GT")          # or "phantom"
    model = rg.build_model("rdau-net")                        # "unet", "segnet", "critic"
    result = rg.train(rg.TrainConfig(model="rdanet-gan", data="phantom", epochs=2), "runs/demo")
    segmenter = rg.load_model(result.final_model)            # safe mode
    evaluation = rg.evaluate_model(segmenter, data.test)

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

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "data": ["make_dataset", "make_phantoms", "prepare_data"],
        "errors": ["DataError", "ModelFileError", "RdanetError"],
        "evaluation": ["EMPTY_MASK_POLICY", "Evaluation", "score_predictions", "table1_markdown"],
        "evaluation.evaluate": ["evaluate_model"],
        "evaluation.keras_metrics": ["segmentation_metrics"],
        "inference": ["segment_image"],
        "modelfiles": ["load_shipped"],
        "models": ["build_model", "count_flops"],
        "training": ["DiceBCELoss", "RDANetGAN", "TrainConfig", "train"],
    },
)
__all__ = [
    "EMPTY_MASK_POLICY",
    "DataError",
    "DiceBCELoss",
    "Evaluation",
    "ModelFileError",
    "RDANetGAN",
    "RdanetError",
    "TrainConfig",
    "build_model",
    "count_flops",
    "evaluate_model",
    "load_model",
    "load_shipped",
    "make_dataset",
    "make_phantoms",
    "prepare_data",
    "score_predictions",
    "segment_image",
    "segmentation_metrics",
    "table1_markdown",
    "train",
]

KERAS_OBJECTS = (
    "rdanet_gan.models.segnet",
    "rdanet_gan.training.gan",
    "rdanet_gan.training.losses",
    "rdanet_gan.training.optimizers",
    "rdanet_gan.training.deep_supervision",
    "rdanet_gan.evaluation.keras_metrics",
)
"""The modules whose import registers the package's custom Keras objects."""


def load_model(path):
    """Load a segmenter: a ``.keras`` file in safe mode, or a LiteRT export (:func:`rdanet_gan.modelfiles.load_segmenter`)."""
    from rdanet_gan.modelfiles import load_segmenter

    return load_segmenter(path)


def _register_keras_objects() -> None:
    for name in KERAS_OBJECTS:
        importlib.import_module(name)


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Registers the custom Keras objects right after the first ``import keras``, whoever imports it."""

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
            _register_keras_objects()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_keras_objects()
elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterKeras())
