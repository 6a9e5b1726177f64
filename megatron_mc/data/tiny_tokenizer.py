"""The embedded default's tokenizer: a small sentencepiece BPE model, served as an HF tokenizer.

Code must round-trip exactly (indentation, blank lines, tabs), so sentencepiece runs with identity
normalisation, no dummy prefix, whitespace-only pieces allowed, no whitespace splitting and byte
fallback; a newline is its own symbol. The trained pieces and their merges (a BPE piece's id is its merge
rank) are loaded into a `tokenizers` BPE model that encodes like sentencepiece does, and wrapped with a
Qwen-style chat template, so `AutoTokenizer.from_pretrained(dir)` and `apply_chat_template` work like
they do for Qwen.
"""
from __future__ import annotations

import io
from pathlib import Path

import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from transformers import PreTrainedTokenizerFast

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = (IM_START, IM_END, END_OF_TEXT)
SPACE_MARK = "\u2581"  # sentencepiece's visible space
SPM_FILE = "sentencepiece.model"

# Qwen2.5/Qwen3-style ChatML without tools or thinking: what the rollout engines and SFT format against.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_sentencepiece(corpus: list[str], vocab_size: int) -> bytes:
    """A serialized sentencepiece BPE model trained on `corpus` (documents may contain newlines); a
    corpus too small for `vocab_size` pieces gets fewer."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=buffer, vocab_size=vocab_size, model_type="bpe",
        hard_vocab_limit=False, character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, add_dummy_prefix=False, allow_whitespace_only_pieces=True,
        split_by_whitespace=False, split_digits=True, user_defined_symbols=["\n", *SPECIAL_TOKENS],
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, max_sentence_length=1 << 20, minloglevel=2,
        num_threads=1)
    return buffer.getvalue()


def _merges(sp: spm.SentencePieceProcessor) -> list[tuple[str, str]]:
    """Every split of a learned piece into two pieces, in the order sentencepiece learned the pieces."""
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    ranked = []
    for piece, piece_id in vocab.items():
        if sp.is_byte(piece_id) or sp.is_unknown(piece_id) or piece in ("\n", *SPECIAL_TOKENS):
            continue
        ranked += [(piece_id, vocab[piece[:k]], piece[:k], piece[k:]) for k in range(1, len(piece))
                   if piece[:k] in vocab and piece[k:] in vocab]
    return [(left, right) for *_, left, right in sorted(ranked)]


def hf_tokenizer_from_sentencepiece(model_proto: bytes) -> PreTrainedTokenizerFast:
    sp = spm.SentencePieceProcessor(model_proto=model_proto)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    unk = sp.id_to_piece(sp.unk_id())
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=_merges(sp), unk_token=unk, byte_fallback=True,
                                     fuse_unk=True))
    tokenizer.normalizer = normalizers.Replace(Regex(" "), SPACE_MARK)
    tokenizer.decoder = decoders.Sequence([decoders.Replace(SPACE_MARK, " "), decoders.ByteFallback(), decoders.Fuse()])
    tokenizer.add_tokens([AddedToken("\n", normalized=False, special=False)])
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=IM_END, pad_token=END_OF_TEXT,
                                   unk_token=unk, chat_template=CHAT_TEMPLATE,
                                   clean_up_tokenization_spaces=False, model_max_length=1 << 16)


def build_tiny_tokenizer(out_dir: str | Path, corpus: list[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train on `corpus` and save an HF tokenizer (plus the sentencepiece model) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_proto = train_sentencepiece(corpus, vocab_size)
    (out_dir / SPM_FILE).write_bytes(model_proto)
    tokenizer = hf_tokenizer_from_sentencepiece(model_proto)
    tokenizer.save_pretrained(out_dir)
    return tokenizer
