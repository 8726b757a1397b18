"""Model-level workflows the CLI, the Trainer and the demo call: evaluating a model on query/gallery sets and
calibrating its verification threshold (`tasks.evaluate`), filling a gallery index from a data split
(`tasks.index`)."""

from .evaluate import ModelEvaluation, calibrate_model, evaluate_model
from .index import index_split

__all__ = ["ModelEvaluation", "calibrate_model", "evaluate_model", "index_split"]
