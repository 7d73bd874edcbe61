"""Clips for the readers (datamodules/video.py): TSN sampling, seek decoding that equals decoding
every frame, frame folders, feature files, and a named error for every broken input."""

from __future__ import annotations

from pathlib import Path

import av
import h5py
import numpy as np
import pytest
import torch
from PIL import Image
from vltasks.datamodules.media import BadSampleError, SampleDataset
from vltasks.datamodules.synthetic.motion import write_frames, write_mp4
from vltasks.datamodules.video import (
    VideoLoader,
    clip_inputs,
    open_frames,
    open_video,
    read_features,
    segment_indices,
)

from vltasks.batch import FAILED


def _frames(n: int, size: int = 32) -> list[Image.Image]:
    """Frame i is a grey level 4 * i with a bar at x = i: every frame tells its index."""
    out = []
    for i in range(n):
        a = np.full((size, size, 3), (4 * i) % 256, np.uint8)
        a[:, i % size] = 255
        out.append(Image.fromarray(a))
    return out


def _decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_segments_take_the_middle_in_evaluation_and_one_point_each_in_training():
    assert segment_indices(16, 8, train=False) == [1, 3, 5, 7, 9, 11, 13, 15]
    # a clip shorter than num_frames repeats its frames in order, each about num_frames / n times
    assert segment_indices(3, 8, train=False) == [0, 0, 0, 1, 1, 2, 2, 2]
    torch.manual_seed(0)
    first = segment_indices(100, 8, train=True)
    torch.manual_seed(0)
    assert segment_indices(100, 8, train=True) == first  # the worker's seeded generator decides
    assert all(12.5 * k <= i < 12.5 * (k + 1) for k, i in enumerate(first))
    assert len({tuple(segment_indices(100, 8, train=True)) for _ in range(5)}) > 1
    with pytest.raises(ValueError):
        segment_indices(0, 8, train=False)


@pytest.mark.parametrize("n", [16, 160])  # 160 frames at 8 fps: the 8 wanted frames are reached by seeking
def test_seek_decoding_equals_decoding_every_frame(tmp_path, n):
    path = tmp_path / "clip.mp4"
    write_mp4(path, _frames(n), fps=8)
    every = _decode_all(path)
    assert len(every) == n
    for train in (False, True):
        torch.manual_seed(3)
        wanted = segment_indices(n, 8, train)
        torch.manual_seed(3)
        got = open_video(path, "video_id=v1", 8, train)
        assert len(got) == 8
        for image, i in zip(got, wanted):
            np.testing.assert_array_equal(np.asarray(image), every[i])


def _decode_in_child(path: str, queue) -> None:
    queue.put([np.asarray(i).sum() for i in open_video(path, "video_id=v1", 8, False)])


def test_a_forked_process_decodes_after_its_parent_did(tmp_path):
    """The RGB conversion is cached per thread; a fork (DataLoader workers, DDP's ddp_fork) must
    build its own: the parent's swscale context deadlocked in the child (its threads are gone)."""
    import multiprocessing as mp

    path = tmp_path / "clip.mp4"
    write_mp4(path, _frames(16, size=64), fps=8)
    want = [np.asarray(i).sum() for i in open_video(path, "video_id=v1", 8, False)]
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_decode_in_child, args=(str(path), queue))
    child.start()
    child.join(timeout=60)
    hung = child.is_alive()
    if hung:
        child.kill()
    assert not hung, "decoding in a forked child hung"
    assert queue.get(timeout=5) == want


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: None, "video file not found"),
        (lambda p: p.write_bytes(b""), "unreadable video"),
        (lambda p: p.write_bytes(b"\x00\x01not a video at all" * 50), "unreadable video"),
        (lambda p: p.write_bytes(_mp4_bytes(p)[: len(_mp4_bytes(p)) // 2]), "video"),
    ],
    ids=["missing", "empty", "corrupt", "truncated"],
)
def test_a_broken_video_is_named_with_its_record_never_filled_in(tmp_path, make, says):
    path = tmp_path / "video7.mp4"
    make(path)
    with pytest.raises(BadSampleError) as e:
        open_video(path, "video_id=video7", 8, False)
    assert str(path) in str(e.value) and "video_id=video7" in str(e.value) and says in str(e.value)
    # in a dataset the error becomes the failed-sample marker the DataModule counts or raises
    loader = VideoLoader("video", 8, False)
    item = SampleDataset(
        [{"sample_id": "video7", "record": "video_id=video7", "video_path": str(path)}], loader
    )[0]
    assert says in item[FAILED]


def _mp4_bytes(path: Path) -> bytes:
    full = path.with_name("full.mp4")
    if not full.exists():
        write_mp4(full, _frames(16), fps=8)
    return full.read_bytes()


def test_frame_folders_are_read_in_natural_order(tmp_path):
    folder = tmp_path / "frames" / "video3"
    write_frames(folder, _frames(16))
    for p in folder.iterdir():  # 00001.jpg -> 1.jpg: natural order, not 1, 10, 11, ..., 2
        p.rename(p.with_name(f"{int(p.stem)}.jpg"))
    got = open_frames(folder, "video_id=video3", 8, False, None)
    levels = [round(float(np.asarray(im)[:, :, 0].mean() - 255 / 32)) for im in got]
    assert levels == sorted(levels) and len(got) == 8
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadSampleError, match="holds no"):
        open_frames(tmp_path / "empty", "video_id=x", 8, False, None)
    with pytest.raises(BadSampleError, match="frame folder not found"):
        open_frames(tmp_path / "nowhere", "video_id=x", 8, False, None)


def test_feature_files_npy_npz_and_hdf5_and_their_errors(tmp_path):
    good = np.random.default_rng(0).random((12, 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", good)
    np.savez(tmp_path / "b.npz", features=good, other=good)
    with h5py.File(tmp_path / "all.h5", "w") as f:
        f.create_dataset("video9", data=good)
        f.create_dataset("flat", data=good.reshape(-1))
        f.create_dataset("ints", data=good.astype(np.int64))
    for path, key in (
        (tmp_path / "a.npy", None),
        (tmp_path / "b.npz", None),
        (tmp_path / "all.h5", "video9"),
    ):
        np.testing.assert_array_equal(read_features(path, "r", key, feature_dim=6), good)
    cases = [
        ((tmp_path / "all.h5", "flat", None), "of shape (72,)"),
        ((tmp_path / "all.h5", "ints", None), "found int64 of shape (12, 6)"),
        ((tmp_path / "all.h5", "video9", 8), "expected dim 8"),
        ((tmp_path / "all.h5", "nope", None), "no features under key 'nope'"),
        ((tmp_path / "missing.npy", None, None), "feature file not found"),
    ]
    for (path, key, dim), says in cases:
        with pytest.raises(BadSampleError) as e:
            read_features(path, "video_id=video9", key, dim)
        assert says in str(e.value) and "video_id=video9" in str(e.value)
    bad = good.copy()
    bad[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(BadSampleError, match="NaN or infinite"):
        read_features(tmp_path / "nan.npy", "r")


class _Processor:
    def images(self, images):
        return {
            "pixel_values": torch.stack(
                [torch.from_numpy(np.asarray(i, np.float32)).permute(2, 0, 1) for i in images]
            )
        }


def test_clip_inputs_shape_frames_and_pad_features_with_a_mask():
    frames = [{"frames": _frames(4)}, {"frames": _frames(4)}]
    video = clip_inputs(_Processor(), frames)["video"]
    assert video.shape == (2, 4, 3, 32, 32) and torch.equal(video[1, 2], video[0, 2])
    feats = [{"features": np.ones((3, 5), np.float32)}, {"features": np.full((5, 5), 2, np.float32)}]
    out = clip_inputs(_Processor(), feats)
    assert out["video_features"].shape == (2, 5, 5) and out["frame_mask"].tolist() == [
        [1, 1, 1, 0, 0],
        [1] * 5,
    ]
    assert float(out["video_features"][0, 3:].abs().sum()) == 0.0


def test_a_webm_whose_header_counts_no_frames_is_timed_by_its_duration(tmp_path):
    """WebM (MSR-VTT's fallback format in CLIP4Clip) stores no frame count: the duration gives it."""
    from fractions import Fraction

    path = tmp_path / "clip.webm"
    with av.open(str(path), "w") as c:
        stream = c.add_stream("libvpx", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(16):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 8)
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 0
    levels = [float(np.asarray(f).mean()) for f in open_video(path, "video_id=w", 8, False)]
    assert levels == pytest.approx([10 * i for i in (1, 3, 5, 7, 9, 11, 13, 15)], abs=3)
