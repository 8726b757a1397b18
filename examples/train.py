"""Train an LA-Transformer for person re-identification (see `python examples/train.py --help`).

    python examples/train.py --output_dir out --max_steps 6 --per_device_train_batch_size 8   # tiny, generated data
    python examples/train.py --setup baseline --dataset course --data_dir /data/course --output_dir la-baseline
    accelerate launch --multi_gpu --num_processes 2 examples/train.py --setup baseline --dataset course ...

Every flag is documented in `hf_lareid.training.arguments` (ModelArguments, DataArguments,
LATransformerTrainingArguments) and transformers' TrainingArguments. `lareid train` runs the same function.
"""

import sys

from hf_lareid.data import ReIDDataError
from hf_lareid.training.run import main

if __name__ == "__main__":
    try:
        main()
    except (ReIDDataError, ValueError, FileNotFoundError, OSError) as error:
        # One clear line instead of a traceback for bad input (missing folder, unknown setup, non-ViT backbone).
        sys.exit(f"train.py: error: {error}")
