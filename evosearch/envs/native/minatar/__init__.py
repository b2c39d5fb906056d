"""MinAtar's games as batched torch environments; see :mod:`evosearch.envs.native.minatar.base`."""
