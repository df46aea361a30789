"""Tiny randomly-initialised Hugging Face models built from configs (no T5 or RoBERTa weights exist here):
they exercise the text2text and classifier code paths offline, not their accuracy."""

from __future__ import annotations

from pathlib import Path

WORDS = [
    "negative",
    "positive",
    "neutral",
    "the",
    "a",
    "film",
    "is",
    "good",
    "bad",
    "dull",
    "great",
    "story",
    "acting",
    "movie",
    "and",
    "not",
    "very",
]


def _tokenizer(folder: Path, first: str | None = None):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>", "<s>", *WORDS]
    if first is not None:  # this word gets id 0
        words.remove(first)
        words.insert(0, first)
    vocab = {tok: i for i, tok in enumerate(words)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_t5(folder: Path, answer: str | None = None, seed: int = 0) -> Path:
    """A tiny T5; with ``answer`` (a word of WORDS), one whose output is that word, repeated."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = _tokenizer(folder, first=answer)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_ff=32,
        d_kv=8,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = T5ForConditionalGeneration(config)
    if answer is not None:  # all logits equal: greedy decoding picks id 0, the answer
        with torch.no_grad():
            model.lm_head.weight.zero_()
    model.save_pretrained(folder)
    return folder


def tiny_roberta(folder: Path, labels: tuple[str, ...] = ("NEG", "NEU", "POS"), seed: int = 0) -> Path:
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tokenizer = _tokenizer(folder)
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=132,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    RobertaForSequenceClassification(config).save_pretrained(folder)
    return folder
