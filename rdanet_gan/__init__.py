"""RDA-Net-GAN: breast-ultrasound lesion segmentation with an adversarially trained RDAU-Net."""

__version__ = "0.1.0"
