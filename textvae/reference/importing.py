"""A reference program's saved model as an ordinary textvae run folder (``textvae import``).

The model's sizes come from its tensors' shapes, the row (the textvae recipe hosting it) from the
program and its arguments, the vocabulary from the corpus it was trained on (the programs number
words in order of first appearance in the training file, as textvae does), and ``env.json``
records where the model came from. Every check runs before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from .. import recipes
from ..data import load_corpus
from ..errors import CheckpointError, ConfigError
from ..models import build_model
from ..rundir import RunDir
from ..training.checkpoint import CHECKPOINT_FORMAT
from .state_dicts import PROGRAMS, inactive_batch_norm, reference_to_textvae, textvae_only

USED_ARGS = (
    "seed",
    "iw_nsamples",
    "batch_size",
    "epochs",
    "dec_dropout_in",
    "dec_dropout_out",
    "train_data",
    "vocab_file",
    "aggressive",
    "kl_start",
    "warm_up",
    "gamma",
    "fb",
    "delta",
    "cycle",
    "beta",
    "target_kl",
    "p_drop",
    "delta_rate",
)
"""The program arguments import reads (others in ARGS.json are recorded, not used)."""


def read_reference_model(path: Path) -> dict[str, torch.Tensor]:
    """The state dict a reference program saved (``torch.save(model.state_dict(), path)``)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{path}: not a readable state dict ({type(e).__name__}: {e})".splitlines()[0]
        ) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise CheckpointError(
            f"{path}: expected a state dict (a table of tensors), got {type(state).__name__}"
        )
    return state


def read_args(path: Path | None) -> dict[str, Any]:
    """The program's arguments as a JSON object (its argparse namespace merged with its config
    module)."""
    if path is None:
        return {}
    try:
        args = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--args {path}: cannot read a JSON object ({e})") from None
    if not isinstance(args, dict):
        raise ConfigError(f"--args {path}: expected a JSON object, got {type(args).__name__}")
    return args


def infer_recipe(program: str, state: dict[str, torch.Tensor], args: dict[str, Any]) -> str:
    """The textvae recipe of the program's row: the language model when there is no encoder,
    BN-VAE / DU-VAE when there is a batch norm on the mean that the program applied, else from the
    arguments."""
    if not any(k.startswith("encoder.") for k in state):
        return "lstm-lm"
    if any(k.startswith("encoder.mu_bn.") for k in state) and not inactive_batch_norm(state):
        if program not in ("bn-vae", "du-vae"):
            raise CheckpointError(
                f"reference tensor encoder.mu_bn.weight: {PROGRAMS[program]} models have no "
                "batch norm on the mean (is --from right?)"
            )
        return program
    if program == "he2019" and args.get("aggressive"):
        return "agg-vae"
    if program == "li2019" and "beta" in args and float(args["beta"]) < 1:
        return "beta-vae"
    if float(args.get("delta", 0) or 0) > 0:
        return "delta-vae"
    if int(args.get("cycle", 0) or 0) > 0:
        return "cyclical"
    if float(args.get("fb", 0) or 0) > 0:
        return "pretrain-fb" if program == "li2019" else "free-bits"
    if float(args.get("kl_start", 1.0)) < 1:
        return "kl-annealing"
    return "vae"


def shape_of(state: dict[str, torch.Tensor], key: str, dim: int) -> int:
    if key not in state:
        raise CheckpointError(f"reference model lacks {key} (missing tensor)")
    tensor = state[key]
    if not isinstance(tensor, torch.Tensor) or tensor.dim() <= dim:
        raise CheckpointError(
            f"reference tensor {key}: shape {tuple(getattr(tensor, 'shape', ()))} is not a "
            "weight matrix"
        )
    return int(tensor.shape[dim])


def infer_model(state: dict[str, torch.Tensor], language_model: bool) -> dict[str, int]:
    """Model sizes from the tensors' shapes: ``embed_dim``, ``dec_hidden`` and, for a VAE,
    ``enc_hidden`` and ``latent_dim``; also the vocabulary size (``vocab_size``)."""
    prefix = "" if language_model else "decoder."
    sizes = {
        "vocab_size": shape_of(state, f"{prefix}embed.weight", 0),
        "embed_dim": shape_of(state, f"{prefix}embed.weight", 1),
        "dec_hidden": shape_of(state, f"{prefix}lstm.weight_hh_l0", 1),
    }
    if not language_model:
        sizes["enc_hidden"] = shape_of(state, "encoder.lstm.weight_hh_l0", 1)
        sizes["latent_dim"] = shape_of(state, "decoder.trans_linear.weight", 1)
        encoder_embed = shape_of(state, "encoder.embed.weight", 1)
        if encoder_embed != sizes["embed_dim"]:
            raise CheckpointError(
                f"reference tensor encoder.embed.weight: embedding size {encoder_embed}, the "
                f"decoder's is {sizes['embed_dim']} (textvae's model shares one size)"
            )
    return sizes


def strategy_overrides(
    recipe: str, state: dict[str, torch.Tensor], args: dict[str, Any]
) -> list[str]:
    """The strategy settings a saved model's scores depend on: the batch-norm scale's RMS (read from
    the tensor: DU-VAE's evaluation renormalises its weight to it)."""
    if recipe not in ("bn-vae", "du-vae"):
        return []
    weight = state.get("encoder.mu_bn.weight")
    if weight is None:
        return []
    gamma = (
        float(args["gamma"]) if "gamma" in args else math.sqrt(float(weight.double().pow(2).mean()))
    )
    return [f"strategies.{recipe}.gamma={gamma!r}"]


def import_config(
    program: str,
    state: dict[str, torch.Tensor],
    args: dict[str, Any],
    corpus: Path,
    recipe: str | None,
    overrides: list[str],
):
    recipe = recipe or infer_recipe(program, state, args)
    sizes = infer_model(state, recipe == "lstm-lm")
    sets = [
        f"data.corpus={json.dumps(str(corpus))}",
        f"model.embed_dim={sizes['embed_dim']}",
        f"model.dec_hidden={sizes['dec_hidden']}",
        'data.bucket_order="argsort"',
    ]
    if recipe != "lstm-lm":
        sets += [
            f"model.enc_hidden={sizes['enc_hidden']}",
            f"model.latent_dim={sizes['latent_dim']}",
        ]
    for arg, key in (
        ("batch_size", "data.batch_size"),
        ("iw_nsamples", "eval.iw_samples"),
        ("epochs", "train.epochs"),
        ("dec_dropout_in", "model.dec_dropout_in"),
        ("dec_dropout_out", "model.dec_dropout_out"),
    ):
        if arg in args:
            sets.append(f"{key}={json.dumps(args[arg])}")
    if args.get("vocab_file"):
        sets.append(f"data.vocab_file={json.dumps(str(args['vocab_file']))}")
    sets += strategy_overrides(recipe, state, args)
    seed = int(args["seed"]) if "seed" in args else None
    config = recipes.resolve("ptb", recipe, sets + list(overrides), seed=seed)
    return config, recipe, sizes["vocab_size"]


def final_kl_weight(args: dict[str, Any]) -> float | None:
    """The KL weight of the program's last training step, from its schedule arguments (None without
    them): linear from ``kl_start`` to 1 over ``warm_up`` epochs, assuming the run trained all its
    ``epochs`` (a run stopped early by its learning-rate decays ends sooner; pass the weight then)."""
    if "kl_start" not in args:
        return None
    kl_start, warm_up = float(args["kl_start"]), float(args.get("warm_up", 0) or 0)
    if kl_start >= 1 or warm_up <= 0:
        return 1.0
    if "epochs" not in args:
        return None
    return min(1.0, kl_start + (1 - kl_start) * float(args["epochs"]) / warm_up)


def variance_floor(args: dict[str, Any], kl_weight: float | None) -> dict[str, Any]:
    """Whether DU-VAE's program scored the model with its variance floor, which the model file does
    not record: the program floors the posterior variance only while its KL weight is 1, so its
    end-of-training figures of a run that ended inside the warm-up are floor-free, while its
    ``--eval`` of a saved model floors (the default here when the weight is unknown). Returns the
    provenance record; ``variance_floor`` is the value of textvae's switch."""
    if kl_weight is not None:
        source = "--final-kl-weight"
    else:
        kl_weight = final_kl_weight(args)
        source = "args" if kl_weight is not None else "unknown (the program's --eval floors)"
    return {
        "final_kl_weight": kl_weight,
        "final_kl_weight_from": source,
        "variance_floor": kl_weight is None or kl_weight >= 1.0,
    }


def corpus_folder(corpus: Path | None, args: dict[str, Any]) -> Path:
    if corpus is None:
        if not args.get("train_data"):
            raise ConfigError(
                "--corpus: the folder of the corpus the model was trained on is required "
                "(or --args with the program's train_data)"
            )
        corpus = Path(args["train_data"]).parent
    if not Path(corpus).is_dir():
        raise ConfigError(f"--corpus {corpus}: not a folder")
    return Path(corpus).resolve()


def import_reference(
    program: str,
    model_file: Path,
    out: Path,
    args_file: Path | None = None,
    corpus: Path | None = None,
    recipe: str | None = None,
    overrides: list[str] | None = None,
    kl_weight: float | None = None,
) -> dict[str, Any]:
    """Write run folder ``out`` holding the reference model ``model_file`` (see the module doc);
    returns the provenance record written to its env.json. ``kl_weight``: the KL weight of the
    program's last training step, where it decides how the program evaluated (DU-VAE); default:
    from the arguments' schedule (:func:`final_kl_weight`)."""
    if kl_weight is not None and not 0 <= kl_weight <= 1:
        raise ConfigError(f"--final-kl-weight {kl_weight}: a KL weight between 0 and 1")
    if program not in PROGRAMS:
        raise ConfigError(f"--from {program!r}: one of {', '.join(PROGRAMS)}")
    model_file, run = Path(model_file), RunDir(out)
    run.check_claim(fresh=True)
    state = read_reference_model(model_file)
    args = read_args(args_file)
    folder = corpus_folder(corpus, args)
    config, recipe, vocab_size = import_config(
        program, state, args, folder, recipe, overrides or []
    )
    data = load_corpus(config.data)
    if len(data.vocab) != vocab_size:
        raise CheckpointError(
            f"reference tensor {'' if recipe == 'lstm-lm' else 'decoder.'}embed.weight: "
            f"{vocab_size} words, the vocabulary of {folder} has {len(data.vocab)} "
            "(train on another corpus, or a vocab_file?)"
        )
    model = build_model(config, len(data.vocab))
    own = textvae_only(recipe)  # DU-VAE's floor switch: the only entry no reference model holds
    weights = reference_to_textvae(state, model.state_dict(), recipe, keep=own)
    evaluation = variance_floor(args, kl_weight) if own else {}
    for key in weights:
        if key.endswith(own):  # never, for a recipe without such entries
            weights[key] = torch.tensor(evaluation["variance_floor"])
    model.load_state_dict(weights)
    provenance = {
        "imported_from": {
            "program": PROGRAMS[program],
            "name": program,
            "model_file": str(model_file),
            "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
            "recipe": recipe,
            "corpus": str(folder),
            "args": {k: args[k] for k in USED_ARGS if k in args},
            **({"evaluation": evaluation} if evaluation else {}),
        }
    }
    with run:
        run.claim(fresh=True)
        run.write_config(config.to_dict())
        run.write_vocab(data.vocab)
        run.write_env(provenance)
        run.save_checkpoint(
            "best",
            {
                "format": CHECKPOINT_FORMAT,
                "config": config.to_dict(),
                "vocab_size": len(data.vocab),
                "model": model.state_dict(),
            },
        )
    return provenance


def score_imported(out: Path, limit: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Score the imported model on its corpus's ``eval.split`` as training's last step does; write
    results.json, which makes the folder a finished run (``textvae report`` lists finished runs)."""
    from ..data import encode_texts, make_batches
    from ..evaluation import evaluate_run_model
    from ..runs import load_run

    loaded = load_run(out)
    config = loaded.config
    texts = load_corpus(config.data).splits[config.eval.split].head(limit or config.eval.limit)
    batches = list(
        make_batches(
            encode_texts(
                loaded.vocab, texts.texts, texts.labels, max_length=config.data.max_length
            ),
            config.data.batch_size,
            config.data.batching,
        )
    )
    results, _ = evaluate_run_model(
        loaded.model, batches, config.eval, seed=config.seed, progress=progress
    )
    results.update(
        {
            "split": config.eval.split,
            "limit": limit or config.eval.limit,
            "best_epoch": None,
            "epochs": None,
            "strategy": loaded.model.strategy.log_scalars()
            if hasattr(loaded.model, "strategy")
            else {},
        }
    )
    RunDir(out).write_results(results)
    return results
