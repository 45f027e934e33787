"""Run a reference program and record every ``numpy.random.permutation`` it draws.

    python eval/record_orders.py LOG SCRIPT [ARGS...]

runs ``SCRIPT ARGS`` (from the working directory, as ``python SCRIPT ARGS`` would) with
``numpy.random.permutation`` wrapped: each call is passed on unchanged, so the program draws exactly
the numbers it would draw anyway, and its length and result are appended to LOG as one JSON line.
The research programs behind the Table-1 rows shuffle their training buckets with one such call per
epoch (``for i in np.random.permutation(len(train_data_batch))``); eval/parity.py turns those calls
into a batch schedule (textvae.data.schedule) so that textvae trains on the same order.

With ``PARITY_TORCH_SEED_OFFSET=N`` in the environment, every ``torch.manual_seed(s)`` the program
calls seeds ``s + N`` instead: numpy's draws (the batch order) stay those of the seed while the
initial weights, dropout masks and posterior samples change — the reference against itself, the
noise floor of a paired comparison (eval/side_ab.py).
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

import numpy


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__.strip().splitlines()[2].strip())
    log, script, args = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    log.write_text("")
    draw = numpy.random.permutation

    def recorded(x):
        out = draw(x)
        with open(log, "a") as f:
            f.write(json.dumps({"n": len(out), "order": [int(i) for i in out]}) + "\n")
        return out

    numpy.random.permutation = recorded
    offset = int(os.environ.get("PARITY_TORCH_SEED_OFFSET", "0") or 0)
    if offset:
        import torch

        seed = torch.manual_seed
        torch.manual_seed = lambda s: seed(int(s) + offset)
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
