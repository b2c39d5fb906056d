"""The trainer harness: runs a rule program on real environments, all seeds batched."""
