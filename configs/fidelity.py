"""The fidelity study of `clmser_jax/experiments/fidelity.py` (issue 25, `docs/fidelity.md`):
each factor of `fidelity.LEVELS`, one at a time from its base, for CLmser against CLmser-w and
CLmser-n against CAE, on reconstruction and point-mask inpainting, over three seeds. The base
is `configs/default.py` (the embedded photographs, 64x64 crops, 1,500 Adam steps) with
contractive kernels for every variant, the setting whose orderings the study questions; its
`xavier` level is the default's init.

`--config.base.dataset=folder:/path` runs it on any image folder; `--config.factors=base,init`,
`--config.levels=he,xavier`, `--config.tasks=reconstruct`, `--config.pairs=clmser:clmser-w` or
`--config.seeds=0,1` a part of it; `:tiny` is a smoke-test size.
"""
import ml_collections

from configs import default


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.base = default.get_config("clmser,contractive")
  config.pairs = "clmser:clmser-w,clmser-n:cae"  # with DCW : without, both with DPN, both without
  config.tasks = "reconstruct,inpaint"
  config.factors = "base,init,norm,fusion,output,optimizer,table3,data,budget,official"
  config.levels = ""  # some levels ("he,xavier"); a factor with none named keeps all
  config.seeds = (0, 1, 2)
  if arg == "tiny":
    config.base.image_size = 16
    config.base.batch_size = 4
    config.base.num_train_steps = config.base.eval_every_steps = 2
    config.base.checkpoint_every_steps = config.base.log_every_steps = 2
    config.base.num_eval_images = 4
    config.base.model.update(depth=2, channels=(4, 8), strides=(1, 2))
    config.base.data.workers = 0
    config.seeds = (0, 1)
  elif arg:
    raise ValueError(f"config option {arg!r} is unknown; allowed: 'tiny' or nothing")
  return config
