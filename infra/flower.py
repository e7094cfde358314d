"""Flower as this project runs it: `python -m infra.flower --port=5555 --address=127.0.0.1` (`make run` and compose).

Flower can revoke and terminate tasks, and its JSON API (`/api/workers`, `/api/tasks`) answers 401 unless basic
auth is configured or FLOWER_UNAUTHENTICATED_API is set. So: with FLOWER_BASIC_AUTH ("user:password") Flower asks
for it everywhere, its API included; without it Flower may listen on loopback only, where its API is opened for
local use; on any other address (compose) it refuses to start without credentials.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

log = logging.getLogger("flower")

CELERY_APP = "workers.celery_worker"
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "localhost", "::1"})


def flower_environment(address: str, env: Mapping[str, str]) -> dict[str, str] | None:
    """The environment Flower runs with on `address`, or None when it must not run unauthenticated there."""
    result = dict(env)
    if result.get("FLOWER_BASIC_AUTH"):
        result.pop("FLOWER_UNAUTHENTICATED_API", None)
        return result
    result.pop("FLOWER_BASIC_AUTH", None)  # Flower reads an empty value as one empty credential
    if address not in LOOPBACK_ADDRESSES:
        return None
    result["FLOWER_UNAUTHENTICATED_API"] = "true"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m infra.flower")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", required=True)
    options = parser.parse_args(argv)
    env = flower_environment(options.address, os.environ)
    if env is None:
        log.error(
            "Flower would listen on %s without credentials, and it can revoke and terminate tasks: set "
            "FLOWER_BASIC_AUTH=user:password",
            options.address,
        )
        return 2
    flower = ["flower", f"--port={options.port}", f"--address={options.address}"]
    # exec, not a child: this process becomes Flower, so signals reach it directly.
    os.execve(sys.executable, [sys.executable, "-m", "celery", "-A", CELERY_APP, "--quiet", *flower], env)  # noqa: S606
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
