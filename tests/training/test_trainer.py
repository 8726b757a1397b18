"""LATransformerTrainer: exact gradient accumulation, optimizer, loss components, model card."""

from __future__ import annotations

import pytest
import torch
from model_factories import tiny_training_arguments, tiny_training_model
from torch import nn
from training_helpers import RandomReIDDataset, retrieval_split
from transformers import TrainingArguments

from hf_lareid.hub.modelcard import read_model_card_metadata
from hf_lareid.training import (
    BlockwiseUnfreezeCallback,
    LATransformerTrainer,
    LATransformerTrainingArguments,
    collate_reid_batch,
    part_cross_entropy,
)


def training_args(output_dir, **overrides) -> LATransformerTrainingArguments:
    """`tiny_training_arguments`: one logged step at learning rate 0.1."""
    return tiny_training_arguments(
        output_dir, **{"max_steps": 1, "learning_rate": 0.1, "logging_steps": 1, **overrides}
    )


def keep_batchnorm_in_eval_mode(model: nn.Module) -> None:
    """BatchNorm in training mode normalises by batch statistics, which differ for B and 2B samples."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.eval()
            module.train = lambda mode=True, m=module: m


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_gradient_accumulation_2_x_b_equals_one_step_of_2b(tmp_path, label_smoothing):
    final = []
    for batch_size, accumulation in [(4, 2), (8, 1)]:
        model = tiny_training_model(seed=0)
        keep_batchnorm_in_eval_mode(model)
        # SGD: a step is proportional to the gradient (Adam's first step would hide a doubled gradient).
        trainer = LATransformerTrainer(
            model=model,
            args=training_args(
                tmp_path,
                per_device_train_batch_size=batch_size,
                gradient_accumulation_steps=accumulation,
                label_smoothing=label_smoothing,
            ),
            train_dataset=RandomReIDDataset(8),
            optimizers=(torch.optim.SGD(model.parameters(), lr=0.1), None),
        )
        trainer.train()
        assert trainer.state.global_step == 1
        final.append({n: p.detach().clone() for n, p in model.named_parameters()})
    initial = dict(tiny_training_model(seed=0).named_parameters())
    for name, value in final[0].items():
        assert not torch.equal(value, initial[name]) or name.startswith("vit.embeddings.cls")  # it did train
        torch.testing.assert_close(value, final[1][name], atol=1e-6, rtol=1e-5, msg=name)


def test_paper_adam_over_all_parameters_with_weight_decay(tmp_path):
    model = tiny_training_model()
    model.vit.layers[0].requires_grad_(False)  # frozen before the optimizer exists: must still be in it
    trainer = LATransformerTrainer(model=model, args=training_args(tmp_path), train_dataset=RandomReIDDataset(8))
    optimizer = trainer.create_optimizer()
    assert type(optimizer) is torch.optim.Adam
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {id(p) for p in model.parameters()}
    # As the original code's optim.Adam(model.parameters(), weight_decay=5e-4): L2 decay on EVERY parameter,
    # biases and norms included.
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert set(decay_of.values()) == {5e-4}
    named = dict(model.named_parameters())
    assert decay_of[id(named["vit.layernorm.weight"])] == 5e-4
    assert decay_of[id(named["vit.layers.0.mlp.fc1.bias"])] == 5e-4
    # AdamW: decoupled decay with the usual no-decay group for biases and norms.
    adamw_model = tiny_training_model()
    adamw = LATransformerTrainer(
        model=adamw_model, args=training_args(tmp_path, optimizer="adamw"), train_dataset=RandomReIDDataset(8)
    )
    adamw_optimizer = adamw.create_optimizer()
    assert type(adamw_optimizer) is torch.optim.AdamW
    decay_of = {id(p): g["weight_decay"] for g in adamw_optimizer.param_groups for p in g["params"]}
    assert len(decay_of) == len(list(adamw_model.parameters()))
    named = dict(adamw_model.named_parameters())
    assert decay_of[id(named["vit.layernorm.weight"])] == 0.0
    assert decay_of[id(named["vit.layers.0.mlp.fc1.bias"])] == 0.0
    assert decay_of[id(named["vit.layers.0.mlp.fc1.weight"])] == 5e-4
    everywhere = LATransformerTrainer(
        model=tiny_training_model(),
        args=training_args(tmp_path, optimizer="adamw", decay_biases_and_norms=True, weight_decay=0.05),
        train_dataset=RandomReIDDataset(8),
    ).create_optimizer()
    assert type(everywhere) is torch.optim.AdamW and [g["weight_decay"] for g in everywhere.param_groups] == [0.05]
    with pytest.raises(ValueError, match="optimizer must be one of"):
        training_args(tmp_path, optimizer="sgd")


def test_one_cycle_is_torchs_onecycle_lr_over_the_run(tmp_path):
    args = training_args(
        tmp_path, optimizer="adamw", lr_scheduler_type="one_cycle", warmup_steps=0.1, learning_rate=1e-3
    )
    assert args.lr_scheduler_type == "one_cycle" and args.to_dict()["lr_scheduler_type"] == "one_cycle"
    trainer = LATransformerTrainer(model=tiny_training_model(), args=args, train_dataset=RandomReIDDataset(8))
    trainer.create_optimizer()
    scheduler = trainer.create_scheduler(40)
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR) and scheduler.total_steps == 40
    group = trainer.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(1e-3 / 25) and group["betas"][0] == pytest.approx(0.95)  # cycle_momentum
    for _ in range(3):  # pct_start 0.1 of 40 steps: torch's OneCycleLR peaks at step 0.1 * 40 - 1 = 3
        trainer.optimizer.step()
        scheduler.step()
    assert group["lr"] == pytest.approx(1e-3) and group["betas"][0] == pytest.approx(0.85)
    with pytest.raises(ValueError, match="one_cycle sets the learning rate of every step itself"):
        LATransformerTrainer(
            model=tiny_training_model(),
            args=args,
            train_dataset=RandomReIDDataset(8),
            callbacks=[BlockwiseUnfreezeCallback()],
        )


def test_the_trainer_decides_on_its_own_copy_of_the_arguments(tmp_path):
    args = training_args(tmp_path)  # lr_scheduler_type "auto"
    trainer = LATransformerTrainer(
        model=tiny_training_model(),
        args=args,
        train_dataset=RandomReIDDataset(8),
        callbacks=[BlockwiseUnfreezeCallback()],
    )
    assert trainer.args.lr_scheduler_type == "constant" and trainer.args.ddp_find_unused_parameters
    assert trainer.args is not args and args.auto_lr_scheduler and args.ddp_find_unused_parameters is None
    plain = TrainingArguments(str(tmp_path), use_cpu=True, report_to="none", learning_rate=2e-3)
    converted = LATransformerTrainer(model=tiny_training_model(), args=plain, train_dataset=RandomReIDDataset(8)).args
    assert isinstance(converted, LATransformerTrainingArguments) and converted.learning_rate == 2e-3
    assert converted.optimizer == "adam" and converted.weight_decay == plain.weight_decay  # the caller's value kept


def test_loss_components_are_logged(tmp_path):
    trainer = LATransformerTrainer(
        model=tiny_training_model(seed=0),
        args=training_args(tmp_path, max_steps=2, learning_rate=1e-3),
        train_dataset=RandomReIDDataset(8),
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(entry["ce_loss"] == pytest.approx(entry["loss"], rel=1e-3) for entry in logs)
    assert trainer.args.lr_scheduler_type == "linear"  # "auto" without the unfreeze callback


def test_label_smoothing_loss(tmp_path):
    model = tiny_training_model(seed=0).eval()
    with torch.no_grad():  # confident, distinct logits, so that smoothing matters
        for head in model.part_classifiers:
            head.classifier.weight.normal_(std=1.0)
    batch = collate_reid_batch([RandomReIDDataset(4)[i] for i in range(4)])
    trainer = LATransformerTrainer(model=model, args=training_args(tmp_path, label_smoothing=0.3))
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
        plain = model(**batch).loss
    torch.testing.assert_close(loss, part_cross_entropy(outputs.logits, batch["labels"], label_smoothing=0.3))
    assert not torch.isclose(loss, plain)


def test_label_smoothing_factor_is_an_alias_of_label_smoothing(tmp_path):
    assert training_args(tmp_path, label_smoothing_factor=0.2).label_smoothing == 0.2
    assert training_args(tmp_path, label_smoothing=0.2).label_smoothing_factor == 0.2
    assert training_args(tmp_path, label_smoothing=0.2, label_smoothing_factor=0.2).label_smoothing == 0.2
    with pytest.raises(ValueError, match="label_smoothing=0.1 and label_smoothing_factor=0.2 disagree"):
        training_args(tmp_path, label_smoothing=0.1, label_smoothing_factor=0.2)


def test_no_gradient_clipping_by_default_as_the_original_code(tmp_path):
    assert training_args(tmp_path).max_grad_norm == 0.0
    model = tiny_training_model(seed=0)
    trainer = LATransformerTrainer(
        model=model, args=training_args(tmp_path, learning_rate=1e-3), train_dataset=RandomReIDDataset(8)
    )
    clipped = []
    original = trainer._clip_grad_norm
    trainer._clip_grad_norm = lambda model: clipped.append(1) or original(model)
    trainer.train()
    assert clipped == []
    trainer.args.max_grad_norm = 1.0  # the same hook does clip when asked
    trainer.train()
    assert clipped


def test_bottleneck_embedding_puts_the_triplet_before_the_batchnorm(tmp_path):
    from hf_lareid.training import batch_hard_triplet_loss

    model = tiny_training_model(seed=0, embedding="bottleneck").eval()
    batch = collate_reid_batch([RandomReIDDataset(12)[i] for i in range(12)])
    trainer = LATransformerTrainer(
        model=model, args=training_args(tmp_path, triplet_loss_weight=1.0, samples_per_identity=2)
    )
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    before_norm = torch.nn.functional.normalize(outputs.part_features.flatten(1), dim=-1)
    expected = outputs.loss + batch_hard_triplet_loss(before_norm, batch["labels"], margin=0.3)
    torch.testing.assert_close(loss, expected)
    assert outputs.embeddings.shape[1] == model.config.num_parts * model.config.bottleneck_dim  # retrieval: after


def test_collate_reid_batch_and_its_errors():
    batch = collate_reid_batch(
        [{"pixel_values": torch.zeros(3, 4, 2), "label": 1}, {"pixel_values": torch.ones(3, 4, 2), "label": 0}]
    )
    assert batch["pixel_values"].shape == (2, 3, 4, 2) and batch["labels"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="pixel_values"):
        collate_reid_batch([{"image": None, "label": 1}])
    with pytest.raises(ValueError, match="label"):
        collate_reid_batch([{"pixel_values": torch.zeros(3, 4, 2)}])


def test_query_without_gallery_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="gallery_dataset"):
        LATransformerTrainer(
            model=tiny_training_model(), args=training_args(tmp_path), query_dataset=RandomReIDDataset(4)
        )


def test_create_model_card_writes_the_hf_lareid_card(tmp_path):
    trainer = LATransformerTrainer(
        model=tiny_training_model(),
        args=training_args(tmp_path),
        train_dataset=RandomReIDDataset(8),
        model_card_fields={"setup": "tiny", "datasets": {"synthetic": 6}, "eval_dataset": "synthetic"},
    )
    trainer.state.log_history.append({"eval_rank1": 0.5, "eval_mAP": 0.25, "step": 1})
    trainer.create_model_card(model_name="my-reid")  # what push_to_hub calls
    metadata = read_model_card_metadata(tmp_path / "README.md")
    assert metadata["library_name"] == "hf-lareid" and metadata["datasets"] == ["synthetic"]
    metrics = {m["name"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"Rank-1 (%)": 50.0, "mAP (%)": 25.0}
    assert metadata["model-index"][0]["name"] == "my-reid"


def test_triplet_loss_uses_identity_balanced_batches_and_is_logged(tmp_path):
    from hf_lareid.data import PKSampler

    trainer = LATransformerTrainer(
        model=tiny_training_model(),
        train_dataset=RandomReIDDataset(12),
        args=training_args(tmp_path, max_steps=2, learning_rate=1e-3, triplet_loss_weight=1.0, samples_per_identity=2),
    )
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, PKSampler)
    labels = RandomReIDDataset(12).labels
    for start in range(0, len(sampler), 4):  # P=2 identities x K=2 images per batch of 4
        batch = [labels[i] for i in list(sampler)[start : start + 4]]
        assert sorted(batch.count(label) for label in set(batch)) == [2, 2]
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all("triplet_loss" in entry and "ce_loss" in entry for entry in logs)
    assert logs[0]["loss"] == pytest.approx(logs[0]["ce_loss"] + logs[0]["triplet_loss"], abs=2e-3)
    with pytest.raises(ValueError, match="multiple of samples_per_identity"):
        LATransformerTrainer(
            model=tiny_training_model(),
            train_dataset=RandomReIDDataset(12),
            args=training_args(tmp_path, triplet_loss_weight=1.0, samples_per_identity=3),
        )._get_train_sampler()


def test_retrieval_metrics_drive_best_model_selection(tmp_path):
    query, gallery = retrieval_split(4, camera=1, seed=1), retrieval_split(4, camera=2, seed=2)
    trainer = LATransformerTrainer(
        model=tiny_training_model(),
        train_dataset=RandomReIDDataset(8),
        query_dataset=query,
        gallery_dataset=gallery,
        args=training_args(
            tmp_path,
            max_steps=4,
            learning_rate=1e-3,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="steps",
            save_steps=2,
            load_best_model_at_end=True,
            metric_for_best_model="rank1",
        ),
    )
    metrics = trainer.evaluate()
    assert set(metrics) >= {"eval_rank1", "eval_rank5", "eval_rank10", "eval_mAP", "eval_mINP"}
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("eval_rank1", "eval_mAP", "eval_mINP"))
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_rank1" in entry and entry["step"] > 0]
    assert [entry["step"] for entry in evaluations] == [2, 4]
    best = max(evaluations, key=lambda entry: entry["eval_rank1"])  # first of equals wins, as in the Trainer
    assert trainer.state.best_metric == best["eval_rank1"]
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    # The best checkpoint was loaded back with every encoder weight (not only the heads).
    reloaded = type(trainer.model).from_pretrained(trainer.state.best_model_checkpoint)
    for name, tensor in reloaded.state_dict().items():
        torch.testing.assert_close(trainer.model.state_dict()[name], tensor, msg=name)


def test_trainer_predict_returns_embeddings_then_logits_without_the_pooler_copy(tmp_path):
    """The Trainer's prediction path reads outputs by name: loss, then the output fields but `pooler_output`."""
    model = tiny_training_model().eval()
    dataset = RandomReIDDataset(6)
    trainer = LATransformerTrainer(
        model=model, args=training_args(tmp_path, per_device_eval_batch_size=4), data_collator=collate_reid_batch
    )
    result = trainer.predict(dataset)
    embeddings, logits, part_features = result.predictions  # no fourth entry: pooler_output is ignored
    with torch.no_grad():
        out = model(dataset.pixel_values, labels=torch.tensor(dataset.labels))
    torch.testing.assert_close(torch.from_numpy(embeddings), out.embeddings, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(logits), out.logits, atol=1e-5, rtol=1e-4)
    assert part_features.shape == tuple(out.part_features.shape)
    assert result.label_ids.tolist() == dataset.labels
    # The loss is a per-sample mean, so the batch-size weighted mean of the batch losses is the whole set's.
    assert result.metrics["test_loss"] == pytest.approx(float(out.loss), rel=1e-4)


def test_evaluation_runs_pytorch_unless_a_runtime_is_passed_which_exports_the_current_weights(tmp_path):
    """No ONNX export inside training by default; `eval_runtime` runs an export of today's weights: same metrics."""
    pytest.importorskip("onnxruntime")
    from hf_lareid.embedding.backends import TorchEmbedder, onnx_cache_dir

    query, gallery = retrieval_split(4, camera=1, seed=1), retrieval_split(4, camera=2, seed=2)
    trainer = LATransformerTrainer(
        model=tiny_training_model(), query_dataset=query, gallery_dataset=gallery, args=training_args(tmp_path)
    )
    assert isinstance(trainer.evaluation_encoder().embedder, TorchEmbedder)
    eager = trainer.evaluate()
    trainer.eval_runtime = "onnxruntime"
    embedder = trainer.evaluation_encoder().embedder
    assert not isinstance(embedder, TorchEmbedder) and embedder.name == "onnxruntime"
    cached = set(onnx_cache_dir().glob("*")) if onnx_cache_dir().is_dir() else set()
    exported = trainer.evaluate()
    assert (set(onnx_cache_dir().glob("*")) if onnx_cache_dir().is_dir() else set()) == cached  # nothing cached
    for name in ("eval_rank1", "eval_rank5", "eval_mAP", "eval_mINP"):
        assert exported[name] == pytest.approx(eager[name], abs=1e-6), name
