"""Causal over text, bidirectional inside each image: on the mask and on gradients."""

import torch

from models.layers import multimodal_mask
from models.registry import build_model, get_model_spec
from sweeper.data import train_batches

# positions: 0-1 text, 2-4 image 1, 5 text, 6-7 image 2, 8 text
SEGMENT = torch.tensor([[0, 0, 1, 1, 1, 0, 2, 2, 0]])


def expected_mask(segment: torch.Tensor) -> torch.Tensor:
    seg = segment[0].tolist()
    t = len(seg)
    return torch.tensor([[j <= i or (seg[i] > 0 and seg[i] == seg[j]) for j in range(t)] for i in range(t)])


def test_mask_is_causal_for_text_and_full_inside_each_image():
    mask = multimodal_mask(SEGMENT)[0, 0]
    assert torch.equal(mask, expected_mask(SEGMENT))
    assert mask[2, 4] and mask[4, 2]  # inside image 1, both ways
    assert not mask[4, 5] and not mask[1, 2]  # no peeking at later text or a later image
    assert not mask[2, 6] and mask[6, 2]  # image 2 sees image 1 (earlier), not the reverse
    assert not mask[5, 8] and mask[8, 5]


def test_text_only_sequences_get_a_plain_causal_mask():
    mask = multimodal_mask(torch.zeros(1, 6, dtype=torch.long))[0, 0]
    assert torch.equal(mask, torch.ones(6, 6, dtype=torch.bool).tril())


def _jacobian_support(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Which first-layer input positions each last-layer output position depends on."""
    spec = get_model_spec(kind, "tiny-1")
    torch.manual_seed(0)
    model = build_model(spec)
    batch = next(train_batches(spec, (1, 0, 0), batch_size=8, seed=0))  # caption sequences: images + text
    row = int((batch["segment"] == 2).any(1).nonzero()[0, 0])  # the first sequence holding two images
    first = int(batch["is_image"][:row].sum())  # patches are stored row-major
    batch = {
        **{k: v[row : row + 1] for k, v in batch.items() if k != "patches"},
        "patches": batch["patches"][first : first + int(batch["is_image"][row].sum())],
    }
    segment = batch["segment"]
    # stop after the second image plus a little text: enough for every case, and fast
    t = int((segment[0] == 2).nonzero().max()) + 6
    captured = {}
    model.layers[0].register_forward_pre_hook(lambda m, args: captured.__setitem__("in", args[0]))
    model.layers[-1].register_forward_hook(lambda m, i, o: captured.__setitem__("out", o))
    model(batch)
    out, inp = captured["out"], captured["in"]
    # one backward per output position, batched: row i seeds position i only
    seeds = torch.zeros(t, *out.shape)
    seeds[torch.arange(t), 0, torch.arange(t)] = 1.0
    grads = torch.autograd.grad(out, inp, grad_outputs=seeds, is_grads_batched=True)[0]
    support = grads[:, 0, :t].abs().sum(-1) > 0
    return support, segment[:, :t]


def test_gradients_follow_the_mask_in_a_real_model():
    for kind in ("early_fusion", "late_fusion", "moe"):
        support, segment = _jacobian_support(kind)
        assert (segment > 0).any() and (segment == 2).any()
        assert torch.equal(support, expected_mask(segment)), kind
