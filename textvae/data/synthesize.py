"""A labeled synthetic corpus in the manner of He et al. (2019): a 2-D latent drawn from a mixture of
Gaussians, sentences sampled from a randomly initialised LSTM language model conditioned on it, and the
mixture component of each sentence kept as its label (``textvae data synthesize``).

The generator is fixed by ``seed``: component means, generator weights and every sample. Tokens are
``w0`` .. ``w{V-1}``; every sentence has ``length`` tokens. The files are ``label<TAB>text`` lines, so
the folder is a corpus ``data.corpus`` can point at, and the labels feed ``data.batch_split =
"by-label"`` and the latent-space experiment (eval/sweeps/latent_clutter.toml).

How strongly a sentence depends on its z is set by ``weight_scale`` (larger weights: a sharper
next-token distribution that follows z rather than the sampled history) and ``spacing`` (how far
apart the components' z are). The defaults were chosen by measurement so that the component is
learnable from the words: a bag-of-words logistic regression recovers it with test accuracy >= 0.9
(eval/synthetic_corpus.py; the figures are in eval/results/latent_clutter/corpus.json); with
weights of std 1 and spacing 1 it reaches about 0.54.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import DataError


@dataclass
class SynthesisConfig:
    seed: int = 0
    components: int = 16
    """Mixture components; their means sit on a square grid (the nearest square above ``components``)."""
    spacing: float = 4.0
    """Distance between neighbouring component means on the grid."""
    component_std: float = 0.15
    latent_dim: int = 2
    vocab_size: int = 1000
    length: int = 10
    hidden: int = 100
    embed: int = 100
    weight_scale: float = 3.0
    """Std of the generator's random weights (larger: sentences depend more sharply on z)."""
    n_train: int = 20_000
    n_valid: int = 2_000
    n_test: int = 2_000

    def __post_init__(self) -> None:
        for key, (low, high) in INT_BOUNDS.items():
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise DataError(f"synthesize: {key} must be an integer in [{low}, {high}], got {value!r}")
        for key in ("spacing", "component_std", "weight_scale"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= FLOAT_MAX:
                raise DataError(f"synthesize: {key} must be a number > 0 and <= {FLOAT_MAX:g}, got {value!r}")
        params = generator_parameters(self)
        if params > MAX_PARAMETERS:
            raise DataError(f"synthesize: the generator would hold {params:.3g} parameters (at most "
                            f"{MAX_PARAMETERS:.0e}); lower vocab_size, hidden or embed")
        tokens = (self.n_train + self.n_valid + self.n_test) * self.length
        if tokens > MAX_TOKENS:
            raise DataError(f"synthesize: the corpus would hold {tokens:.3g} tokens (at most {MAX_TOKENS:.0e}); "
                            "lower n_train, n_valid, n_test or length")


INT_BOUNDS = {"seed": (0, 2**63 - 1), "components": (1, 10**6), "latent_dim": (1, 10**4),
              "vocab_size": (1, 10**7), "length": (1, 10**5), "hidden": (1, 10**5), "embed": (1, 10**5),
              "n_train": (1, 10**9), "n_valid": (1, 10**9), "n_test": (1, 10**9)}
"""Each integer setting's range: torch takes seeds below 2**63, and sizes past these bounds could
only fail inside torch (an overflowing shape, memory exhausted) after a long wait."""
FLOAT_MAX = 1e6
"""Largest spacing, std or weight scale: far beyond any useful one, and small enough that products
of them stay finite in float32 (an infinite z would make every sampled sentence NaN)."""
MAX_PARAMETERS = 10**9
MAX_TOKENS = 10**10
SYNTHESIS_FILES = ("train.txt", "valid.txt", "test.txt", "synthesis.json")
"""What :func:`write_synthetic_corpus` writes; ``--force`` replaces a folder holding only these."""


def generator_parameters(c: SynthesisConfig) -> int:
    """Parameters of :class:`RandomLSTMGenerator` for ``c`` (without building it)."""
    inputs = c.embed + c.latent_dim
    return ((c.vocab_size + 1) * c.embed + c.latent_dim * c.hidden + 4 * c.hidden * (inputs + c.hidden + 2)
            + c.hidden * c.vocab_size + c.vocab_size)


class RandomLSTMGenerator(nn.Module):
    """An LSTM LM with random weights, shaped like the LSTM decoder a text VAE fits to it: z sets the
    first cell state (a linear map; the hidden state is its tanh) and is appended to every input."""

    def __init__(self, c: SynthesisConfig):
        super().__init__()
        self.embed = nn.Embedding(c.vocab_size + 1, c.embed)  # the last id is the start symbol
        self.init = nn.Linear(c.latent_dim, c.hidden, bias=False)
        self.lstm = nn.LSTMCell(c.embed + c.latent_dim, c.hidden)
        self.out = nn.Linear(c.hidden, c.vocab_size)
        self.start = c.vocab_size

    @torch.no_grad()
    def sample(self, z: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
        c = self.init(z)
        h = torch.tanh(c)
        token = torch.full((z.size(0),), self.start, dtype=torch.long)
        out = []
        for _ in range(length):
            h, c = self.lstm(torch.cat([self.embed(token), z], dim=-1), (h, c))
            probs = torch.softmax(self.out(h), dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            out.append(token)
        return torch.stack(out, dim=1)


def component_means(c: SynthesisConfig) -> torch.Tensor:
    """Grid points, centred on the origin, the first ``components`` of a side x side grid (2-D); in
    more dimensions the first two coordinates carry the grid and the rest are 0."""
    side = math.ceil(math.sqrt(c.components))
    grid = torch.tensor([(i, j) for i in range(side) for j in range(side)], dtype=torch.float32)[: c.components]
    grid = (grid - grid.mean(0)) * c.spacing
    means = torch.zeros(c.components, c.latent_dim)
    means[:, : min(2, c.latent_dim)] = grid[:, : min(2, c.latent_dim)]
    return means


def synthesize(c: SynthesisConfig) -> dict[str, tuple[list[str], list[int]]]:
    """{split: (sentences, component labels)}, deterministic for ``c``."""
    generator = torch.Generator().manual_seed(c.seed)
    model = RandomLSTMGenerator(c)
    for p in model.parameters():
        p.data = torch.randn(p.shape, generator=generator) * c.weight_scale
    means = component_means(c)
    out = {}
    for split, n in (("train", c.n_train), ("valid", c.n_valid), ("test", c.n_test)):
        labels = torch.randint(0, c.components, (n,), generator=generator)
        z = means[labels] + c.component_std * torch.randn(n, c.latent_dim, generator=generator)
        tokens = torch.cat([model.sample(z[i : i + 1024], c.length, generator) for i in range(0, n, 1024)])
        out[split] = ([" ".join(f"w{t}" for t in row) for row in tokens.tolist()], labels.tolist())
    return out


def write_synthetic_corpus(c: SynthesisConfig, folder: Path, force: bool = False) -> Path:
    """Write ``train/valid/test.txt`` (``c<k><TAB>sentence``) and ``synthesis.json`` into ``folder``.

    A non-empty folder is refused; with ``force`` one holding only these files (an earlier corpus)
    has them replaced, and one holding anything else is refused, naming it. Each file is written
    atomically, ``synthesis.json`` last."""
    from ..rundir import atomic_write, describe_entries

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder")
    entries = sorted(p.name + ("/" if p.is_dir() else "")
                     for p in folder.iterdir()) if folder.is_dir() else []
    if entries and not force:
        raise DataError(f"{folder}: folder exists and is not empty (use --force to replace its files)")
    foreign = [e for e in entries if e not in SYNTHESIS_FILES]
    if foreign:
        raise DataError(f"{folder}: holds {describe_entries(foreign)}, which synthesize does not write; nothing "
                        "was replaced: choose an empty or new folder")
    splits = synthesize(c)
    folder.mkdir(parents=True, exist_ok=True)
    for split, (texts, labels) in splits.items():
        lines = [f"c{label}\t{text}\n" for text, label in zip(texts, labels, strict=True)]
        atomic_write(folder / f"{split}.txt", "".join(lines))
    atomic_write(folder / "synthesis.json", json.dumps(asdict(c), indent=2) + "\n")
    return folder
