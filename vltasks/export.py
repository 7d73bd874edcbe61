"""Finetuned models out to transformers' task classes, and transformers task models in.

Out (`export`): each task of a checkpoint becomes a ``save_pretrained`` directory that the matching
transformers class loads with the same outputs, wherever the head's layers *are* that class's
layers (checked layer by layer, then by one forward pass of both):

| backbone + head | transformers class | what matches |
|---|---|---|
| ViLT + ``vqa`` (``pooled``) | ``ViltForQuestionAnswering`` | classifier on the pooler; id2label: answers |
| ViLT + ``entailment`` (``pooled``) | ``ViltForQuestionAnswering`` | the same classifier, 3 labels |
| BLIP + ``retrieval`` | ``BlipForImageTextRetrieval`` | encoders, ITC projections, ITM layer |
| BLIP + ``captioning`` | ``BlipForConditionalGeneration`` | vision encoder and text decoder |
| CLIP + ``retrieval`` | ``CLIPModel`` | the ITC stage only (no place for the fusion block, ITM) |

Everything else (``pooled+max`` heads, grounding, multiple choice, a VQA classifier on BLIP or
CLIP) is written as the backbone alone, with a model card that says what was left out and why.
``ViltForImagesAndTextClassification`` (NLVR2) is never the target: its classifier is
Linear(h*n, h*n)-LayerNorm-GELU-Linear over n images, and one image gives Linear(h, h), not the
Linear(h, 2h) of our heads.

In (`pretrained_task_layers`): ``backbone.pretrained=<dir or hub name of a transformers task
model>`` keeps the task layer when it matches the head: a ``ViltForQuestionAnswering`` classifier
and its ``id2label`` become the VQA head's weights and answer vocabulary (or the entailment head's,
when the labels are the three SNLI-VE classes), a ``BlipForImageTextRetrieval`` ITM layer the
retrieval head's. When it cannot, a log line says why and the head starts as it would have.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

if TYPE_CHECKING:
    from vltasks.config import RunSpec
    from vltasks.tasks import VLTaskModule

log = logging.getLogger(__name__)

ENTAILMENT = ("contradiction", "neutral", "entailment")


class ExportError(ValueError):
    """An export that cannot be written as asked, or whose outputs differ after loading."""


@dataclass
class Exported:
    """One task's directory: the class that loads it (None: the backbone alone), and what it holds."""

    task: str
    path: Path
    transformers_class: str | None
    exact: bool  # the class reproduces the task's outputs (checked when verify is on)
    note: str  # what was left out, and why
    max_diff: float | None = None  # largest |ours - transformers'| over the verification outputs


# -- the classifier our heads share (heads/base.py mlp) as transformers' ViLT classifier -----------
def _mlp_as_vilt_classifier(mlp: nn.Module, hidden: int) -> dict[str, Tensor] | None:
    """The state of ``ViltForQuestionAnswering.classifier`` (Linear(h, 2h), LayerNorm, GELU,
    Linear(2h, n)) when ``mlp`` is that network (our Dropout in between), else None."""
    layers = list(mlp.children()) if isinstance(mlp, nn.Sequential) else []
    kinds = [type(m) for m in layers]
    if kinds != [nn.Linear, nn.LayerNorm, nn.GELU, nn.Dropout, nn.Linear]:
        return None
    first, norm, act, _, last = layers
    if (first.in_features, first.out_features) != (hidden, 2 * hidden) or act.approximate != "none":
        return None
    if norm.eps != 1e-5 or not norm.elementwise_affine:  # nn.LayerNorm(2h) in transformers
        return None
    out = {f"0.{k}": v for k, v in first.state_dict().items()}
    out.update({f"1.{k}": v for k, v in norm.state_dict().items()})
    out.update({f"3.{k}": v for k, v in last.state_dict().items()})
    return out


def _fill(target: nn.Module, state: dict[str, Tensor], what: str) -> None:
    """Load every entry of ``target``'s state dict from ``state``, refusing gaps and leftovers."""
    wanted = target.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise ExportError(f"{what}: no weights for {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    bad = [k for k in wanted if wanted[k].shape != state[k].shape]
    if bad:
        raise ExportError(f"{what}: shapes differ for {bad[:5]}")
    target.load_state_dict({k: state[k] for k in wanted}, strict=True)


# -- what each (family, head) becomes --------------------------------------------------------------
def _plan(model: VLTaskModule, task: str) -> tuple[str | None, str]:
    """(transformers class name or None, the note for the model card)."""
    family, head = model.hparams["backbone_family"], model.heads[task]
    kind = model.config["tasks"][task]["head"]
    # parts of ours around the transformers model (a video adapter; CLIP's fusion block is handled below)
    extra = sorted(
        {n.split(".")[0] for n, _ in model.backbone.named_parameters() if not n.startswith("model.")}
    )
    extra = [n for n in extra if not (family == "clip" and n == "fusion")]
    if extra:
        return None, (
            f"Backbone only: the backbone has parts of vltasks' own ({', '.join(extra)}: e.g. the video "
            "adapter that reads clips) that no transformers class holds; they are saved beside it."
        )
    if family == "vilt" and kind in ("vqa", "entailment"):
        if getattr(head, "pooling", "pooled") != "pooled":
            return None, (
                f"The {kind} head reads [pooled ; max over the fused tokens] (pooling={head.pooling}): "
                "transformers' ViLT classifier reads the pooler output alone, so the classifier has no "
                "place in a transformers class and only the backbone (ViltModel) is written."
            )
        if _mlp_as_vilt_classifier(head.classifier, model.backbone.hidden_size) is None:
            return None, "The classifier's layers are not ViltForQuestionAnswering's; backbone only."
        if kind == "entailment":
            return "ViltForQuestionAnswering", (
                "The entailment classifier is exactly ViltForQuestionAnswering's (Linear(h, 2h), "
                "LayerNorm, GELU, Linear on the pooler): logits are contradiction, neutral, entailment "
                "(id2label). ViltForImagesAndTextClassification is not used: with one image its "
                "classifier is Linear(h, h)."
            )
        return "ViltForQuestionAnswering", "Exact: the VQA classifier and its answers (id2label)."
    if family == "blip" and kind == "retrieval":
        return "BlipForImageTextRetrieval", (
            "Exact for both stages' scores: `use_itm_head=False` gives the ITC cosine, `use_itm_head=True` "
            "the ITM logits (from the head's own ITM layer, or BLIP's when backbone_itm was set). The "
            "re-ranking rule (ITC top-k, then ITM log-odds"
            + (f" + {head.itc_weight} x ITC logit" if head.itc_weight else "")
            + ") and the learned ITC temperature are vltasks' and stay in the checkpoint."
        )
    if family == "blip" and kind == "captioning":
        prompt = f' Decoding starts from the prompt "{head.prompt}".' if head.prompt else ""
        return "BlipForConditionalGeneration", (
            "Exact: vision encoder and text decoder. Caption with `model.generate(pixel_values, "
            f"**decoding)` where decoding is {json.dumps(head.gen)} (vltasks_decoding.json).{prompt}"
        )
    if family == "clip" and kind == "retrieval":
        return "CLIPModel", (
            "Partial: CLIPModel reproduces the ITC stage exactly (embeddings; logit_scale is the head's "
            "learned temperature), i.e. the `itc_` recalls. The ITM re-ranking runs on vltasks' fusion "
            "block and ITM layer, which no transformers class holds: the fusion block is kept as "
            "vltasks_fusion.* files (vltasks reads them back with backbone.pretrained=<this dir>)."
        )
    reasons = {
        "grounding": "transformers has no referring-expression box head for this backbone",
        "multiple_choice": "transformers has no multiple-choice class for ViLT, CLIP or BLIP",
        "vqa": "BlipForQuestionAnswering generates answers; this head classifies over an answer vocabulary",
        "entailment": "transformers' only pair classifier of this shape is ViLT's",
        "retrieval": "ViLT's retrieval class scores one fused pass per pair; this head needs a dual encoder",
        "captioning": "only BLIP has a transformers captioning class here",
    }
    why = reasons.get(kind, f"no transformers class holds a {kind!r} head")
    return None, f"Backbone only: {why}. The head's layers stay in the vltasks checkpoint."


def _hf_model(model: VLTaskModule, task: str, cls_name: str) -> nn.Module:
    import transformers

    backbone, head = model.backbone, model.heads[task]
    cls = getattr(transformers, cls_name)
    config = backbone.model.config.__class__.from_dict(backbone.model.config.to_dict())
    config.architectures = [cls_name]
    own = backbone.model.state_dict()
    if cls_name == "ViltForQuestionAnswering":
        labels = head.answers if hasattr(head, "answers") else list(head.classes)
        config.id2label = dict(enumerate(labels))
        config.label2id = {a: i for i, a in enumerate(labels)}
        hf = cls(config)
        state = {f"vilt.{k}": v for k, v in own.items()}
        classifier = _mlp_as_vilt_classifier(head.classifier, backbone.hidden_size)
        assert classifier is not None  # _plan checked it
        state.update({f"classifier.{k}": v for k, v in classifier.items()})
    elif cls_name == "BlipForImageTextRetrieval":
        hf = cls(config)
        state = dict(own)
        if head.itm is not None:  # the head's own ITM layer has BLIP's itm_head shape
            state.update({f"itm_head.{k}": v for k, v in head.itm.state_dict().items()})
    elif cls_name == "CLIPModel":
        hf = cls(config)
        state = dict(own)
        scale = head.temperature.log_scale.detach().clamp(max=math.log(head.temperature.max_scale))
        state["logit_scale"] = scale.to(own["logit_scale"].dtype).reshape(own["logit_scale"].shape)
    else:  # BlipForConditionalGeneration: the union model's encoder and decoder
        hf = cls(config)
        state = dict(own)
    _fill(hf, state, f"{cls_name} for task {task!r}")
    return hf.eval()


# -- verification: one forward pass of ours and of the loaded directory ----------------------------
@torch.no_grad()
def _compare(model: VLTaskModule, task: str, cls_name: str, path: Path) -> float:
    import transformers
    from PIL import Image

    hf = getattr(transformers, cls_name).from_pretrained(str(path)).eval()
    backbone, head = model.backbone, model.heads[task]
    images = [Image.new("RGB", (64, 48), c) for c in ("red", "navy")]
    batch = backbone.processor(images, ["is there a red circle left of the square?", "a blue shape"])
    pairs: list[tuple[Tensor, Tensor]] = []
    if cls_name == "ViltForQuestionAnswering":
        pairs.append((model(task, batch)["logits"], hf(**batch).logits))
    elif cls_name == "BlipForImageTextRetrieval":
        ids, mask, px = batch["input_ids"], batch["attention_mask"], batch["pixel_values"]
        image = backbone.encode_image(px)
        text = backbone.encode_text(ids, mask)
        pooled = backbone.fuse_pairs(image.tokens, text.tokens, ids, mask)
        pairs.append((head.itm_logits(backbone, pooled), hf(ids, px, attention_mask=mask).itm_score))
        cos = nn.functional.normalize(image.embeds, dim=-1) @ nn.functional.normalize(text.embeds, dim=-1).T
        pairs.append((cos, hf(ids, px, attention_mask=mask, use_itm_head=False).itm_score))
    elif cls_name == "CLIPModel":
        ids, mask, px = batch["input_ids"], batch["attention_mask"], batch["pixel_values"]
        image, text = backbone.encode_image(px).embeds, backbone.encode_text(ids, mask).embeds
        cos = nn.functional.normalize(image, dim=-1) @ nn.functional.normalize(text, dim=-1).T
        out = hf(input_ids=ids, attention_mask=mask, pixel_values=px)
        pairs.append((head.temperature() * cos, out.logits_per_image))
    else:
        ids, mask, px = batch["input_ids"], batch["attention_mask"], batch["pixel_values"]
        ours = backbone.decoder_logits(backbone.vision_tokens(px), ids, mask)
        pairs.append((ours, hf(px, input_ids=backbone.decoder_inputs(ids), attention_mask=mask).logits))
    return max(float((a.float() - b.float()).abs().max()) for a, b in pairs)


# -- the model card ----------------------------------------------------------------------------------
def _metrics(ckpt: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The run's metrics.json next to the checkpoint's folder, else the checkpoint's best score."""
    run_file = ckpt.parent.parent / "metrics.json"
    if ckpt.parent.name == "checkpoints" and run_file.is_file():
        stages = json.loads(run_file.read_text())
        return {
            f"{stage}: {k}": v
            for stage, values in stages.items()
            for k, v in values.items()
            if isinstance(v, (int, float))
        }
    for key, state in (raw.get("callbacks") or {}).items():
        if key.startswith("ModelCheckpoint") and state.get("best_model_score") is not None:
            return {f"best {state.get('monitor')}": float(state["best_model_score"])}
    return {}


def _card(model: VLTaskModule, task: str, done: Exported, metrics: dict[str, Any], ckpt: Path) -> str:
    from vltasks.config import resolve

    cfg = model.config
    spec = cfg["tasks"][task]
    d = resolve(cfg).tasks[task].data
    data = {"format": d.format, "root": d.root, **{f"{s} split": n for s, n in d.splits.items() if n}}
    data.update({f"options.{k}": v for k, v in sorted(d.options.items())})
    source = cfg["backbone"].get("pretrained") or f"the tiny random preset {cfg['backbone'].get('preset')}"
    cls = done.transformers_class
    load = (
        f'from transformers import {cls}\nmodel = {cls}.from_pretrained("{done.path}")'
        if cls
        else "# the backbone alone (vltasks: backbone.pretrained=<this dir>)\n"
        f'from transformers import AutoModel\nmodel = AutoModel.from_pretrained("{done.path}")'
    )
    lines = [
        "---",
        "library_name: transformers",
        f"tags: [vltasks, {spec['head']}, {model.hparams['backbone_family']}]",
        "---",
        f"# {cfg.get('name', 'vltasks')}: task `{task}` (head `{spec['head']}`)",
        "",
        f"Finetuned with vltasks from {source} (backbone family `{model.hparams['backbone_family']}`), "
        f"exported from `{ckpt}`.",
        "",
        "## Load it",
        "",
        "```python",
        load,
        "```",
        "",
        f"## What this directory holds: {cls or 'the backbone only'}",
        "",
        done.note,
        ""
        if done.max_diff is None
        else f"\nChecked on export: the largest difference between vltasks' outputs and {cls}'s is "
        f"{done.max_diff:.2e}.",
        "",
        "## Data",
        "",
        *(f"- {k}: {v}" for k, v in data.items()),
        "",
        "## Metrics reached",
        "",
        *(
            ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4f} |" for k, v in metrics.items())]
            if metrics
            else ["(none recorded next to the checkpoint)"]
        ),
        "",
        "## Config",
        "",
        "```yaml",
        OmegaConf.to_yaml(OmegaConf.create(cfg)).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def export(ckpt: str | Path, out: str | Path, verify: bool = True) -> list[Exported]:
    """Write each task of a checkpoint as a transformers directory under ``out`` (``out`` itself for
    a one-task checkpoint, ``out/<task>`` otherwise), each with a model card (README.md). With
    ``verify`` the directory is loaded back with its transformers class and one forward pass is
    compared with ours: a difference above 1e-4 is an error."""
    from transformers.utils import logging as hf_logging

    from vltasks.tasks import VLTaskModule

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: checkpoint not found")
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    model = VLTaskModule.load_from_checkpoint(ckpt, map_location="cpu").eval()
    metrics = _metrics(ckpt, raw)
    out = Path(out)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # small local writes and reads: no "Writing model shards" bars
    try:
        return [_export_task(model, task, out, verify, metrics, ckpt) for task in model.task_names]
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def _export_task(
    model: VLTaskModule, task: str, out: Path, verify: bool, metrics: dict[str, Any], ckpt: Path
) -> Exported:
    """One task's directory (see `export`)."""
    path = out if len(model.task_names) == 1 else out / task
    path.mkdir(parents=True, exist_ok=True)
    cls_name, note = _plan(model, task)
    model.backbone.save_pretrained(path)  # tokenizer, image processor (and CLIP's fusion files)
    item = Exported(task, path, cls_name, cls_name not in (None, "CLIPModel"), note)
    if cls_name is not None:
        _hf_model(model, task, cls_name).save_pretrained(str(path))
        if cls_name == "BlipForConditionalGeneration":
            (path / "vltasks_decoding.json").write_text(json.dumps(model.heads[task].gen, indent=2))
        if verify:
            item.max_diff = _compare(model, task, cls_name, path)
            if item.max_diff > 1e-4:
                raise ExportError(
                    f"{path}: {cls_name} loaded from the export differs from the checkpoint's task "
                    f"{task!r} by {item.max_diff:.2e}"
                )
    (path / "README.md").write_text(_card(model, task, item, metrics, ckpt), encoding="utf-8")
    print(f"{task}: {cls_name or 'backbone only'} -> {path}")
    return item


# -- the way in -----------------------------------------------------------------------------------
# transformers task classes whose task layer no vltasks head can take (said in a log line)
UNUSED_TASK_CLASSES = (
    "ViltForImagesAndTextClassification",
    "ViltForImageAndTextRetrieval",
    "ViltForTokenClassification",
    "BlipForQuestionAnswering",
)


def _architecture(pretrained: str) -> tuple[Any, str | None]:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(pretrained)
    archs = getattr(config, "architectures", None) or []
    return config, (archs[0] if archs else None)


def _quiet_load(arch: str, pretrained: str) -> nn.Module:
    """The task model again, for its task layer: the backbone's own load already showed the
    progress bar and transformers' load report, so this second load shows neither."""
    import transformers
    from transformers.utils import logging as hf_logging

    shown, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        return getattr(transformers, arch).from_pretrained(pretrained)
    finally:
        hf_logging.set_verbosity(level)
        if shown:
            hf_logging.enable_progress_bar()


def pretrained_task_layers(
    spec: RunSpec, data_args: dict[str, dict[str, Any]], hidden_size: int
) -> dict[str, dict[str, Tensor]]:
    """Per task, the head state to load from a pretrained transformers task model (see the module
    docstring); ``data_args`` is updated with what comes with it (the VQA answer vocabulary)."""
    pretrained = spec.config.backbone.pretrained
    if not pretrained:
        return {}
    config, arch = _architecture(str(pretrained))
    if arch not in ("ViltForQuestionAnswering", "BlipForImageTextRetrieval"):
        if arch in UNUSED_TASK_CLASSES:
            log.info("backbone.pretrained=%s is a %s: no head here takes its task layer", pretrained, arch)
        return {}

    source = None
    layers: dict[str, dict[str, Tensor]] = {}
    for name, task in spec.tasks.items():
        head_args = {**data_args.get(name, {}), **task.head_args}
        where = f"tasks.{name} (head {task.head})"
        if arch == "ViltForQuestionAnswering" and task.head in ("vqa", "entailment"):
            labels = [config.id2label[i] for i in range(len(config.id2label))]
            if head_args.get("pooling", "pooled") != "pooled":
                log.warning(
                    "%s: the %s classifier of %s is not used: the head reads pooling=%s, the classifier "
                    "the pooler output alone; the head starts random",
                    where,
                    arch,
                    pretrained,
                    head_args["pooling"],
                )
                continue
            order = list(range(len(labels)))
            if task.head == "entailment":
                names = [str(x).lower() for x in labels]
                if sorted(names) != sorted(ENTAILMENT):
                    log.warning(
                        "%s: the classifier of %s is not used: its labels %s are not %s",
                        where,
                        pretrained,
                        labels,
                        ENTAILMENT,
                    )
                    continue
                order = [names.index(c) for c in ENTAILMENT]
            source = source or _quiet_load(arch, str(pretrained))
            classifier = source.classifier
            state = {
                "classifier.0.weight": classifier[0].weight,
                "classifier.0.bias": classifier[0].bias,
                "classifier.1.weight": classifier[1].weight,
                "classifier.1.bias": classifier[1].bias,
                "classifier.4.weight": classifier[3].weight[order],
                "classifier.4.bias": classifier[3].bias[order],
            }
            if state["classifier.0.weight"].shape != (2 * hidden_size, hidden_size):
                log.warning("%s: the classifier of %s has another width; not used", where, pretrained)
                continue
            layers[name] = {k: v.detach().clone() for k, v in state.items()}
            if task.head == "vqa":
                data_args.setdefault(name, {})["answers"] = labels
                log.info(
                    "%s: classifier and answer vocabulary (%d answers) from %s (%s)",
                    where,
                    len(labels),
                    pretrained,
                    arch,
                )
            else:
                log.info("%s: classifier from %s (%s)", where, pretrained, arch)
        elif arch == "BlipForImageTextRetrieval" and task.head == "retrieval":
            if head_args.get("backbone_itm"):
                continue  # the head scores with the backbone's itm_head, loaded with the backbone
            source = source or _quiet_load(arch, str(pretrained))
            layers[name] = {f"itm.{k}": v.detach().clone() for k, v in source.itm_head.state_dict().items()}
            log.info("%s: ITM layer from %s (%s)", where, pretrained, arch)
    if not layers and not any(t.head in ("vqa", "entailment", "retrieval") for t in spec.tasks.values()):
        log.info("backbone.pretrained=%s is a %s: no head here takes its task layer", pretrained, arch)
    return layers


def load_task_layers(model: VLTaskModule, layers: dict[str, dict[str, Tensor]]) -> None:
    """Put `pretrained_task_layers`' weights into the heads; every key must be one of the head's."""
    for name, state in layers.items():
        head = model.heads[name]
        own = head.state_dict()
        unknown = sorted(k for k in state if k not in own or own[k].shape != state[k].shape)
        if unknown:
            raise ExportError(f"task {name!r}: the pretrained task layer does not fit the head at {unknown}")
        head.load_state_dict({**own, **state})
