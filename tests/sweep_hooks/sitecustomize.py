"""A test hook that every Python process of a test's sweep loads (the test puts this folder on PYTHONPATH).

With ``TEXTVAE_TEST_PAUSE_RUN`` set to a run folder, the first process that commits that run's first
epoch writes its pid to the file ``TEXTVAE_TEST_PAUSE_MARKER`` names and then waits to be killed, so
a test can kill a worker mid-run on an event instead of racing it. The marker makes it happen once:
Ray's retry of the killed task finds it and trains on.
"""

import os

if os.environ.get("TEXTVAE_TEST_PAUSE_RUN"):
    import importlib.abc
    import importlib.util
    import sys
    import time
    from pathlib import Path

    def _pause_after_first_epoch(rundir_module) -> None:
        original = rundir_module.RunDir.append_metrics
        run = Path(os.environ["TEXTVAE_TEST_PAUSE_RUN"]).resolve()
        marker = Path(os.environ["TEXTVAE_TEST_PAUSE_MARKER"])

        def append_metrics(self, record):
            original(self, record)
            if record.get("epoch") == 1 and Path(self.path).resolve() == run and not marker.exists():
                partial = marker.with_name(marker.name + ".partial")
                partial.write_text(str(os.getpid()))
                os.replace(partial, marker)
                time.sleep(3600)  # until the test kills this process

        rundir_module.RunDir.append_metrics = append_metrics

    class _PatchOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "textvae.rundir":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                _pause_after_first_epoch(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _PatchOnImport())
