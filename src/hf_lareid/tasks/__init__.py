"""Model-level workflows the CLI, the Trainer and the demo call: evaluating a model on query/gallery sets and
calibrating its verification threshold (`tasks.evaluate`)."""

from .evaluate import ModelEvaluation, calibrate_model, evaluate_model

__all__ = ["ModelEvaluation", "calibrate_model", "evaluate_model"]
