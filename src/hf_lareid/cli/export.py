"""`lareid export-onnx`: the embedding model as ONNX, checked against PyTorch with onnxruntime."""

from __future__ import annotations

import argparse

from ._common import load_model_and_processor

DESCRIPTION = "Export the embedding model (pixels in, unit-norm embeddings out, dynamic batch) to ONNX and verify it."
EXAMPLE = "lareid export-onnx ./my-model ./my-model.onnx --opset 18"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved model folder or Hub id")
    parser.add_argument("output", help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: the exporter's)")


def run(args: argparse.Namespace) -> int:
    from ..embedding.onnx_export import export_onnx
    from ..utils.output_guard import claim_outputs

    with claim_outputs([args.output], fix="give another .onnx file name"):  # before the model loads
        model, image_processor = load_model_and_processor(args.model)
        kwargs = {"opset": args.opset} if args.opset is not None else {}
        report = export_onnx(model, args.output, image_processor=image_processor, **kwargs)
    print(
        f"wrote {args.output} ({report['file_size_bytes'] / 2**20:.1f} MiB, opset {report['opset']}, "
        f"{report['exporter']} exporter); onnxruntime vs PyTorch max abs diff {report['max_abs_diff']:.2e} "
        f"over batch sizes {sorted(report['max_abs_diff_per_batch_size'])}"
    )
    return 0
