"""Registry-driven contract tests (timm's pattern): every head, reader and backbone family in the
registries is exercised here, so a new one is tested the day it is registered.

- every head in HEADS: forward, loss and backward, predict (JSON round trip) and its metrics, on
  batches made by the reader of a demo config that uses it (a head without a demo fails here);
- every reader in READERS reads the synthetic world written in its layout;
- every backbone family satisfies the typed protocols of the capabilities it declares, and a head
  that asks for what the family cannot offer fails at config check, naming the capability.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from vltasks.datamodules import READERS
from vltasks.datamodules.synthetic import WRITERS
from vltasks.heads import HEADS

from tests.tiny import BACKBONE
from vltasks import runtime
from vltasks.backbones import BACKBONES, PRESETS, Backbone, Encoded, build_backbone, protocols_for
from vltasks.batch import FAILED, Instances, is_labelled, move_batch
from vltasks.config import ConfigError, builtin_configs, load_run

DEMOS = [c for c in builtin_configs() if c.endswith("_demo")]
SMALL = ["synthetic.train=8", "synthetic.val=5", "synthetic.test=3", *BACKBONE, "data.num_workers=0"]


def _demo_for(head: str) -> tuple[str, str, list[str]]:
    """A config that uses the head, with the overrides that make it a tiny synthetic run: a
    single-task demo first, else a multitask demo, else a real-data config whose format has a
    synthetic writer (on the family's tiny preset)."""
    demos = sorted(DEMOS, key=lambda c: len(load_run(c).tasks))
    for name in demos:
        for task, spec in load_run(name).tasks.items():
            if spec.head == head:
                return name, task, []
    for name in builtin_configs():
        run = load_run(name)
        for task, spec in run.tasks.items():
            if spec.head == head and spec.data.format in WRITERS:
                tiny = [f"backbone={run.config.backbone.name}_tiny"]
                return name, task, [*tiny, "synthetic.enabled=true", "trainer.precision=32-true"]
    raise AssertionError(f"head {head!r} has no config with a synthetic world: add a demo")


def _same_tree(a, b) -> bool:
    """Equal structure and leaves; tensors compared by device, dtype and shape (meta has no values)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and (a.device, a.dtype, a.shape) == (b.device, b.dtype, b.shape)
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_tree, a, b))
    if isinstance(a, Instances):
        return (
            isinstance(b, Instances)
            and list(a) == list(b)
            and all(_same_tree(getattr(a, k), getattr(b, k)) for k in a)
        )
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return type(a) is type(b) and _same_tree(vars(a), vars(b))
    return a == b


def _first(loader):
    return next(iter(loader))


@pytest.mark.parametrize("head_name", HEADS.names())
def test_every_head_runs_forward_loss_predict_and_metrics(head_name, tmp_path):
    demo, task, tiny = _demo_for(head_name)
    overrides = [
        *tiny,
        f"data.root={tmp_path / 'data'}",
        *SMALL,
        "data.batch_size=4",
        "data.eval_batch_size=3",
    ]
    spec = load_run(demo, overrides)
    runtime.prepare_synthetic(spec)
    data = runtime.build_task_data(spec)
    model = runtime.build_model(spec, data, None)
    dm = runtime.build_datamodule(spec, data, model)
    head = model.heads[task]
    assert isinstance(head, HEADS.get(head_name)) and head.monitor

    model.train()
    batch = _first(dm.train_dataloader())[0][task]
    # the module's fast batch transfer gives what Lightning's generic walk gives, on every head's batch
    meta = torch.device("meta")
    assert _same_tree(move_batch(batch, meta), move_data_to_device(batch, meta))
    out = head.run(model.backbone, batch)
    loss = head.loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters()) or not list(
        head.parameters()
    )
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())

    model.eval()
    metrics = head.metrics()
    with torch.no_grad():
        batch = _first(dm.val_dataloader()[model.task_names.index(task)])
        assert is_labelled(batch), "the demo's validation split is labelled"
        out = head.run(model.backbone, batch)
        head.update_metrics(metrics, out, batch)
        head.on_eval_epoch_end(model.backbone, metrics, "val")
        values = metrics.compute()
        flat = {k: v for k, v in values.items()}
        assert any(head.monitor == k or head.monitor in k for k in flat), (head.monitor, list(flat))
        pred_batch = _first(dm.predict_dataloader()[model.task_names.index(task)])
        rows = head.predict(head.run(model.backbone, pred_batch), pred_batch)
    assert len(rows) == len(pred_batch["sample_id"]) and json.loads(json.dumps(rows)) == rows


@pytest.mark.parametrize("fmt", READERS.names())
def test_every_reader_reads_its_synthetic_layout(fmt, tmp_path):
    assert fmt in WRITERS, f"reader {fmt!r} has no synthetic writer: the demos and these tests need one"
    # the split names and options of a built-in config that reads the format (a demo's first)
    configs = [*DEMOS, *(c for c in builtin_configs() if c not in DEMOS)]
    name = next((c for c in configs for t in load_run(c).tasks.values() if t.data.format == fmt), None)
    assert name is not None, f"no built-in config reads format {fmt!r}"
    task = next(t for t in load_run(name).tasks.values() if t.data.format == fmt)
    d = task.data
    WRITERS.get(fmt)(tmp_path, {d.split("train"): 6, d.split("val"): 3}, seed=1)
    reader = READERS.get(fmt)(str(tmp_path), d.splits, "error", **d.options)
    train, val = reader.samples("train"), reader.samples("val")
    assert train and val and all("sample_id" in s and "record" in s for s in train + val)
    assert len({s["sample_id"] for s in val}) == len(val)
    assert list(reader.texts()), "tiny backbones train their tokenizer on the training text"
    assert reader.skipped == {d.split("train"): 0, d.split("val"): 0}

    # a training load that draws from the global RNGs must say so (draws_random): only such datasets
    # are seeded per sample, and an unseeded draw would differ between a fit and its resumption
    ds = reader.dataset(train, train=True)
    states = lambda: (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())  # noqa: E731
    before = states()
    for i in range(min(len(ds), 4)):
        assert FAILED not in ds[i], ds[i]
    after = states()
    drew = not (torch.equal(before[0], after[0]) and (before[1] == after[1]).all() and before[2] == after[2])
    assert not drew or ds.draws_random, (
        f"reader {fmt!r} draws randomness when loading but does not declare it"
    )


TEXTS = ["a red circle left of a blue square", "what color is the circle?"] * 3


@pytest.mark.parametrize("family", BACKBONES.names())
def test_every_backbone_family_satisfies_the_protocols_it_declares(family, tokenizer):
    presets = [p for p, spec in PRESETS.items() if spec["family"] == family]
    assert presets, f"backbone family {family!r} has no tiny preset to test it with"
    cls = BACKBONES.get(family)
    args = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
    backbone = build_backbone(
        {"preset": presets[0], "preset_args": args, "vocab_size": 120},
        texts=lambda: TEXTS,
        needs=set(cls.buildable),
    )
    assert isinstance(backbone, Backbone) and backbone.capabilities == cls.buildable
    for protocol in protocols_for(backbone.capabilities):
        assert isinstance(backbone, protocol), (family, protocol.__name__)
    backbone.require(backbone.capabilities, "every head")
    from PIL import Image

    batch = backbone.processor([Image.new("RGB", (64, 64), "red")] * 2, TEXTS[:2])
    with torch.no_grad():
        if "fusion" in backbone.capabilities:
            f = backbone(batch)
            assert f.tokens.shape[:2] == f.mask.shape and f.pooled.shape == (2, backbone.hidden_size)
        if "dual" in backbone.capabilities:
            image = backbone.encode_image(batch["pixel_values"])
            text = backbone.encode_text(batch["input_ids"], batch["attention_mask"])
            assert isinstance(image, Encoded) and image.embeds.shape == text.embeds.shape == (
                2,
                backbone.embed_dim,
            )
        if {"dual", "fusion"} <= backbone.capabilities:
            pooled = backbone.fuse_pairs(
                image.tokens, text.tokens, batch["input_ids"], batch["attention_mask"]
            )
            assert pooled.shape == (2, backbone.hidden_size)
        if "decoder" in backbone.capabilities:
            vision = backbone.vision_tokens(batch["pixel_values"])
            logits = backbone.decoder_logits(vision, batch["input_ids"], batch["attention_mask"])
            assert logits.shape[:2] == batch["input_ids"].shape
            assert backbone.generate(vision, max_length=4).shape[0] == 2


def test_a_head_the_backbone_cannot_serve_fails_at_config_check_naming_the_capability():
    with pytest.raises(ConfigError, match=r"tasks\.vqa\.head=captioning.*\['decoder'\].*'vilt'"):
        load_run("vqa_demo", ["tasks.vqa.head=captioning"])
    with pytest.raises(ConfigError, match=r"tasks\.retrieval\.head=retrieval.*\['dual'\].*'vilt'"):
        load_run("retrieval_demo", ["backbone=vilt_tiny"])


def test_a_declared_capability_without_its_methods_is_refused():
    class Pretender(Backbone):
        family = "pretender"
        capabilities = frozenset({"dual", "fusion"})

    with pytest.raises(TypeError, match=r"does not implement \['DualEncoder', 'PairFusion'\]"):
        Pretender(processor=None).require({"dual", "fusion"}, "retrieval")


def test_the_family_comes_from_the_name_or_config_json_never_from_the_spelling(tmp_path, tokenizer):
    from vltasks.backbones import ClipBackbone, family_of

    clip = ClipBackbone.from_config({"hidden_size": 32, "num_layers": 1, "num_heads": 2}, tokenizer)
    clip.save_pretrained(tmp_path / "my-vilt-finetune")  # a CLIP model in a folder named like ViLT
    assert family_of({"pretrained": str(tmp_path / "my-vilt-finetune")}) == "clip"
    assert family_of({"preset": "blip_tiny"}) == "blip"
    with pytest.raises(ValueError, match="is a 'clip' model: set backbone.name=clip"):
        family_of({"pretrained": str(tmp_path / "my-vilt-finetune"), "name": "vilt"})
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type 'llama' has no backbone adapter"):
        family_of({"pretrained": str(tmp_path / "odd")})
    spec = load_run("vqa_demo", [f"backbone={tmp_path / 'my-vilt-finetune'}"])
    assert spec.config.backbone.name is None  # the shorthand leaves the family to config.json
