"""What every captioned corpus shares (Karpathy's COCO/Flickr splits, MSR-VTT, MSVD, ...): items
(images or clips) each with several captions, read in two views, and the batches built from them.

Views: ``items(stage)`` gives one sample per item with all its captions (evaluation, caption
references); ``captions(stage)`` one sample per caption (``sample_id`` = its sentence id) carrying
its item's fields (retrieval and caption training); ``samples`` picks by stage and ``train_unit``,
and predict samples carry the split's whole caption gallery (item-to-text ranking).

Batches: `CorpusCollator` for retrieval (captions as ITC/ITM text; per-item batches flatten every
caption with the ids that say whose it is), `CaptionCollator` for a caption decoder (one caption
each, teacher forced, with the decoder prompt the head asks for). An item's sample carries
``imgid`` (the integer every metric and ITC positive keys by), ``image_id`` (what results files
name) and either ``image`` or a clip (``frames`` / ``features``) once loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from vltasks.datamodules.base import Collator, TaskData

from vltasks.objectives import IGNORE_INDEX

TRAIN_UNITS = ("caption", "image")
ITEM_FIELDS = ("captions", "sentids", "tokens", "split", "filename", "sample_id", "record")


class CaptionGallery:
    """Every caption of a split: what item-to-text ranking searches. Not a dataclass: Lightning
    rebuilds dataclasses when it moves batches (and refuses frozen ones); this rides along as is."""

    def __init__(self, key: str, text_ids: list[int], text_image_ids: list[int], texts: list[str]) -> None:
        self.key, self.text_ids, self.text_image_ids, self.texts = key, text_ids, text_image_ids, texts


class TokenizedGallery:
    """A `CaptionGallery` as the collate tokenized it: ``input_ids`` / ``attention_mask`` [N, L].
    ``to`` moves the tensors when Lightning moves the batch."""

    def __init__(self, key: str, text_ids: list[int], input_ids: Tensor, attention_mask: Tensor):
        self.key, self.text_ids = key, text_ids
        self.input_ids, self.attention_mask = input_ids, attention_mask

    def to(self, *args: Any, **kwargs: Any) -> TokenizedGallery:
        return TokenizedGallery(
            self.key,
            self.text_ids,
            self.input_ids.to(*args, **kwargs),
            self.attention_mask.to(*args, **kwargs),
        )


class CorpusCollator(Collator):
    """Per-caption batches: items + their captions (input_ids), ``targets`` the item ids (ITC
    positives). Per-item batches: items, and all their captions flattened as text_input_ids with
    text_ids (sentids) and ``targets`` = text_image_ids (imgids); predict batches also carry the
    split's captions tokenized once per collate (``gallery``)."""

    def __init__(self, processor: Any, args: dict[str, Any] | None = None) -> None:
        super().__init__(processor)
        self._gallery: TokenizedGallery | None = None

    def gallery(self, gallery: CaptionGallery) -> TokenizedGallery:
        if self._gallery is None or self._gallery.key != gallery.key:
            enc = self.processor.text(list(gallery.texts))
            self._gallery = TokenizedGallery(
                gallery.key, gallery.text_ids, enc["input_ids"], enc["attention_mask"]
            )
        return self._gallery

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)
        imgid = torch.tensor([s["imgid"] for s in samples], dtype=torch.long)
        if "caption" in samples[0]:
            batch.update(self.processor.text([s["caption"] for s in samples]))
            self.copy(batch, samples, lists=("caption",), ids=("sentid",))
            batch["targets"] = imgid
        else:
            text = self.processor.text([c for s in samples for c in s["captions"]])
            batch["text_input_ids"] = text["input_ids"]
            batch["text_attention_mask"] = text["attention_mask"]
            batch["text_ids"] = torch.tensor([i for s in samples for i in s["sentids"]], dtype=torch.long)
            batch["text_image_ids"] = torch.tensor(
                [s["imgid"] for s in samples for _ in s["sentids"]], dtype=torch.long
            )
            batch["targets"] = batch["text_image_ids"]
            batch["captions"] = [s["captions"] for s in samples]
            if "gallery" in samples[0]:
                batch["gallery"] = self.gallery(samples[0]["gallery"])
        batch["imgid"] = imgid
        return self.copy(batch, samples, lists=("sample_id",), ids=("image_id",))


class CaptionCollator(Collator):
    """Items + one caption each (teacher forcing, prompt inserted) + the references, ids and paths.

    The collate owns the decoder prompt (the head's ``prompt``, e.g. BLIP's "a picture of "): it is
    tokenized once, put after the start token of every caption, never scored, and handed to decoding
    as ``prompt_ids``. Per-item batches teacher-force their first reference (the validation loss)."""

    def __init__(self, processor: Any, args: dict[str, Any] | None = None) -> None:
        super().__init__(processor)
        prompt = (args or {}).get("prompt", "")
        self.prompt_ids = torch.tensor(processor.token_ids(prompt), dtype=torch.long)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        per_caption = "caption" in samples[0]
        batch = self.visual(samples)
        batch.update(
            self.processor.text([s["caption"] if per_caption else s["captions"][0] for s in samples])
        )
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        ids, mask, labels = with_prompt(self.prompt_ids, batch["input_ids"], batch["attention_mask"], labels)
        batch["input_ids"], batch["attention_mask"], batch["targets"] = fit(
            ids, mask, labels, self.processor.max_text_len
        )
        batch.pop("token_type_ids", None)  # the decoder takes none; the prompt would misalign them
        batch["prompt_ids"] = self.prompt_ids
        if not per_caption:
            batch["captions"] = [list(s["captions"]) for s in samples]
        return self.copy(batch, samples, lists=("sample_id",), ids=("image_id",))


def with_prompt(
    prompt: Tensor, input_ids: Tensor, attention_mask: Tensor, labels: Tensor
) -> tuple[Tensor, ...]:
    """Insert the prompt after the start token; the prompt and padding are never targets."""
    if prompt.numel() == 0:
        return input_ids, attention_mask, labels
    b, p = input_ids.shape[0], prompt.numel()
    ids = torch.cat([input_ids[:, :1], prompt.expand(b, p), input_ids[:, 1:]], dim=1)
    mask = torch.cat([attention_mask[:, :1], attention_mask.new_ones(b, p), attention_mask[:, 1:]], dim=1)
    ignore = labels.new_full((b, p), IGNORE_INDEX)
    return ids, mask, torch.cat([labels[:, :1], ignore, labels[:, 1:]], dim=1)


def fit(ids: Tensor, mask: Tensor, labels: Tensor, limit: int) -> tuple[Tensor, Tensor, Tensor]:
    """Cut rows to the decoder's positions as the tokenizer would: a row the prompt pushed past
    ``limit`` loses caption tokens but keeps its end token, so the model still learns to stop."""
    if ids.shape[1] <= limit:
        return ids, mask, labels
    last = mask.shape[1] - 1 - mask.flip(1).argmax(1)  # the end token: the last unmasked position
    rows = torch.arange(ids.shape[0], device=ids.device)
    end_ids, end_labels = ids[rows, last], labels[rows, last]
    ids, mask, labels = ids[:, :limit].clone(), mask[:, :limit], labels[:, :limit].clone()
    over = last >= limit
    ids[over, limit - 1] = end_ids[over]
    labels[over, limit - 1] = end_labels[over]
    return ids, mask, labels


class CaptionCorpus(TaskData):
    """A reader of a captioned corpus implements ``read(split)`` -> one sample per item (``imgid``,
    ``image_id``, ``captions``, ``sentids``, and ``image_path`` or a clip's ``video_path``); the views,
    the gallery and the training text are shared."""

    collator: ClassVar[type[Collator]] = CorpusCollator
    item_kind: ClassVar[str] = "images"  # videos: retrieval also reports CLIP4Clip's video table

    def data_args(self) -> dict[str, Any]:
        return {"items": self.item_kind}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.opts.get("train_unit", "caption") not in TRAIN_UNITS:
            raise ValueError(
                f"data.options.train_unit must be caption or image, got {self.opts['train_unit']!r}"
            )
        self._captions: dict[str, list[dict[str, Any]]] = {}
        self._galleries: dict[str, CaptionGallery] = {}

    @property
    def gallery_source(self) -> str:
        """What names a split's gallery (its cache key): the annotation file."""
        return str(self.root)

    def items(self, stage: str) -> list[dict[str, Any]]:
        """One sample per item with all its captions (evaluation, caption references)."""
        return super().samples(stage)

    def captions(self, stage: str) -> list[dict[str, Any]]:
        """One sample per caption: sample_id = sentid, with its item's fields."""
        split = str(self.splits.get(stage))
        if split not in self._captions:
            self._captions[split] = [
                {
                    **{k: v for k, v in item.items() if k not in ITEM_FIELDS},
                    "sample_id": str(sid),
                    "record": f"{item['record']} sentid={sid}",
                    "sentid": sid,
                    "caption": cap,
                }
                for item in self.items(stage)
                for sid, cap in zip(item["sentids"], item["captions"])
            ]
        return self._captions[split]

    def gallery(self, stage: str) -> CaptionGallery:
        """All captions of a stage's split, in file order (item-to-text ranking at predict time)."""
        split = str(self.splits.get(stage))
        if split not in self._galleries:
            caps = self.captions(stage)
            self._galleries[split] = CaptionGallery(
                f"{self.gallery_source}:{split}:{len(caps)}",
                [c["sentid"] for c in caps],
                [c["imgid"] for c in caps],
                [c["caption"] for c in caps],
            )
        return self._galleries[split]

    def samples(self, stage: str) -> list[dict[str, Any]]:
        if stage == "train" and self.opts.get("train_unit", "caption") == "caption":
            return self.captions(stage)
        if stage == "predict":
            gallery = self.gallery(stage)
            return [{**s, "gallery": gallery} for s in self.items(stage)]
        return self.items(stage)

    def texts(self) -> Iterable[str]:  # every training caption (tiny tokenizers learn from them)
        return [c for s in self.items("train") for c in s["captions"]]


class CaptionBatches:
    """Mixin for a corpus read for a caption decoder: captions to train on (``train_unit=caption``),
    items (with all references) to evaluate, no retrieval gallery."""

    collator: ClassVar[type[Collator]] = CaptionCollator

    def data_args(self) -> dict[str, Any]:
        return {}  # the caption head needs nothing the data learns

    def samples(self, stage: str) -> list[dict[str, Any]]:
        if stage == "train" and self.opts["train_unit"] == "caption":  # type: ignore[attr-defined]
            return self.captions(stage)  # type: ignore[attr-defined]
        return self.items(stage)  # type: ignore[attr-defined]
