"""Nimbus local worker (Python): runs one function for the local runtime.

Started by the local runtime with cwd = the unpacked package root, as
``python3 -m _nimbus.local_worker`` (running the file directly also works),
with two inherited pipes: fd 3 (runtime -> worker) and fd 4 (worker -> runtime).
stdout/stderr stay the handler's own (logs). When ``NIMBUS_LIFE_FD`` names an
fd (5), that is the read end of a pipe the runtime never writes to: it reaches EOF when the runtime is gone
(even after ``kill -9``), and a thread watching it then kills this worker's
process group and every process carrying its ``NIMBUS_WORKER_TAG`` (children
that left the group: ``setsid``, daemons), so that nothing outlives the runtime.

Frames: 4-byte big-endian length + UTF-8 JSON. After loading the handler the
worker sends ``{"ready": true, "load_ms": ...}`` (or ``{"ready": false,
"error": {...}}`` and exits 1); then, one at a time and in the order received,
it answers every ``{"id", "event", "timeout_ms" (or "deadline_ms"),
"request_id"}`` with ``{"id", "ok": true, "result", "duration_ms"}`` or ``{"id",
"ok": false, "error": {"type", "message", "stack"}, "duration_ms"}``. The
runtime may send the next invocation before the reply (ahead): it starts right
after that reply, and its deadline counts from then. When stdout and stderr are
files (the runtime's), the ready frame and each reply also carry ``"output":
[out, err]``, their sizes once flushed: where that invocation's output ends. It
exits 0 on EOF of fd 3, and 3 after a MemoryError reply. See
docs/function-contract.md, "Local worker protocol".

During an invocation the handler (through the resource clients) may call
``rpc(resource, op, args)``: it sends ``{"rpc": n, "resource", "op", "args"}``
and blocks until the runtime answers ``{"rpc": n, "ok": true, "result"}`` or
``{"rpc": n, "ok": false, "error": {"type", "message"}}`` (then it raises).

Memory: when ``NIMBUS_MEMORY_LIMIT_MB`` is set, the worker caps its own
address space (``RLIMIT_AS``) before loading the handler, to the address space
it already uses (interpreter + shim, ~30 MiB) + the limit + 64 MiB of headroom,
so that a handler allocating past its memory gets ``MemoryError``.
"""

import _thread
import collections
import json
import os
import signal
import stat
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

if __name__ == "__main__":
    # `python -m _nimbus.local_worker` runs this file as `__main__`: make `_nimbus.local_worker`
    # (imported by the resource clients for `rpc`) this very module, not a second copy whose
    # channel to the runtime was never opened.
    sys.modules["_nimbus.local_worker"] = sys.modules[__name__]
    setattr(sys.modules["_nimbus"], "local_worker", sys.modules[__name__])

from _nimbus import local_resources  # noqa: E402,F401 - registers the "local" resource clients

IN_FD, OUT_FD = 3, 4
MAX_FRAME = 64 * 1024 * 1024
PROVIDER = "local"
MEMORY_HEADROOM_MB = 64
_MIB = 1024 * 1024


class ProtocolError(Exception):
    pass


class ResourceError(core.NimbusError):
    """A resource call through the local runtime failed (an ``ok: false`` RPC reply).

    ``type`` is the runtime's error type (``NotFound``, ``ValidationError``, ...), ``message``
    its message."""

    def __init__(self, type, message):  # noqa: A002 - the protocol's field name
        super().__init__(message)
        self.type = type
        self.message = message


# The channel to the runtime while serving (frame reader, fd out), and whether an invocation is running:
# RPC frames are only valid then (the runtime reads them while it waits for the reply).
_channel = None
_invoking = False
_rpc_lock = _thread.allocate_lock()
_rpc_seq = 0


def _resource_error(error):
    error = error if isinstance(error, dict) else {}
    etype = str(error.get("type") or "ResourceError")
    message = str(error.get("message") or "resource call failed")
    cls = getattr(core, etype, None)
    if isinstance(cls, type) and issubclass(cls, core.NimbusError) and cls is not core.NimbusError:
        err = cls(message)  # the shim's own class, e.g. ResourceAccessError
        err.type, err.message = etype, message
        return err
    return ResourceError(etype, message)


def rpc(resource, op, args=None):
    """Make one resource call through the local runtime and return its result.

    Only possible during an invocation (from the handler or a thread it started; calls are
    serialized). Raises ``ResourceError`` (or the shim's own class when the runtime names one,
    e.g. ``core.ResourceAccessError``) when the runtime answers ``ok: false``."""
    global _rpc_seq
    if _channel is None or not _invoking:
        raise core.ResourceUnavailableError(
            "resource %r: resource calls are only possible while the local runtime is invoking the handler"
            % (resource,))
    reader, out_fd = _channel
    with _rpc_lock:
        _rpc_seq += 1
        n = _rpc_seq
        write_frame(out_fd, {"rpc": n, "resource": resource, "op": op, "args": {} if args is None else args})
        while True:
            msg = reader.next()
            if msg is None:
                raise ResourceError("ProtocolError", "the local runtime closed the connection during a resource call")
            if isinstance(msg, dict) and "id" in msg and "rpc" not in msg:
                reader.pending.append(msg)  # the next invocation, sent ahead: served after this one
                continue
            if not isinstance(msg, dict) or msg.get("rpc") != n:
                raise ResourceError("ProtocolError", "expected the reply to resource call %d, got %.200r" % (n, msg))
            break
    if msg.get("ok") is True:
        return msg.get("result")
    raise _resource_error(msg.get("error"))


def _vm_size():
    """Bytes of address space mapped now (Linux ``VmSize``), 0 when unknown."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def apply_memory_limit():
    """Cap the address space from ``NIMBUS_MEMORY_LIMIT_MB`` (see the module docstring)."""
    raw = os.environ.get("NIMBUS_MEMORY_LIMIT_MB")
    if not raw:
        return
    try:
        mb = int(raw)
        import resource

        limit = _vm_size() + (mb + MEMORY_HEADROOM_MB) * _MIB
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if mb > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError, ImportError) as e:
        sys.stderr.write("nimbus local worker: memory limit %r not applied: %s\n" % (raw, e))


class FrameReader:
    """Reads frames from the runtime. Each system call takes whatever the pipe holds (up to the
    rest of the frame, at least 64 KiB), so that a small frame costs one read, not two.
    ``pending`` keeps invocations that arrived during a resource call (sent ahead), in order."""

    __slots__ = ("fd", "buf", "pending")

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray()
        self.pending = collections.deque()

    def _fill(self, want):
        """Reads until the buffer holds ``want`` bytes; False at EOF."""
        buf = self.buf
        while len(buf) < want:
            chunk = os.read(self.fd, max(65536, want - len(buf)))
            if not chunk:
                return False
            buf += chunk
        return True

    def next(self):
        """The next frame's JSON, ``None`` at EOF on a frame boundary; a frame that is not JSON
        becomes ``{"_invalid": why}``. Raises ``ProtocolError`` on a truncated or oversized frame."""
        buf = self.buf
        if not self._fill(4):
            if buf:
                raise ProtocolError("unexpected EOF inside a frame")
            return None
        n = int.from_bytes(buf[:4], "big")
        if n > MAX_FRAME:
            raise ProtocolError("frame of %d bytes exceeds the %d-byte limit" % (n, MAX_FRAME))
        if not self._fill(4 + n):
            raise ProtocolError("unexpected EOF inside a frame")
        body = buf[4:4 + n]
        del buf[:4 + n]
        try:
            return json.loads(body)
        except ValueError as e:  # UnicodeDecodeError is a ValueError too
            return {"_invalid": "frame is not UTF-8 JSON: %s" % e}


def write_frame(fd, obj):
    write_encoded(fd, core.dumps(obj).encode("utf-8"))


def write_encoded(fd, data):
    """Writes one frame whose JSON is already encoded."""
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


def _output_files():
    """Whether stdout and stderr are files (as the local runtime gives them), whose sizes tell it
    where each invocation's output ends."""
    try:
        return all(stat.S_ISREG(os.fstat(fd).st_mode) for fd in (1, 2))
    except OSError:
        return False


def _output_end(files):
    """Flushes stdout and stderr; returns their sizes as the JSON text ``[out,err]`` (None when
    they are not files)."""
    _flush_std()
    if not files:
        return None
    try:
        return "[%d,%d]" % (os.lseek(1, 0, os.SEEK_END), os.lseek(2, 0, os.SEEK_END))
    except OSError:
        return None


def _with_output(data, output):
    """The serialized frame ``data`` (a JSON object) with ``"output"`` added."""
    return data if output is None else data[:-1] + ',"output":' + output + "}"


def serve(in_fd, out_fd):
    global _channel, _invoking
    apply_memory_limit()
    try:
        fn = core.get_function(provider=PROVIDER)
    except BaseException as e:  # noqa: BLE001 - any load failure is reported, then exit 1
        if isinstance(e, KeyboardInterrupt):
            raise
        _flush_std()
        write_frame(out_fd, {"ready": False, "error": core.error_info(e)})
        return 1
    files = _output_files()
    ready = core.dumps({"ready": True, "load_ms": round(fn.load_ms, 3), "pid": os.getpid(),
                        "runtime": "python%d.%d" % sys.version_info[:2]})
    write_encoded(out_fd, _with_output(ready, _output_end(files)).encode("utf-8"))
    reader = FrameReader(in_fd)
    _channel = (reader, out_fd)
    while True:
        try:
            msg = reader.pending.popleft() if reader.pending else reader.next()
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
            deadline = msg.get("deadline_ms")
            if deadline is None and isinstance(msg.get("timeout_ms"), int):
                deadline = core.now_ms() + msg["timeout_ms"]  # from now: it may have been sent ahead
            ctx = fn.context(request_id=msg.get("request_id"), deadline_ms=deadline)
            _invoking = True
            try:
                raw = fn.invoke(event, ctx)
            finally:
                _invoking = False
            result = core.normalize_result(event, raw)
            resp = {"id": mid, "ok": True, "result": result,
                    "duration_ms": round((time.perf_counter() - t0) * 1000.0, 3)}
            data = core.dumps(resp)  # serialized once; an unserializable result is a handler error
        except BaseException as e:  # noqa: BLE001 - a handler's SystemExit is an error, not an exit
            if isinstance(e, KeyboardInterrupt):
                raise
            resp = {"id": mid, "ok": False, "error": core.error_info(e),
                    "duration_ms": round((time.perf_counter() - t0) * 1000.0, 3)}
            data = core.dumps(resp)
            if isinstance(e, MemoryError):
                # The runtime replaces a worker that ran out of memory: this one serves nothing
                # more, not even an invocation already sent ahead.
                write_encoded(out_fd, _with_output(data, _output_end(files)).encode("utf-8"))
                return 3
        write_encoded(out_fd, _with_output(data, _output_end(files)).encode("utf-8"))


def _kill_tagged():
    """SIGKILL to every other process started with this worker's tag, wherever it went."""
    tag = os.environ.get("NIMBUS_WORKER_TAG")
    if not tag:
        return
    needle = ("NIMBUS_WORKER_TAG=" + tag).encode()
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return  # no /proc: the process group is all there is
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if needle in f.read().split(b"\0"):
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _die_with_runtime(fd):
    """Blocks until the runtime's end of the life pipe closes, then kills what this worker
    started and its process group (itself included)."""
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    _kill_tagged()
    os.killpg(0, signal.SIGKILL)


def main():
    life_fd = os.environ.pop("NIMBUS_LIFE_FD", "")
    if life_fd.isdigit():
        try:
            if stat.S_ISFIFO(os.fstat(int(life_fd)).st_mode):
                life = os.dup(int(life_fd))  # close-on-exec: what the handler starts lacks it
                os.close(int(life_fd))
                _thread.start_new_thread(_die_with_runtime, (life,))
        except OSError:
            pass  # not open: nothing to watch
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
