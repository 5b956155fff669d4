"""keel.commands.StepEvents for keel.step: a step's pipeline outputs are recorded as the events
the feature and train services own, built by those services' own functions (one producing
module per event type). The step's envelope (identity `step`, the step's code version) is
kept: the step's code made the outputs."""

from __future__ import annotations

from keel_services.feature.handlers import features_built
from keel_services.train.handlers import model_evaluated, model_trained


class _StepEvents:
    features_built = staticmethod(features_built)
    model_trained = staticmethod(model_trained)
    model_evaluated = staticmethod(model_evaluated)


STEP_EVENTS = _StepEvents()
