"""Synthetic SNLI-VE: official layout and schema, deterministic, labels true to the scene."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from vltasks.datamodules.synthetic import COLORS, WRITERS, Scene, image_rng, sample_scene
from vltasks.datamodules.synthetic.snli_ve import LABELS, UNSEEN, hypotheses, jsonl_path, write_snli_ve

SPLITS = {"train": 12, "dev": 7}
KEYS = [
    "Flickr30K_ID",
    "annotator_labels",
    "captionID",
    "gold_label",
    "pairID",
    "sentence1",
    "sentence1_binary_parse",
    "sentence1_parse",
    "sentence2",
    "sentence2_binary_parse",
    "sentence2_parse",
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("snli_ve_world")
    write_snli_ve(out, SPLITS, seed=4, test_splits={"test": 3})
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_registered_and_deterministic(root, tmp_path):
    assert WRITERS.get("snli_ve") is write_snli_ve
    write_snli_ve(tmp_path / "a", SPLITS, seed=4, test_splits={"test": 3})
    assert _files(tmp_path / "a") == _files(root)
    write_snli_ve(tmp_path / "b", {"train": 12}, seed=5)
    assert _files(tmp_path / "b")["snli_ve_train.jsonl"] != _files(root)["snli_ve_train.jsonl"]


def test_layout_schema_and_balance(root):
    assert {p.name for p in root.iterdir()} == {
        "flickr30k_images",
        "synthetic_meta.json",
        *(f"snli_ve_{s}.jsonl" for s in ("train", "dev", "test")),
    }
    images: set[str] = set()
    for split, n in {**SPLITS, "test": 3}.items():
        recs = [json.loads(line) for line in jsonl_path(root, split).read_text().splitlines()]
        assert len(recs) == 3 * n and all(list(r) == KEYS for r in recs)  # sorted keys, as published
        assert Counter(r["gold_label"] for r in recs) == dict.fromkeys(LABELS, n)
        for r in recs:
            assert r["pairID"] == f"{r['captionID']}r1{r['gold_label'][0]}"
            assert r["captionID"].startswith(f"{r['Flickr30K_ID']}.jpg#")
            assert (root / "flickr30k_images" / f"{r['Flickr30K_ID']}.jpg").is_file()
            votes = Counter(r["annotator_labels"])
            assert votes[r["gold_label"]] >= 3 or r["annotator_labels"] == [r["gold_label"]]
        split_images = {r["Flickr30K_ID"] for r in recs}
        assert len(split_images) == n and not split_images & images  # no image shared by splits
        images |= split_images
    meta = json.loads((root / "synthetic_meta.json").read_text())
    assert meta["majority_baseline"]["dev"] == pytest.approx(1 / 3)
    assert 1 / 3 < meta["hypothesis_only_baseline"]["dev"] < 1


def _truth(scene: Scene, text: str) -> str:
    """An independent judge of a hypothesis against the scene (closed world)."""
    words = text.lower().rstrip(".").split()

    def here(ref: list[str]) -> bool:  # "red object" | "circle" | "red circle"
        c, s = (ref[0], None) if ref[-1] == "object" else (None, ref[-1]) if len(ref) == 1 else ref
        return scene.count(color=c, shape=s) > 0

    if words[:3] == ["there", "is", "a"]:
        return "entailment" if here(words[3:]) else "contradiction"
    if words[:3] == ["there", "is", "no"]:
        return "contradiction" if here(words[3:]) else "entailment"
    if len(words) == 4 and words[2] == "is" and words[3] in COLORS:  # "the <shape> is <colour>"
        (obj,) = [o for o in scene.objects if o.shape == words[1]]
        return "entailment" if obj.color == words[3] else "contradiction"
    n = next(i for i in range(2, len(words)) if " ".join(words[i:]) in UNSEEN)
    return "neutral" if here(words[1:n]) else "contradiction"


def test_every_label_is_what_the_scene_makes_it():
    kinds = Counter()
    for image_id in range(300):
        scene = sample_scene(image_rng(0, image_id, 0), image_id)
        hs = hypotheses(scene, image_rng(0, image_id, 3))
        assert [h.label for h in hs] == ["entailment", "neutral", "contradiction"]
        for h in hs:
            assert _truth(scene, h.text) == h.label, (scene, h)
            kinds[(h.template, h.label)] += 1
    forms = {"exist", "no", "unseen"}
    assert {t for t, _ in kinds} == {"color"} | {
        f"{f}/{r}" for f in forms for r in ("color", "shape", "both")
    }
    assert sum(n for (t, y), n in kinds.items() if t.startswith("unseen") and y == "contradiction") > 0


def test_contradictions_are_mostly_minimal_edits_of_the_entailed_hypothesis():
    """One word changed ("a" <-> "no", the colour), the style of many SNLI contradictions, so the
    text alone cannot tell the pair apart; the rest name an unseen property of something absent."""
    edits = unseen = 0
    for image_id in range(400):
        scene = sample_scene(image_rng(0, image_id, 0), image_id)
        entailed, _, contradiction = hypotheses(scene, image_rng(0, image_id, 3))
        a, b = entailed.text.rstrip(".").split(), contradiction.text.rstrip(".").split()
        if contradiction.template.startswith("unseen"):
            unseen += 1
            continue
        changed = [(x, y) for x, y in zip(a, b) if x != y]
        assert len(a) == len(b) and len(changed) == 1, (entailed, contradiction)
        assert changed[0] in {("a", "no"), ("no", "a")} or changed[0][1] in COLORS
        edits += 1
    assert 0.6 < edits / 400 < 0.9 and unseen > 0
