"""The authors' official `Generator` in PyTorch, written from their module files
(CMACH508/CLmser `model/{clmser,clmser_w,clmser_n,cae}.py`, `modules/nets_builders.py`)
independently of our code: it owns the same tensors under the same state-dict keys and runs
their forward pass. Shared by `tests/test_official.py` (numerical agreement) and
`benchmarks/` (speed against the same network with the same weights). Needs torch.
"""
import torch

from clmser_jax.models import VARIANTS  # (dcw: shared kernels, dpn: skips)


def official_generator(variant, channels, strides, seed):
  """Their `Generator` for `variant`, written from `model/{clmser,clmser_w,clmser_n,cae}.py`
  and `modules/nets_builders.py`."""
  nn, F = torch.nn, torch.nn.functional
  shared, skips = VARIANTS[variant]
  torch.manual_seed(seed)

  def kernel_list():  # their create_weights: OIHW (c_out, c_in, 3, 3), Xavier-uniform
    kernels, c_in = [], 3
    for c in channels:
      kernels.append(nn.init.xavier_uniform_(nn.Parameter(torch.empty(c, c_in, 3, 3))))
      c_in = c
    return kernels

  class Holder(nn.Module):  # their Conv2D / DeConv2D: a module owning a (shared) kernel
    def __init__(self, weight):
      super().__init__()
      self.weight = weight

  class Block(nn.Module):  # their ConvBlock / DeConvBlock: conv, BatchNorm?, activation
    def __init__(self, weight, stride, transposed, norm, activation):
      super().__init__()
      self.stride, self.transposed, self.activation = stride, transposed, activation
      self.add_module("dconv2d" if transposed else "conv2d", Holder(weight))
      if norm:
        self.bn = nn.BatchNorm2d(weight.shape[1] if transposed else weight.shape[0])

    def forward(self, x, output_size=None):
      if self.transposed:
        w = self.dconv2d.weight
        smallest = [(n - 1) * self.stride - 2 + w.shape[2] for n in x.shape[2:]]
        x = F.conv_transpose2d(x, w, stride=self.stride, padding=1,
                               output_padding=[o - s for o, s in zip(output_size, smallest)])
      else:
        x = F.conv2d(x, self.conv2d.weight, stride=self.stride, padding=1)
      if hasattr(self, "bn"):
        x = self.bn(x)
      return self.activation(x)

  class Generator(nn.Module):
    def __init__(self):
      super().__init__()
      enc = kernel_list()
      dec = enc if shared else kernel_list()
      self.DownBlocks = nn.Sequential(*[Block(w, s, False, True, torch.relu)
                                        for w, s in zip(enc, strides)])
      self.UpBlocks = nn.Sequential(*[Block(w, s, True, True, torch.relu)
                                      for w, s in zip(dec[1:], strides[1:])])
      self.OutBlock = Block(dec[0], 1, True, False, torch.tanh)

    def forward(self, inputs):
      features, x = [], inputs
      for block in self.DownBlocks:
        x = block(x)
        features.append(x)
      for i in range(len(self.UpBlocks) - 1, -1, -1):
        output_size = [x.shape[2] * 2, x.shape[3] * 2]
        x = self.UpBlocks[i](0.5 * x + 0.5 * features[i + 1] if skips else x, output_size)
      return self.OutBlock(x, inputs.shape[2:])

  return Generator()
