"""The synthetic world: deterministic scenes, visible non-overlapping objects, spatial helpers."""

import numpy as np
from vltasks.datamodules.synthetic import (
    COLORS,
    SHAPES,
    Obj,
    Scene,
    above,
    describe,
    image_rng,
    left_of,
    render,
    sample_scene,
)


def _scenes(seed: int, n: int = 50) -> list[Scene]:
    return [sample_scene(image_rng(seed, i), i) for i in range(n)]


def test_vocabulary():
    assert SHAPES == ("circle", "square", "triangle")
    assert list(COLORS) == ["red", "green", "blue", "yellow", "purple"]
    rgb = np.array(list(COLORS.values()), dtype=float)
    dists = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1) + np.eye(len(rgb)) * 1e9
    assert dists.min() > 80


def test_scenes_are_deterministic_and_seed_dependent():
    assert [s.to_dict() for s in _scenes(3)] == [s.to_dict() for s in _scenes(3)]
    assert [s.to_dict() for s in _scenes(3)] != [s.to_dict() for s in _scenes(4)]


def test_objects_fit_do_not_overlap_and_round_trip():
    for scene in _scenes(0, 200):
        assert 1 <= len(scene.objects) <= 3
        for i, o in enumerate(scene.objects):
            x0, y0, x1, y1 = o.bbox_xyxy
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            assert 14 <= x1 - x0 <= 24 and o.center == ((x0 + x1) / 2, (y0 + y1) / 2)
            for p in scene.objects[i + 1 :]:
                assert (
                    x1 <= p.bbox_xyxy[0]
                    or p.bbox_xyxy[2] <= x0
                    or y1 <= p.bbox_xyxy[1]
                    or p.bbox_xyxy[3] <= y0
                )
        assert Scene.from_dict(scene.to_dict()) == scene


def test_render_shows_the_objects():
    for scene in _scenes(1, 30):
        img = render(scene)
        assert img.mode == "RGB" and img.size == (64, 64)
        assert np.array_equal(np.asarray(img), np.asarray(render(scene)))
        arr = np.asarray(img, dtype=float)
        for o in scene.objects:
            cx, cy = int(o.center[0]), int(o.center[1] + (2 if o.shape == "triangle" else 0))
            assert np.abs(arr[cy, cx] - COLORS[o.color]).max() <= 8, (scene.image_id, o)


def test_helpers():
    a = Obj("circle", "red", "small", (0.0, 0.0, 16.0, 16.0), (8.0, 8.0))
    b = Obj("square", "green", "large", (30.0, 30.0, 52.0, 52.0), (41.0, 41.0))
    assert describe(a) == "red circle" and describe(b, with_size=True) == "large green square"
    assert left_of(a, b) and not left_of(b, a) and above(a, b) and not above(a, b, margin=40)
    scene = Scene(1, 64, 64, [a, b])
    assert scene.count(color="red") == 1 and scene.count() == 2 and scene.is_unique(a)
