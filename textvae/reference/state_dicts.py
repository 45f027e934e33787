"""How the tensors of a reference program's saved model map onto textvae's model of the same row.

Every program here descends from He et al. (2019)'s code and names its modules alike: an encoder
(``embed``, ``lstm``, ``linear`` to mean and log-variance, and for BN-VAE / DU-VAE a batch norm
``mu_bn`` on the mean), a decoder (``embed``, ``trans_linear`` from z to the first cell state,
``lstm``, ``pred_linear``) and a loss module holding constant class weights. The language model
(bn-vae's ``lm.py``) has the decoder's modules at the top level.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import CheckpointError

PROGRAMS = {
    "he2019": "jxhe/vae-lagging-encoder",
    "bn-vae": "valdersoul/bn-vae",
    "du-vae": "SmilesDZgk/DU-VAE",
    "li2019": "bohanli/vae-pretraining-encoder",
}
"""``textvae import --from`` names -> the public repository of the program."""

RENAMED = {
    "encoder.linear.weight": "encoder.to_posterior.weight",
    "decoder.trans_linear.weight": "decoder.init_cell.weight",
    "decoder.pred_linear.weight": "decoder.out.weight",
}
LANGUAGE_MODEL = {
    "embed.weight": "decoder.embed.weight",
    "pred_linear.weight": "decoder.out.weight",
}
"""The language model's top-level modules (its LSTM keys gain the ``decoder.`` prefix)."""
CONSTANTS = ("decoder.loss.weight", "loss.weight")
"""The cross-entropy's class weights: all ones, not part of the model textvae scores."""
BATCHNORM = {
    "bn-vae": {"weight": "scale", "bias": "shift"},
    "du-vae": {"weight": "weight", "bias": "bias"},
}
"""The batch norm on the posterior mean: the reference's ``mu_bn`` entries -> the suffix of
textvae's strategy entry (BN-VAE's fixed scale is a buffer; DU-VAE's raw weight is a parameter).
Running statistics go to the strategy's ``stats``."""


def inactive_batch_norm(reference: Mapping[str, torch.Tensor]) -> bool:
    """bn-vae's programs build the mean's batch norm in every encoder and use it only for
    ``--gamma`` > 0; its weight is filled with gamma, so an all-zero weight marks a batch norm
    never applied."""
    weight = reference.get("encoder.mu_bn.weight")
    return isinstance(weight, torch.Tensor) and not bool(weight.any())


def target_name(key: str, textvae_keys: list[str], recipe: str) -> str:
    """textvae's name for the reference tensor ``key`` (raises naming it when it has no place)."""
    if key.startswith("encoder.mu_bn."):
        part = key.removeprefix("encoder.mu_bn.")
        suffix = BATCHNORM.get(recipe, {}).get(part, f"stats.{part}")
        matches = [
            k for k in textvae_keys if k.startswith("strategy.") and k.endswith("." + suffix)
        ]
        if len(matches) != 1:
            raise CheckpointError(
                f"reference tensor {key}: no place for it in textvae's {recipe} model "
                "(a batch norm on the posterior mean: BN-VAE or DU-VAE)"
            )
        return matches[0]
    if key.startswith(("encoder.", "decoder.")):
        return RENAMED.get(key, key)
    return LANGUAGE_MODEL.get(key, f"decoder.{key}")


def reference_to_textvae(
    reference: Mapping[str, torch.Tensor],
    textvae: Mapping[str, torch.Tensor],
    recipe: str,
    keep: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """textvae's state dict ``textvae`` with every tensor taken from the reference model's.

    A reference tensor with no place in textvae's model (extra), a textvae tensor the reference does
    not provide (missing; except textvae-only entries whose name ends with one of ``keep``, which
    keep their value) or a shape that differs is a :class:`CheckpointError` naming the tensor: a
    partly loaded model would score another model. A batch norm the program built but never applied
    (:func:`inactive_batch_norm`) is left out for a recipe without one."""
    out, placed = dict(textvae), set()
    names = list(textvae)
    unused_bn = recipe not in BATCHNORM and inactive_batch_norm(reference)
    for key, tensor in reference.items():
        if key in CONSTANTS or (unused_bn and key.startswith("encoder.mu_bn.")):
            continue
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"reference entry {key}: not a tensor ({type(tensor).__name__})")
        target = target_name(key, names, recipe)
        if target not in textvae:
            raise CheckpointError(
                f"reference tensor {key}: no counterpart in textvae's {recipe} model (extra tensor)"
            )
        if tuple(textvae[target].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"reference tensor {key}: shape {tuple(tensor.shape)}, textvae's {target} "
                f"needs {tuple(textvae[target].shape)}"
            )
        out[target] = tensor.detach().to(textvae[target].dtype).clone()
        placed.add(target)
    missing = [k for k in textvae if k not in placed and not k.endswith(keep)]
    if missing:
        raise CheckpointError(
            f"reference model lacks {missing[0]} of textvae's {recipe} model"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + " (missing tensor)"
        )
    return out


def textvae_only(recipe: str) -> tuple[str, ...]:
    """Entries of textvae's model of ``recipe`` that no reference model holds (their value is kept):
    DU-VAE's switch of its variance floor, which the reference keys on its KL weight instead."""
    return (".floor_on",) if recipe == "du-vae" else ()


def textvae_to_reference_name(
    textvae_name: str, reference_keys: list[str], recipe: str
) -> str | None:
    """The reference name of a textvae tensor (the inverse map, for comparing two models tensor by
    tensor); None for a textvae-only entry."""
    for key in reference_keys:
        try:
            if target_name(key, [textvae_name], recipe) == textvae_name:
                return key
        except CheckpointError:
            continue
    return None
