"""Client run by the h5pyd 0.18.0 venv's Python: reads a JSON plan on stdin, prints results.

Kept free of test dependencies (only h5pyd and numpy of that venv). Arrays travel back as
base64 ``.npy`` bytes; string arrays as lists of str.
"""

import base64
import io
import json
import sys

import h5pyd
import numpy as np


def _sel(spec):
    if spec is None:
        return ()
    out = []
    for item in spec:
        if isinstance(item, int):
            out.append(item)
        elif isinstance(item, dict):
            out.append(item["idx"])
        else:
            out.append(slice(*item))
    return tuple(out)


def _encode(value):
    if isinstance(value, bytes):
        return {"str": value.decode()}
    if isinstance(value, str):
        return {"str": value}
    arr = np.asarray(value)
    if arr.dtype.kind == "O":
        return {"strs": [v.decode() if isinstance(v, bytes) else str(v) for v in arr.ravel()],
                "shape": list(arr.shape)}
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return {"npy": base64.b64encode(buf.getvalue()).decode()}


def run(url, plan):
    results = {}
    f = h5pyd.File(url + "/", "r")
    for key, op in plan.items():
        try:
            kind = op["op"]
            if kind == "tree":
                seen = []
                f.visit(lambda name: seen.append(name))
                results[key] = {"visit": seen, "root": list(f.keys()),
                                "data": list(f["data"].keys()),
                                "data_attrs": {k: _encode(v) for k, v in f["data"].attrs.items()}}
            elif kind == "read":
                ds = f[op["path"]]
                results[key] = {"dtype": ds.dtype.descr if ds.dtype.names else ds.dtype.str,
                                "shape": list(ds.shape), "value": _encode(ds[_sel(op.get("sel"))])}
            elif kind == "refresh":
                ds = f[op["path"]]
                before = list(ds.shape)
                sys.stdout.write(json.dumps({"ready": before}) + "\n")
                sys.stdout.flush()
                sys.stdin.readline()  # the test grows the dataset, then says go on
                stale = list(ds.shape)
                ds.refresh()  # a no-op in h5pyd 0.18, whose File caches metadata forever:
                g = h5pyd.File(url + "/", "r")  # reopening is the way to see growth
                ds = g[op["path"]]
                results[key] = {"before": before, "stale": stale, "after": list(ds.shape),
                                "value": _encode(ds[()])}
                g.close()
            elif kind == "mode":
                try:
                    g = h5pyd.File(url + "/", op["mode"])
                    g.create_group("written_by_018")
                    g.close()
                    results[key] = {"refused": False}
                except Exception as exc:  # the refusal we expect
                    results[key] = {"refused": True, "error": repr(exc)}
        except Exception as exc:
            results[key] = {"error": repr(exc)}
    f.close()
    return results


if __name__ == "__main__":
    plan = json.loads(sys.stdin.readline())
    sys.stdout.write(json.dumps({"results": run(sys.argv[1], plan)}) + "\n")
