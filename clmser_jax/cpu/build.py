"""Builds the native CPU kernels ahead of use: `python -m clmser_jax.cpu.build`.

The library is compiled once per machine (and per compiler, jaxlib and CPU) into the cache of
`native/compile.py`; a run loads it from there. Without this step the first run builds it
(`ops.prepare()`, before anything is traced). Exits 1, saying why, where it cannot be built.
"""
import sys

from clmser_jax.cpu.native import compile as compile_lib
from clmser_jax.cpu.native import library


def main() -> None:
  if not library.load():
    sys.exit("clmser_jax.cpu.build: the native kernels could not be built here (see the "
             "warning above); XLA's own operations will be used")
  path = compile_lib.library_path(library.SOURCE, compile_lib.find_compiler())
  print(f"clmser_jax.cpu.build: native kernels ready: {path}")


if __name__ == "__main__":
  main()
