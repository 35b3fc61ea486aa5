"""Small folders in the BUSI layout, written from phantoms, for tests that read files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from rdanet_gan.data import make_phantoms


def write_busi_phantoms(root: Path, benign: int, malignant: int, size: int = 128) -> np.ndarray:
    """Phantoms saved as a BUSI folder, ``benign (i).png`` then ``malignant (i).png``; returns the images."""
    images, masks = make_phantoms(benign + malignant, image_size=size, seed=2)
    for index, (image, mask) in enumerate(zip(images[..., 0], masks[..., 0])):
        label = "benign" if index < benign else "malignant"
        (root / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / label / f"{label} ({index}).png"), (image * 255).astype(np.uint8))
        cv2.imwrite(str(root / label / f"{label} ({index})_mask.png"), (mask * 255).astype(np.uint8))
    return images


def write_normal_scans(root: Path, count: int, size: int = 48) -> None:
    """``count`` lesion-free scans (empty masks) in ``root/normal``; the last re-saves the first, a little brighter."""
    (root / "normal").mkdir(parents=True, exist_ok=True)
    images = (make_phantoms(count - 1, image_size=size, seed=5)[0][..., 0] * 255).astype(np.uint8)
    for index, image in enumerate([*images, images[0] + np.uint8(4)], start=1):
        cv2.imwrite(str(root / "normal" / f"normal ({index}).png"), image)
        cv2.imwrite(str(root / "normal" / f"normal ({index})_mask.png"), np.zeros(image.shape, np.uint8))
