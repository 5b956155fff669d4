"""The promotion gate's rule lives in the library (keel.promotion): the promote service decides
with it, and the MLflow bridge judges alias moves by the same rule without importing a service."""

from keel.promotion import Decision, Direction, Incumbent, Serving, decide

__all__ = ["Decision", "Direction", "Incumbent", "Serving", "decide"]
