"""Person re-identification metrics (CMC, mAP, mINP) as an `evaluate` metric module.

Load with `evaluate.load(hf_lareid.evaluation.REID_METRIC_PATH)`; it wraps `hf_lareid.evaluation.evaluate_reid`.
"""

import datasets
import evaluate
import numpy as np

from hf_lareid.evaluation import evaluate_reid
from hf_lareid.utils.errors import InvalidInputError

_DESCRIPTION = """
Re-identification metrics of query images ranked against gallery images by embedding distance: CMC (rank-k),
mean average precision (mAP) and mean inverse negative penalty (mINP), under the Market-1501 protocol (same person
and same camera removed, junk id -1 removed), torchreid's CUHK03 single-gallery-shot protocol, or "no-camera".
"""

_KWARGS_DESCRIPTION = """
Args:
    embeddings (`list` of `list[float]`): one embedding per image (queries and gallery together).
    person_ids (`list[int]`): person id per image (-1 junk, 0 distractor in the gallery).
    camera_ids (`list[int]`): camera id per image (any value with protocol="no-camera").
    is_query (`list[bool]`): True for query images, False for gallery images.
    max_rank (`int`, defaults to 50), metric ("cosine" or "euclidean"), protocol ("market1501", "cuhk03",
    "no-camera"), rerank (`bool`): as in `hf_lareid.evaluation.evaluate_reid`.
Returns:
    rank1, rank5, rank10, mAP, mINP (floats in [0, 1]), cmc (list of max_rank floats), num_queries,
    num_skipped_queries.
Example:
    >>> metric = evaluate.load(hf_lareid.evaluation.REID_METRIC_PATH)
    >>> metric.compute(embeddings=embeddings, person_ids=ids, camera_ids=cams, is_query=is_query)["mAP"]
"""

_CITATION = """
@inproceedings{zheng2015scalable,
  title={Scalable Person Re-identification: A Benchmark},
  author={Zheng, Liang and Shen, Liyue and Tian, Lu and Wang, Shengjin and Wang, Jingdong and Tian, Qi},
  booktitle={ICCV},
  year={2015}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ReidMetric(evaluate.Metric):
    """CMC, mAP and mINP of a query/gallery split."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "embeddings": datasets.Sequence(datasets.Value("float32")),
                    "person_ids": datasets.Value("int64"),
                    "camera_ids": datasets.Value("int64"),
                    "is_query": datasets.Value("bool"),
                }
            ),
        )

    def _compute(
        self,
        embeddings,
        person_ids,
        camera_ids,
        is_query,
        max_rank=50,
        metric="cosine",
        protocol="market1501",
        rerank=False,
    ):
        features = np.asarray(embeddings, dtype=np.float32)
        ids, cams, query = np.asarray(person_ids), np.asarray(camera_ids), np.asarray(is_query, dtype=bool)
        if not query.any() or query.all():
            raise InvalidInputError("`is_query` must mark at least one query (True) and one gallery image (False).")
        results = evaluate_reid(
            features[query],
            features[~query],
            ids[query],
            ids[~query],
            cams[query],
            cams[~query],
            max_rank=max_rank,
            metric=metric,
            protocol=protocol,
            rerank=rerank,
            show_progress=False,
        )
        results["cmc"] = results["cmc"].tolist()
        return results
