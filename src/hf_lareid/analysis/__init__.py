"""Looking inside a model and its results: attention rollout (`analysis.attention_rollout`) and the pictures
(`analysis.pictures`: ranked lists, CMC curves, training curves; the `plots` extra)."""
