"""Logging set-up shared by the API and the workers: one line per event, the job id in the message."""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    else:
        root.setLevel(level.upper())
