"""``remotemedia.connect(url, token=...)``: pipelines served by ``remotemedia serve``, used like local
ones. ``remote.stream(name)`` gives a session with the same ``push``/``close`` (and ``apush``/
``aclose``) as a local ``Pipeline.stream()``, returning the same output types (``Audio``,
``VadResult``, ``Clip`` lists, ``Features``, JSON values); ``remote.run(name, audio)`` posts a whole
buffer or file and returns the same outputs as a local ``Pipeline.run_sync`` (``run_json`` gives the
server's JSON document instead, as ``remotemedia run --json`` writes it). Switching a program from
local to remote changes one line::

    session = Pipeline.from_yaml("speech_vad.yaml").stream()                   # local
    session = remotemedia.connect("http://host:8700", token=TOKEN).stream("speech_vad")  # remote

The WebSocket client is the standard library's sockets (RFC 6455, no extension), so nothing is
installed for it; ``https://`` URLs (a server with ``--tls-cert``) go through the standard
library's ``ssl`` (``cafile=`` trusts a private certificate). The protocol is docs/protocol.md. Refusals raise :class:`RemoteError` with the
server's close code or HTTP status and its reason.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import socket
import struct
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .audio import Audio, to_audio
from .errors import InputError, RemoteMediaError
from .payloads import Clip, Features, VadResult

__all__ = ["connect", "Remote", "RemoteSession", "RemoteError", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_WIRE_DTYPES = {"s16le": "<i2", "s32le": "<i4", "f32le": "<f4"}


class RemoteError(RemoteMediaError):
    """The server refused or ended a request: ``code`` is the WebSocket close code or the HTTP
    status (docs/protocol.md lists them), ``reason`` the server's words."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"remotemedia server: {code}: {reason}")
        self.code = code
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.code, self.reason))


def connect(url: str, token: Optional[str] = None, timeout: float = 30.0, cafile: Optional[str] = None) -> "Remote":
    """A handle on the server at ``url`` (``http://host:port``, or ``https://`` for a server with
    TLS; ``cafile``: a PEM certificate to trust besides the system's); nothing is sent until used."""
    return Remote(url, token=token, timeout=timeout, cafile=cafile)


class Remote:
    """The pipelines of one server (see the module docs)."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0, cafile: Optional[str] = None):
        u = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        if u.scheme not in ("http", "ws", "https", "wss"):
            raise InputError(f"remotemedia.connect: expected an http://, https://, ws:// or wss:// URL, not {u.scheme}://")
        self.tls = u.scheme in ("https", "wss")
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.tls else 80)
        self.token = token
        self.timeout = float(timeout)
        self._ssl = None
        if self.tls:
            import ssl

            self._ssl = ssl.create_default_context(cafile=cafile)

    def _headers(self) -> str:
        return f"Authorization: Bearer {self.token}\r\n" if self.token else ""

    def _connect(self) -> socket.socket:
        """A TCP connection to the server, inside TLS for https:// (the certificate checked)."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self._ssl is not None:
            try:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
            except Exception:
                sock.close()
                raise
        return sock

    def _http(self, method: str, path: str, body: bytes = b"") -> Tuple[int, bytes]:
        with self._connect() as s:
            head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self._headers()}"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            s.sendall(head.encode() + body)
            chunks = []
            while True:
                try:
                    b = s.recv(1 << 16)
                except ConnectionResetError:
                    # A TLS server dropping a plain request: judged below by what came.
                    break
                if not b:
                    break
                chunks.append(b)
        data = b"".join(chunks)
        if not data.startswith(b"HTTP/"):
            hint = "" if self.tls else " (a server with --tls-cert wants an https:// URL)"
            raise RemoteError(0, f"no HTTP answer from {self.host}:{self.port}{hint}")
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            rest = _unchunk(rest)
        return status, rest

    def pipelines(self) -> List[str]:
        """The names of the served pipelines."""
        status, body = self._http("GET", "/v1/pipelines")
        doc = _json_or_raise(status, body)
        return [p["name"] for p in doc["pipelines"]]

    def _post_run(self, name: str, audio: Any, query: str) -> Tuple[int, bytes]:
        if isinstance(audio, (bytes, bytearray)):
            body = bytes(audio)
        elif isinstance(audio, (str, os.PathLike)):
            with open(audio, "rb") as f:
                body = f.read()
        else:
            body = _wav_bytes(to_audio(audio))
        return self._http("POST", f"/v1/pipelines/{urllib.parse.quote(name, safe='')}/run{query}", body)

    def run(self, name: str, audio: Any) -> Dict[str, Any]:
        """Runs ``name`` once on ``audio`` (an ``Audio``, ``(samples, rate)``, or the path or bytes of
        an audio file) on the server; the outputs by node id, the same types and values as a local
        ``Pipeline.run_sync`` on the same audio (``Audio``, ``VadResult``, ``Clip`` lists, ...)."""
        status, data = self._post_run(name, audio, "?outputs=messages")
        if status != 200:
            _json_or_raise(status, data)
        out: Dict[str, Any] = {}
        pos = 0
        while pos < len(data):
            n, kind = struct.unpack_from("<IB", data, pos)
            _apply(out, kind, data[pos + 5:pos + 5 + n])
            pos += 5 + n
        return out

    def run_json(self, name: str, audio: Any) -> Dict[str, Any]:
        """As :meth:`run`, but the server's JSON document: ``{"pipeline", "input", "outputs"}``,
        the outputs as ``remotemedia run --json`` writes them (summaries, not samples)."""
        status, data = self._post_run(name, audio, "")
        return _json_or_raise(status, data)

    def stream(self, name: str) -> "RemoteSession":
        """A streaming session of pipeline ``name``; the connection opens on the first push."""
        return RemoteSession(self, name)


def _json_or_raise(status: int, body: bytes) -> Any:
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        raise RemoteError(status, body[:200].decode("utf-8", "replace")) from None
    if status != 200:
        err = doc.get("error", {}) if isinstance(doc, dict) else {}
        raise RemoteError(status, err.get("message", str(doc)))
    return doc


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        if n == 0:
            break
        out += data[:n]
        data = data[n + 2:]
    return bytes(out)


def _wav_bytes(audio: Audio) -> bytes:
    """A WAV file of ``audio`` (16-bit PCM for int16, 32-bit float for float32)."""
    samples = np.asarray(audio.samples)
    if samples.dtype == np.int16:
        fmt, bits = 1, 16
    elif samples.dtype == np.float32:
        fmt, bits = 3, 32
    else:
        raise InputError(f"remote run: send int16 or float32 audio, not {samples.dtype}")
    data = samples.astype("<" + samples.dtype.str[1:], copy=False).tobytes()
    ch = audio.channels
    block = ch * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, ch, audio.sample_rate, audio.sample_rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt_chunk) + 8 + len(data)) + b"WAVE"
            + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data" + struct.pack("<I", len(data)) + data)


class _Socket:
    """A minimal RFC 6455 client connection: masked frames out, pings answered."""

    def __init__(self, remote: Remote, path: str):
        self.sock = remote._connect()
        # Small frames each way: Nagle's algorithm would hold them for the peer's delayed ACK.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {remote.host}:{remote.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{remote._headers()}\r\n")
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.sock.recv(4096)
            if not b:
                break
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        if status != 101:
            # The refusal's body, as long as Content-Length says (the connection stays open).
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = self.buf
            try:
                while m and len(body) < int(m.group(1)):
                    b = self.sock.recv(65536)
                    if not b:
                        break
                    body += b
            except OSError:
                pass
            self.sock.close()
            _json_or_raise(status, body or b"{}")
            raise RemoteError(status, "the WebSocket upgrade was refused")
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
        if accept not in head:
            raise RemoteError(0, "the server's WebSocket handshake is invalid")

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            b = self.sock.recv(max(65536, n - len(self.buf)))
            if not b:
                raise RemoteError(1006, "the connection was closed without a close frame")
            self.buf += b
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        arr = np.frombuffer(payload, dtype=np.uint8)
        m = np.frombuffer((mask * (n // 4 + 1))[:n], dtype=np.uint8)
        self.sock.sendall(head + mask + (arr ^ m).tobytes())

    def recv(self) -> Tuple[int, bytes]:
        """The next text (1), binary (2) or close (8) message."""
        parts: List[bytes] = []
        first_op = None
        while True:
            b0, b1 = self._read(2)
            op, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(n)
            if mask:
                data = (np.frombuffer(data, np.uint8) ^ np.frombuffer((mask * (n // 4 + 1))[:n], np.uint8)).tobytes()
            if op == 9:
                self.send(10, data)
                continue
            if op == 10:
                continue
            if op == 8:
                return 8, data
            if op != 0:
                first_op = op
            parts.append(data)
            if b0 & 0x80:
                return first_op or 2, b"".join(parts)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class RemoteSession:
    """A streaming session on a served pipeline; the same methods as a local ``Session``."""

    def __init__(self, remote: Remote, name: str):
        self._remote = remote
        self._name = name
        self._ws: Optional[_Socket] = None
        self._format: Optional[Tuple[int, int, str]] = None
        self._chunk = 0
        self._closed = False
        self.summary: Optional[Dict[str, Any]] = None

    @property
    def closed(self) -> bool:
        return self._closed

    def _open(self, audio: Audio) -> None:
        samples = np.asarray(audio.samples)
        wire = {np.dtype(np.int16): "s16le", np.dtype(np.float32): "f32le"}.get(samples.dtype)
        if wire is None:
            raise InputError(f"remote sessions take int16 or float32 audio, not {samples.dtype}")
        self._format = (audio.sample_rate, audio.channels, wire)
        path = "/v1/stream"
        self._ws = _Socket(self._remote, path)
        start = {"type": "start", "protocol": PROTOCOL_VERSION, "pipeline": self._name, "sample_rate": audio.sample_rate,
                 "channels": audio.channels, "format": wire, "options": {"vad_audio": True}}
        self._ws.send(1, json.dumps(start).encode())
        kind, data = self._ws.recv()
        self._check(kind, data)

    def _check(self, kind: int, data: bytes) -> Dict[str, Any]:
        if kind == 8:
            code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
            self._end()
            raise RemoteError(code, data[2:].decode("utf-8", "replace"))
        msg = json.loads(data.decode("utf-8")) if kind == 1 else {}
        if msg.get("type") == "error":
            reason = msg.get("reason", "")
            # The close frame follows; its code is the error's.
            self._end()
            raise RemoteError(int(msg.get("code", 0)), reason)
        return msg

    def _end(self) -> None:
        self._closed = True
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def _collect(self, chunk: int) -> Dict[str, Any]:
        """Reads messages up to ``done`` for ``chunk``; the outputs they carry."""
        out: Dict[str, Any] = {}
        while True:
            kind, data = self._ws.recv()
            msg = self._check(kind, data) if kind != 2 else {}
            if msg.get("type") == "done" and msg.get("chunk") == chunk:
                return out
            _apply(out, kind, data, msg)

    def push(self, chunk: Any) -> Dict[str, Any]:
        """Sends one chunk (an ``Audio`` or ``(samples, rate)``); returns the outputs it completed."""
        if self._closed:
            raise InputError("the remote streaming session is closed")
        audio = to_audio(chunk)
        if self._ws is None:
            self._open(audio)
        samples = np.asarray(audio.samples)
        fmt = (audio.sample_rate, audio.channels, {np.dtype(np.int16): "s16le", np.dtype(np.float32): "f32le"}.get(samples.dtype))
        if fmt != self._format:
            raise InputError(f"every chunk of a remote session has the first one's rate, channels and format {self._format}, not {fmt}")
        self._ws.send(2, np.ascontiguousarray(samples).astype(_WIRE_DTYPES[fmt[2]], copy=False).tobytes())
        k = self._chunk
        self._chunk += 1
        return self._collect(k)

    def close(self) -> Dict[str, Any]:
        """Ends the session; returns what the stateful nodes still held (as a local ``close``)."""
        if self._closed:
            raise InputError("the remote streaming session is closed")
        if self._ws is None:
            self._closed = True
            return {}
        self._ws.send(1, b'{"type":"close"}')
        out = self._collect(self._chunk)
        while True:
            kind, data = self._ws.recv()
            msg = self._check(kind, data) if kind != 8 else {}
            if msg.get("type") == "summary":
                self.summary = msg
            if kind == 8:
                break
        try:
            self._ws.send(8, data[:2])
        except OSError:
            pass
        self._end()
        return out

    async def apush(self, chunk: Any) -> Dict[str, Any]:
        return await asyncio.to_thread(self.push, chunk)

    async def aclose(self) -> Dict[str, Any]:
        return await asyncio.to_thread(self.close)

    def __enter__(self) -> "RemoteSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._closed:
            self._end()


def _apply(out: Dict[str, Any], kind: int, data: bytes, msg: Optional[Dict[str, Any]] = None) -> None:
    """Puts one output message (text: 1, binary: 2) into ``out`` as the local API has it."""
    if kind == 2:
        hlen = struct.unpack("<I", data[:4])[0]
        head = json.loads(data[4:4 + hlen].decode("utf-8"))
        _place(out, head, _decode_binary(head, data[4 + hlen:]))
        return
    if msg is None:
        msg = json.loads(data.decode("utf-8"))
    t = msg.get("type")
    if t == "vad":
        v = VadResult({"segments": [tuple(s) for s in msg["segments"]],
                       "frames": np.asarray(msg["frames"], dtype=bool),
                       "probabilities": np.asarray(msg["probabilities"], dtype=np.float32)})
        _place(out, msg, v)
    elif t == "clips":
        _place(out, msg, [])
    elif t == "json":
        _place(out, msg, msg["value"])


def _decode_binary(head: Dict[str, Any], data: bytes) -> Any:
    t = head["type"]
    if t == "features":
        values = np.frombuffer(data, dtype="<f4").astype(np.float32).reshape(head["frames"], head["bins"])
        return Features(values, head["frame_rate"])
    samples = np.frombuffer(data, dtype=_WIRE_DTYPES[head["format"]]).astype(_WIRE_DTYPES[head["format"]][1:])
    if head["channels"] > 1:
        samples = samples.reshape(-1, head["channels"])
    if t == "clip":
        return Clip._trusted_clip(samples, head["sample_rate"], head["start_frame"])
    return Audio._trusted(samples, head["sample_rate"])


def _place(out: Dict[str, Any], head: Dict[str, Any], value: Any) -> None:
    """Puts an output where the local API has it: by node id, under nested keys for maps, clips
    appended to their list, a VAD result's audio into it."""
    target = out
    keys = [head["node"]] + (head["key"].split(".") if head.get("key") else [])
    for k in keys[:-1]:
        target = target.setdefault(k, {})
    last = keys[-1]
    t = head["type"]
    if t == "clip":
        target.setdefault(last, []).append(value)
    elif t == "vad_audio":
        target[last]["audio"] = value
    else:
        target[last] = value
