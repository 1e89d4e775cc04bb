"""SASRec: shapes, causality (no look-ahead) and padding invariance."""

import pytest
import torch

from medcl.contrastive.sequences.rec.sasrec import SASRec

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kw):
    torch.manual_seed(0)
    return SASRec(n_items=30, max_len=8, hidden=16, n_layers=2, n_heads=2, inner=32,
                  dropout=0.0, attn_dropout=0.0, **kw).eval()


def test_shapes_and_logits():
    m = _model()
    seqs = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 31]])  # 31 = the mask token
    h = m(seqs)
    assert h.shape == (2, 16)
    logits = m.item_logits(h)
    assert logits.shape == (2, 30)
    assert torch.allclose(logits[:, 4], h @ m.item_emb.weight[5])  # column j is item j + 1
    assert m.mask_token == 31


def test_left_padding_does_not_change_the_representation():
    m = _model()
    short = m(torch.tensor([[7, 8, 9]]))
    padded = m(torch.tensor([[0, 0, 0, 0, 7, 8, 9]]))
    assert torch.allclose(short, padded, atol=1e-5)


def test_causal_earlier_positions_do_not_see_later_items():
    m = _model()
    x = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 20]])
    # the representation of the prefix [1, 2, 3] is the hidden state at position 3 of both
    hidden = {}

    def keep(_, __, out):
        hidden["x"] = out

    handle = m.blocks[-1].register_forward_hook(keep)
    m(x)
    handle.remove()
    assert torch.allclose(hidden["x"][0, :3], hidden["x"][1, :3], atol=1e-6)
    assert not torch.allclose(hidden["x"][0, 3], hidden["x"][1, 3])


def test_too_long_is_refused():
    with pytest.raises(ValueError, match="max_len|<= 8"):
        _model()(torch.ones(1, 9, dtype=torch.long))
