"""`datasets`' own FAISS search on embeddings from `extract_features`, as the README shows it."""

import faiss
import numpy as np

from hf_lareid import extract_features
from hf_lareid.data import data_root, generate_synthetic_reid, load_reid_dataset


def test_add_faiss_index_and_get_nearest_examples_on_extracted_embeddings(tmp_path, tiny_model, tiny_image_processor):
    root = generate_synthetic_reid(
        tmp_path / "synthetic", num_ids=6, num_cameras=2, images_per_camera=2, image_size=(64, 32)
    )
    data = load_reid_dataset("market1501", data_dir=root, cache_dir=tmp_path / "cache")
    options = {"image_processor": tiny_image_processor, "bf16": False, "progress": False}

    gallery_features = extract_features(tiny_model, data["gallery"], **options)
    gallery = data["gallery"].add_column("embedding", list(gallery_features.embeddings))
    gallery.add_faiss_index(column="embedding", metric_type=faiss.METRIC_INNER_PRODUCT)  # unit vectors: cosine
    queries = extract_features(tiny_model, data["query"], **options).embeddings

    for query in queries:
        scores, hits = gallery.get_nearest_examples("embedding", query, k=4)
        similarities = gallery_features.embeddings @ query
        np.testing.assert_allclose(scores, np.sort(similarities)[::-1][:4], atol=1e-5)  # exact search, best first
        expected = [gallery_features.paths[i] for i in np.argsort(-similarities, kind="stable")[:4]]
        assert set(hits["path"]) == set(expected) and list(hits) == list(gallery.column_names)
        assert all((data_root(root) / path).is_file() for path in hits["path"])

    # A gallery image's own embedding finds itself, with similarity 1.
    scores, hits = gallery.get_nearest_examples("embedding", gallery_features.embeddings[3], k=1)
    assert hits["path"] == [gallery[3]["path"]] and abs(scores[0] - 1.0) < 1e-5
    batch_scores, batch_hits = gallery.get_nearest_examples_batch("embedding", queries, k=2)
    assert len(batch_hits) == len(queries) and np.asarray(batch_scores).shape == (len(queries), 2)
