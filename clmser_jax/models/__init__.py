"""Model family: `build_model(config.model)` returns the configured Flax module."""
import jax.numpy as jnp

from clmser_jax.models.clmser import CNN, CLmser
from clmser_jax.models.unet import UNet

VARIANTS = {  # Table 1: (dcw, dpn)
    "clmser": (True, True),
    "clmser-w": (False, True),
    "clmser-n": (True, False),
    "cae": (False, False),
}


def build_model(model_config):
  """The module named by `model_config.name` ('clmser', 'unet' or 'cnn') with its fields."""
  common = dict(channels=tuple(model_config.channels), strides=tuple(model_config.strides),
                kernel_size=model_config.kernel_size, activation=model_config.activation,
                output_activation=model_config.output_activation,
                dtype=jnp.dtype(model_config.dtype))
  if model_config.name == "unet":
    return UNet(**common)
  make = CNN if model_config.name == "cnn" else CLmser
  return make(dcw=model_config.dcw, dpn=model_config.dpn, reflections=model_config.reflections,
              kernel_init=model_config.kernel_init,
              contraction_gain=model_config.contraction_gain, norm=model_config.norm,
              fusion=model_config.fusion, num_classes=model_config.num_classes,
              remat=model_config.remat, **common)
