"""The pieces of issue 12 that need no second process: per-step task sampling, the resumable training
sampler, per-sample seeds, the aggregate monitor, the parts frozen by design and the DDP strategy they
allow, FSDP and precision from the config, and an LR schedule counted in optimizer steps."""

from __future__ import annotations

import logging
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset
from vltasks.datamodules.datamodule import (
    MultitaskLoader,
    SeededSamples,
    TaskSchedule,
    TrainSampler,
)

from tests.tiny import BACKBONE
from vltasks import runtime
from vltasks.config import ConfigError, load_run
from vltasks.tasks.parts import unused_parts

SMALL = ["synthetic.train=8", "synthetic.val=5", "synthetic.test=3", *BACKBONE, "data.num_workers=0"]


# -- which tasks train in each step ----------------------------------------------------------------
SIZES = {"vqa": 6000, "refcoco": 1500, "snli_ve": 375}
BATCHES = {"vqa": 94, "refcoco": 47, "snli_ve": 6}


def test_all_trains_every_task_every_step_for_the_longest_tasks_batches():
    s = TaskSchedule(SIZES, BATCHES, "all")
    assert s.steps == 94 and set(s.epoch(3)) == {("vqa", "refcoco", "snli_ve")}
    assert s.position(2, 10) == dict.fromkeys(SIZES, 2 * 94 + 10)


def test_round_robin_takes_turns_across_epochs():
    s = TaskSchedule(SIZES, BATCHES, "round_robin", steps_per_epoch=4)
    assert [t for (t,) in s.epoch(0) + s.epoch(1)] == ["vqa", "refcoco", "snli_ve"] * 2 + ["vqa", "refcoco"]


@pytest.mark.parametrize(("sampling", "temperature"), [("proportional", 1.0), ("temperature", 2.0)])
def test_drawn_tasks_follow_size_to_the_one_over_t(sampling, temperature):
    s = TaskSchedule(SIZES, BATCHES, sampling, temperature=temperature, steps_per_epoch=20000, seed=3)
    weights = {t: n ** (1 / temperature) for t, n in SIZES.items()}
    want = {t: w / sum(weights.values()) for t, w in weights.items()}
    assert s.probabilities == pytest.approx(want)
    counts = Counter(t for (t,) in s.epoch(0))
    for task, p in want.items():
        assert counts[task] / 20000 == pytest.approx(p, abs=0.015), task
    assert TaskSchedule(SIZES, BATCHES, sampling, temperature=temperature).steps == sum(BATCHES.values())


def test_weights_scale_a_tasks_drawn_probability():
    s = TaskSchedule(SIZES, BATCHES, "temperature", temperature=2.0, weights={"refcoco": 3.0}, seed=1)
    drawn = {t: n**0.5 * (3.0 if t == "refcoco" else 1.0) for t, n in SIZES.items()}
    assert s.probabilities == pytest.approx({t: w / sum(drawn.values()) for t, w in drawn.items()})
    with pytest.raises(ValueError, match="not tasks of this run"):
        TaskSchedule(SIZES, BATCHES, "temperature", weights={"gqa": 2.0})
    turns = TaskSchedule(SIZES, BATCHES, "round_robin", steps_per_epoch=3, weights={"vqa": 2.0})
    assert turns.epoch(0) == [("vqa",), ("refcoco",), ("snli_ve",)]  # nothing drawn: no effect
    for bad, match in (
        (["multitask.weights={gqa: 2}"], "not tasks of this run"),
        (["multitask.weights={refcoco: 0}"], "must be > 0"),
    ):
        with pytest.raises(ConfigError, match=match):
            load_run("multitask_demo", bad)


def test_weights_without_draws_are_named_not_dropped_silently(caplog):
    """The demo's weights under sampling=all (a config's dict cannot be emptied from the command
    line) load with a warning that says they have no effect."""
    with caplog.at_level(logging.WARNING, logger="vltasks"):
        load_run("multitask_demo", ["multitask.sampling=all"])
    assert any("have no effect with multitask.sampling=all" in r.getMessage() for r in caplog.records)


def test_draws_depend_on_the_seed_and_epoch_only():
    """Every rank builds its schedule from the same global sizes and seed: the same task each step."""
    a = TaskSchedule(SIZES, BATCHES, "temperature", seed=7)
    b = TaskSchedule(dict(SIZES), dict(BATCHES), "temperature", seed=7)
    assert a.epoch(5) == b.epoch(5) and a.epoch(5) != a.epoch(6)
    assert a.epoch(5) != TaskSchedule(SIZES, BATCHES, "temperature", seed=8).epoch(5)
    with pytest.raises(ValueError, match="multitask.sampling must be one of"):
        TaskSchedule(SIZES, BATCHES, "random")


# -- the training sampler: global batches, resumable position -------------------------------------
@pytest.mark.parametrize(("n", "world", "batch"), [(40, 2, 4), (41, 2, 4), (37, 4, 2), (10, 1, 3)])
def test_ranks_batches_together_are_the_one_process_batch(n, world, batch):
    """Rank r's k-th batch of size b holds positions r, r+W, ... of the 1-process k-th batch of W*b
    (for full batches); the pass order is DistributedSampler's (randperm seeded with seed + pass)."""
    one = [i for _, i in TrainSampler(n, 1, 0, seed=5)]
    shards = [[i for _, i in TrainSampler(n, world, r, seed=5)] for r in range(world)]
    for k in range(n // (world * batch)):
        together = sorted(i for shard in shards for i in shard[k * batch : (k + 1) * batch])
        assert together == sorted(one[k * world * batch : (k + 1) * world * batch])
    g = torch.Generator().manual_seed(5)
    assert one == torch.randperm(n, generator=g).tolist()
    sampler = TrainSampler(n, world, world - 1, seed=5)
    sampler.set_position(3, 2)
    assert [p for p, _ in sampler] == [3] * (math.ceil(n / world) - 2)
    sampler.set_position(0, 2)
    assert [i for _, i in sampler] == shards[-1][2:]


class Noisy(Dataset):
    """A sample that draws from python's, numpy's and torch's RNGs while it loads."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> tuple[int, float, float, float]:
        return i, random.random(), float(np.random.rand()), float(torch.rand(()))


def test_a_samples_random_draws_depend_on_seed_pass_and_index_only():
    ds = SeededSamples(Noisy(), seed=1)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a, b = ds[(0, 3)], ds[(0, 3)]
    assert a == b and ds[(1, 3)] != a and ds[(0, 4)][1:] != a[1:]
    assert torch.equal(torch.get_rng_state(), before)  # the main process's own draws are untouched
    loader = DataLoader(ds, batch_size=4, sampler=TrainSampler(12, seed=1), num_workers=2)
    by_worker = {int(i): (x, y, z) for i, x, y, z in zip(*next(iter(loader)))}
    for i, draws in by_worker.items():
        assert tuple(float(v) for v in draws) == pytest.approx(ds[(0, i)][1:])


def test_a_dataset_that_draws_nothing_is_passed_through_unseeded():
    plain = SeededSamples(list(range(12)), seed=1, seeded=False)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert plain.__getitems__([(0, 3), (5, 7)]) == [3, 7] and plain[(2, 4)] == 4
    assert torch.equal(torch.get_rng_state(), before)


def test_only_datasets_that_draw_are_seeded_by_the_datamodule(tmp_path):
    """A training clip's frames are drawn (seeded per sample); a VQA image is not (passed through)."""
    from tests.tiny import BACKBONE
    from vltasks import runtime
    from vltasks.config import load_run

    for demo, seeded in (("vqa_demo", False), ("video_qa_demo", True)):
        small = ["synthetic.train=6", "synthetic.val=3", "synthetic.test=2", "data.num_workers=0"]
        spec = load_run(demo, [f"data.root={tmp_path / demo}", *small, *BACKBONE])
        runtime.prepare_synthetic(spec)
        data = runtime.build_task_data(spec)
        dm = runtime.build_datamodule(spec, data, runtime.build_model(spec, data, None))
        loader = dm._loader(dm.task_names[0], "train", True)
        assert loader.dataset.seeded is seeded, demo


def test_a_restarted_loader_goes_on_where_the_interrupted_one_stood():
    """Two tasks drawn per step, each cycling its own passes; a loader started at (epoch, step) gives
    what the uninterrupted iteration gave from there: the resume needs the step count alone."""

    def loaders() -> dict[str, DataLoader]:
        return {
            name: DataLoader(SeededSamples(Noisy(), 0), batch_size=bs, sampler=TrainSampler(12, seed=0))
            for name, bs in (("a", 5), ("b", 4))
        }

    schedule = TaskSchedule({"a": 12, "b": 12}, {"a": 3, "b": 3}, "proportional", steps_per_epoch=5, seed=2)
    epoch = [0]
    whole = MultitaskLoader(loaders(), schedule, lambda: epoch[0], lambda: None)
    seen = []
    for e in range(3):
        epoch[0] = e
        seen += [(e, s, b) for s, b in enumerate(whole)]
    resume = [(1, 2, False)]
    fresh = MultitaskLoader(loaders(), schedule, lambda: 1, lambda: resume.pop() if resume else None)
    tail = [b for b in fresh]
    want = [b for e, s, b in seen if e == 1 and s >= 2]
    assert len(tail) == len(want) == 3
    for got, expected in zip(tail, want):
        assert got.keys() == expected.keys()
        for task in got:
            assert all(torch.equal(x, y) for x, y in zip(got[task], expected[task]))
    done = [(0, 5, True)]  # a checkpoint at the end of epoch 0: the next batch is epoch 1's first
    after_epoch = MultitaskLoader(loaders(), schedule, lambda: 0, lambda: done.pop() if done else None)
    first = next(iter(after_epoch))
    assert all(torch.equal(x, y) for x, y in zip(next(iter(first.values())), next(iter(seen[5][2].values()))))


# -- the model: aggregate monitor, parts frozen by design ---------------------------------------------
def _model(tmp_path, config: str, *overrides: str):
    spec = load_run(config, [f"data.root={tmp_path / 'data'}", *SMALL, *overrides])
    runtime.prepare_synthetic(spec)
    data = runtime.build_task_data(spec)
    return spec, runtime.build_model(spec, data, None)


def test_a_multitask_run_selects_on_the_mean_of_its_tasks_metrics(tmp_path):
    _, model = _model(tmp_path, "multitask_demo")
    assert model.selection() == ("val/aggregate", "max")
    assert model.aggregate_keys == ["vqa/accuracy", "refcoco/acc@0.5_val", "snli_ve/accuracy"]
    assert model.searches_unused()  # one task per step: the others' heads get no gradient
    _, one = _model(tmp_path, "multitask_demo", "multitask.monitor=[vqa/accuracy]", "multitask.sampling=all")
    assert one.aggregate_keys == ["vqa/accuracy"] and not one.searches_unused()
    with pytest.raises(ConfigError, match="'nope/accuracy' is not 'task/metric' with a task of this run"):
        load_run("multitask_demo", ["multitask.monitor=[nope/accuracy]"])
    with pytest.raises(ConfigError, match="multitask.sampling: 'random' is not one of all, round_robin"):
        load_run("multitask_demo", ["multitask.sampling=random"])


def test_parts_no_head_reads_are_frozen(tmp_path):
    _, grounding = _model(tmp_path, "refcoco_demo")
    assert grounding.unused_parts == ["model.pooler"] and not grounding.searches_unused()
    assert not any(p.requires_grad for p in grounding.backbone.model.pooler.parameters())
    _, pooled = _model(tmp_path, "refcoco_demo", "tasks.refcoco.head_args.pooling=pooled")
    assert pooled.unused_parts == []
    _, kept = _model(tmp_path, "refcoco_demo", "backbone.freeze_unused=false")
    assert kept.unused_parts == [] and kept.searches_unused()  # the control: left to DDP's search
    _, features = _model(tmp_path, "charades_sta_demo")  # CLIP on pre-extracted features, a span head
    assert features.unused_parts == ["model.text_projection", "model.vision_model", "model.visual_projection"]
    assert not features.searches_unused()
    _, caption = _model(tmp_path, "caption_demo")
    assert caption.unused_parts == [
        "model.itm_head",
        "model.text_encoder",
        "model.text_proj",
        "model.vision_proj",
    ]
    assert all(p.requires_grad for p in caption.backbone.model.text_decoder.parameters())


def test_blip_retrieval_freezes_the_decoder_and_keeps_its_own_itm_layer_only_when_used():
    from vltasks.backbones import build_backbone

    blip = build_backbone({"preset": "blip_tiny", "vocab_size": 120}, texts=lambda: ["a b c"] * 4)
    reads = {"image_embeds", "text_embeds", "image_tokens", "text_tokens", "pair_fusion", "pixels"}
    assert unused_parts(blip, "blip", reads) == ["model.itm_head", "model.text_decoder"]
    assert unused_parts(blip, "blip", reads | {"itm"}) == ["model.text_decoder"]
    # the span head on pre-extracted features: no cross-attention, no image encoder
    assert unused_parts(blip, "blip", {"text_tokens"}) == [
        "model.itm_head",
        "model.text_decoder",
        *[f"model.text_encoder.encoder.layer.{i}.crossattention" for i in range(3)],
        "model.text_proj",
        "model.vision_model",
        "model.vision_proj",
    ]
    with pytest.raises(ValueError, match="unknown backbone outputs \\['logits'\\]"):
        unused_parts(blip, "blip", {"logits"})


@pytest.mark.parametrize(
    ("strategy", "search", "want"),
    [
        ("auto", False, "ddp"),
        ("auto", True, "ddp_find_unused_parameters_true"),
        ("ddp_fork", False, "ddp_fork"),
        ("ddp_find_unused_parameters_true", False, "ddp_find_unused_parameters_true"),  # as named
    ],
)
def test_ddp_searches_for_unused_parameters_only_when_a_step_can_leave_some(strategy, search, want):
    assert runtime.resolve_strategy(strategy, 2, 1, "cpu", search_unused=search) == want


def test_fsdp_and_precision_come_from_the_config(tmp_path):
    from lightning.pytorch.strategies import ModelParallelStrategy

    spec, model = _model(
        tmp_path, "vqa_demo", "trainer.strategy=fsdp", "trainer.devices=2", "trainer.precision=bf16-mixed"
    )
    kwargs, _, _ = runtime.trainer_kwargs(spec, model, "fit")
    assert isinstance(kwargs["strategy"], ModelParallelStrategy) and kwargs["precision"] == "bf16-mixed"
    assert kwargs["strategy"]._data_parallel_size == 2 and not kwargs["strategy"]._save_distributed_checkpoint
    with pytest.raises(
        ConfigError, match="trainer.precision=16-mixed with trainer.strategy=fsdp: use one of"
    ):
        load_run("vqa_demo", ["trainer.strategy=fsdp", "trainer.precision=16-mixed"])


def test_activation_checkpointing_keeps_names_and_gradients(tmp_path):
    from vltasks.tasks.parts import layer_classes

    spec, plain = _model(tmp_path, "vqa_demo", "backbone.preset_args.num_layers=2")
    _, recomputed = _model(
        tmp_path, "vqa_demo", "backbone.preset_args.num_layers=2", "backbone.activation_checkpointing=true"
    )
    recomputed.load_state_dict(plain.state_dict())
    recomputed.configure_model()
    assert {c.__name__ for c in layer_classes(recomputed.backbone)} == {"ViltLayer"}
    assert list(recomputed.state_dict()) == list(plain.state_dict())
    data = runtime.build_task_data(spec)
    batch = next(iter(runtime.build_datamodule(spec, data, plain).val_dataloader()[0]))
    for model in (plain, recomputed):
        model.train()
        model.heads["vqa"].loss(model("vqa", batch), batch).backward()
    for (name, a), b in zip(plain.named_parameters(), recomputed.parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, msg=name)


# -- the LR schedule counts optimizer steps ----------------------------------------------------------
@pytest.mark.parametrize("accumulate", [1, 3])
def test_the_lr_schedule_ends_at_the_last_optimizer_step(accumulate, tmp_path, capsys):
    """ViLT issue 19: a schedule sized in batches, stepped per optimizer step, decays 1/accumulate of
    the way. Here warmup and decay are sized in optimizer steps, as Lightning's estimate counts them,
    and the cosine reaches its floor on the fit's last step, in bf16-mixed with clipping."""
    import lightning as L

    from vltasks import api

    run = api.build(
        "vqa_demo",
        [
            f"data.root={tmp_path / 'data'}",
            f"trainer.default_root_dir={tmp_path}",
            *SMALL,
            "data.batch_size=4",
            "trainer.max_epochs=2",
            f"trainer.accumulate_grad_batches={accumulate}",
            "trainer.precision=bf16-mixed",
            "trainer.gradient_clip_val=0.5",
            "trainer.enable_progress_bar=false",
            "optim.warmup=2",
            "optim.min_lr_ratio=0.1",
        ],
    )
    trainer = L.Trainer(**run.trainer_kwargs)
    trainer.fit(run.model, run.datamodule)
    steps = run.model.optimizer_steps()
    assert steps == trainer.estimated_stepping_batches == trainer.global_step
    assert steps == 2 * math.ceil(run.datamodule.schedule().steps / accumulate)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == steps
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(0.1 * run.spec.config.optim.lr)  # min_lr_ratio: the floor, reached
