"""Learning for real: training from scratch lowers the loss and lifts Rank-1 on held-out generated identities."""

import torch
from model_factories import tiny_training_arguments
from transformers import ViTImageProcessorPil

from hf_lareid import LATransformerConfig, LATransformerForReID
from hf_lareid.data import build_train_transform, load_reid_dataset
from hf_lareid.training import LATransformerTrainer


def crop_processor(height: int, width: int) -> ViTImageProcessorPil:
    """Resizes crops to `(height, width)` and scales pixels to [-1, 1]."""
    return ViTImageProcessorPil(size={"height": height, "width": width}, image_mean=[0.5] * 3, image_std=[0.5] * 3)


def scratch_vit_config(
    height: int, width: int, train, *, patch_size: int, hidden_size: int, num_layers: int, num_heads: int, **options
) -> LATransformerConfig:
    """An LA-Transformer on a randomly initialised ViT for `(height, width)` crops (MLP width 2 x hidden), with one
    label per person of the `train` split."""
    backbone = {
        "model_type": "vit",
        "image_size": [height, width],
        "patch_size": patch_size,
        "hidden_size": hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "intermediate_size": 2 * hidden_size,
    }
    return LATransformerConfig(backbone_config=backbone, num_labels=train.features["label"].num_classes, **options)


def test_training_lowers_the_loss_and_lifts_rank1_on_held_out_identities(tmp_path):
    height, width = 64, 32
    # 20 training identities; the query/gallery splits hold 20 other identities the model never saw.
    data = load_reid_dataset(
        "synthetic",
        data_dir=tmp_path / "data",
        num_ids=40,
        num_cameras=3,
        images_per_camera=4,
        image_size=(height, width),
        seed=0,
    )
    processor = crop_processor(height, width)
    config = scratch_vit_config(
        height, width, data["train"], patch_size=8, hidden_size=96, num_layers=4, num_heads=4, head_dropout=0.1
    )
    torch.manual_seed(0)
    train = data["train"]
    train.set_transform(build_train_transform(processor, vflip_p=0.0))
    optimization = dict(optimizer="adamw", weight_decay=0.05, lr_scheduler_type="cosine", warmup_steps=0.1)
    args = tiny_training_arguments(
        tmp_path / "out", per_device_train_batch_size=32, num_train_epochs=20, logging_steps=10, **optimization
    )
    trainer = LATransformerTrainer(
        model=LATransformerForReID(config),
        args=args,
        train_dataset=train,
        query_dataset=data["query"],
        gallery_dataset=data["gallery"],
        processing_class=processor,
    )
    untrained = trainer.evaluate()
    trainer.train()
    trained = trainer.evaluate()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    print(
        f"\nloss {losses[0]:.2f} -> {losses[-1]:.2f}; Rank-1 {untrained['eval_rank1']:.3f} -> "
        f"{trained['eval_rank1']:.3f}; mAP {untrained['eval_mAP']:.3f} -> {trained['eval_mAP']:.3f}"
    )
    assert losses[-1] < 0.8 * losses[0]
    assert trained["eval_rank1"] >= untrained["eval_rank1"] + 0.25
    assert trained["eval_mAP"] >= 2 * untrained["eval_mAP"]


def test_the_triplet_loss_falls_well_below_its_margin_on_generated_identities(tmp_path):
    """
    The triplet path learns: with P x K batches the batch-hard triplet loss on the features it compares (see
    `hf_lareid.training.trainer.triplet_features`) falls far below its margin, which it would stay at if those
    features collapsed (every distance equal).
    """
    height, width = 64, 32
    data = load_reid_dataset(
        "synthetic", data_dir=tmp_path / "data", num_ids=32, num_cameras=2, images_per_camera=4, image_size=(64, 32)
    )
    processor = crop_processor(height, width)
    config = scratch_vit_config(height, width, data["train"], patch_size=16, hidden_size=64, num_layers=2, num_heads=2)
    torch.manual_seed(0)
    train = data["train"]
    train.set_transform(build_train_transform(processor, vflip_p=0.0, color_jitter_p=0.0))
    margin = 0.3
    args = tiny_training_arguments(
        tmp_path / "out",
        per_device_train_batch_size=16,
        num_train_epochs=24,
        optimizer="adamw",
        weight_decay=0.05,
        triplet_loss_weight=1.0,
        triplet_margin=margin,
        samples_per_identity=4,
    )
    trainer = LATransformerTrainer(model=LATransformerForReID(config), args=args, train_dataset=train)
    trainer.train()
    triplet = [epoch["triplet_loss"] for epoch in trainer.learning_check.epochs]
    print(f"\ntriplet loss per epoch: {[round(value, 3) for value in triplet]} (margin {margin})")
    assert triplet[-1] < 0.5 * margin
    assert "triplet" not in (trainer.learning_check.warning or "")  # never stuck at its margin for an epoch
