"""Environments and suites: what a candidate is trained and scored on.

- :mod:`~evosearch.envs.spaces`: each environment's observation length and action space, one table
  (``spaces(env_id)``), for everything that must know them without stepping the env.
- :mod:`~evosearch.envs.backend`: the tensor interface over EnvPool and the torch-native envs
  (:mod:`~evosearch.envs.native`); :mod:`~evosearch.envs.suites`: the task suites.

Nothing is imported here, so ``evosearch.envs.spaces`` always names the module (not its function).
"""
