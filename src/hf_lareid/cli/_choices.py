"""The names the subcommands offer as `choices`, kept here so that building a parser imports none of their owners.

`lareid SUBCOMMAND --help` and a usage error then need only the standard library (the owners import torch,
datasets or FAISS). Each tuple is a copy of its owner's names; tests/cli/test_cli_manners.py checks they agree.
"""

# hf_lareid.data.REID_DATASETS (the loader names of load_reid_dataset)
DATASETS = ("course", "cuhk03_np", "dukemtmcreid", "identity_folders", "market1501", "msmt17", "synthetic")
# hf_lareid.embedding.backends.RUNTIMES
RUNTIMES = ("torch", "onnxruntime", "openvino")
# hf_lareid.embedding.backends.AUTO_PREFERENCE[("cpu", "fp32")]: what runtime="auto" picks on a CPU in fp32, first installed
AUTO_CPU_ORDER = ("openvino", "onnxruntime", "torch")
# hf_lareid.retrieval.faiss_index.INDEX_TYPES
INDEX_TYPES = ("flat", "ivf", "ivfpq", "ivfpq_refine", "hnsw")
# hf_lareid.evaluation.PROTOCOLS
PROTOCOLS = ("market1501", "cuhk03", "no-camera")
