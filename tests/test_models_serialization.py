"""Every network survives ``model.save`` and a safe-mode ``load_model`` in a fresh Python process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from rdanet_gan.models import build_model

SIZE = 32
MODELS = {
    "rdau-net": {},
    "unet": {"norm": "batch", "dropout": 0.5},
    "segnet": {"unpooling": "indices"},
    "critic": {"norm": "layer"},
    "rdau-net+efficientnet_lite0": {"encoder": "efficientnet_lite0"},  # a pretrained encoder, ImageNet weights
}
"""File label (the network's name, ``+`` a variant) → build options."""

LOADER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import keras
    import numpy as np

    import rdanet_gan.models  # registers the custom layers

    folder = Path(sys.argv[1])
    for path in sorted(folder.glob("*.keras")):
        model = keras.models.load_model(path, safe_mode=True)
        inputs = np.load(folder / f"{path.stem}_inputs.npy")
        np.save(folder / f"{path.stem}_loaded.npy", np.asarray(model(inputs, training=False)))
    """
)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # raised inside Keras's saver
def test_models_round_trip_through_keras_files_in_a_fresh_process(tmp_path):
    expected = {}
    rng = np.random.default_rng(0)
    for name, options in MODELS.items():
        keras.utils.set_random_seed(0)
        channels = 2 if name == "critic" else 1
        model = build_model(name.split("+")[0], input_shape=(SIZE, SIZE, channels), base_width=4, **options)
        inputs = rng.random((2, SIZE, SIZE, channels), dtype=np.float32)
        model(inputs, training=True)  # move the batch-norm statistics away from their initial values
        expected[name] = np.asarray(model(inputs, training=False))
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}_inputs.npy", inputs)

    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path)], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name, predictions in expected.items():
        np.testing.assert_allclose(np.load(tmp_path / f"{name}_loaded.npy"), predictions, rtol=1e-6, atol=1e-7)
