"""Train an LA-Transformer for person re-identification (see `python examples/train.py --help`).

    python examples/train.py --output_dir out --max_steps 6 --per_device_train_batch_size 8   # tiny, generated data
    python examples/train.py --backbone facebook/deit-tiny-patch16-224 --dataset market1501 \
        --data_dir /data/Market-1501-v15.09.15 --output_dir la-deit-tiny                      # the small recipe
    accelerate launch --multi_gpu --num_processes 2 examples/train.py --setup baseline --dataset course ...

The script itself, its flags (ModelArguments, DataArguments, and transformers' TrainingArguments through
LATransformerTrainingArguments) and their parsing against a setup are in `src/hf_lareid/scripts/train.py`, which
`lareid train` runs too.
"""

import sys

from hf_lareid.scripts.train import main
from hf_lareid.utils.errors import LAReIDError

if __name__ == "__main__":
    try:
        main()
    except (LAReIDError, ValueError, OSError) as error:
        # One clear line instead of a traceback for bad input (missing folder, unknown setup, non-ViT backbone).
        sys.exit(f"train.py: error: {error}")
