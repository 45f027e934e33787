"""Where a sweep's points run: a local Ray instance the sweep owns, or the cluster ``--address`` names.

Without an address the sweep starts Ray itself in a temp folder of its own, so that neither
``RAY_ADDRESS`` nor the ``/tmp/ray`` of a cluster started earlier makes it attach to someone else's
Ray, and ends it when it ends, also after Ctrl-C or SIGTERM (:mod:`.leftovers` covers SIGKILL). With
an address it joins that cluster, passing Ray's token when one is available. A failure to start or
join is one line; what Ray prints meanwhile (a line a second while it retries) goes to ``SWEEP/ray.log``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TextVAEError
from . import leftovers
from .point import one_line

LOCAL_START_ATTEMPTS = 3  # Ray gives its node 30 s to come up, which a loaded machine can miss
CONNECT_CHECK_SECONDS = 10.0  # Ray itself retries a dead address for minutes


@contextlib.contextmanager
def ray_for_sweep(address: str | None, log_path: Path, cpus: int | None = None) -> Iterator[Any]:
    """The ``ray`` module, initialised for the sweep and shut down (an owned instance ended) after it.

    ``cpus``: how many CPUs a local instance the sweep starts offers (Ray's default: all of them); a
    cluster joined with ``address``, or a Ray the caller started, has its own."""
    try:
        import ray
    except ImportError:
        raise TextVAEError("textvae sweep runs on Ray, which is not installed: pip install 'textvae[sweep]'") from None
    if cpus is not None and ray.is_initialized():
        raise ConfigError("--cpus sets the CPUs of the sweep's own local Ray instance; a Ray already started "
                          "has its own")
    if ray.is_initialized():  # the caller's own Ray (Python API): used as it is, left running
        yield ray
        return
    # Ray starts workers at a niceness 15 higher than the command (to keep its daemons responsive);
    # here the workers are the work, and the user sets the sweep's priority with `nice textvae sweep`.
    os.environ.setdefault("RAY_worker_niceness", "0")
    owned = _start_local(ray, log_path, cpus) if address is None else _join(ray, address, log_path)
    try:
        yield ray
    finally:
        _shutdown(ray, log_path)
        if owned is not None:
            leftovers.remove(*owned)


def _start_local(ray: Any, log_path: Path, cpus: int | None) -> tuple[Path, Path]:
    # Token authentication is Ray's default for a new local instance; said explicitly, Ray does not warn.
    _set_auth_mode(os.environ.get("RAY_AUTH_MODE") or "token")
    error: Exception | None = None
    for _ in range(LOCAL_START_ATTEMPTS):
        temp_dir = Path(tempfile.mkdtemp(prefix=leftovers.TEMP_PREFIX))
        state_file = leftovers.record(temp_dir)
        try:
            with _console_to(log_path):
                # address="local": a new instance even where RAY_ADDRESS or a running cluster would be found.
                ray.init(address="local", _temp_dir=str(temp_dir), include_dashboard=False, log_to_driver=False,
                         logging_level="warning", num_cpus=cpus)
            return state_file, temp_dir
        except BaseException as e:
            _shutdown(ray, log_path)
            leftovers.remove(state_file, temp_dir)
            if not isinstance(e, Exception):
                raise
            error = e
    raise TextVAEError(f"Ray did not start a local instance ({one_line(error)}), tried {LOCAL_START_ATTEMPTS} "
                       f"times; Ray's output: {log_path}")


def _join(ray: Any, address: str, log_path: Path) -> None:
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_CHECK_SECONDS).close()
        except OSError as e:
            raise TextVAEError(f"--address {address}: no Ray cluster answers there ({e.strerror or e})") from None
    token = token_source()
    if "RAY_AUTH_MODE" not in os.environ and token is not None:
        # Ray sends its token only in token mode, which it turns on by itself for "auto" alone. A token
        # sent to a cluster without authentication is ignored, so sending it whenever there is one is safe.
        _set_auth_mode("token")
    start = log_path.stat().st_size if log_path.exists() else 0
    try:
        with _console_to(log_path):
            ray.init(address=address, log_to_driver=False, logging_level="warning")
    except Exception as e:
        _shutdown(ray, log_path)
        with open(log_path, "rb") as stream:
            stream.seek(start)
            refused = b"InvalidAuthToken" in stream.read() or "AuthenticationError" in type(e).__name__
        if refused and token is None:
            reason = ("the cluster requires a token: set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to a file, "
                      "holding the token it was started with (docs/sweeps.md)")
        elif refused:
            reason = f"the cluster refused the token from {token}; give the one it was started with (docs/sweeps.md)"
        else:
            reason = f"could not join the Ray cluster ({one_line(e)}); Ray's output: {log_path}"
        raise TextVAEError(f"--address {address}: {reason}") from None


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address}: expected HOST:PORT of a Ray head node (e.g. 10.0.0.5:6379) or auto")
    return host.strip("[]"), int(port)


def token_source() -> str | None:
    """Where Ray would read its authentication token from, as Ray looks: ``RAY_AUTH_TOKEN``, the file
    ``RAY_AUTH_TOKEN_PATH`` names, ``~/.ray/auth_token``; ``None`` when there is none."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return path if Path(path).is_file() else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def _set_auth_mode(mode: str) -> None:
    os.environ["RAY_AUTH_MODE"] = mode
    try:  # Ray reads its config and token once; as Ray does itself when it turns token mode on, read them again
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray without token authentication
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _shutdown(ray: Any, log_path: Path) -> None:
    with contextlib.suppress(Exception), _console_to(log_path):
        ray.shutdown()


@contextlib.contextmanager
def _console_to(log_path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr, Ray's C++ core included, to ``log_path`` meanwhile."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
