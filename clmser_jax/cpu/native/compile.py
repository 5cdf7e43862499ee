"""Compile a C++ XLA FFI source on this machine, once, and load it.

The library is built with the machine's C++ compiler (`$CXX`, else `c++`) for the machine's own
CPU (`-march=native`) against the FFI headers that ship with jaxlib, and cached under
`$CLMSER_JAX_CACHE` (default `$XDG_CACHE_HOME/clmser_jax`, else `~/.cache/clmser_jax`). The
file name holds a hash of everything the build depends on (the source, the flags, the compiler,
jaxlib and the CPU's feature flags), so a cache shared by different machines or kept across
upgrades never loads a stale or foreign build. A library is written under a temporary name and
renamed into place: processes that build at the same time never load half a file.

Where there is no compiler, the platform is not x86-64 Linux, or the build fails, `library`
logs one warning and returns None, and callers keep XLA's own kernels.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jaxlib
from absl import logging

FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC")


def cache_dir() -> pathlib.Path:
  """Where built libraries are kept (`$CLMSER_JAX_CACHE`, else the user's cache folder)."""
  if "CLMSER_JAX_CACHE" in os.environ:
    return pathlib.Path(os.environ["CLMSER_JAX_CACHE"])
  base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
  return pathlib.Path(base) / "clmser_jax"


def _cpu_flags() -> str:
  """The CPU's feature flags (what `-march=native` compiles for)."""
  with open("/proc/cpuinfo") as f:
    return next((line for line in f if line.startswith("flags")), "")


def _compiler_version(compiler: str) -> str:
  return subprocess.run([compiler, "--version"], capture_output=True, text=True,
                        check=True).stdout


def library_path(source: pathlib.Path, compiler: str) -> pathlib.Path:
  """The cached library's path for `source` built by `compiler` on this machine."""
  key = hashlib.sha256("\0".join(
      (source.read_text(), " ".join(FLAGS), _compiler_version(compiler), jaxlib.__version__,
       _cpu_flags())).encode()).hexdigest()[:16]
  return cache_dir() / f"{source.stem}-{key}.so"


def find_compiler() -> str | None:
  """The C++ compiler to build with: `$CXX`, else `c++` on PATH; None when there is none."""
  return shutil.which(os.environ.get("CXX", "c++"))


def _compile(source: pathlib.Path, compiler: str, target: pathlib.Path) -> None:
  target.parent.mkdir(parents=True, exist_ok=True)
  fd, partial = tempfile.mkstemp(suffix=".so.partial", dir=target.parent)
  os.close(fd)
  try:
    subprocess.run([compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", str(source), "-o", partial],
                   capture_output=True, text=True, check=True)
    os.replace(partial, target)
  finally:
    if os.path.exists(partial):
      os.remove(partial)


@functools.cache
def library(source: pathlib.Path) -> ctypes.CDLL | None:
  """`source` built for this machine (from the cache when it is there) and loaded; None, with
  one warning, where it cannot be built."""
  compiler = find_compiler()
  if platform.system() != "Linux" or platform.machine() != "x86_64" or compiler is None:
    logging.warning("%s: no native build on %s %s without a C++ compiler ($CXX or c++ on "
                    "PATH); using XLA's kernels", source.name, platform.system(),
                    platform.machine())
    return None
  try:
    path = library_path(source, compiler)
    if not path.exists():
      logging.info("building %s into %s", source.name, path)
      _compile(source, compiler, path)
    return ctypes.CDLL(str(path))
  except (OSError, subprocess.CalledProcessError) as error:
    detail = getattr(error, "stderr", "") or str(error)
    logging.warning("%s: native build failed, using XLA's kernels: %s", source.name,
                    detail.strip().splitlines()[-1] if detail.strip() else error)
    return None
