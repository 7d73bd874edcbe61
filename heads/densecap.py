"""Dense captioning (DenseCap, Visual Genome): boxes with a sentence each, predicted as a set on the
backbone's vision tokens (DETR / GRiT style), the sentences written by the backbone's own decoder.

Design (docs/design-notes.md, 40-42): learned queries pass through a small transformer decoder that
cross-attends to the vision tokens. Each query has a learned reference point (starting on a grid over
the image) and starts from the image features sampled there (Deformable DETR), which is what lets it
learn in minutes on a CPU; it gives a box (cxcywh through a sigmoid, its centre an offset from the
reference point, relative to the original image), an objectness logit, and the conditioning of the
caption decoder for its region: a token made of the query's output and its box, projected to the
decoder's cross-attention width, followed by the vision tokens RoI-aligned inside the box (GRiT's
region features, the kind of tokens a pretrained decoder reads). Training matches queries to regions
with the Hungarian algorithm (scipy through `vltasks.objectives.match_sets`) on objectness + L1 +
GIoU costs; the objectness loss covers every query, the box losses (L1, GIoU) every matched one, at
every decoder layer (DETR's auxiliary losses), and the caption loss (teacher forcing) the matched
ones of the last layer, conditioned on the region's ground-truth box. Inference: the top-N queries
by score, torchvision's ``batched_nms``, then one caption per kept box by transformers' ``generate``
with the captioning head's greedy / beam / nucleus settings.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchvision.ops import (
    batched_nms,
    box_convert,
    generalized_box_iou,
    generalized_box_iou_loss,
    roi_align,
    sigmoid_focal_loss,
)
from vltasks.heads.base import HEADS, Head, mlp
from vltasks.heads.captioning import generation_kwargs
from vltasks.heads.grounding import to_pixels_xyxy

from vltasks.backbones.base import Decoder, Features
from vltasks.batch import is_labelled
from vltasks.metrics import DenseCapMAP
from vltasks.metrics.functional.densecap import inclusive_corners, meteor_problem
from vltasks.objectives import match_sets, prefix_lm_loss

log = logging.getLogger(__name__)

METEOR = ("auto", "java", "never")  # not "off": YAML reads that as false
MONITORS = ("det_map", "map")
OBJECTNESS_LOSSES = ("focal", "bce")
# DETR's matching costs and loss weights (Deformable DETR's objectness weight, with its focal loss)
COSTS = {"objectness": 2.0, "l1": 5.0, "giou": 2.0}
WEIGHTS = {"objectness": 2.0, "l1": 5.0, "giou": 2.0, "caption": 1.0}
TARGET_FIELDS = ("boxes", "input_ids", "attention_mask", "labels")  # what training reads of the targets
_WARNED: set[str] = set()  # one log line per process and reason, however many metric sets are built


def _weights(name: str, defaults: dict[str, float], given: dict[str, float] | None) -> dict[str, float]:
    """``defaults`` updated with the config's ``head_args.<name>``, whose keys must be known."""
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise ValueError(f"densecap head: {name} has no {unknown}; known: {sorted(defaults)}")
    return {k: float(v) for k, v in {**defaults, **(given or {})}.items()}


class Match(NamedTuple):
    """Matched (query, region) pairs of a batch: the image, the query, the region's row in the
    batch's concatenated targets."""

    rows: Tensor
    queries: Tensor
    index: Tensor


def _no_meteor(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> list[float]:
    return [0.0] * len(preds)


class DetectionOnlyMAP(DenseCapMAP):
    """DenseCap's detection-only mAP where METEOR cannot run: every caption scores 0 and only
    ``det_map`` (METEOR threshold -1) is returned, never a ``map`` that would read as a measured 0."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(meteor=_no_meteor, **kwargs)

    def compute(self) -> dict[str, Tensor]:
        return {"det_map": super().compute()["det_map"]}


def patch_grid(n_tokens: int) -> tuple[int, int]:
    """(index of the first patch token, side of the square patch grid) of a ViT's tokens, with or
    without a leading [CLS]."""
    for first in (1, 0):
        side = math.isqrt(n_tokens - first)
        if side > 0 and side * side == n_tokens - first:
            return first, side
    raise ValueError(f"densecap head: {n_tokens} vision tokens are not a square grid of patches (+ [CLS])")


def sincos(points: Tensor, dim: int) -> Tensor:
    """[N, dim] sine-cosine code of points (x, y) given as fractions of the image, DETR's positional
    code: the patches and the queries' reference points share it, so attention can tell near from far."""
    if dim % 4:
        raise ValueError(f"densecap head: dim must be a multiple of 4 for 2D positions, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float32, device=points.device) / (dim // 4))
    angles = [points[:, k : k + 1].float() * (2 * math.pi) * omega for k in (0, 1)]
    return torch.cat([f(a) for a in angles for f in (torch.sin, torch.cos)], dim=1)


def patch_centres(side: int) -> Tensor:
    """[side * side, 2] centres (x, y) of a square patch grid, row-major, as fractions of the image."""
    centre = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    y, x = torch.meshgrid(centre, centre, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)


def reference_grid(n: int) -> Tensor:
    """[n, 2] starting reference points (x, y), fractions of the image: the centres of the smallest
    square grid with at least n cells, row by row (its first n cells), so every part of the image
    has a query nearby from the first step and matching is stable (the anchors of one-stage detectors)."""
    side = math.ceil(math.sqrt(n))
    return patch_centres(side)[:n]


@HEADS.register("densecap")
class DenseCapHead(Head[Decoder]):
    """Boxes with sentences (see the module docstring for the design).

    Batch keys (the ``visual_genome`` collate's): ``pixel_values``; ``targets``, one `Instances` per
    image (``boxes`` normalized cxcywh, ``pixel_boxes``, phrase ``input_ids`` / ``attention_mask`` /
    ``labels``, ``phrases``); ``image_size`` [B, 2] (w, h) and ``image_id``.

    ``costs`` (matching) and ``weights`` (losses) override `COSTS` and `WEIGHTS` by key. Decoding:
    ``decoding`` (greedy, beam, nucleus), ``max_length``, ``min_length`` and the captioning head's
    other settings (num_beams, length_penalty, no_repeat_ngram_size, repetition_penalty, top_p,
    top_k, temperature), read by the same `generation_kwargs`.

    Metrics: DenseCap's ``map`` (IoU x METEOR thresholds) and ``det_map`` (detection only), exact
    under DDP (per-image records keyed by image id). ``meteor``: ``auto`` scores captions with the
    official METEOR jar where Java and pycocoevalcap are present and otherwise reports ``det_map``
    only, saying why in one log line; ``java`` requires it; ``never`` never runs it. ``monitor`` is
    ``det_map`` by default, a key present with and without Java, so a run and its resumption on
    another machine select checkpoints alike; ``map`` requires METEOR.
    """

    needs = frozenset({"decoder"})
    reads = frozenset({"decoder"})

    def __init__(
        self,
        hidden_size: int,
        vision_width: int | None = None,
        num_queries: int = 100,
        dim: int = 256,
        layers: int = 3,
        num_heads: int = 8,
        ffn_size: int | None = None,
        dropout: float = 0.1,
        roi_size: int = 3,
        aux_loss: bool = True,
        costs: dict[str, float] | None = None,
        weights: dict[str, float] | None = None,
        objectness_loss: str = "focal",
        no_object_weight: float = 0.1,
        label_smoothing: float = 0.0,
        max_detections: int = 100,
        nms_iou: float = 0.3,
        score_threshold: float = 0.0,
        caption_chunk: int = 512,
        decoding: str = "greedy",
        max_length: int = 20,
        min_length: int = 1,
        meteor: str = "auto",
        monitor: str = "det_map",
        **decoding_args: Any,
    ) -> None:
        super().__init__()
        if meteor not in METEOR:
            raise ValueError(f"densecap head: meteor must be one of {METEOR}, got {meteor!r}")
        if monitor not in MONITORS:
            raise ValueError(f"densecap head: monitor must be one of {MONITORS}, got {monitor!r}")
        if num_queries < 1 or max_detections < 1 or roi_size < 0 or caption_chunk < 1:
            raise ValueError(
                "densecap head: num_queries, max_detections and caption_chunk must be >= 1, roi_size >= 0"
            )
        vision_width = int(vision_width or hidden_size)
        self.num_queries, self.roi_size, self.aux_loss = int(num_queries), int(roi_size), bool(aux_loss)
        self.costs = _weights("costs", COSTS, costs)
        self.weights = _weights("weights", WEIGHTS, weights)
        if objectness_loss not in OBJECTNESS_LOSSES:
            raise ValueError(
                f"densecap head: objectness_loss must be one of {OBJECTNESS_LOSSES}, got {objectness_loss!r}"
            )
        self.objectness_loss = objectness_loss
        self.no_object_weight, self.label_smoothing = float(no_object_weight), float(label_smoothing)
        self.max_detections, self.nms_iou = int(max_detections), float(nms_iou)
        self.score_threshold, self.caption_chunk = float(score_threshold), int(caption_chunk)
        self.gen = generation_kwargs(
            "densecap", decoding, max_length=max_length, min_length=min_length, **decoding_args
        )
        self.meteor_missing = "head_args.meteor=never turns it off" if meteor == "never" else meteor_problem()
        if self.meteor_missing and meteor == "java":
            raise RuntimeError(f"densecap head: meteor=java, but METEOR cannot run: {self.meteor_missing}")
        if self.meteor_missing and monitor == "map":
            raise ValueError(
                f"densecap head: monitor=map needs METEOR, which cannot run ({self.meteor_missing}); "
                "monitor det_map instead"
            )
        self.monitor = monitor

        self.input_proj = nn.Sequential(nn.Linear(vision_width, dim), nn.LayerNorm(dim))
        self.queries = nn.Embedding(self.num_queries, dim)
        # each query's reference point (x, y), in logits, learned: it starts on a grid over the image
        self.reference = nn.Embedding(self.num_queries, 2)
        with torch.no_grad():
            self.reference.weight.copy_(torch.logit(reference_grid(self.num_queries)))
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                dim,
                num_heads,
                ffn_size or 4 * dim,
                dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.box_head = mlp(dim, dim, 4, dropout)
        self.objectness = nn.Linear(dim, 1)
        self.box_embed = nn.Linear(4, dim)
        self.condition = nn.Sequential(nn.Linear(dim, vision_width), nn.LayerNorm(vision_width))

    @classmethod
    def backbone_args(cls, backbone: Any) -> dict[str, Any]:
        return {"vision_width": int(backbone.vision_width)}

    # -- the set predictor ---------------------------------------------------------------------------
    def _memory(self, image: Tensor) -> Tensor:
        """Vision tokens projected to the head's width, with 2D positions on the patches."""
        first, side = patch_grid(image.shape[1])
        x = self.input_proj(image)
        pos = sincos(patch_centres(side), x.shape[-1]).to(x)
        return torch.cat([x[:, :first], x[:, first:] + pos], dim=1)

    def _queries(self, memory: Tensor) -> list[Tensor]:
        """The queries' outputs after each decoder layer, normalized ([B, Q, dim] each). A query
        starts as its learned embedding + the code of its reference point + the image features
        sampled (bilinearly) at that point, as Deformable DETR samples at its reference points: what
        is under a query is known before any attention is learned, which is what makes the set
        predictor learn in a few hundred steps on a CPU."""
        first, side = patch_grid(memory.shape[1])
        b, _, dim = memory.shape
        grid = memory[:, first:].transpose(1, 2).reshape(b, dim, side, side)
        ref = self.reference.weight.sigmoid()
        where = (ref * 2 - 1).to(memory.dtype)[None, :, None, :].expand(b, -1, -1, -1)  # [B, Q, 1, 2]
        local = F.grid_sample(grid, where, align_corners=False).squeeze(-1).transpose(1, 2)
        x = (self.queries.weight + sincos(ref, dim)).to(memory.dtype) + local
        outs = []
        for layer in self.layers:
            x = layer(x, memory)
            outs.append(self.norm(x))
        return outs

    def _predict_boxes(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """(boxes [B, Q, 4] normalized cxcywh, objectness logits [B, Q]); a box's centre is an offset
        from its query's reference point (in logit space), its size is predicted outright."""
        delta = self.box_head(h)
        centre = (self.reference.weight + delta[..., :2]).sigmoid()
        return torch.cat([centre, delta[..., 2:].sigmoid()], dim=-1), self.objectness(h).squeeze(-1)

    def _caption_memory(self, h: Tensor, boxes: Tensor, image: Tensor, rows: Tensor) -> Tensor:
        """What the decoder reads for R regions [R, 1 + roi_size^2, vision width]: the query's output
        with its box, projected; then the vision tokens of ``image[rows]`` RoI-aligned in the box."""
        boxes = boxes.detach().to(h.dtype)
        cond = self.condition(h + self.box_embed(boxes))[:, None]
        if not self.roi_size:
            return cond
        first, side = patch_grid(image.shape[1])
        grid = image[:, first:].transpose(1, 2).reshape(image.shape[0], image.shape[2], side, side)
        corners = box_convert(boxes, "cxcywh", "xyxy") * side  # patch units
        rois = torch.cat([rows[:, None].to(corners), corners], dim=1)
        pooled = roi_align(grid, rois.to(grid.dtype), self.roi_size, sampling_ratio=2, aligned=True)
        return torch.cat([cond, pooled.flatten(2).transpose(1, 2).to(cond.dtype)], dim=1)

    @torch.no_grad()
    def _match(self, boxes: Tensor, logits: Tensor, gt: Tensor, counts: Sequence[int]) -> Match:
        """Hungarian matching per image on objectness + L1 + GIoU costs (DETR's). ``gt`` [T, 4] holds
        the images' target boxes one image after another, ``counts`` how many each has. Returns
        (image, query, index into ``gt``) of every matched pair. The costs of the whole batch are
        computed at once; scipy then solves each image's block."""
        w_obj, w_l1, w_giou = (self.costs[k] for k in COSTS)
        n_images, n_queries = logits.shape
        pred, gt = boxes.reshape(-1, 4).float(), gt.float()
        giou = generalized_box_iou(box_convert(pred, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy"))
        prob = logits.reshape(-1, 1).float().sigmoid()
        cost = (-w_obj * prob + w_l1 * torch.cdist(pred, gt, p=1) - w_giou * giou).cpu()
        starts = [0, *itertools.accumulate(counts)][:-1]
        blocks = [
            cost[b * n_queries : (b + 1) * n_queries, s : s + n]
            for b, (s, n) in enumerate(zip(starts, counts))
        ]
        pairs = match_sets(blocks)
        rows = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(pairs)])
        queries = torch.cat([q for q, _ in pairs])
        index = torch.cat([n + s for (_, n), s in zip(pairs, starts)])
        return Match(rows.to(boxes.device), queries.to(boxes.device), index.to(boxes.device))

    # -- running the backbone ------------------------------------------------------------------------
    def run(self, backbone: Decoder, batch: dict[str, Any]) -> dict[str, Any]:
        image = backbone.vision_tokens(batch["pixel_values"])
        hs = self._queries(self._memory(image))
        boxes, logits = self._predict_boxes(hs[-1])
        out: dict[str, Any] = {"boxes": boxes, "logits": logits}
        targets = batch.get("targets")
        if targets is not None:
            flat = {k: torch.cat([getattr(t, k) for t in targets]).to(boxes.device) for k in TARGET_FIELDS}
            counts = [len(t) for t in targets]
            layers = [self._predict_boxes(h) for h in hs[:-1]] if self.aux_loss else []
            out["layers"], out["target_boxes"] = [*layers, (boxes, logits)], flat["boxes"]
            out["matches"] = [self._match(b, lg, flat["boxes"], counts) for b, lg in out["layers"]]
            out.update(self._teacher_forced(backbone, hs[-1], image, flat, out["matches"][-1]))
        if not self.training:
            out["detections"] = self._detect(backbone, hs[-1], boxes, logits, image, batch["image_size"])
        return out

    def _teacher_forced(
        self, backbone: Decoder, h: Tensor, image: Tensor, flat: dict[str, Tensor], match: Match
    ) -> dict[str, Tensor]:
        """Caption logits of the matched queries, each conditioned on its region's ground-truth box."""
        memory = self._caption_memory(
            h[match.rows, match.queries], flat["boxes"][match.index], image, match.rows
        )
        ids, mask = flat["input_ids"][match.index], flat["attention_mask"][match.index]
        return {
            "caption_logits": backbone.decoder_logits(memory, ids, mask),
            "caption_labels": flat["labels"][match.index],
        }

    @torch.no_grad()
    def _detect(
        self, backbone: Decoder, h: Tensor, boxes: Tensor, logits: Tensor, image: Tensor, image_size: Tensor
    ) -> list[dict[str, Any]]:
        """Per image: the top-N queries by score, NMS, then a caption for each box left. Boxes are
        pixel corners (x1, y1, x2, y2) of the original image, sorted by decreasing score."""
        n_images, n_queries = logits.shape
        scores, queries = logits.float().sigmoid().topk(min(self.max_detections, n_queries), dim=1)
        rows = torch.arange(n_images, device=logits.device)[:, None].expand_as(queries).reshape(-1)
        queries, scores = queries.reshape(-1), scores.reshape(-1)
        pixels = to_pixels_xyxy(boxes[rows, queries].float(), image_size[rows].float())
        keep = batched_nms(pixels, scores, rows, self.nms_iou)  # by decreasing score
        keep = keep[scores[keep] >= self.score_threshold]
        rows, queries, scores, pixels = rows[keep], queries[keep], scores[keep], pixels[keep]
        captions = self._captions(backbone, h[rows, queries], boxes[rows, queries], image, rows)
        out = []
        for b in range(n_images):
            sel = torch.nonzero(rows == b).flatten()
            out.append(
                {
                    "boxes": pixels[sel].cpu(),
                    "scores": scores[sel].cpu(),
                    "captions": [captions[int(i)] for i in sel],
                }
            )
        return out

    def _captions(
        self, backbone: Decoder, h: Tensor, boxes: Tensor, image: Tensor, rows: Tensor
    ) -> list[str]:
        """One sentence per region, generated in chunks of ``caption_chunk`` regions."""
        out: list[str] = []
        for start in range(0, len(rows), self.caption_chunk):
            part = slice(start, start + self.caption_chunk)
            memory = self._caption_memory(h[part], boxes[part], image, rows[part])
            generated = backbone.generate(memory, None, **self.gen)
            out += backbone.processor.decode(generated[:, 1:])  # type: ignore[attr-defined]  # after the start token
        return out

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        raise RuntimeError("densecap head runs the backbone itself: call head.run(backbone, batch)")

    # -- training ------------------------------------------------------------------------------------
    def _set_loss(self, boxes: Tensor, logits: Tensor, gt: Tensor, match: Match) -> Tensor:
        """Objectness on every query (focal loss per box, Deformable DETR's; or BCE with unmatched
        queries weighted ``no_object_weight``, DETR's) + L1 + GIoU on the matched ones."""
        target = torch.zeros_like(logits, dtype=torch.float32)
        target[match.rows, match.queries] = 1.0
        pred, gt = boxes[match.rows, match.queries].float(), gt[match.index].float()
        n = max(len(gt), 1)
        if self.objectness_loss == "focal":
            objectness = (
                sigmoid_focal_loss(logits.float(), target, alpha=0.25, gamma=2.0, reduction="sum") / n
            )
        else:
            weight = torch.where(target > 0, 1.0, self.no_object_weight)
            bce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
            objectness = (bce * weight).sum() / weight.sum()
        l1 = (pred - gt).abs().sum() / n
        giou = generalized_box_iou_loss(
            box_convert(pred, "cxcywh", "xyxy"), box_convert(gt, "cxcywh", "xyxy"), reduction="sum"
        )
        w = self.weights
        return w["objectness"] * objectness + w["l1"] * l1 + w["giou"] * giou / n

    def loss(self, outputs: dict[str, Any], batch: dict[str, Any]) -> Tensor:
        total = sum(
            self._set_loss(boxes, logits, outputs["target_boxes"], match)
            for (boxes, logits), match in zip(outputs["layers"], outputs["matches"])
        )
        caption = prefix_lm_loss(
            outputs["caption_logits"],
            outputs["caption_labels"],
            prefix_len=1,
            label_smoothing=self.label_smoothing,
        )
        return total + self.weights["caption"] * caption

    # -- predictions, metrics, examples --------------------------------------------------------------
    def predict(self, outputs: dict[str, Any], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``[{"image_id", "boxes": [[x, y, w, h], ...], "captions", "scores"}]``, pixels of the
        original image, by decreasing score."""
        rows = []
        for image_id, det in zip(batch["image_id"].tolist(), outputs["detections"]):
            xywh = box_convert(det["boxes"], "xyxy", "xywh").tolist()
            rows.append(
                {
                    "image_id": int(image_id),
                    "boxes": [[round(v, 2) for v in box] for box in xywh],
                    "captions": list(det["captions"]),
                    "scores": [round(float(s), 4) for s in det["scores"]],
                }
            )
        return rows

    def metrics(self) -> MetricCollection:
        if self.meteor_missing is None:
            return MetricCollection({"densecap": DenseCapMAP()})
        if self.meteor_missing not in _WARNED:
            _WARNED.add(self.meteor_missing)
            log.warning(
                "densecap head: reporting det_map only, without DenseCap's map, which needs METEOR: %s",
                self.meteor_missing,
            )
        return MetricCollection({"densecap": DetectionOnlyMAP()})

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Any], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return
        preds = [
            {"boxes": inclusive_corners(d["boxes"]), "scores": d["scores"], "captions": d["captions"]}
            for d in outputs["detections"]
        ]
        truth = [
            {"boxes": inclusive_corners(t.pixel_boxes.cpu()), "captions": t.phrases} for t in batch["targets"]
        ]
        metrics["densecap"].update(preds, truth, ids=batch["image_id"])

    def describe(self, outputs: dict[str, Any], batch: dict[str, Any], i: int) -> str:
        """The three best boxes' sentences and scores, and two ground-truth phrases (TensorBoard)."""
        det = outputs["detections"][i]
        lines = [
            f"{k + 1}. {c} ({s:.2f})"
            for k, (c, s) in enumerate(zip(det["captions"][:3], det["scores"].tolist()))
        ]
        truth = batch["targets"][i].phrases[:2] if is_labelled(batch) else []
        return "\n".join([*lines, *(f"GT: {p}" for p in truth)]) or "(no box)"

    def example_boxes(
        self, outputs: dict[str, Any], batch: dict[str, Any], i: int
    ) -> list[tuple[tuple[float, ...], str, str]]:
        """The ground truth (green) and the three best boxes (red), each labelled with its number in
        `describe` and its sentence, as fractions of the image for
        `vltasks.tasks.visualize.example_panel` (drawn last, the predictions stay readable)."""
        wh = batch["image_size"][i].float().cpu().repeat(2)
        det = outputs["detections"][i]
        out = []
        if is_labelled(batch):
            out += [
                (tuple((b / wh).tolist()), "", "lime") for b in batch["targets"][i].pixel_boxes.float().cpu()
            ]
        best = zip(det["boxes"][:3].float(), det["captions"][:3])
        return out + [(tuple((b / wh).tolist()), f"{k + 1} {c}", "red") for k, (b, c) in enumerate(best)]
