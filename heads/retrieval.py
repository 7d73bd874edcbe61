"""Image-text retrieval (COCO 5k / Flickr30k 1k): ITC + ITM training, ITC top-k -> ITM re-ranking.

Needs a `DualFusion` backbone (capabilities ``dual`` + ``fusion``: ClipBackbone with its fusion
block, BlipBackbone): ``encode_image`` / ``encode_text`` give the ITC embeddings and the tokens that
``fuse_pairs`` fuses for ITM. BlipBackbone also offers ``match_logits(pooled)``, its pretrained ITM
head, which ``backbone_itm: true`` uses instead of the head's own (new, random) ITM layer.

Training batches hold one caption per sample: ITC (symmetric InfoNCE, global negatives under DDP,
captions of the same image all positive) plus ITM on the positives and one ITC-mined hard negative
per image and per caption, drawn from this process's batch (ALBEF, ``hard_negatives="local"``) or
from every process's batch (BLIP's retrieval finetuning, ``hard_negatives="global"``).
Evaluation batches hold images with all their captions; image features are computed once, and at the
epoch's end ITC picks the top-k per query both ways and ITM re-scores them (score = ITM log-odds
+ ``itc_weight`` x ITC logit). Reported: txt_r1/5/10, img_r1/5/10, means and r_mean after re-ranking,
and the same with an ``itc_`` prefix before it. Predict: per image, the ``predict_top`` caption ids
(sentids) of the split ranked by the same two stages: ``{"image_id", "ranked_text_ids"}`` (for clips
``{"video_id", ...}``); the
split's captions come tokenized by the collate (``gallery``) and are encoded once per weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head

from vltasks.backbones.base import DualFusion, Features
from vltasks.batch import is_labelled, visual_input
from vltasks.metrics import RetrievalCache
from vltasks.metrics.functional import rerank_recalls
from vltasks.metrics.functional.retrieval import video_metrics_from_ranks, video_ranks
from vltasks.objectives import LearnableTemperature, itc_loss, itm_loss, sample_itm_hard_negatives
from vltasks.objectives.contrastive import _distributed, gather_with_grad


def _pad(seqs: list[Tensor], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-padded ids and attention mask from variable-length token id rows."""
    width = max(int(s.numel()) for s in seqs)
    ids = seqs[0].new_full((len(seqs), width), pad_id)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : s.numel()], mask[i, : s.numel()] = s, 1
    return ids, mask


@HEADS.register("retrieval")
class RetrievalHead(Head[DualFusion]):
    needs = frozenset({"dual", "fusion"})
    monitor = "r_mean"
    reads = frozenset({"image_embeds", "text_embeds", "image_tokens", "text_tokens", "pair_fusion"})
    eval_loss = False  # evaluation batches are images with all their captions, not training pairs

    def __init__(
        self,
        hidden_size: int,
        k_test: int = 128,
        itm_weight: float = 1.0,
        itc_weight: float = 0.0,
        init_temperature: float = 0.07,
        rerank_batch: int = 128,
        predict_top: int = 10,
        cache_dtype: str = "float32",
        backbone_itm: bool = False,
        hard_negatives: str = "local",
        items: str = "images",
    ) -> None:
        super().__init__()
        self.k_test, self.itm_weight, self.itc_weight = int(k_test), float(itm_weight), float(itc_weight)
        self.rerank_batch, self.predict_top = int(rerank_batch), int(predict_top)
        if cache_dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(
                f"retrieval head: cache_dtype must be float32, float16 or bfloat16, got {cache_dtype!r}"
            )
        self.cache_dtype = getattr(torch, cache_dtype)
        if hard_negatives not in ("local", "global"):
            raise ValueError(f"retrieval head: hard_negatives is local or global, not {hard_negatives!r}")
        self.hard_negatives = hard_negatives
        if items not in ("images", "videos"):
            raise ValueError(f"retrieval head: items is images or videos, not {items!r}")
        self.items = items  # from the reader: videos add CLIP4Clip's v2t/t2v R@k, MdR and MnR
        self.temperature = LearnableTemperature(init_temperature)
        # with backbone_itm the layer is not built at all: an unused layer would stall DDP
        self.itm = None if backbone_itm else nn.Linear(hidden_size, 2)
        self.reads = self.reads | {"itm"} if backbone_itm else self.reads
        self._gallery: tuple[Any, ...] | None = None

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError("the retrieval head calls the backbone's parts itself: use run()")

    def itm_logits(self, backbone: DualFusion, pooled: Tensor) -> Tensor:
        """[B, 2] (no match, match) from the head's ITM layer or the backbone's own."""
        if self.itm is not None:
            return self.itm(pooled)
        if not hasattr(backbone, "match_logits"):
            raise ValueError(
                f"retrieval head: backbone_itm needs a backbone with its own ITM head (BLIP); "
                f"{type(backbone).__name__} has none"
            )
        return backbone.match_logits(pooled)

    def match_score(
        self,
        backbone: DualFusion,
        image_tokens: Tensor,
        ids: Tensor,
        mask: Tensor,
        text_tokens: Tensor | None = None,
    ) -> Tensor:
        """ITM log-odds of a match for pairs (image_tokens[i], caption i)."""
        if text_tokens is None:
            text_tokens = backbone.encode_text(ids, mask).tokens
        logits = self.itm_logits(backbone, backbone.fuse_pairs(image_tokens, text_tokens, ids, mask)).float()
        return logits[:, 1] - logits[:, 0]

    def final_score(self, itm: Tensor, cos: Tensor) -> Tensor:
        """Re-ranking score: ITM log-odds + itc_weight x ITC logit (cosine x learned 1/temperature)."""
        return itm + self.itc_weight * self.temperature() * cos if self.itc_weight else itm

    # -- batches ---------------------------------------------------------------------------------
    def run(self, backbone: DualFusion, batch: dict[str, Any]) -> dict[str, Any]:
        image_embeds, image_tokens = backbone.encode_image(visual_input(batch))
        if "text_input_ids" in batch:  # evaluation: images with all their captions
            text_embeds = backbone.encode_text(batch["text_input_ids"], batch["text_attention_mask"]).embeds
            out = {"image_embeds": image_embeds, "image_tokens": image_tokens, "text_embeds": text_embeds}
            if "gallery" in batch:
                out["ranked"] = self._rank_gallery(backbone, image_embeds, image_tokens, batch["gallery"])
            return out
        ids, mask = batch["input_ids"], batch["attention_mask"]
        text_embeds, text_tokens = backbone.encode_text(ids, mask)
        local = (image_tokens, text_tokens, ids, mask)
        pool = self._negative_pool(image_embeds, text_embeds, batch["imgid"], local, backbone.pad_token_id)
        image_tokens, text_tokens, ids, mask = pool["local"]  # text padded to the pool's width
        with torch.no_grad():
            scale = self.temperature()
            sim_i2t = F.normalize(image_embeds, dim=-1) @ F.normalize(pool["text_embeds"], dim=-1).T * scale
            sim_t2i = (
                sim_i2t.T
                if pool["offset"] is None
                else F.normalize(text_embeds, dim=-1) @ F.normalize(pool["image_embeds"], dim=-1).T * scale
            )
            same = batch["imgid"][:, None] == pool["imgid"][None, :]
        n = ids.shape[0]
        rows = (image_tokens, text_tokens, ids, mask)
        if not bool(same.all()):  # a batch of one image's captions has no negative to draw
            neg_t, neg_i = sample_itm_hard_negatives(
                sim_i2t, sim_t2i, same_image_mask=same, offset=pool["offset"] or 0
            )
            p_img, p_txt, p_ids, p_mask = pool["tokens"]
            # index_select, not p_img[neg_i]: the backward of advanced indexing accumulates repeated
            # rows in a thread-dependent order on CPU, and runs of the same seed drifted apart
            rows = (
                torch.cat([image_tokens, image_tokens, p_img.index_select(0, neg_i)]),
                torch.cat([text_tokens, p_txt.index_select(0, neg_t), text_tokens]),
                torch.cat([ids, p_ids[neg_t], ids]),
                torch.cat([mask, p_mask[neg_t], mask]),
            )
        pooled = backbone.fuse_pairs(*rows)
        labels = (torch.arange(rows[0].shape[0], device=ids.device) < n).long()
        return {
            "image_embeds": image_embeds,
            "text_embeds": text_embeds,
            "logit_scale": self.temperature(),
            "itm_logits": self.itm_logits(backbone, pooled),
            "itm_labels": labels,
        }

    def _negative_pool(
        self,
        image_embeds: Tensor,
        text_embeds: Tensor,
        imgid: Tensor,
        local: tuple[Tensor, Tensor, Tensor, Tensor],
        pad_id: int,
    ) -> dict[str, Any]:
        """Where hard negatives come from: this process's batch (ALBEF, ``offset`` None), or with
        ``hard_negatives="global"`` under DDP every process's batch (BLIP's retrieval finetuning):
        embeddings gathered without gradient to pick them, tokens gathered with gradient to fuse
        them (the gather's backward returns each rank its share). Text is padded to the widest
        rank's length first, so ``local`` comes back padded too."""
        if self.hard_negatives != "global" or not _distributed():
            return {
                "image_embeds": image_embeds,
                "text_embeds": text_embeds,
                "imgid": imgid,
                "tokens": local,
                "local": local,
                "offset": None,
            }
        image_tokens, text_tokens, ids, mask = local
        width = torch.tensor([ids.shape[1]], device=ids.device)
        dist.all_reduce(width, op=dist.ReduceOp.MAX)
        extra = int(width.item()) - ids.shape[1]
        ids, mask = F.pad(ids, (0, extra), value=pad_id), F.pad(mask, (0, extra), value=0)
        text_tokens = F.pad(text_tokens, (0, 0, 0, extra))
        with torch.no_grad():
            all_image_embeds, offset = gather_with_grad(image_embeds.detach())
            all_text_embeds, _ = gather_with_grad(text_embeds.detach())
            all_imgid, _ = gather_with_grad(imgid)
            all_ids, _ = gather_with_grad(ids)
            all_mask, _ = gather_with_grad(mask)
        tokens = (gather_with_grad(image_tokens)[0], gather_with_grad(text_tokens)[0], all_ids, all_mask)
        return {
            "image_embeds": all_image_embeds,
            "text_embeds": all_text_embeds,
            "imgid": all_imgid,
            "tokens": tokens,
            "local": (image_tokens, text_tokens, ids, mask),
            "offset": offset,
        }

    def loss(self, outputs: dict[str, Any], batch: dict[str, Any]) -> Tensor:
        if "itm_logits" not in outputs:
            raise ValueError(
                "retrieval trains on one caption per sample: set data.options.train_unit=caption"
            )
        # captions of one image in the batch are all positives for it (ALBEF's idx targets)
        itc = itc_loss(
            outputs["image_embeds"],
            outputs["text_embeds"],
            logit_scale=outputs["logit_scale"],
            ids=batch["imgid"],
        )
        return itc + self.itm_weight * itm_loss(outputs["itm_logits"], outputs["itm_labels"])

    # -- evaluation ------------------------------------------------------------------------------
    def metrics(self) -> MetricCollection:
        return MetricCollection({"retrieval": RetrievalCache(cache_dtype=self.cache_dtype)})

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Any], batch: dict[str, Any]
    ) -> None:
        if "text_input_ids" not in batch:
            raise ValueError("retrieval evaluation needs per-image batches (images with all their captions)")
        if not is_labelled(batch):
            return
        metrics["retrieval"].update(
            batch["imgid"],
            outputs["image_embeds"],
            outputs["image_tokens"].to(self.cache_dtype),
            batch["text_ids"],
            batch["text_image_ids"],
            outputs["text_embeds"],
            batch["text_input_ids"],
            batch["text_attention_mask"],
        )

    @torch.no_grad()
    def on_eval_epoch_end(self, backbone: DualFusion, metrics: MetricCollection, stage: str) -> None:
        """Gather every process's states, re-rank the ITC top-k with ITM, store the recalls."""
        cache: RetrievalCache = metrics["retrieval"]  # type: ignore[assignment]
        with cache.sync_context(should_sync=True, should_unsync=True):
            items = cache.collect()
        if items["image_ids"].numel() == 0:
            return
        pad_id = backbone.pad_token_id
        dtype = next(self.temperature.parameters()).dtype
        device = items["image_tokens"].device
        half = device.type == "cuda" and self.cache_dtype in (torch.float16, torch.bfloat16)

        def score(images: Tensor, texts: Tensor) -> Tensor:
            uniq, inv = texts.unique(return_inverse=True)  # a chunk holds few texts: encode each once
            starts, lengths = items["starts"][uniq].tolist(), items["lengths"][uniq].tolist()
            ids, mask = _pad([items["token_ids"][s : s + n] for s, n in zip(starts, lengths)], pad_id)
            with torch.autocast(device.type, dtype=self.cache_dtype, enabled=half):  # half cache: half ITM
                text_tokens = backbone.encode_text(ids, mask).tokens[inv]
                image_tokens = items["image_tokens"][images].to(dtype)
                itm = self.match_score(backbone, image_tokens, ids[inv], mask[inv], text_tokens)
            cos = F.cosine_similarity(items["image_embeds"][images], items["text_embeds"][texts], dim=-1)
            return self.final_score(itm, cos)

        cache.result = rerank_recalls(items, score, self.k_test, self.rerank_batch)
        if self.items == "videos":  # CLIP4Clip's table: R@k, MdR, MnR both ways from the ITC similarity
            videos, texts = (
                F.normalize(items["image_embeds"], dim=-1),
                F.normalize(items["text_embeds"], dim=-1),
            )
            ranks = video_ranks(
                lambda rows: videos[rows] @ texts.T,
                lambda rows: texts[rows] @ videos.T,
                videos.shape[0],
                items["text_to_image"],
                self.rerank_batch,
            )
            cache.result.update(video_metrics_from_ranks(*ranks))

    # -- predictions -----------------------------------------------------------------------------
    def _rank_gallery(
        self, backbone: DualFusion, image_embeds: Tensor, image_tokens: Tensor, gallery: Any
    ) -> list[list[int]]:
        """Per image: ITC top-k over the split's captions, re-scored by ITM, best `predict_top` ids."""
        params = list(backbone.parameters())  # type: ignore[attr-defined]
        key = (gallery.key, id(backbone), params[0]._version, params[-1]._version)
        ids, mask = gallery.input_ids, gallery.attention_mask
        if self._gallery is None or self._gallery[0] != key:  # encode the captions once per weights
            embeds = torch.cat(
                [
                    backbone.encode_text(i, m).embeds
                    for i, m in zip(ids.split(self.rerank_batch), mask.split(self.rerank_batch))
                ]
            )
            self._gallery = (key, F.normalize(embeds.float(), dim=-1))
        _, gal = self._gallery
        k = min(self.k_test, gal.shape[0])
        n = min(max(k, self.predict_top), gal.shape[0])  # beyond the re-scored k: ITC order
        sim = F.normalize(image_embeds.float(), dim=-1) @ gal.T
        top = sim.topk(n, dim=1).indices
        out = []
        for i in range(top.shape[0]):
            cand = top[i, :k]
            s = self.match_score(backbone, image_tokens[i : i + 1].expand(k, -1, -1), ids[cand], mask[cand])
            s = self.final_score(s, sim[i, cand])
            order = torch.cat([cand[torch.argsort(s, descending=True, stable=True)], top[i, k:]])
            out.append([int(gallery.text_ids[j]) for j in order[: self.predict_top].tolist()])
        return out

    def predict(self, outputs: dict[str, Any], batch: dict[str, Any]) -> list[dict[str, Any]]:
        if "ranked" not in outputs:
            raise ValueError("retrieval predictions need the predict split's caption gallery in the batch")
        if "video_id" in batch:  # a video corpus names its items by their video id
            return [
                {"video_id": v, "ranked_text_ids": r} for v, r in zip(batch["video_id"], outputs["ranked"])
            ]
        return [
            {"image_id": int(i), "ranked_text_ids": r}
            for i, r in zip(batch["image_id"].tolist(), outputs["ranked"])
        ]

    @torch.no_grad()
    def describe(self, outputs: dict[str, Any], batch: dict[str, Any], i: int) -> str:
        """The batch's captions ranked for image i by ITC (the first three, each marked right or
        wrong), and its first reference."""
        sim = F.normalize(outputs["text_embeds"].float(), dim=-1) @ F.normalize(
            outputs["image_embeds"][i].float(), dim=0
        )
        texts = [c for caps in batch["captions"] for c in caps]
        lines = []
        for k, j in enumerate(sim.argsort(descending=True, stable=True)[:3].tolist()):
            hit = int(batch["text_image_ids"][j]) == int(batch["imgid"][i])
            lines.append(f"{k + 1}. {'+' if hit else 'x'} {texts[j]}")
        return "\n".join([*lines, f"GT: {batch['captions'][i][0]}"])
