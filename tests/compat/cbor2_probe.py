"""Run by test_cbor2_releases.py under one cbor2 release: read the dumps named on the command
line and print, per file, what was read as one JSON line (event numbers, error offset)."""

from __future__ import annotations

import json
import sys

import cbor2

from dranspose.dumps.dumpfile import DumpError, read_dump


def main() -> None:
    out: dict[str, object] = {"cbor2": cbor2.__file__, "files": {}}
    for path in sys.argv[1:]:
        events: list[int] = []
        sizes: list[int] = []
        error = None
        try:
            for msg in read_dump(path):
                events.append(msg.event_number)
                sizes.append(sum(len(f) for s in msg.streams.values() for f in s.frames))
        except DumpError as exc:
            error = {"offset": exc.offset, "reason": exc.reason}
        out["files"][path] = {"events": events, "sizes": sizes, "error": error}  # type: ignore[index]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
