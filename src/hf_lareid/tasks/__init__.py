"""Model-level workflows the CLI, the Trainer and the demo call: evaluating a model on query/gallery sets and
calibrating its verification threshold (`tasks.evaluate`), filling a gallery index from a data split
(`tasks.index`), and the demo's recipe (`tasks.demo`). Import the module you need: this package imports none of
them, so that `lareid demo --help` stays free of torch."""
