"""A real WordPiece tokenizer built from the dataset's own text, for tiny random backbones.

It is saved as an ordinary HF tokenizer directory, so tiny and hub backbones load the same way.

Why the vocabulary is built here and not by `tokenizers`' WordPieceTrainer: the trainer breaks ties
between equally frequent merges in hash-map order, which Rust seeds at random per process, so two
trainings on the same text gave different vocabularies (here: 139 tokens, about 20 ids moved or
pieces swapped each time) and a demo's numbers changed from run to run. This vocabulary is a
function of the text alone: the special tokens, every character (alone and as a ``##`` suffix
piece), then whole words by falling frequency, ties alphabetical, up to ``vocab_size``. WordPiece's
greedy longest match then keeps frequent words whole and spells rare ones out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import BertTokenizer, PreTrainedTokenizerBase

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def wordpiece_vocab(words: Counter[str], vocab_size: int, min_frequency: int = 1) -> list[str]:
    """Specials, characters, ``##`` characters, then words by (-count, word) until ``vocab_size``."""
    chars = sorted({c for w in words for c in w})
    vocab = [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]
    if len(vocab) > vocab_size:
        raise ValueError(
            f"vocab_size {vocab_size} cannot hold the {len(chars)} characters of the text "
            f"(needs at least {len(vocab)})"
        )
    seen = set(vocab)
    for word, count in sorted(words.items(), key=lambda wc: (-wc[1], wc[0])):
        if len(vocab) >= vocab_size or count < min_frequency:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    return vocab


def train_wordpiece(
    texts: Iterable[str], vocab_size: int = 1000, min_frequency: int = 1
) -> PreTrainedTokenizerBase:
    """A lower-casing BERT-style WordPiece tokenizer; bos/eos/pad live inside its vocabulary."""
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = wordpiece_vocab(words, vocab_size, min_frequency)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizer(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[CLS]",
        eos_token="[SEP]",
    )
