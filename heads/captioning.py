"""Image captioning with the backbone's decoder (BLIP style): prefix-LM NLL under teacher forcing,
captions decoded by transformers' own generate, scored with the COCO caption metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head

from vltasks.backbones.base import Features
from vltasks.metrics import CaptionMetrics
from vltasks.objectives import IGNORE_INDEX, prefix_lm_loss

DECODING = ("greedy", "beam", "nucleus")


@HEADS.register("captioning")
class CaptioningHead(Head):
    """No layers of its own: the backbone's decoder is the head (it is shared, and pretrained).

    Batch keys (the ``karpathy`` reader's): ``pixel_values``; for training ``input_ids`` and
    ``attention_mask`` of one caption (optional ``targets``: those ids with -100 where not a target);
    for metrics ``captions`` (all reference captions of each image); for predictions ``image_id``.

    Decoding (transformers' generate): ``greedy``, ``beam`` (num_beams, length_penalty,
    no_repeat_ngram_size) or ``nucleus`` (top_p, temperature, top_k; 0 = off). ``max_length`` and
    ``min_length`` count tokens as BLIP/LAVIS do, the start token and the prompt included. A
    ``prompt`` (BLIP's "a picture of ") is put after the start token, excluded from the loss and
    cut from the decoded caption. ``label_smoothing`` softens the training targets (BLIP: 0.1).
    """

    needs = frozenset({"decoder"})
    monitor = "CIDEr"

    def __init__(
        self,
        hidden_size: int,
        decoding: str = "beam",
        num_beams: int = 3,
        max_length: int = 20,
        min_length: int = 5,
        length_penalty: float = 1.0,
        no_repeat_ngram_size: int = 0,
        repetition_penalty: float = 1.0,
        top_p: float = 0.9,
        top_k: int = 0,
        temperature: float = 1.0,
        prompt: str = "",
        metrics: Sequence[str] = ("Bleu", "ROUGE_L", "CIDEr"),
        metric_tokenizer: str = "ptb",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        if decoding not in DECODING:
            raise ValueError(f"captioning head: decoding must be one of {DECODING}, got {decoding!r}")
        if min_length > max_length:
            raise ValueError(f"captioning head: min_length {min_length} > max_length {max_length}")
        self.decoding, self.prompt = decoding, prompt
        self.gen: dict[str, Any] = dict(
            max_length=int(max_length),
            min_length=int(min_length),
            repetition_penalty=float(repetition_penalty),
            no_repeat_ngram_size=int(no_repeat_ngram_size),
        )
        if decoding == "beam":
            self.gen.update(num_beams=int(num_beams), length_penalty=float(length_penalty), do_sample=False)
        elif decoding == "nucleus":
            self.gen.update(
                do_sample=True, top_p=float(top_p), top_k=int(top_k), temperature=float(temperature)
            )
        else:
            self.gen.update(num_beams=1, do_sample=False)
        self.metric_names, self.metric_tokenizer = tuple(metrics), metric_tokenizer

    # -- running the backbone: encoder once, decoder teacher-forced and/or generating -------------
    def _prompt_ids(self, backbone: Any, device: torch.device) -> Tensor:
        tok = backbone.processor.tokenizer
        ids = tok(self.prompt, add_special_tokens=False)["input_ids"] if self.prompt else []
        return torch.tensor([ids], dtype=torch.long, device=device)

    def run(self, backbone: Any, batch: dict[str, Any]) -> dict[str, Any]:
        image = backbone.encode_image(batch["pixel_values"])
        prompt = self._prompt_ids(backbone, image.device)
        out: dict[str, Any] = {}
        if "input_ids" in batch:
            ids, mask, labels = _with_prompt(prompt, batch["input_ids"], batch["attention_mask"], batch)
            ids, mask, labels = _fit(ids, mask, labels, backbone.processor.max_text_len)
            out["logits"] = backbone.decoder_logits(image, ids, mask)
            out["labels"] = labels
        if not self.training:
            generated = backbone.generate(image, prompt if prompt.numel() else None, **self.gen)
            out["generated"] = self.decode(backbone, generated, prompt.shape[1])
        return out

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        raise RuntimeError("captioning head runs the decoder itself: call head.run(backbone, batch)")

    @staticmethod
    def decode(backbone: Any, generated: Tensor, prompt_len: int) -> list[str]:
        """Text after the start token and the prompt, special tokens dropped."""
        tok = backbone.processor.tokenizer
        texts = tok.batch_decode(generated[:, 1 + prompt_len :], skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]

    # -- training ----------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, Any], batch: dict[str, Any]) -> Tensor:
        # position 0 holds the start token: given, never a target (the seed's sum starts at w_1)
        return prefix_lm_loss(
            outputs["logits"], outputs["labels"], prefix_len=1, label_smoothing=self.label_smoothing
        )

    # -- predictions and metrics -------------------------------------------------------------------
    def predict(self, outputs: dict[str, Any], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The official COCO results format: one {"image_id", "caption"} per image."""
        return [{"image_id": int(i), "caption": c} for i, c in zip(batch["image_id"], outputs["generated"])]

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {"caption": CaptionMetrics(self.metric_names, tokenizer=self.metric_tokenizer)}
        )

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Any], batch: dict[str, Any]
    ) -> None:
        if batch.get("captions") is None:
            return  # a split without references: predict only
        metrics["caption"].update(outputs["generated"], batch["captions"], ids=batch["image_id"])

    def describe(self, outputs: dict[str, Any], batch: dict[str, Any], i: int) -> str:
        """Lines for the TensorBoard image panel: the generated caption and two references."""
        refs = (batch.get("captions") or [[]] * (i + 1))[i][:2]
        return "\n".join([f"pred: {outputs['generated'][i]}", *(f"GT: {r}" for r in refs)])


def _with_prompt(
    prompt: Tensor, input_ids: Tensor, attention_mask: Tensor, batch: dict[str, Any]
) -> tuple[Tensor, Tensor, Tensor]:
    """Insert the prompt after the start token; the prompt and padding are never targets."""
    labels = batch.get("targets")
    if labels is None:
        labels = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
    if prompt.numel() == 0:
        return input_ids, attention_mask, labels
    b, p = input_ids.shape[0], prompt.shape[1]
    ids = torch.cat([input_ids[:, :1], prompt.expand(b, p), input_ids[:, 1:]], dim=1)
    mask = torch.cat([attention_mask[:, :1], attention_mask.new_ones(b, p), attention_mask[:, 1:]], dim=1)
    ignore = labels.new_full((b, p), IGNORE_INDEX)
    return ids, mask, torch.cat([labels[:, :1], ignore, labels[:, 1:]], dim=1)


def _fit(ids: Tensor, mask: Tensor, labels: Tensor, limit: int) -> tuple[Tensor, Tensor, Tensor]:
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
