"""A STINS detector process for the fault tests: binds PUSH, waits ``--delay`` seconds for the
ingester to connect, sends a header, ``--frames`` images at ``--rate`` Hz and a series end.
Frames that find no ingester are dropped (like a detector whose receiver is gone).

Progress goes to ``--status`` as JSON (written atomically): ``sent``, ``dropped``, and
``last_frame_at`` (wall-clock seconds, once the end was sent).

    python -m tests.faults.detector --url tcp://*:9999 --frames 400 --rate 100 --status det.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import zmq

from dranspose.protocols import stins


def write_status(path: Path, **status: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--frames", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--status", type=Path, required=True)
    p.add_argument("--delay", type=float, default=1.0)
    args = p.parse_args()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.bind(args.url)
    sent = dropped = 0
    image = np.arange(64, dtype=np.uint16).reshape(8, 8)

    def send(parts: list[bytes]) -> None:
        nonlocal sent, dropped
        try:
            sock.send_multipart(parts, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            dropped += 1

    write_status(args.status, sent=0, dropped=0, last_frame_at=None)
    time.sleep(args.delay)
    send(stins.encode_header(0))
    t0 = time.monotonic()
    for i in range(args.frames):
        delay = t0 + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(stins.encode_image(i + 1, i, image))
        if i % 5 == 0:
            write_status(args.status, sent=sent, dropped=dropped, last_frame_at=None)
    send(stins.encode_end(args.frames + 1))
    write_status(args.status, sent=sent, dropped=dropped, last_frame_at=time.time())
    time.sleep(3600)  # keep the socket (and what it queued) until the test stops us


if __name__ == "__main__":
    main()
