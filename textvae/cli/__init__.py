"""The ``textvae`` command line.

OpenMP reads its waiting policy once, when torch loads it: it is set here, before any command module
imports torch (see :mod:`textvae.threads`).
"""

from ..threads import set_wait_policy

set_wait_policy()
