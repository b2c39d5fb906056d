"""evosearch: search for reinforcement-learning algorithms written as small Python programs."""

__version__ = "0.1.0"
