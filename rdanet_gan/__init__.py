"""RDA-Net-GAN: breast-ultrasound lesion segmentation with an adversarially trained RDAU-Net.

The small public API::

    import rdanet_gan as rg

    data = rg.prepare_data("Dataset_BUSI_with_GT")          # or "phantom"
    model = rg.build_model("rdau-net")                        # "unet", "segnet", "critic"
    result = rg.train(rg.TrainConfig(model="rdanet-gan", data="phantom", epochs=2), "runs/demo")
    segmenter = rg.load_model(result.final_model)            # safe mode
    evaluation = rg.evaluate_model(segmenter, data.test)

Importing the package registers every custom Keras object (the SegNet
pooling-switches layer, the GAN, its losses and metrics), so saved ``.keras``
files load with ``keras.models.load_model(path)`` in safe mode.
"""

from rdanet_gan.data import make_dataset, make_phantoms, prepare_data
from rdanet_gan.errors import DataError, ModelFileError, RdanetError
from rdanet_gan.evaluation import EMPTY_MASK_POLICY, Evaluation, score_predictions, table1_markdown
from rdanet_gan.evaluation.evaluate import evaluate_model
from rdanet_gan.evaluation.keras_metrics import segmentation_metrics
from rdanet_gan.inference import segment_image
from rdanet_gan.modelfiles import load_segmenter as load_model
from rdanet_gan.modelfiles import load_shipped
from rdanet_gan.models import build_model, count_flops
from rdanet_gan.training import DiceBCELoss, RDANetGAN, TrainConfig, train

__version__ = "0.1.0"

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
