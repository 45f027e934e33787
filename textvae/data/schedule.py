"""Batch schedules: train on the batch order another program trained on.

A schedule is a JSON file that fixes, per seed and epoch, the order in which a run visits its
training batches, given as positions in the list of batches before any shuffle (for ``bucket``
batching: ascending length, and within one length in the order of ``data.bucket_order``)::

    {"format": "textvae.batch-schedule/1",
     "source": "what recorded it",
     "batches": 358,
     "seeds": {"783435": [[epoch 1 order], [epoch 2 order]], "101": [...]}}

With ``data.batch_schedule`` set, epoch ``e`` of a run with seed ``s`` trains on
``seeds[s][e]`` instead of a shuffle drawn from the seed. It exists for side-by-side runs with other
code (eval/parity.py records the reference programs' orders): with SGD at a high learning rate the
last few batches of a short run move its final figures by several nats, so two programs compared on
different orders compare those batches as much as the methods (docs/data.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

FORMAT = "textvae.batch-schedule/1"


@dataclass(frozen=True)
class BatchSchedule:
    path: Path
    batches: int
    """How many batches the training split must be cut into."""
    orders: dict[int, list[list[int]]]
    """seed -> one order per epoch."""
    source: str = ""

    def order(self, seed: int, epoch: int) -> list[int]:
        """The order of epoch ``epoch`` (0-based) for ``seed``."""
        if seed not in self.orders:
            raise DataError(f"batch schedule {self.path}: no orders for seed {seed} (it has seeds "
                            f"{', '.join(map(str, sorted(self.orders)))})")
        epochs = self.orders[seed]
        if epoch >= len(epochs):
            raise DataError(f"batch schedule {self.path}: seed {seed} has orders for {len(epochs)} epochs; "
                            f"epoch {epoch + 1} has none (lower train.epochs or record more epochs)")
        return epochs[epoch]


def load_schedule(path: str | Path) -> BatchSchedule:
    """Read and check a schedule: every order must be a permutation of ``range(batches)``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"data.batch_schedule: no such file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"batch schedule {path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"batch schedule {path}: key 'format' must be {FORMAT!r}")
    batches = data.get("batches")
    if not isinstance(batches, int) or isinstance(batches, bool) or batches < 1:
        raise DataError(f"batch schedule {path}: key 'batches' must be a positive integer, got {batches!r}")
    seeds = data.get("seeds")
    if not isinstance(seeds, dict) or not seeds:
        raise DataError(f"batch schedule {path}: key 'seeds' must map seeds to lists of epoch orders")
    expected = list(range(batches))
    orders: dict[int, list[list[int]]] = {}
    for key, epochs in seeds.items():
        try:
            seed = int(key)
        except ValueError:
            raise DataError(f"batch schedule {path}: seeds key {key!r} is not an integer") from None
        if not isinstance(epochs, list) or not epochs:
            raise DataError(f"batch schedule {path}: seeds.{key} must list one order per epoch")
        for e, order in enumerate(epochs):
            if (not isinstance(order, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in order)
                    or sorted(order) != expected):
                raise DataError(f"batch schedule {path}: seeds.{key}[{e}] is not an order of the {batches} batches "
                                f"(each of 0..{batches - 1} exactly once)")
        orders[seed] = epochs
    return BatchSchedule(path, batches, orders, str(data.get("source", "")))


def write_schedule(path: str | Path, batches: int, orders: dict[int, list[list[int]]], source: str) -> None:
    """Write a schedule (checked by reading it back, so a bad one is never left behind as valid)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "source": source, "batches": batches,
                               "seeds": {str(s): o for s, o in sorted(orders.items())}}) + "\n")
    load_schedule(tmp)
    tmp.replace(path)
