"""A minimal multi-object tracking loop with hf-lareid as its appearance model.

Per frame: the detections' boxes are embedded with `ReIDBackend.embed_boxes(frame, boxes)`, then matched greedily to
the live tracks on `0.5 * IoU + 0.5 * cosine similarity` (a pair needs some overlap and a similar appearance). Unmatched
detections start tracks; tracks unseen for `--max_age` frames end. Each track keeps a running mean of its embeddings.

Runs on the generated camera videos (no download; with an untrained model unless you give one):

    python examples/track_with_reid.py                       # generates ./synthetic_video, tracks cam1.mp4
    python examples/track_with_reid.py --model ./my-model --video cam1.mp4 --detections cam1/det/det.txt

Prints one line per track (id, frames, boxes) and the number of identity switches against the generated ground truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hf_lareid.tracking import ReIDBackend
from hf_lareid.video import box_iou, open_video, read_mot


def build_backend(model_dir: str | None) -> ReIDBackend:
    """The model of `model_dir`, or an untrained tiny one (64x32 inputs) to show the interface."""
    if model_dir:
        return ReIDBackend(model_dir, runtime="auto")
    import torch
    from transformers import ViTImageProcessorPil

    from hf_lareid import LATransformerConfig, LATransformerForReID

    torch.manual_seed(0)
    backbone = dict(model_type="vit", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    config = LATransformerConfig(backbone_config={**backbone, "image_size": [64, 32], "patch_size": 16}, num_labels=2)
    processor = ViTImageProcessorPil(size={"height": 64, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return ReIDBackend(LATransformerForReID(config), processor, runtime="torch")


class Track:
    def __init__(self, track_id: int, box: np.ndarray, embedding: np.ndarray, frame: int):
        self.id, self.box, self.embedding, self.last_frame = track_id, box, embedding, frame
        self.frames = [frame]

    def update(self, box: np.ndarray, embedding: np.ndarray, frame: int) -> None:
        mean = self.embedding * len(self.frames) + embedding
        self.embedding = mean / np.linalg.norm(mean)
        self.box, self.last_frame = box, frame
        self.frames.append(frame)


def track(backend: ReIDBackend, video: str, detections_file: str, max_age: int = 5, min_iou: float = 0.1):
    """Runs the loop; returns the finished tracks and `{(frame, row): track id}`."""
    source = open_video(video)
    detections = read_mot(detections_file)
    tracks: list[Track] = []
    assignment = {}
    for frame_number, frame in source.frames():
        rows = np.flatnonzero(detections.frames == frame_number)
        boxes = detections.boxes[rows]
        embeddings = backend.embed_boxes(frame, boxes)  # (len(rows), D), unit norm
        live = [t for t in tracks if frame_number - t.last_frame <= max_age]
        if live and len(rows):
            overlap = box_iou(boxes, np.stack([t.box for t in live]))
            similarity = embeddings @ np.stack([t.embedding for t in live]).T
            score = np.where(overlap >= min_iou, 0.5 * overlap + 0.5 * similarity, -np.inf)
        else:
            score = np.full((len(rows), len(live)), -np.inf)
        matched_rows, matched_tracks = set(), set()
        for flat in np.argsort(-score, axis=None):  # greedy: best pairs first
            r, t = np.unravel_index(flat, score.shape)
            if not np.isfinite(score[r, t]) or r in matched_rows or t in matched_tracks:
                continue
            live[t].update(boxes[r], embeddings[r], frame_number)
            matched_rows.add(r), matched_tracks.add(t)
            assignment[(frame_number, int(detections.rows[rows[r]]))] = live[t].id
        for r in set(range(len(rows))) - matched_rows:
            tracks.append(Track(len(tracks) + 1, boxes[r], embeddings[r], frame_number))
            assignment[(frame_number, int(detections.rows[rows[r]]))] = tracks[-1].id
    return tracks, assignment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved hf-lareid model folder (default: an untrained tiny model)")
    parser.add_argument("--video", help="a video file or frames folder (default: the generated cam1.mp4)")
    parser.add_argument("--detections", help="its MOT detections file (default: the generated ground truth)")
    parser.add_argument("--out_dir", default="synthetic_video", help="where the generated videos go")
    args = parser.parse_args()
    if args.video is None:
        from hf_lareid.data import generate_synthetic_video

        root = generate_synthetic_video(args.out_dir)
        args.video, args.detections = str(root / "cam1.mp4"), str(root / "cam1" / "gt" / "gt.txt")
    backend = build_backend(args.model)
    tracks, assignment = track(backend, args.video, args.detections)
    for t in tracks:
        print(f"track {t.id}: frames {t.frames[0]}-{t.frames[-1]} ({len(t.frames)} boxes)")
    truth = read_mot(args.detections)
    if truth.has_track_ids:  # identity switches: a true person whose boxes changed track id
        switches = 0
        for person in np.unique(truth.track_ids):
            rows = np.flatnonzero(truth.track_ids == person)
            ids = [assignment[(int(truth.frames[r]), int(truth.rows[r]))] for r in rows]
            switches += sum(a != b for a, b in zip(ids, ids[1:]))
        print(f"{len(tracks)} tracks for {len(np.unique(truth.track_ids))} people, {switches} identity switches")
    print(f"tracked {Path(args.video).name}")


if __name__ == "__main__":
    main()
