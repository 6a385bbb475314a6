"""Example control-system client: watch a reducer's feedback and stop the scan on a condition.

    python examples/feedback_client.py --sse http://reducer:5010/feedback \\
        --controller http://controller:5000 --stop-when "mean_intensity < 100"

    python examples/feedback_client.py --zmq tcp://reducer:5011 \\
        --controller http://controller:5000 --stop-when "quality == 'bad'"

A condition is ``KEY OP VALUE`` with OP one of ``< <= > >= == !=``; VALUE is JSON (numbers,
"strings", true/false) or a bare word. It is tested on every feedback message that has KEY
(dotted keys reach into nested dicts). When it holds, the client sends
``POST {controller}/api/v1/stop`` once and exits 0 (exit 1 if the stream ends first,
2 on a timeout). Messages are printed one JSON envelope per line.
"""

from __future__ import annotations

import argparse
import json
import operator
import sys
import time
from typing import Any, Callable, Iterator

import httpx

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}


def parse_condition(text: str) -> Callable[[dict[str, Any]], bool]:
    """Compile ``KEY OP VALUE`` into a predicate over a message dict."""
    for sym in OPS:  # two-character operators are listed first
        if sym in text:
            key, raw = (part.strip() for part in text.split(sym, 1))
            try:
                value = json.loads(raw.replace("'", '"'))
            except ValueError:
                value = raw
            op = OPS[sym]

            def predicate(msg: dict[str, Any]) -> bool:
                cur: Any = msg
                for part in key.split("."):
                    if not isinstance(cur, dict) or part not in cur:
                        return False
                    cur = cur[part]
                try:
                    return bool(op(cur, value))
                except TypeError:
                    return False

            return predicate
    raise ValueError(f"condition {text!r} is not 'KEY OP VALUE'")


def sse_messages(url: str, timeout: float) -> Iterator[dict[str, Any]]:
    """Envelopes from a Server-Sent Events feedback stream."""
    with httpx.stream("GET", url, timeout=httpx.Timeout(10.0, read=timeout)) as rsp:
        rsp.raise_for_status()
        data: list[str] = []
        for line in rsp.iter_lines():
            if line == "":
                if data:
                    yield json.loads("\n".join(data))
                data = []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())


def zmq_messages(url: str, timeout: float) -> Iterator[dict[str, Any]]:
    """Envelopes from a ZeroMQ PUB feedback socket."""
    import zmq

    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"feedback")
    sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(url)
    try:
        while True:
            try:
                _topic, data = sock.recv_multipart()
            except zmq.Again:
                return
            yield json.loads(data)
    finally:
        sock.close()


def run(source: Iterator[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool],
        controller: str | None, deadline: float) -> int:
    for env in source:
        print(json.dumps(env), flush=True)
        if predicate(env.get("message", {})):
            if controller:
                r = httpx.post(controller.rstrip("/") + "/api/v1/stop", timeout=10)
                print(f"condition met at feedback {env.get('seq')}: stop -> {r.status_code}",
                      file=sys.stderr, flush=True)
            return 0
        if time.monotonic() > deadline:
            return 2
    return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sse", help="feedback SSE url, e.g. http://reducer:5010/feedback")
    src.add_argument("--zmq", help="feedback ZMQ PUB endpoint, e.g. tcp://reducer:5011")
    p.add_argument("--controller", help="controller base url; stop is POSTed there")
    p.add_argument("--stop-when", required=True, help="condition KEY OP VALUE")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up after seconds")
    args = p.parse_args(argv)
    predicate = parse_condition(args.stop_when)
    deadline = time.monotonic() + args.timeout
    source = (sse_messages(args.sse, args.timeout) if args.sse
              else zmq_messages(args.zmq, args.timeout))
    try:
        return run(source, predicate, args.controller, deadline)
    except (httpx.ReadTimeout, httpx.ConnectError) as exc:
        print(f"feedback stream: {exc!r}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
