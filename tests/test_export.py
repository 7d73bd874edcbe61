"""transformers task models both ways, on tiny models written here: `vltasks export` writes what the
real transformers classes load with our outputs (or the backbone alone, saying why), and
`backbone.pretrained=<a transformers task model>` brings its task layer back into the head."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
import pytest
import torch
import transformers
from PIL import Image
from vltasks.heads import HEADS

from tests.tiny import BACKBONE, SHORT_RUN
from vltasks.backbones import build_backbone
from vltasks.cli import main
from vltasks.config import load_run
from vltasks.export import export, load_task_layers, pretrained_task_layers
from vltasks.tasks import VLTaskModule

TEXTS = ["what color is the circle?", "a red square left of a blue circle", "is there a green triangle?"] * 4
ANSWERS = ["yes", "no", "2", "red", "blue", "circle"]


def _module(
    config: str, overrides: list[str], data_args: dict, needs: frozenset[str] = frozenset()
) -> VLTaskModule:
    """A tiny model as `vltasks fit` builds it, its head weights drawn far from their init (a
    LayerNorm left at 1 / 0 would hide a swapped weight and bias)."""
    spec = load_run(config, [*BACKBONE, *overrides])
    needs = set(needs).union(*(HEADS.get(t.head).needs for t in spec.tasks.values()))
    torch.manual_seed(0)
    backbone = build_backbone(spec.plain()["backbone"], texts=lambda: TEXTS, needs=needs)
    model = VLTaskModule(spec.plain(), backbone.family, backbone.export_files(), data_args, backbone=backbone)
    with torch.no_grad():
        for p in model.heads.parameters():
            p.normal_(0.0, 0.5)
    return model.eval()


def _checkpoint(model: VLTaskModule, path: Path) -> Path:
    """What Lightning's checkpoint holds for loading: weights and hyperparameters."""
    hparams = dict(model.hparams)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": hparams,
            "pytorch-lightning_version": L.__version__,
        },
        path,
    )
    return path


def _batch(model: VLTaskModule) -> dict:
    images = [Image.new("RGB", (64, 64), c) for c in ("red", "navy", "olive")]
    return model.backbone.processor(images, TEXTS[:3])


def _loaded(cls: type, path: Path):
    hf, info = cls.from_pretrained(str(path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info  # every weight has its place
    return hf.eval()


@pytest.mark.parametrize(
    "config,overrides,data_args,labels",
    [
        ("vqa_demo", ["tasks.vqa.head_args.pooling=pooled"], {"vqa": {"answers": ANSWERS}}, ANSWERS),
        (
            "snli_ve_demo",
            ["tasks.snli_ve.head_args.pooling=pooled"],
            {},
            ["contradiction", "neutral", "entailment"],
        ),
    ],
)
def test_vilt_classifiers_round_trip_through_vilt_for_question_answering(
    config, overrides, data_args, labels, tmp_path
):
    model = _module(config, overrides, data_args)
    task = model.task_names[0]
    (done,) = export(_checkpoint(model, tmp_path / "m.ckpt"), tmp_path / "out")
    assert done.transformers_class == "ViltForQuestionAnswering" and done.exact and done.max_diff == 0.0
    hf = _loaded(transformers.ViltForQuestionAnswering, tmp_path / "out")
    assert [hf.config.id2label[i] for i in range(len(labels))] == labels
    batch = _batch(model)
    with torch.no_grad():
        torch.testing.assert_close(hf(**batch).logits, model(task, batch)["logits"], rtol=0, atol=1e-6)
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"task `{task}`" in card and "## Config" in card and "ViltForQuestionAnswering" in card

    # and back in: the exported directory as backbone.pretrained gives the same head and answers
    spec = load_run(config, [*overrides, f"backbone={tmp_path / 'out'}"])
    data_args_in = {k: dict(v) for k, v in data_args.items()}
    if config == "vqa_demo":
        data_args_in["vqa"]["answers"] = ["something", "else"]  # what a reader would have learned
    layers = pretrained_task_layers(spec, data_args_in, model.backbone.hidden_size)
    backbone = build_backbone(spec.plain()["backbone"])
    again = VLTaskModule(
        spec.plain(), backbone.family, backbone.export_files(), data_args_in, backbone=backbone
    )
    load_task_layers(again, layers)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(task, batch)["logits"], model(task, batch)["logits"])
    if config == "vqa_demo":
        assert again.heads[task].answers == ANSWERS  # the vocabulary came with the classifier
    else:  # SNLI-VE labels in another order come back in ours
        hf.config.id2label, hf.config.label2id = dict(enumerate(labels[::-1])), {}
        with torch.no_grad():
            hf.classifier[3].weight.copy_(hf.classifier[3].weight.flip(0))
            hf.classifier[3].bias.copy_(hf.classifier[3].bias.flip(0))
        hf.save_pretrained(tmp_path / "out")
        layers = pretrained_task_layers(spec, {}, model.backbone.hidden_size)
        torch.testing.assert_close(
            layers[task]["classifier.4.weight"], model.heads[task].classifier[4].weight
        )


def test_a_head_transformers_has_no_place_for_exports_the_backbone_and_says_why(tmp_path, caplog):
    model = _module("vqa_demo", ["tasks.vqa.head_args.pooling=pooled+max"], {"vqa": {"answers": ANSWERS}})
    (done,) = export(_checkpoint(model, tmp_path / "m.ckpt"), tmp_path / "out")
    assert done.transformers_class is None and not done.exact
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["architectures"] == ["ViltModel"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "pooling=pooled+max" in card and "only the backbone (ViltModel) is written" in card
    _loaded(transformers.ViltModel, tmp_path / "out")

    # a ViltForQuestionAnswering directory cannot give its classifier to a pooled+max head: said so
    exact = _module("vqa_demo", ["tasks.vqa.head_args.pooling=pooled"], {"vqa": {"answers": ANSWERS}})
    export(_checkpoint(exact, tmp_path / "e.ckpt"), tmp_path / "qa", verify=False)
    spec = load_run("vqa_demo", [f"backbone={tmp_path / 'qa'}", "tasks.vqa.head_args.pooling=pooled+max"])
    args = {"vqa": {"answers": ["a", "b"]}}
    with caplog.at_level(logging.WARNING, logger="vltasks.export"):
        assert pretrained_task_layers(spec, args, 32) == {}
    assert "is not used: the head reads pooling=pooled+max" in caplog.text
    assert args["vqa"]["answers"] == ["a", "b"]  # the reader's vocabulary stays


def test_a_backbone_with_parts_of_our_own_exports_only_the_backbone(tmp_path):
    """A video adapter (clips) has no place in ViltForQuestionAnswering: the head is not exported."""
    data_args = {"vqa": {"answers": ANSWERS}}
    model = _module("vqa_demo", ["tasks.vqa.head_args.pooling=pooled"], data_args, needs=frozenset({"video"}))
    (done,) = export(_checkpoint(model, tmp_path / "m.ckpt"), tmp_path / "out")
    assert done.transformers_class is None
    assert "parts of vltasks' own (video" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.parametrize("backbone_itm", [False, True])
def test_blip_retrieval_round_trips_through_blip_for_image_text_retrieval(backbone_itm, tmp_path):
    model = _module(
        "retrieval_demo", ["backbone=blip_tiny", f"tasks.retrieval.head_args.backbone_itm={backbone_itm}"], {}
    )
    head, backbone = model.heads["retrieval"], model.backbone
    (done,) = export(_checkpoint(model, tmp_path / "m.ckpt"), tmp_path / "out")
    assert done.transformers_class == "BlipForImageTextRetrieval" and done.max_diff == 0.0
    hf = _loaded(transformers.BlipForImageTextRetrieval, tmp_path / "out")
    b = _batch(model)
    ids, mask, px = b["input_ids"], b["attention_mask"], b["pixel_values"]
    with torch.no_grad():
        image, text = backbone.encode_image(px), backbone.encode_text(ids, mask)
        itm = head.itm_logits(backbone, backbone.fuse_pairs(image.tokens, text.tokens, ids, mask))
        torch.testing.assert_close(hf(ids, px, attention_mask=mask).itm_score, itm, rtol=0, atol=1e-6)
        cos = torch.nn.functional.cosine_similarity(image.embeds[:, None], text.embeds[None], dim=-1)
        torch.testing.assert_close(hf(ids, px, attention_mask=mask, use_itm_head=False).itm_score, cos)
    if not backbone_itm:  # and back in: the ITM layer becomes the head's own again
        spec = load_run("retrieval_demo", [f"backbone={tmp_path / 'out'}"])
        layers = pretrained_task_layers(spec, {}, backbone.hidden_size)
        assert set(layers["retrieval"]) == {"itm.weight", "itm.bias"}
        torch.testing.assert_close(layers["retrieval"]["itm.weight"], head.itm.weight, rtol=0, atol=0)


def test_blip_captioning_round_trips_through_blip_for_conditional_generation(tmp_path):
    model = _module("caption_demo", [], {})
    (done,) = export(_checkpoint(model, tmp_path / "m.ckpt"), tmp_path / "out")
    assert done.transformers_class == "BlipForConditionalGeneration" and done.max_diff == 0.0
    hf = _loaded(transformers.BlipForConditionalGeneration, tmp_path / "out")
    decoding = json.loads((tmp_path / "out" / "vltasks_decoding.json").read_text())
    px = _batch(model)["pixel_values"]
    with torch.no_grad():
        ours = model.heads["caption"].run(model.backbone, {"pixel_values": px})["generated"]
        theirs = model.backbone.processor.decode(hf.generate(px, **decoding)[:, 1:])
    assert theirs == ours


def test_clip_retrieval_exports_the_itc_stage_as_clip_model(tmp_path):
    model = _module("retrieval_demo", [], {})
    head, backbone = model.heads["retrieval"], model.backbone
    (done,) = export(_checkpoint(model, tmp_path / "m.ckpt"), tmp_path / "out")
    assert done.transformers_class == "CLIPModel" and not done.exact  # the ITM stage is left out
    assert "Partial" in (tmp_path / "out" / "README.md").read_text()
    assert (tmp_path / "out" / "vltasks_fusion.safetensors").is_file()
    hf = _loaded(transformers.CLIPModel, tmp_path / "out")
    b = _batch(model)
    with torch.no_grad():
        out = hf(input_ids=b["input_ids"], attention_mask=b["attention_mask"], pixel_values=b["pixel_values"])
        image = backbone.encode_image(b["pixel_values"]).embeds
        text = backbone.encode_text(b["input_ids"], b["attention_mask"]).embeds
        cos = torch.nn.functional.normalize(image, dim=-1) @ torch.nn.functional.normalize(text, dim=-1).T
        torch.testing.assert_close(out.logits_per_image, head.temperature() * cos, rtol=0, atol=1e-5)


# -- the acceptance check: transformers answers as `vltasks predict` does ---------------------
@pytest.fixture(scope="module")
def vqa_export(vqa_root, tmp_path_factory):
    """A tiny VQA checkpoint (written by a Trainer through the Python API; its weights drawn at
    random and lr 0, so answers vary from question to question), its `vltasks predict` file, its
    export."""
    from vltasks import api

    tmp = tmp_path_factory.mktemp("vqa_export")
    common = [
        "--config",
        "vqa_demo",
        f"data.root={vqa_root}",
        f"trainer.default_root_dir={tmp}",
        "synthetic.enabled=false",
        "tasks.vqa.head_args.pooling=pooled",
        *SHORT_RUN,
    ]
    run = api.build("vqa_demo", [*common[2:], "optim.lr=0", "trainer.limit_train_batches=1"], stage="fit")
    with torch.no_grad():  # HF's small init gives every question nearly the same pooled vector
        for p in run.model.parameters():
            p.normal_(0.0, 1.0)
    L.Trainer(**run.trainer_kwargs).fit(run.model, run.datamodule)
    ckpt = str(run.run_dir / "checkpoints" / "last.ckpt")
    assert main(["predict", *common, "--ckpt", ckpt, "data.predict_split=val2014"]) == 0
    preds = json.loads(next(tmp.glob("vqa_demo/version_1/predictions_vqa.json")).read_text())
    assert main(["export", "--ckpt", ckpt, "--out", str(tmp / "export")]) == 0
    return tmp / "export", {p["question_id"]: p["answer"] for p in preds}, (ckpt, common)


def _questions(vqa_root: Path) -> list[tuple[int, Path, str]]:
    from vltasks.datamodules.vqav2 import image_file, questions_file

    qs = json.loads(questions_file(vqa_root, "val2014").read_text())["questions"]
    return [(q["question_id"], image_file(vqa_root, "val2014", q["image_id"]), q["question"]) for q in qs]


def test_exported_vqa_model_answers_as_vltasks_predict(vqa_export, vqa_root):
    """The VQA pipeline's own steps (transformers 4.x `VisualQuestionAnsweringPipeline`): the Auto
    classes load the directory, the tokenizer and the image processor saved with it prepare each
    question alone, the top label of the logits is the answer."""
    path, predicted, _ = vqa_export
    model = transformers.AutoModelForVisualQuestionAnswering.from_pretrained(str(path)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    processor = transformers.AutoImageProcessor.from_pretrained(str(path))
    assert type(model).__name__ == "ViltForQuestionAnswering"
    answers = {}
    for qid, image, question in _questions(vqa_root):
        inputs = dict(tokenizer(question, return_tensors="pt"))
        with Image.open(image) as im:
            inputs.update(processor(images=im.convert("RGB"), return_tensors="pt"))
        with torch.no_grad():
            answers[qid] = model.config.id2label[int(model(**inputs).logits[0].argmax())]
    assert answers == predicted and len(answers) > 40
    assert len(set(answers.values())) > 1  # a model answering one word everywhere would prove little


def test_pipeline_visual_question_answering_answers_as_vltasks_predict(vqa_export, vqa_root):
    try:
        from transformers.pipelines import SUPPORTED_TASKS
    except ImportError:  # pragma: no cover
        SUPPORTED_TASKS = {}
    if "visual-question-answering" not in SUPPORTED_TASKS:
        version = transformers.__version__
        pytest.skip(f"transformers {version} has no visual-question-answering pipeline (removed in 5.0)")
    path, predicted, _ = vqa_export
    vqa = transformers.pipeline("visual-question-answering", model=str(path))
    answers = {
        qid: vqa(image=str(image), question=question, top_k=1)[0]["answer"]
        for qid, image, question in _questions(vqa_root)
    }
    assert answers == predicted


def test_the_export_as_backbone_pretrained_validates_as_the_checkpoint(vqa_export, capsys):
    """The way in through the CLI: `backbone=<exported ViltForQuestionAnswering>` without a
    checkpoint builds the same model (backbone, classifier, answers) as the checkpoint it came from."""
    path, _, (ckpt, common) = vqa_export
    assert main(["validate", *common, "--ckpt", ckpt]) == 0
    from_ckpt = json.loads((_printed_dir(capsys) / "metrics.json").read_text())["validate"]
    assert main(["validate", *common, f"backbone={path}"]) == 0
    from_export = json.loads((_printed_dir(capsys) / "metrics.json").read_text())
    assert from_export["validate"] == pytest.approx(from_ckpt, rel=1e-6, abs=1e-6)
    assert "val/vqa/accuracy" in from_ckpt


def _printed_dir(capsys) -> Path:
    return Path(capsys.readouterr().out.split("run directory: ")[1].split()[0])
