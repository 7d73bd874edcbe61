"""Clips per second through the DataLoader: seek decoding of the 8 frames a clip needs (vltasks) against
decoding every frame of the file and keeping 8, on one 30 s 480p H.264 file, 224 px frames out.

    python benchmarks/bench_video_decode.py [--workers 2] [--clips 48] [--seconds 30]

Both sides run in the same process with the same DataLoader (workers, batch size, the same TSN frame
indices, the same resize); the file is written once into a temporary folder. Printed: clips/s each
way and their ratio (how many times faster it is to decode only the frames needed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vltasks.datamodules.video import _rgb, open_video, segment_indices  # noqa: E402

SIZE = 224


def write_video(path: Path, seconds: int, fps: int = 30, width: int = 854, height: int = 480) -> None:
    """A moving bar over a colour ramp: every frame differs, as real footage does (keyframe every 2 s)."""
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(2 * fps), "crf": "23", "preset": "veryfast"}
        for i in range(seconds * fps):
            a = np.repeat(np.repeat(ramp, height, 0), 3, 2).copy()
            a[:, :, 1] = (a[:, :, 1] + 3 * i) % 256
            x = (7 * i) % (width - 40)
            a[:, x : x + 40] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(a.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_all(path: str, record: str, num_frames: int, train: bool) -> list[Image.Image]:
    """The naive reader: every frame of the file (converted as vltasks converts one), then the same
    8 indices."""
    with av.open(path) as container:
        frames = [_rgb(f) for f in container.decode(video=0)]
    return [frames[i] for i in segment_indices(len(frames), num_frames, train)]


class Clips(Dataset):
    def __init__(self, path: Path, n: int, read: Any) -> None:
        self.path, self.n, self.read = str(path), n, read

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        frames = self.read(self.path, f"clip {i}", 8, True)
        return torch.stack([torch.from_numpy(np.array(f.resize((SIZE, SIZE)))) for f in frames])


def clips_per_second(path: Path, read: Any, clips: int, workers: int) -> float:
    loader = DataLoader(Clips(path, clips, read), batch_size=4, num_workers=workers)
    start = time.perf_counter()
    n = sum(batch.shape[0] for batch in loader)
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--seconds", type=int, default=30)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip_480p.mp4"
        write_video(path, args.seconds)
        seek = clips_per_second(path, open_video, args.clips, args.workers)
        every = clips_per_second(path, decode_all, max(args.workers * 4, args.clips // 6), args.workers)
    print(f"{args.seconds} s 480p H.264, 8 frames at {SIZE} px per clip, {args.workers} workers")
    print(f"  seek decoding (vltasks)    {seek:8.2f} clips/s")
    print(f"  decode every frame         {every:8.2f} clips/s")
    print(f"  ratio                      {seek / every:8.1f}x")


if __name__ == "__main__":
    main()
