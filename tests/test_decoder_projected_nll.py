"""The decoder's fused vocabulary projection + cross-entropy (the training hot path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from textvae.models.decoder import LSTMDecoder, ProjectedNLL


def reference_nll(decoder: LSTMDecoder, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-sentence NLL through ``F.cross_entropy`` on [N, T, V] logits with padding masked out."""
    hidden, _ = decoder.hidden_states(tokens[:, :-1], z)
    token_nll = F.cross_entropy(decoder.logits(hidden).transpose(1, 2), tokens[:, 1:], reduction="none")
    mask = torch.arange(tokens.size(1) - 1).unsqueeze(0) < (lengths - 1).unsqueeze(1)
    return (token_nll * mask).sum(1)


def test_matches_cross_entropy_and_its_gradients():
    torch.manual_seed(0)
    hidden = torch.randn(40, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(25, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 25, (40,))
    assert torch.autograd.gradcheck(lambda h, w: ProjectedNLL.apply(h, w, targets), (hidden, weight))
    fused = ProjectedNLL.apply(hidden * 30, weight, targets)  # large logits: the max shift matters
    reference = F.cross_entropy(F.linear(hidden * 30, weight), targets, reduction="none")
    torch.testing.assert_close(fused, reference)
    grads = torch.autograd.grad(fused.sum(), (hidden, weight))
    expected = torch.autograd.grad(reference.sum(), (hidden, weight))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_backward_twice_with_retain_graph():
    hidden = torch.randn(5, 4, requires_grad=True)
    weight = torch.randn(7, 4)
    loss = ProjectedNLL.apply(hidden, weight, torch.tensor([0, 1, 2, 3, 6])).sum()
    loss.backward(retain_graph=True)
    first = hidden.grad.clone()
    loss.backward()
    torch.testing.assert_close(hidden.grad, 2 * first)


def make_decoder() -> LSTMDecoder:
    torch.manual_seed(1)
    return LSTMDecoder(vocab_size=30, embed_dim=8, hidden=12, latent_dim=3, dropout_in=0.0, dropout_out=0.0).double()


def test_decoder_nll_and_parameter_gradients_match_reference_on_padded_batches():
    decoder = make_decoder()
    tokens = torch.tensor([[1, 5, 6, 7, 2], [1, 8, 2, 0, 0], [1, 9, 10, 2, 0]])
    lengths = torch.tensor([5, 3, 4])
    z = torch.randn(3, 3, dtype=torch.float64)
    for rows in (slice(0, 1), slice(0, 3)):  # unpadded, then padded
        got = decoder.nll(tokens[rows], lengths[rows], z[rows])
        want = reference_nll(decoder, tokens[rows], lengths[rows], z[rows])
        torch.testing.assert_close(got, want)
        params = list(decoder.parameters())
        for g, w in zip(torch.autograd.grad(got.sum(), params), torch.autograd.grad(want.sum(), params)):
            torch.testing.assert_close(g, w)


def test_autocast_runs_products_low_and_softmax_in_float32():
    torch.manual_seed(2)
    hidden = torch.randn(64, 16, requires_grad=True)
    weight = (0.3 * torch.randn(50, 16)).requires_grad_()
    targets = torch.randint(0, 50, (64,))
    reference = F.cross_entropy(F.linear(hidden, weight), targets, reduction="none")
    expected = torch.autograd.grad(reference.sum(), (hidden, weight))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = ProjectedNLL.apply(hidden.bfloat16(), weight, targets)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, reference, atol=0.05, rtol=0.01)
    grads = torch.autograd.grad(got.sum(), (hidden, weight))
    assert [g.dtype for g in grads] == [torch.float32, torch.float32]
    for g, want in zip(grads, expected):
        error = ((g - want).norm() / want.norm()).item()
        assert 1e-5 < error < 0.02  # bfloat16 products, not float32 ones, and still close


def test_a_swapped_in_biased_output_layer_keeps_nll_consistent_with_logits():
    decoder = make_decoder()
    decoder.out = torch.nn.Linear(12, 30, bias=True).double()
    tokens, lengths = torch.tensor([[1, 5, 6, 2]]), torch.tensor([4])
    z = torch.randn(1, 3, dtype=torch.float64)
    torch.testing.assert_close(decoder.nll(tokens, lengths, z), reference_nll(decoder, tokens, lengths, z))
