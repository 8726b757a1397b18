"""Training LA-Transformer: the Trainer, its arguments, blockwise fine-tuning (Algorithm 1), losses and learning checks.

Example:

```python
>>> from hf_lareid import LATransformerConfig, LATransformerForReID
>>> from hf_lareid.training import BlockwiseUnfreezeCallback, LATransformerTrainer, LATransformerTrainingArguments
>>> model = LATransformerForReID(LATransformerConfig(backbone_config={
...     "model_type": "vit", "image_size": [64, 32], "patch_size": 16, "hidden_size": 32,
...     "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}))
>>> args = LATransformerTrainingArguments("out", use_cpu=True, report_to="none")
>>> trainer = LATransformerTrainer(model=model, args=args, callbacks=[BlockwiseUnfreezeCallback(t=2)])
>>> trainer.args.optimizer  # and train_dataset=..., query_dataset=..., gallery_dataset=... to train and evaluate
'adam'
```
"""

from .callbacks import (
    UNFREEZE_SCHEDULES,
    BlockwiseUnfreezeCallback,
    StageProgressCallback,
    UnfreezeStage,
    blockwise_unfreeze_schedule,
    format_unfreeze_schedule,
    original_unfreeze_schedule,
    unfreeze_schedule,
)
from .learning_check import LearningCheckCallback
from .losses import batch_hard_triplet_loss, part_cross_entropy
from .trainer import LATransformerTrainer, collate_reid_batch
from .training_args import LATransformerTrainingArguments

__all__ = [
    "UNFREEZE_SCHEDULES",
    "BlockwiseUnfreezeCallback",
    "LATransformerTrainer",
    "LATransformerTrainingArguments",
    "LearningCheckCallback",
    "StageProgressCallback",
    "UnfreezeStage",
    "batch_hard_triplet_loss",
    "blockwise_unfreeze_schedule",
    "collate_reid_batch",
    "format_unfreeze_schedule",
    "original_unfreeze_schedule",
    "part_cross_entropy",
    "unfreeze_schedule",
]
