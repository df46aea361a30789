"""A loopback OpenAI-compatible chat-completions server that answers after a fixed latency.

Built for throughput benchmarks on small machines: it is written on raw asyncio (one `asyncio.Protocol`
per connection, HTTP/1.1 keep-alive, Content-Length bodies) and parses only the request line, the
headers it needs and the body length, so that its own CPU cost stays near 0.1 ms per request and it is
never the bottleneck. Run it in its own process (it then uses the other core):

    python -m benchmarks.loopback_server --port 0 --latency 0.1 --labels negative,positive

prints `PORT <n>` once listening and serves until killed. From Python:

    proc, base_url = start_server(latency=0.1, labels=["negative", "positive"])
    ...  # point a client at base_url ("http://127.0.0.1:<n>/v1")
    stop(proc)

Endpoints:
- `POST /v1/chat/completions`: after `latency` seconds, a `chat.completion` whose message content is the
  JSON object `{"label": "<label>"}`, with the label picked from the label list by a CRC32 of the request
  body (`--pick hash`, the default: the same request always gets the same label) or round-robin
  (`--pick cycle`), the request's `model` echoed back, and `usage` token counts (prompt: body bytes / 4).
- `GET /v1/models`: one model, `loopback`.
- `GET /_stats`: `{"requests": n, "cpu_s": s, "refused": r, "storm_refused": k}`, the chat requests answered
  (200) so far, the server process's CPU time, the requests refused with a 429 (k of them by a storm); take the difference of two readings for the
  CPU cost per request (see `server_stats`).
- `GET /_storm?seconds=S&every=K&retry_after=R`: from now on, for S seconds, every K-th chat request is refused
  at once with a 429 and `Retry-After: R` (a rate-limit storm); answers `{"start": t, "end": t}` in
  `time.time()` seconds.

Rate limit (`--accept-rate N`, `start_server(accept_rate=N)`): a token bucket admits N chat requests per
second (a burst of N/10); a request above that is refused at once with a 429 and no Retry-After, as servers
that limit a rate do. A request refused by a storm takes no token. 0 (the default) admits every request.

Not supported (not needed by HTTP clients of an API): chunked request bodies (answered 411 and the
connection closed), `Expect: 100-continue`, streaming answers. Pipelined requests on one connection are
answered in order only as far as the event loop's timers fire in order (equal delays do in practice).

`python -m benchmarks.loopback_server --measure` measures the server's CPU per request and what a plain
aiohttp client and `openai.AsyncOpenAI` reach against it (see `measure`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

DEFAULT_LABELS = ("negative", "positive")

_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"\r\ntransfer-encoding:"
_CONN_CLOSE = b"\r\nconnection: close"
_MODEL_RE = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')

_OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n"
_CLOSE_HEAD = (
    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n%s"
_COMPLETION = (
    b'{"id":"chatcmpl-loopback-%d","object":"chat.completion","created":%d,"model":"%s",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":null},'
    b'"logprobs":null,"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d},'
    b'"system_fingerprint":"fp_loopback"}'
)
_RATE_LIMITED = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n"
    b"Connection: keep-alive\r\n\r\n"
)
_LIMIT_BODY = (
    b'{"error":{"message":"Rate limit reached for requests. Please try again later.","type":"requests",'
    b'"param":null,"code":"rate_limit_exceeded"}}'
)
_COMPLETION_TOKENS = 6  # {"  label  ":  "  <label>  "}


class _State:
    """What every connection of one server shares."""

    def __init__(self, latency: float, labels: Sequence[str], pick: str, accept_rate: float = 0.0) -> None:
        if not labels:
            raise ValueError("the label list is empty")
        if pick not in ("hash", "cycle"):
            raise ValueError(f"pick must be 'hash' or 'cycle', not {pick!r}")
        self.latency = latency
        # The message content is a JSON string holding a JSON object: encode twice, once here.
        self.contents = [json.dumps(json.dumps({"label": label})).encode() for label in labels]
        self.n_labels = len(labels)
        self.pick_hash = pick == "hash"
        self.served = 0
        self.refused = 0
        self.storm_refused = 0
        self.accept_rate = accept_rate
        self.burst = max(1.0, accept_rate / 10)
        self.tokens = self.burst
        self.refilled = time.monotonic()
        self.storm_until = 0.0  # time.monotonic() when the current storm ends
        self.storm_every = 2
        self.storm_retry_after = b"1"
        self.storm_seen = 0
        self.models = json.dumps(
            {
                "object": "list",
                "data": [{"id": "loopback", "object": "model", "created": 0, "owned_by": "loopback"}],
            }
        ).encode()
        self.loop: asyncio.AbstractEventLoop | None = None


class _Connection(asyncio.Protocol):
    __slots__ = ("buf", "state", "transport")

    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(_HEAD_END)
            if end < 0:
                break
            head = buf[:end].lower()
            length = 0
            i = head.find(_CONTENT_LENGTH)
            if i >= 0:
                j = head.find(b"\r\n", i + 2)
                length = int(head[i + 17 : j if j >= 0 else len(head)])
            elif head.find(_CHUNKED) >= 0:
                self._close_with(
                    411, b"Length Required", b'{"error":{"message":"send a Content-Length body"}}'
                )
                return
            total = end + 4 + length
            if len(buf) < total:
                break
            body = buf[end + 4 : total]
            buf = buf[total:]
            line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            self._dispatch(line, body, head.find(_CONN_CLOSE) >= 0)
            if self.transport is None:
                return
        self.buf = buf

    def _refuse(self, state: _State, now: float) -> bytes | None:
        """The 429 this request gets (a storm's or the rate limit's), or None when it is admitted."""
        if now < state.storm_until:
            state.storm_seen += 1
            if state.storm_seen % state.storm_every == 0:
                state.storm_refused += 1
                return _RATE_LIMITED % (
                    b"Retry-After: " + state.storm_retry_after + b"\r\n",
                    len(_LIMIT_BODY),
                )
        if state.accept_rate > 0:
            state.tokens = min(state.burst, state.tokens + (now - state.refilled) * state.accept_rate)
            state.refilled = now
            if state.tokens < 1:
                return _RATE_LIMITED % (b"", len(_LIMIT_BODY))
            state.tokens -= 1
        return None

    def _dispatch(self, line: bytes, body: bytes, close: bool) -> None:
        state = self.state
        if line.startswith(b"post /v1/chat/completions"):
            if state.accept_rate > 0 or state.storm_until:
                refusal = self._refuse(state, time.monotonic())
                if refusal is not None:
                    state.refused += 1
                    self._send(refusal + _LIMIT_BODY, close)
                    return
            state.served += 1
            n = state.served
            label = (zlib.crc32(body) if state.pick_hash else n) % state.n_labels
            m = _MODEL_RE.search(body)
            prompt_tokens = len(body) // 4
            payload = _COMPLETION % (
                n,
                int(time.time()),
                m.group(1) if m else b"loopback",
                state.contents[label],
                prompt_tokens,
                _COMPLETION_TOKENS,
                prompt_tokens + _COMPLETION_TOKENS,
            )
            response = _OK_HEAD % len(payload) + payload
            if state.latency > 0:
                state.loop.call_later(state.latency, self._send, response, close)  # type: ignore[union-attr]
            else:
                self._send(response, close)
        elif line.startswith(b"get /v1/models"):
            self._send(_OK_HEAD % len(state.models) + state.models, close)
        elif line.startswith(b"get /_stats"):
            stats = json.dumps(
                {
                    "requests": state.served,
                    "cpu_s": time.process_time(),
                    "refused": state.refused,
                    "storm_refused": state.storm_refused,
                }
            ).encode()
            self._send(_OK_HEAD % len(stats) + stats, close)
        elif line.startswith(b"get /_storm"):
            query = dict(
                pair.split(b"=", 1)
                for pair in line.split(b" ")[1].partition(b"?")[2].split(b"&")
                if b"=" in pair
            )
            seconds = float(query.get(b"seconds", b"60"))
            state.storm_every = max(1, int(query.get(b"every", b"2")))
            state.storm_retry_after = query.get(b"retry_after", b"1")
            state.storm_seen = 0
            state.storm_until = time.monotonic() + seconds
            now = time.time()
            storm = json.dumps({"start": now, "end": now + seconds}).encode()
            self._send(_OK_HEAD % len(storm) + storm, close)
        else:
            msg = b'{"error":{"message":"not found","type":"invalid_request_error"}}'
            self._send(_NOT_FOUND % (len(msg), msg), close)

    def _send(self, response: bytes, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if close:
            transport.close()

    def _close_with(self, status: int, reason: bytes, body: bytes) -> None:
        if self.transport is not None:
            self.transport.write(_CLOSE_HEAD % (status, reason, len(body)) + body)
            self.transport.close()
            self.transport = None


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    latency: float = 0.1,
    labels: Sequence[str] = DEFAULT_LABELS,
    pick: str = "hash",
    accept_rate: float = 0.0,
) -> asyncio.Server:
    """Start serving on the running loop and return the server (its port: `server.sockets[0]`)."""
    state = _State(latency, list(labels), pick, accept_rate)
    state.loop = asyncio.get_running_loop()
    return await state.loop.create_server(lambda: _Connection(state), host, port, backlog=1024)


async def _serve_forever(args: argparse.Namespace) -> None:
    server = await serve(
        args.host, args.port, args.latency, args.labels.split(","), args.pick, args.accept_rate
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def start_server(
    latency: float = 0.1,
    labels: Sequence[str] = DEFAULT_LABELS,
    *,
    pick: str = "hash",
    timeout: float = 15.0,
    accept_rate: float = 0.0,
) -> tuple[subprocess.Popen[str], str]:
    """Run the server in a subprocess (so that it uses another core); return it and its base URL.

    The base URL ends in `/v1`, ready for `openai.OpenAI(base_url=...)`. Stop it with `stop(process)`.
    """
    if any("," in label for label in labels):
        raise ValueError("labels cannot contain commas")
    cmd = [
        sys.executable,
        "-u",
        str(Path(__file__).resolve()),
        "--port",
        "0",
        "--latency",
        repr(float(latency)),
        "--labels",
        ",".join(labels),
        "--pick",
        pick,
        "--accept-rate",
        repr(float(accept_rate)),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        stop(proc)
        raise RuntimeError(f"the loopback server printed no port within {timeout} s") from None
    if not line.startswith("PORT "):
        stop(proc)
        raise RuntimeError(f"the loopback server did not start (exit {proc.returncode}, said {line!r})")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def stop(process: subprocess.Popen[str]) -> None:
    """Stop a server started by `start_server` and wait for it to end."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def server_stats(base_url: str) -> dict[str, float]:
    """The server's counters: `requests` (chat requests answered), `cpu_s` (its process CPU time) and
    `refused` (requests answered 429), `storm_refused` (of which by a storm)."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/_stats", timeout=10) as response:
        return json.loads(response.read())


def start_storm(
    base_url: str, seconds: float, every: int = 2, retry_after: float = 1.0
) -> tuple[float, float]:
    """Refuse every `every`-th chat request with 429 `Retry-After: retry_after` for `seconds` from now;
    returns the storm's start and end in `time.time()` seconds."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    url = f"{root}/_storm?seconds={seconds:g}&every={every}&retry_after={retry_after:g}"
    with urllib.request.urlopen(url, timeout=10) as response:
        storm = json.loads(response.read())
    return float(storm["start"]), float(storm["end"])


# ---------------------------------------------------------------------------------------------------
# Measurement of the server itself and of two reference clients against it.


def _payload(i: int) -> dict[str, object]:
    return {
        "model": "loopback",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "Label the sentiment of the text as negative or positive."},
            {"role": "user", "content": f"Text number {i}: the film was long, but I liked the ending."},
        ],
    }


async def _aiohttp_run(base_url: str, n: int, concurrency: int) -> float:
    """Seconds a plain aiohttp client + Semaphore(concurrency) + gather takes for n requests."""
    import aiohttp

    url = f"{base_url}/chat/completions"
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> str:
            async with sem, session.post(url, json=_payload(i)) as response:
                data = await response.json()
                return json.loads(data["choices"][0]["message"]["content"])["label"]

        start = time.perf_counter()
        labels = await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
    assert len(labels) == n
    return elapsed


async def _openai_run(base_url: str, n: int, concurrency: int) -> float:
    """Seconds `openai.AsyncOpenAI` + Semaphore(concurrency) + gather takes for n requests."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="loopback", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with sem:
            completion = await client.chat.completions.create(**_payload(i))  # type: ignore[call-overload]
            return json.loads(completion.choices[0].message.content)["label"]

    try:
        await one(-1)  # warm up: imports, connection
        start = time.perf_counter()
        labels = await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
    finally:
        await client.close()
    assert len(labels) == n
    return elapsed


def measure(
    n_cpu: int = 5000, n: int = 3200, concurrency: int = 32, latency: float = 0.1, runs: int = 3
) -> None:
    """Print the server's CPU per request and what two clients reach (median of `runs`)."""
    import statistics

    proc, base_url = start_server(latency=0.0)
    try:
        asyncio.run(_aiohttp_run(base_url, 200, concurrency))  # warm up
        before = server_stats(base_url)
        wall = asyncio.run(_aiohttp_run(base_url, n_cpu, concurrency))
        after = server_stats(base_url)
    finally:
        stop(proc)
    served = after["requests"] - before["requests"]
    cpu_ms = (after["cpu_s"] - before["cpu_s"]) * 1000 / served
    print(
        f"server CPU per request: {cpu_ms:.3f} ms ({served:.0f} requests at 0 ms latency, {n_cpu / wall:.0f}/s)"
    )

    ceiling = concurrency / latency
    proc, base_url = start_server(latency=latency)
    try:
        for name, run in (
            ("aiohttp + Semaphore + gather", _aiohttp_run),
            ("AsyncOpenAI + Semaphore + gather", _openai_run),
        ):
            rates = [n / asyncio.run(run(base_url, n, concurrency)) for _ in range(runs)]
            rate = statistics.median(rates)
            print(
                f"{name}: {rate:.1f} labels/s ({rate / ceiling:.0%} of the {ceiling:.0f}/s ceiling; "
                f"N={n}, concurrency {concurrency}, latency {latency * 1000:.0f} ms; runs: "
                + ", ".join(f"{r:.1f}" for r in rates)
                + ")"
            )
    finally:
        stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default) picks a free port")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each answer")
    parser.add_argument("--labels", default=",".join(DEFAULT_LABELS), help="comma-separated labels")
    parser.add_argument("--pick", choices=["hash", "cycle"], default="hash", help="how a label is chosen")
    parser.add_argument(
        "--accept-rate", type=float, default=0.0, help="chat requests admitted per second (0: all)"
    )
    parser.add_argument(
        "--measure", action="store_true", help="measure the server and two clients, then exit"
    )
    args = parser.parse_args(argv)
    if args.measure:
        measure(latency=args.latency)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
