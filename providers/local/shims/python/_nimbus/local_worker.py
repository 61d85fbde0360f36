"""Nimbus local worker (Python): runs one function for the local runtime.

Started by the local runtime with cwd = the unpacked package root, as
``python3 -m _nimbus.local_worker`` (running the file directly also works),
with two inherited pipes: fd 3 (runtime -> worker) and fd 4 (worker -> runtime).
stdout/stderr stay the handler's own (logs).

Frames: 4-byte big-endian length + UTF-8 JSON. After loading the handler the
worker sends ``{"ready": true, "load_ms": ...}`` (or ``{"ready": false,
"error": {...}}`` and exits 1); then, one at a time, it answers every
``{"id", "event", "deadline_ms", "request_id"}`` with ``{"id", "ok": true,
"result", "duration_ms"}`` or ``{"id", "ok": false, "error": {"type",
"message", "stack"}, "duration_ms"}``. It exits 0 on EOF of fd 3. See
docs/function-contract.md, "Local worker protocol".
"""

import os
import struct
import sys
import time

if __package__ in (None, ""):  # run as a file: make the package root importable, not _nimbus/
    _here = os.path.dirname(os.path.abspath(__file__))
    _root = os.path.dirname(_here)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, _root)
    from _nimbus import core  # noqa: E402
else:
    from . import core

IN_FD, OUT_FD = 3, 4
MAX_FRAME = 64 * 1024 * 1024
PROVIDER = "local"


class ProtocolError(Exception):
    pass


def _read_exact(fd, n, at_boundary):
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            if got == 0 and at_boundary:
                return None
            raise ProtocolError("unexpected EOF inside a frame")
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def read_frame(fd):
    hdr = _read_exact(fd, 4, True)
    if hdr is None:
        return None
    (n,) = struct.unpack(">I", hdr)
    if n > MAX_FRAME:
        raise ProtocolError("frame of %d bytes exceeds the %d-byte limit" % (n, MAX_FRAME))
    body = _read_exact(fd, n, False) if n else b""
    import json

    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as e:
        return {"_invalid": "frame is not UTF-8 JSON: %s" % e}


def write_frame(fd, obj):
    data = core.dumps(obj).encode("utf-8")
    buf = struct.pack(">I", len(data)) + data
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _flush_std():
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:  # noqa: BLE001
            pass


def serve(in_fd, out_fd):
    try:
        fn = core.get_function(provider=PROVIDER)
    except BaseException as e:  # noqa: BLE001 - any load failure is reported, then exit 1
        if isinstance(e, KeyboardInterrupt):
            raise
        _flush_std()
        write_frame(out_fd, {"ready": False, "error": core.error_info(e)})
        return 1
    _flush_std()
    write_frame(out_fd, {"ready": True, "load_ms": round(fn.load_ms, 3), "pid": os.getpid(),
                         "runtime": "python%d.%d" % sys.version_info[:2]})
    while True:
        try:
            msg = read_frame(in_fd)
        except ProtocolError as e:
            write_frame(out_fd, {"id": None, "ok": False, "error": {
                "type": "ProtocolError", "message": str(e), "stack": ""}})
            return 2
        if msg is None:
            return 0
        mid = msg.get("id") if isinstance(msg, dict) else None
        t0 = time.perf_counter()
        try:
            if not isinstance(msg, dict) or "_invalid" in msg:
                raise ProtocolError(msg.get("_invalid") if isinstance(msg, dict) else "frame is not an object")
            event = msg.get("event")
            if not isinstance(event, dict) or event.get("type") not in core.EVENT_TYPES:
                raise ProtocolError("invocation %r has no neutral event (event.type one of %s)"
                                    % (mid, ", ".join(core.EVENT_TYPES)))
            ctx = fn.context(request_id=msg.get("request_id"), deadline_ms=msg.get("deadline_ms"))
            result = core.normalize_result(event, fn.invoke(event, ctx))
            resp = {"id": mid, "ok": True, "result": result}
            core.dumps(resp)  # surface unserializable results as handler errors
        except BaseException as e:  # noqa: BLE001 - a handler's SystemExit is an error, not an exit
            if isinstance(e, KeyboardInterrupt):
                raise
            resp = {"id": mid, "ok": False, "error": core.error_info(e)}
        resp["duration_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
        _flush_std()
        write_frame(out_fd, resp)


def main():
    try:
        in_fd, out_fd = os.dup(IN_FD), os.dup(OUT_FD)  # dup'ed fds are close-on-exec
    except OSError as e:
        sys.stderr.write("nimbus local worker: fds 3 and 4 must be open pipes (%s)\n" % e)
        return 2
    os.close(IN_FD)
    os.close(OUT_FD)
    return serve(in_fd, out_fd)


if __name__ == "__main__":
    sys.exit(main())
