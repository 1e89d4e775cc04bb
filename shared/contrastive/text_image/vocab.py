"""A word-level tokenizer and vocabulary for captions (the AttnGAN / VSE setting: lower-case
words, a padding id 0 and an unknown-word id 1)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers of ``text`` (punctuation dropped)."""
    return _WORD.findall(text.lower())


@dataclass
class Vocab:
    """Word <-> id map; id 0 is ``<pad>``, id 1 ``<unk>``.

    Examples
    --------
    >>> v = Vocab.build(["a red circle", "a blue square"])
    >>> ids, lengths, unknown = v.batch(["a red cat"], max_len=4)
    >>> ids.tolist(), lengths.tolist(), unknown
    ([[2, 5, 1]], [3], ['cat'])
    """

    words: list[str] = field(default_factory=lambda: [PAD, UNK])

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocab:
        """Every word seen at least ``min_count`` times, sorted (deterministic ids)."""
        counts = Counter(w for t in texts for w in tokenize(t))
        return cls([PAD, UNK] + sorted(w for w, c in counts.items() if c >= min_count))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        """Ids of the words of ``text`` and the words that were unknown (mapped to ``<unk>``)."""
        words = tokenize(text)
        unknown = [w for w in words if w not in self.index]
        return [self.index.get(w, 1) for w in words], unknown

    def batch(self, texts: Sequence[str], max_len: int = 18) -> tuple[Tensor, Tensor, list[str]]:
        """``ids`` (B, T) padded with 0, ``lengths`` (B,) >= 1, and all unknown words.

        Captions longer than ``max_len`` are cut; an empty caption becomes one ``<unk>``.
        """
        rows, unknown = [], []
        for text in texts:
            ids, unk = self.encode(text)
            unknown += unk
            rows.append((ids or [1])[:max_len])
        width = max(len(r) for r in rows)
        out = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, :len(r)] = torch.tensor(r)
        return out, torch.tensor([len(r) for r in rows]), unknown
