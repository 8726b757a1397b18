"""Model-level workflows the CLI, the Trainer and the scripts call: evaluating a model on query/gallery sets and
calibrating its verification threshold (`tasks.evaluate`), and filling a gallery index from a data split
(`tasks.index`). Import the module you need: this package imports neither, so that the CLI's `--help` stays free
of torch."""
