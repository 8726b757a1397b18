"""Training LA-Transformer: the Trainer, blockwise fine-tuning (Algorithm 1), losses and the train entry point.

Example:

```python
>>> from hf_lareid.training import BlockwiseUnfreezeCallback, LATransformerTrainer, LATransformerTrainingArguments
>>> trainer = LATransformerTrainer(model=model, args=LATransformerTrainingArguments("out"), train_dataset=train,
...                                query_dataset=query, gallery_dataset=gallery, callbacks=[BlockwiseUnfreezeCallback()])
```
"""

from .arguments import LATransformerTrainingArguments
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
