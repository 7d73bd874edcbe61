"""Clips for the readers: the frames a sample needs, from a video file, a folder of frames or a
file of pre-extracted features, with the same named errors as images (datamodules/media.py).

Sampling (TSN): the clip's ``n`` frames are cut into ``num_frames`` equal segments; training takes
a random point in each segment (torch's generator: seeded per worker and epoch by Lightning), and
evaluation the middle one; the frame is the one that point falls in. A clip shorter than
``num_frames`` therefore repeats its frames in order, each about ``num_frames / n`` times (segments
shorter than a frame fall in the same frame); it is never padded with black frames.

Video files are decoded with PyAV (its wheel carries FFmpeg): for each wanted frame the decoder
seeks to the keyframe before it when the frame is more than a second ahead, else decodes forward,
so a 30 s clip costs a few GOPs, not its 900 frames. A file that ends before a wanted frame is
"truncated" and raises; nothing is filled in. Decoding runs in the DataLoader's workers.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from vltasks.datamodules.media import DEFAULT_MAX_PIXELS, BadSampleError, open_image

SOURCES = ("video", "frames", "features")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
SEEK_AFTER_SECONDS = 1.0  # a wanted frame further ahead than this is reached by seeking


def segment_indices(n_frames: int, num_frames: int, train: bool) -> list[int]:
    """Frame index per segment (TSN): a random point of each of ``num_frames`` equal segments in
    training, the middle in evaluation; the frame the point falls in."""
    if n_frames <= 0 or num_frames <= 0:
        raise ValueError(f"need frames to sample: n_frames={n_frames}, num_frames={num_frames}")
    points = torch.rand(num_frames).tolist() if train else [0.5] * num_frames
    width = n_frames / num_frames
    return [min(int((k + p) * width), n_frames - 1) for k, p in enumerate(points)]


def open_video(path: str | Path, record: str, num_frames: int, train: bool) -> list[Image.Image]:
    """``num_frames`` RGB frames of a video file, sampled by `segment_indices`, or `BadSampleError`
    naming the file and the record (missing, empty, not a video, truncated)."""
    import av

    try:
        container = av.open(str(path))
    except FileNotFoundError as e:
        raise BadSampleError(f"{path}: {record}: video file not found") from e
    except Exception as e:  # FFmpeg errors: not a video, empty, unsupported
        raise BadSampleError(f"{path}: {record}: unreadable video ({type(e).__name__}: {e})") from e
    with container:
        if not container.streams.video:
            raise BadSampleError(f"{path}: {record}: the file has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        n = stream.frames or int(round(_seconds(stream, container) * rate))  # WebM headers hold no count
        if n <= 0 or rate <= 0:
            raise BadSampleError(f"{path}: {record}: the video has no frames (or no frame rate)")
        wanted = segment_indices(n, num_frames, train)
        try:
            frames = _decode_at(container, stream, sorted(set(wanted)), rate)
        except BadSampleError:
            raise
        except Exception as e:
            raise BadSampleError(f"{path}: {record}: video fails to decode ({type(e).__name__}: {e})") from e
    missing = sorted(set(wanted) - set(frames))
    if missing:
        raise BadSampleError(
            f"{path}: {record}: truncated video: frame {missing[0]} of the {n} its header promises "
            f"could not be decoded"
        )
    return [frames[i] for i in wanted]


def _seconds(stream: Any, container: Any) -> float:
    """The stream's duration in seconds, else the container's (microseconds), else 0."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else 0.0


_LOCAL = threading.local()


def _rgb(frame: Any) -> Image.Image:
    """The frame as an RGB image through one reformatter per thread and process, single-threaded:
    ``frame.to_image()`` builds a new swscale context (and thread pool) for every frame, 8 ms a
    synthetic clip (64 px, 8 of 16 frames) against 4.5 ms here on an idle machine, 29 against 8 on a
    loaded one; the same pixels. Parallelism comes from the DataLoader's workers; a pooled context
    kept across a fork (DataLoader workers, DDP's ddp_fork) deadlocked the child, so a forked
    process also builds its own."""
    from av.video.reformatter import VideoReformatter

    cached = getattr(_LOCAL, "reformatter", None)
    if cached is None or cached[0] != os.getpid():
        cached = _LOCAL.reformatter = (os.getpid(), VideoReformatter())
    return cached[1].reformat(frame, format="rgb24", threads=1).to_image()


def _decode_at(container: Any, stream: Any, wanted: list[int], rate: float) -> dict[int, Image.Image]:
    """The wanted frame indices (sorted), seeking to the keyframe before each that is far ahead."""
    start, base = stream.start_time or 0, float(stream.time_base)
    out: dict[int, Image.Image] = {}
    decoder, current = None, -1
    for i in wanted:
        if decoder is None or i - current > SEEK_AFTER_SECONDS * rate:
            container.seek(start + int(i / rate / base), stream=stream, backward=True, any_frame=False)
            decoder = container.decode(stream)
        for frame in decoder:
            current = round((frame.pts - start) * base * rate) if frame.pts is not None else current + 1
            if current >= i:
                out[i] = _rgb(frame)
                break
        else:
            break  # the stream ended first: the rest are missing
    return out


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def open_frames(
    folder: str | Path, record: str, num_frames: int, train: bool, max_pixels: int | None
) -> list[Image.Image]:
    """Frames sampled from a folder of extracted images (``00001.jpg``... in natural order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadSampleError(f"{folder}: {record}: frame folder not found")
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=lambda p: _natural(p.name)
    )
    if not files:
        raise BadSampleError(f"{folder}: {record}: the frame folder holds no {'/'.join(FRAME_SUFFIXES)} file")
    return [open_image(files[i], record, max_pixels) for i in segment_indices(len(files), num_frames, train)]


def read_features(
    path: str | Path, record: str, key: str | None = None, feature_dim: int | None = None
) -> np.ndarray:
    """A [T, D] float array from ``.npy``, ``.npz`` (``features`` or its only array) or an HDF5 file
    keyed by video id (TGIF-QA / MSR-VTT feature releases). Anything else is named with its shape."""
    path = Path(path)
    where = f"{path}[{key!r}]" if key is not None else str(path)
    try:
        if path.suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                if key not in f:
                    raise BadSampleError(f"{path}: {record}: no features under key {key!r}")
                array = np.asarray(f[key][()])
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                name = key or ("features" if "features" in names else names[0] if len(names) == 1 else None)
                if name not in names:
                    raise BadSampleError(
                        f"{path}: {record}: .npz has no array {name or 'features'!r} ({names})"
                    )
                array = z[name]
        else:
            array = np.load(path, allow_pickle=False)
    except BadSampleError:
        raise
    except FileNotFoundError as e:
        raise BadSampleError(f"{path}: {record}: feature file not found") from e
    except Exception as e:
        raise BadSampleError(f"{where}: {record}: unreadable features ({type(e).__name__}: {e})") from e
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating) or array.shape[0] == 0:
        raise BadSampleError(
            f"{where}: {record}: features must be a non-empty float [time, dim] array, found "
            f"{array.dtype} of shape {tuple(array.shape)}"
        )
    if feature_dim is not None and array.shape[1] != feature_dim:
        raise BadSampleError(
            f"{where}: {record}: features of shape {tuple(array.shape)}, expected dim {feature_dim} "
            f"(backbone.video.feature_dim)"
        )
    if not np.isfinite(array).all():
        raise BadSampleError(f"{where}: {record}: features hold NaN or infinite values")
    return array.astype(np.float32, copy=False)


class VideoLoader:
    """A video dataset's ``load``: the sample's clip as frames (``frames``: ``num_frames`` images) or
    features (``features``: [num_frames or all, D]). Picklable: it runs in the loader's workers."""

    def __init__(
        self,
        source: str,
        num_frames: int | None,
        train: bool,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        feature_dim: int | None = None,
        feature_key: str | None = None,
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"video source must be one of {SOURCES}, got {source!r}")
        if source != "features" and not num_frames:
            raise ValueError("decoding frames needs num_frames")
        self.source, self.num_frames, self.train = source, num_frames, train
        self.max_pixels, self.feature_dim, self.feature_key = max_pixels, feature_dim, feature_key

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        path, record = sample["video_path"], sample["record"]
        if self.source == "video":
            return {**sample, "frames": open_video(path, record, self.num_frames, self.train)}
        if self.source == "frames":
            return {
                **sample,
                "frames": open_frames(path, record, self.num_frames, self.train, self.max_pixels),
            }
        features = read_features(path, record, sample.get("video_key") or self.feature_key, self.feature_dim)
        if self.num_frames:
            features = features[segment_indices(len(features), self.num_frames, self.train)]
        return {**sample, "features": features}


def clip_inputs(processor: Any, samples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The batch's clips: ``video`` [B, T, 3, H, W] through the image processor, or
    ``video_features`` [B, T, D] padded to the longest clip with ``frame_mask`` [B, T] (1 = a real
    time step); the batch contract, vltasks/batch.py."""
    if "frames" in samples[0]:
        t = len(samples[0]["frames"])
        pixels = processor.images([f for s in samples for f in s["frames"]])["pixel_values"]
        return {"video": pixels.view(len(samples), t, *pixels.shape[1:])}
    lengths = [len(s["features"]) for s in samples]
    features = torch.zeros(len(samples), max(lengths), samples[0]["features"].shape[1])
    for i, s in enumerate(samples):
        features[i, : lengths[i]] = torch.from_numpy(s["features"])
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    return {"video_features": features, "frame_mask": mask}


VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".gif")  # .gif: TGIF-QA (PyAV decodes GIFs)
CLIP_OPTIONS: dict[str, Any] = {
    "video_source": "video",  # video | frames | features
    "video_dir": None,  # video files: <root>/<video_dir>/<video_id>.<mp4|webm|avi|...> (dataset default)
    "frames_dir": "frames",  # extracted frames: <root>/<frames_dir>/<video_id>/00001.jpg ...
    "feature_file": "features/features.h5",  # one HDF5 keyed by video id, or a folder of <id>.npy/.npz
    "feature_key": None,  # the array of each .npz to read (None: "features", or its only array)
    "num_frames": 8,  # frames (or feature steps) sampled per clip; features: 0 keeps every step
    "feature_dim": None,  # when set, feature files of another width are bad records
    "check_videos": True,  # each clip's file, folder or key exists (read time)
}


class ClipSource:
    """Mixin for readers of clips: where a video id's clip is in the configured source, checked at
    read time, and the dataset that decodes it in the loader's workers."""

    needs = frozenset({"video"})
    item_kind = "videos"
    video_dir_default = "videos"
    root: Path
    opts: dict[str, Any]
    max_image_pixels: int | None

    def clip(self, video_id: str) -> tuple[dict[str, Any], str | None]:
        """({"video_path", "video_key"}, None), or ({"video_path": where}, the problem)."""
        from vltasks.datamodules.media import path_inside

        source = self.opts["video_source"]
        if source not in SOURCES:
            raise ValueError(f"data.options.video_source must be one of {SOURCES}, got {source!r}")
        if source == "features":
            file = self.root / self.opts["feature_file"]
            if file.suffix in (".h5", ".hdf5"):
                if self.opts["check_videos"] and video_id not in self._h5_keys(file):
                    return {"video_path": str(file)}, f"no features for video {video_id!r} in {file.name}"
                return {"video_path": str(file), "video_key": video_id}, None
            found = [file / f"{video_id}{s}" for s in (".npy", ".npz")]
        else:
            folder = self.root / (self.opts["video_dir"] or self.video_dir_default)
            base = self.root / self.opts["frames_dir"] if source == "frames" else folder
            path, problem = path_inside(base, video_id)
            if problem is not None:
                return {"video_path": str(base)}, problem
            # a video id may be the file name itself (DiDeMo), or its stem (most releases)
            found = (
                [path]
                if source == "frames"
                else [path, *(path.with_name(path.name + s) for s in VIDEO_SUFFIXES)]
            )
            if source == "video" and path.suffix:
                found += [path.with_suffix(s) for s in VIDEO_SUFFIXES]
        exists = [p for p in found if (p.is_dir() if source == "frames" else p.is_file())]
        if self.opts["check_videos"] and not exists:
            what = {"video": "video file", "frames": "frame folder", "features": "feature file"}[source]
            shown = found[1] if source == "video" and not Path(video_id).suffix else found[0]
            return {"video_path": str(shown)}, f"{what} not found"
        return {"video_path": str((exists or found)[0])}, None

    def clip_items(
        self, videos: list[tuple[str, int, Path]], captions: dict[str, list[tuple[int, str]]], problems: Any
    ) -> list[dict[str, Any]]:
        """One item per (video id, index, annotation file) that has captions and a clip: the sample a
        captioned video corpus reads (datamodules/caption_corpus.py)."""
        out = []
        for vid, index, file in videos:
            record = f"video_id={vid}"
            pairs = captions.get(vid)
            if not pairs:
                problems.report(file, record, "has no usable sentence")
                continue
            clip, problem = self.clip(vid)
            if problem is not None:
                problems.report(clip["video_path"], record, problem)
                continue
            out.append(
                {
                    "sample_id": vid,
                    "record": record,
                    "imgid": index,
                    "image_id": index,
                    "video_id": vid,
                    **clip,
                    "captions": [c for _, c in pairs],
                    "sentids": [sid for sid, _ in pairs],
                }
            )
        return out

    def _h5_keys(self, file: Path) -> set[str]:
        cache = self.__dict__.setdefault("_h5_cache", {})
        if file not in cache:
            import h5py

            if not file.is_file():
                raise FileNotFoundError(f"{file}: feature file not found (data.options.feature_file)")
            with h5py.File(file, "r") as f:
                cache[file] = set(f.keys())
        return cache[file]

    def dataset(self, samples: list[dict[str, Any]], train: bool = False) -> Any:
        from vltasks.datamodules.media import SampleDataset

        opts = self.opts
        num = int(opts["num_frames"] or 0) or None
        loader = VideoLoader(
            opts["video_source"], num, train, self.max_image_pixels, opts["feature_dim"], opts["feature_key"]
        )
        return SampleDataset(samples, loader, draws_random=train)  # TSN: a random frame per segment
