"""Native XLA:CPU kernels, built on the user's machine at first use (XLA FFI)."""
