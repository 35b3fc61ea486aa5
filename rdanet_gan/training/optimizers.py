"""A pretrained encoder's own learning rate: Adam that scales the rate of the ``encoder_*`` layers.

Fine-tuning a pretrained encoder usually wants a lower rate than the freshly initialised
decoder, and often a frozen encoder for the first epochs, while the decoder learns to read
its features. Keras optimizers have one rate for every variable, and Adam ignores a scaled
gradient, so the scale has to act on the update itself: :class:`EncoderScaledAdam`
multiplies the rate of every variable whose layer name starts with ``encoder_`` by
``encoder_scale``, a variable that :class:`EncoderSchedule` sets each epoch (0 while frozen).
A frozen encoder still updates its BatchNorm statistics, on the training scans.
"""

from __future__ import annotations

import keras

ENCODER_PREFIX = "encoder_"
"""How the encoder's layers are named (see ``rdanet_gan.models.mobilenet_v2`` and ``efficientnet_lite0``)."""


def is_encoder_variable(variable: keras.Variable) -> bool:
    """Whether ``variable`` belongs to a layer of the pretrained encoder."""
    return any(part.startswith(ENCODER_PREFIX) for part in variable.path.split("/")[:-1])


@keras.saving.register_keras_serializable(package="rdanet_gan")
class EncoderScaledAdam(keras.optimizers.Adam):
    """Adam whose learning rate is multiplied by ``encoder_scale`` for the encoder's variables."""

    def __init__(self, *args, encoder_scale: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial_encoder_scale = float(encoder_scale)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.encoder_scale = self.add_variable(
            shape=(), initializer=keras.initializers.Constant(self.initial_encoder_scale), name="encoder_scale"
        )
        # update_step may see the backend's variable, not the Keras one: match by the optimizer's own key.
        self._encoder_keys = {self._var_key(variable) for variable in variables if is_encoder_variable(variable)}

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._encoder_keys:  # decided when the step is traced
            learning_rate = keras.ops.multiply(learning_rate, keras.ops.cast(self.encoder_scale, "float32"))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        return {**super().get_config(), "encoder_scale": self.initial_encoder_scale}


class EncoderSchedule(keras.callbacks.Callback):
    """Sets the encoder's rate scale at each epoch: 0 for ``freeze_epochs`` epochs, then ``scale``.

    The optimizer is built over ``variables`` (the network it trains) when training begins, before
    a backup restores its state; the scale follows the epoch number, so a resumed run continues
    with the scale an uninterrupted one would have.
    """

    def __init__(self, optimizer: EncoderScaledAdam, variables: list, freeze_epochs: int, scale: float):
        super().__init__()
        self.optimizer, self.variables, self.freeze_epochs, self.scale = optimizer, variables, freeze_epochs, scale

    def on_train_begin(self, logs=None):
        self.optimizer.build(self.variables)

    def on_epoch_begin(self, epoch: int, logs=None):
        self.optimizer.encoder_scale.assign(0.0 if epoch < self.freeze_epochs else self.scale)
