#!/usr/bin/env python3
"""Opens N TLS connections to HOST:PORT with an SNI, does one HTTP request on each, and holds them
open until SIGTERM/SIGINT (or until standard input is closed).

Used by bench/bench.py to measure a proxy's memory per idle connection. Standard library only.

Prints one line `ready established=N failed=M first_error=...` once every connection has either
been established (handshake and one keep-alive request answered) or failed, then waits; on the stop
signal it aborts all connections and exits 0 (1 if any connection failed)."""
import argparse
import asyncio
import resource
import signal
import ssl
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", default="a.bench.test")
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=200, help="handshakes in flight at once")
    p.add_argument("--cafile", help="CA to verify the server against (default: no verification)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-connection setup timeout, seconds")
    return p.parse_args()


def raise_nofile_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        print(f"warning: open file limit {target} < {needed}", file=sys.stderr)


def tls_context(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def read_response(reader):
    """Reads one HTTP/1.1 response with a Content-Length body; returns the status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def open_one(args, ctx, gate):
    async with gate:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(args.host, args.port, ssl=ctx, server_hostname=args.sni),
            args.timeout)
        try:
            request = f"GET / HTTP/1.1\r\nHost: {args.sni}\r\nConnection: keep-alive\r\n\r\n"
            writer.write(request.encode())
            status = await asyncio.wait_for(read_response(reader), args.timeout)
            if status != 200:
                raise RuntimeError(f"HTTP status {status}")
        except BaseException:
            writer.transport.abort()
            raise
        return writer


async def wait_for_stop():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A closed standard input (the parent went away) stops us as well.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.ensure_future(reader.read())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([eof, stopped], return_when=asyncio.FIRST_COMPLETED)
    for task in (eof, stopped):
        task.cancel()


async def main():
    args = parse_args()
    raise_nofile_limit(args.count + 100)
    ctx = tls_context(args.cafile)
    gate = asyncio.Semaphore(args.concurrency)
    results = await asyncio.gather(*(open_one(args, ctx, gate) for _ in range(args.count)),
                                   return_exceptions=True)
    writers = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    first = repr(errors[0]).replace(" ", "_")[:200] if errors else "-"
    print(f"ready established={len(writers)} failed={len(errors)} first_error={first}", flush=True)
    await wait_for_stop()
    for writer in writers:
        writer.transport.abort()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
