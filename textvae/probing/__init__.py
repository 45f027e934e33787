"""Representations of trained models: text -> posterior features, and the Table-4 linear probe."""

from .features import as_text_list, encode_posteriors
from .protocol import PROBES, SUBSETS, load_probe_data, probe_data_dir, run_probe
from .record import probe_record, record_path, write_probe_record
from .sgd import SGDLinearProbe, SGDProbeConfig

__all__ = ["PROBES", "SGDLinearProbe", "SGDProbeConfig", "SUBSETS", "as_text_list", "encode_posteriors",
           "load_probe_data", "probe_data_dir", "probe_record", "record_path", "run_probe", "write_probe_record"]
