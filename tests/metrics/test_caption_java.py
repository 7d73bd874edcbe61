"""METEOR (official jar) against pycocoevalcap's wrapper, and SPICE's "what is missing" error."""

from __future__ import annotations

import random
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from vltasks.metrics.caption import METEOR, SPICE
from vltasks.metrics.functional.caption import (
    JavaUnavailableError,
    coco_caption_scores,
    meteor_per_sentence,
    meteor_score,
    spice_score,
)
from vltasks.metrics.functional.caption._java import java_major_version
from vltasks.metrics.functional.caption.spice import spice_requirements

needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="java is not on PATH (apt-get install default-jre)"
)
WORDS = (
    "a man woman dog cat riding sitting on the table with red blue ball playing running street car".split()
)


@pytest.fixture(scope="module")
def meteor_case() -> dict:
    """One run of each implementation (each start loads METEOR's paraphrase table: seconds)."""
    rng = random.Random(0)

    def sent() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))

    preds = [sent() for _ in range(60)]
    refs = [[sent() for _ in range(rng.randint(1, 5))] for _ in range(60)]
    meteor = pytest.importorskip("pycocoevalcap.meteor.meteor")
    gts, res = dict(enumerate(refs)), {i: [p] for i, p in enumerate(preds)}
    with ThreadPoolExecutor(1) as pool:  # both jars load their paraphrase tables at the same time
        ref = pool.submit(lambda: meteor.Meteor().compute_score(gts, res))
        ours = meteor_score(preds, refs)
        return {"preds": preds, "refs": refs, "ours": ours, "ref": ref.result()}


@needs_java
@pytest.mark.java
def test_meteor_matches_pycocoevalcap(meteor_case: dict) -> None:
    (corpus, per_image), (ref_corpus, ref_per_image) = meteor_case["ours"], meteor_case["ref"]
    assert corpus == pytest.approx(ref_corpus, abs=1e-9)
    assert per_image == pytest.approx(ref_per_image, abs=1e-9)
    # the corpus score pools statistics: it is not the mean of the per-image scores
    assert abs(corpus - sum(per_image) / len(per_image)) > 1e-6


@needs_java
@pytest.mark.java
def test_meteor_entry_points_agree(meteor_case: dict) -> None:
    """meteor_per_sentence (used by DenseCap), the class and coco_caption_scores: one jar call each."""
    preds, refs = meteor_case["preds"][:8], meteor_case["refs"][:8]
    per_sentence = meteor_per_sentence(preds, refs)
    assert per_sentence == pytest.approx(meteor_case["ours"][1][:8], abs=1e-9)  # per image: set-independent
    metric = METEOR(tokenizer="none")
    metric.update(preds[:5], refs[:5], ids=list(range(5)))
    metric.update(preds[3:], refs[3:], ids=list(range(3, 8)))  # ids 3 and 4 twice
    scores = coco_caption_scores(preds, refs, tokenizer="none", metrics=("METEOR", "Bleu"))
    assert list(scores) == ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR"]
    assert float(metric.compute()) == pytest.approx(scores["METEOR"], abs=1e-9)


@needs_java
def test_spice_error_says_what_is_missing() -> None:
    try:
        spice_requirements()
    except JavaUnavailableError:
        pass
    else:
        pytest.skip("SPICE is runnable here (CoreNLP 3.6.0 jars and Java <= 11 present)")
    with pytest.raises(JavaUnavailableError, match="SPICE cannot run") as info:
        spice_score(["a dog"], [["a dog runs"]])
    message = str(info.value)
    from vltasks.metrics.functional.caption._java import pycocoevalcap_dir

    lib = pycocoevalcap_dir() / "spice" / "lib"
    if not (lib / "stanford-corenlp-3.6.0.jar").exists():
        assert "stanford-corenlp-3.6.0.jar" in message and "stanford-corenlp-3.6.0-models.jar" in message
    if java_major_version(shutil.which("java")) > 11:
        assert "Java <= 11" in message and f"Java {java_major_version(shutil.which('java'))}" in message
    metric = SPICE()
    metric.update(["a dog"], [["a dog runs"]])
    with pytest.raises(JavaUnavailableError, match="SPICE cannot run"):
        metric.compute()


def test_spice_error_without_java() -> None:
    with pytest.raises(JavaUnavailableError, match="Java was not found"):
        spice_requirements(java="no-such-java-binary")
