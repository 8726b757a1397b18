"""The scripts behind `lareid train` and `lareid demo`, where their flags and steps can be read top to bottom.

- `scripts.train`: the training script (its flags, their parsing against a setup, data, model, Trainer, saving);
  `examples/train.py` and `lareid train` run it, and so does `accelerate launch -m hf_lareid.scripts.train`.
- `scripts.demo`: the demo's recipe (generated populations, the two training stages, evaluation, calibration, index,
  queries, pictures); `lareid demo` runs it.

Import the module you need: this package imports neither, so that `lareid demo --help` stays free of torch.
"""
