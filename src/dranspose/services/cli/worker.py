"""``dranspose worker [-c CLASS] [-n NAME]``: one worker process. It finds the reducer and the
ingesters through what they advertise in Redis: it needs only REDIS_URL."""

from __future__ import annotations

import argparse
import os
import socket
import uuid

from dranspose.services.cli import add_common, settings_from


def default_worker_name() -> str:
    """Unique per process, also across hosts and restarts: ``worker-<host>-<pid>-<random>``."""
    return f"worker-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def configure_parser(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("-n", "--name", help="worker name (env WORKER_NAME; default a unique worker-<host>-<pid>-<random>)")
    p.add_argument("-c", "--class", "--workerclass", dest="worker_class", help="worker class package.module:Class (env WORKER_CLASS)")
    p.add_argument("-t", "--tags", help="comma-separated tags or a JSON list (env WORKER_TAGS; default generic)")
    p.add_argument("--capacity", type=int, help="fixed events in flight (credits; default: adaptive)")


def run(args: argparse.Namespace) -> int:
    from dranspose.services.runner import serve
    from dranspose.services.worker import Worker

    settings = settings_from(redis_url=args.redis_url, worker_class=args.worker_class, worker_tags=args.tags,
                             worker_capacity=args.capacity)
    serve(Worker(args.name or settings.worker_name or default_worker_name(), settings))
    return 0
