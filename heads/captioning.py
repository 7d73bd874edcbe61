"""Image captioning with the backbone's decoder (BLIP style): prefix-LM NLL under teacher forcing,
captions decoded by transformers' own generate, scored with the COCO caption metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torchmetrics import MetricCollection
from vltasks.heads.base import HEADS, Head

from vltasks.backbones.base import Decoder, Features
from vltasks.batch import is_labelled, visual_input
from vltasks.metrics import CaptionMetrics
from vltasks.objectives import prefix_lm_loss

DECODING = ("greedy", "beam", "nucleus")


def generation_kwargs(
    who: str,
    decoding: str,
    num_beams: int = 3,
    max_length: int = 20,
    min_length: int = 5,
    length_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    repetition_penalty: float = 1.0,
    top_p: float = 0.9,
    top_k: int = 0,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """transformers' ``generate`` arguments for a decoding choice (``greedy``, ``beam``, ``nucleus``),
    shared by every head that writes text with the backbone's decoder; ``who`` names the head in errors."""
    if decoding not in DECODING:
        raise ValueError(f"{who} head: decoding must be one of {DECODING}, got {decoding!r}")
    if min_length > max_length:
        raise ValueError(f"{who} head: min_length {min_length} > max_length {max_length}")
    gen: dict[str, Any] = dict(
        max_length=int(max_length),
        min_length=int(min_length),
        repetition_penalty=float(repetition_penalty),
        no_repeat_ngram_size=int(no_repeat_ngram_size),
    )
    if decoding == "beam":
        gen.update(num_beams=int(num_beams), length_penalty=float(length_penalty), do_sample=False)
    elif decoding == "nucleus":
        gen.update(do_sample=True, top_p=float(top_p), top_k=int(top_k), temperature=float(temperature))
    else:
        gen.update(num_beams=1, do_sample=False)
    return gen


@HEADS.register("captioning")
class CaptioningHead(Head[Decoder]):
    """No layers of its own: the backbone's decoder is the head (it is shared, and pretrained).

    Batch keys (the ``CaptionCollator``'s): ``pixel_values`` (or a clip); ``input_ids`` /
    ``attention_mask`` of one caption with the prompt already after the start token, and ``targets``
    (those ids, -100 on the prompt and padding) for teacher forcing; ``prompt_ids`` [P] for decoding;
    ``captions`` (all references of each image) for metrics; ``image_id`` for predictions.

    Decoding (transformers' generate): ``greedy``, ``beam`` (num_beams, length_penalty,
    no_repeat_ngram_size) or ``nucleus`` (top_p, temperature, top_k; 0 = off). ``max_length`` and
    ``min_length`` count tokens as BLIP/LAVIS do, the start token and the prompt included. A
    ``prompt`` (BLIP's "a picture of ") is handed to the collate (``collate_args``), which puts it
    after the start token and out of the loss; decoding starts from it and it is cut from the
    caption. ``label_smoothing`` softens the training targets (BLIP: 0.1).
    """

    needs = frozenset({"decoder"})
    reads = frozenset({"decoder"})
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
        self.decoding, self.prompt = decoding, prompt
        self.gen = generation_kwargs(
            "captioning",
            decoding,
            num_beams=num_beams,
            max_length=max_length,
            min_length=min_length,
            length_penalty=length_penalty,
            no_repeat_ngram_size=no_repeat_ngram_size,
            repetition_penalty=repetition_penalty,
            top_p=top_p,
            top_k=top_k,
            temperature=temperature,
        )
        self.metric_names, self.metric_tokenizer = tuple(metrics), metric_tokenizer

    def collate_args(self) -> dict[str, Any]:
        return {"prompt": self.prompt}

    # -- running the backbone: encoder once, decoder teacher-forced and/or generating -------------
    def run(self, backbone: Decoder, batch: dict[str, Any]) -> dict[str, Any]:
        image = backbone.vision_tokens(visual_input(batch))
        out: dict[str, Any] = {}
        if "input_ids" in batch:
            out["logits"] = backbone.decoder_logits(image, batch["input_ids"], batch["attention_mask"])
        if not self.training:
            prompt = batch.get("prompt_ids")
            prompt = prompt[None] if prompt is not None and prompt.numel() else None
            generated = backbone.generate(image, prompt, **self.gen)
            p = 0 if prompt is None else prompt.shape[1]
            out["generated"] = backbone.processor.decode(generated[:, 1 + p :])  # after start + prompt
        return out

    def forward(self, features: Features, batch: dict[str, Any]) -> dict[str, Tensor]:
        raise RuntimeError("captioning head runs the decoder itself: call head.run(backbone, batch)")

    # -- training ----------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, Any], batch: dict[str, Any]) -> Tensor:
        # position 0 holds the start token: given, never a target (the seed's sum starts at w_1)
        return prefix_lm_loss(
            outputs["logits"], batch["targets"], prefix_len=1, label_smoothing=self.label_smoothing
        )

    # -- predictions and metrics -------------------------------------------------------------------
    def predict(self, outputs: dict[str, Any], batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The official COCO results format: one {"image_id", "caption"} per image ({"video_id",
        "caption"} per clip, as MSR-VTT and MSVD results name them)."""
        if "video_id" in batch:
            return [{"video_id": v, "caption": c} for v, c in zip(batch["video_id"], outputs["generated"])]
        return [{"image_id": int(i), "caption": c} for i, c in zip(batch["image_id"], outputs["generated"])]

    def metrics(self) -> MetricCollection:
        return MetricCollection(
            {"caption": CaptionMetrics(self.metric_names, tokenizer=self.metric_tokenizer)}
        )

    def update_metrics(
        self, metrics: MetricCollection, outputs: dict[str, Any], batch: dict[str, Any]
    ) -> None:
        if not is_labelled(batch):
            return  # a split without references: predict only
        metrics["caption"].update(outputs["generated"], batch["captions"], ids=batch["sample_id"])

    def describe(self, outputs: dict[str, Any], batch: dict[str, Any], i: int) -> str:
        """Lines for the TensorBoard image panel: the generated caption and two references."""
        refs = (batch.get("captions") or [[]] * (i + 1))[i][:2]
        return "\n".join([f"pred: {outputs['generated'][i]}", *(f"GT: {r}" for r in refs)])
