"""clmser-jax: Lmser and its deep convolutional form CLmser (Huang, Tu & Xu, 2020) in JAX.

    import clmser_jax as cl
    model = cl.CLmser(channels=(16, 32, 64), strides=(1, 2, 2), reflections=2)
    variables = model.init(jax.random.key(0), images)      # images: (N, H, W, 3)
    reconstruction = model.apply(variables, images)
    state = cl.train_and_evaluate(config, workdir)          # the training loop of the CLI
    run = cl.load_run(workdir)                              # a trained run, read-only
    cl.ops.bottom_up(x, w, stride), cl.ops.top_down(y, w, stride, size)   # W and W^T (DCW)

The names are imported when first used, so `import clmser_jax` stays light (the data
workers import its submodules).
"""
import importlib

_PUBLIC = {
    "CLmser": "clmser_jax.models", "UNet": "clmser_jax.models", "CNN": "clmser_jax.models",
    "VARIANTS": "clmser_jax.models", "build_model": "clmser_jax.models",
    "train_and_evaluate": "clmser_jax.train", "load_run": "clmser_jax.inference",
    "image_predictor": "clmser_jax.inference", "model_config": "clmser_jax.config",
    "task_config": "clmser_jax.config",
}
_MODULES = ("ops", "cpu", "data", "models", "tasks", "metrics", "train", "inference",
            "experiments", "analysis")
__all__ = [*_PUBLIC, *_MODULES]


def __getattr__(name: str):
  if name in _PUBLIC:
    return getattr(importlib.import_module(_PUBLIC[name]), name)
  if name in _MODULES:
    return importlib.import_module(f"clmser_jax.{name}")
  raise AttributeError(f"module 'clmser_jax' has no attribute {name!r}")
