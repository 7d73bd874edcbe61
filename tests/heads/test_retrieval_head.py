"""Retrieval head: ITC + ITM loss, two-stage re-ranked recalls against a dense reference, predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from vltasks.datamodules.karpathy import KarpathyData
from vltasks.datamodules.synthetic.karpathy import write_karpathy
from vltasks.heads import HEADS
from vltasks.heads.retrieval import RetrievalHead

from vltasks.backbones import BlipBackbone, ClipBackbone, train_wordpiece
from vltasks.metrics import ImageTextRetrieval
from vltasks.metrics.functional.retrieval import gt_ranks, recall_from_ranks

STAGES = {"train": "train", "val": "val", "predict": "test"}
TINY = dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, patch_size=16, embed_dim=16)


def build(
    root: Path, k_test: int = 12, seed: int = 0, family: str = "clip"
) -> tuple[KarpathyData, Any, RetrievalHead]:
    """Reader, tiny CLIP with a fusion block (or tiny BLIP with its own ITM head) and head, all
    deterministic from `seed`."""
    data = KarpathyData(str(root), STAGES)
    torch.manual_seed(seed)
    tokenizer = train_wordpiece(list(data.texts()), vocab_size=120)
    if family == "blip":
        backbone = BlipBackbone.from_config({**TINY, "num_layers": 1, "max_text_len": 40}, tokenizer)
    else:
        backbone = ClipBackbone.from_config(TINY, tokenizer, fusion={"layers": 1, "heads": 2})
    head = HEADS.get("retrieval")(
        backbone.hidden_size, k_test=k_test, rerank_batch=16, backbone_itm=family == "blip"
    )
    return data, backbone.eval(), head.eval()


def batches(data: KarpathyData, backbone: ClipBackbone, stage: str, idx: list[list[int]]) -> list[dict]:
    ds = data.dataset(data.samples(stage))
    collate = data.collate(backbone.processor, {})
    return [collate([ds[i] for i in b]) for b in idx]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and on a loaded machine two spinning threads are ~30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("karpathy_head")
    write_karpathy(out, {"train": 6, "val": 7}, seed=1, test_splits={"test": 3})
    return out


def test_loss_backward_reaches_encoders_fusion_and_temperature(root):
    data, backbone, head = build(root)
    backbone.train(), head.train()
    (batch,) = batches(data, backbone, "train", [[0, 1, 2, 5, 6, 12]])  # three images
    out = head.run(backbone, batch)
    assert out["itm_labels"].tolist() == [1] * 6 + [0] * 12
    loss = head.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss)
    for module in (
        head.itm,
        head.temperature,
        backbone.fusion,
        backbone.model.vision_model,
        backbone.model.text_model,
    ):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    (single,) = batches(data, backbone, "train", [[0, 1, 2]])  # one image: no negative to draw
    out = head.run(backbone, single)
    assert out["itm_labels"].tolist() == [1, 1, 1] and torch.isfinite(head.loss(out, single))


def test_blip_trains_its_own_itm_head_and_projections(root):
    """On BLIP the head adds no ITM layer: the checkpoint's itm_head, projections and encoders learn."""
    data, backbone, head = build(root, family="blip")
    assert head.itm is None
    backbone.train(), head.train()
    (batch,) = batches(data, backbone, "train", [[0, 1, 2, 5, 6, 12]])
    loss = head.loss(head.run(backbone, batch), batch)
    loss.backward()
    m = backbone.model
    for module in (m.itm_head, m.vision_proj, m.text_proj, m.vision_model, m.text_encoder, head.temperature):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert all(p.grad is None for p in m.text_decoder.parameters())  # the captioner is not involved
    _, clip, _ = build(root)
    with pytest.raises(ValueError, match="own ITM head"):
        head.itm_logits(clip, torch.zeros(1, clip.hidden_size))


def evaluate(head: RetrievalHead, backbone: ClipBackbone, eval_batches: list[dict]) -> dict[str, float]:
    metrics = head.metrics()
    with torch.no_grad():
        for b in eval_batches:
            head.update_metrics(metrics, head.run(backbone, b), b)
        head.on_eval_epoch_end(backbone, metrics, "val")
    return {k: float(v) for k, v in metrics.compute().items()}


def _dense_reference(head, backbone, batch: dict, k: int) -> dict[str, float]:
    """ALBEF's protocol written densely: every pair's ITM score, -inf outside each query's ITC top-k."""
    with torch.no_grad():
        out = head.run(backbone, batch)
        img = torch.nn.functional.normalize(out["image_embeds"], dim=-1)
        txt = torch.nn.functional.normalize(out["text_embeds"], dim=-1)
        n_i, n_t = img.shape[0], txt.shape[0]
        ii, tt = torch.meshgrid(torch.arange(n_i), torch.arange(n_t), indexing="ij")
        ids, mask = batch["text_input_ids"][tt.flatten()], batch["text_attention_mask"][tt.flatten()]
        itm = head.match_score(backbone, out["image_tokens"][ii.flatten()], ids, mask).reshape(n_i, n_t)
    sim = img @ txt.T
    itm = head.final_score(itm, sim)
    i2t = torch.full_like(itm, -torch.inf).scatter(1, sim.topk(min(k, n_t), 1).indices, 0) + itm
    t2i = torch.full_like(itm.T, -torch.inf).scatter(1, sim.T.topk(min(k, n_i), 1).indices, 0) + itm.T
    t2img = torch.searchsorted(batch["imgid"], batch["text_image_ids"])
    ranks = gt_ranks(lambda r: i2t[r], lambda c: t2i[c], n_i, t2img)
    return {key: float(v) for key, v in recall_from_ranks(*ranks, t2img, n_i).items()}


@pytest.mark.parametrize(
    ("k", "itc_weight", "family"), [(3, 0.0, "clip"), (12, 0.0, "clip"), (3, 1.5, "clip"), (3, 0.0, "blip")]
)
def test_reranked_recalls_equal_the_dense_two_stage_protocol(root, k, itc_weight, family):
    data, backbone, head = build(root, k_test=k, family=family)
    head.itc_weight = itc_weight
    got = evaluate(head, backbone, batches(data, backbone, "val", [[0, 1, 2], [3, 4], [5, 6]]))
    (whole,) = batches(data, backbone, "val", [list(range(7))])
    ref = _dense_reference(head, backbone, whole, k)
    ks = [key for key in ref if key[-1].isdigit() and int(key.split("_r")[1]) <= k]
    assert ks and all(got[key] == pytest.approx(ref[key]) for key in ks)
    itc = ImageTextRetrieval()
    with torch.no_grad():
        out = head.run(backbone, whole)
    itc.update(out["image_embeds"], whole["imgid"], out["text_embeds"], whole["text_image_ids"])
    assert {f"itc_{key}": pytest.approx(float(v)) for key, v in itc.compute().items()} == {
        key: v for key, v in got.items() if key.startswith("itc_")
    }
    # duplicated images (a padded sampler) count once
    dup = batches(data, backbone, "val", [[0, 1, 2], [3, 4], [5, 6], [6, 2]])
    assert evaluate(head, backbone, dup) == got


def test_predictions_rank_the_split_gallery_and_round_trip_json(root):
    data, backbone, head = build(root, k_test=8)
    (batch,) = batches(data, backbone, "predict", [[0, 1, 2]])
    with torch.no_grad():
        rows = head.predict(head.run(backbone, batch), batch)
    gallery = batch["gallery"]
    assert [r["image_id"] for r in rows] == batch["image_id"].tolist()
    for r in rows:
        assert len(r["ranked_text_ids"]) == 10 and len(set(r["ranked_text_ids"])) == 10
        assert set(r["ranked_text_ids"]) <= set(gallery.text_ids)
    assert json.loads(json.dumps(rows)) == rows
    with torch.no_grad():
        out = head.run(backbone, batch)
    lines = head.describe(out, batch, 0).splitlines()
    texts = [c for caps in batch["captions"] for c in caps]
    assert [x[:3] for x in lines[:3]] == ["1. ", "2. ", "3. "] and lines[0][3] in "+x"
    assert all(x[5:] in texts for x in lines[:3]) and lines[3] == f"GT: {batch['captions'][0][0]}"
