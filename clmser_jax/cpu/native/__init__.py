"""Native XLA:CPU kernels (XLA FFI), built on the user's machine once (`python -m clmser_jax.cpu.build`, or at the first `ops.prepare()`)."""
