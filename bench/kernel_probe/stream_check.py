#!/usr/bin/env python3
"""Every byte, in order, through the probe: a backend sends SIZE MiB of a stream that never repeats (so a
misplaced piece can be found in it) to a client through the probe, in 64 KiB writes; the client reads as fast
as it can, or with a pause every PAUSE MiB; the client checks every byte. Each failure is classified:
"duplicated" (the client got a piece twice), "reordered" (a later piece came early), "lost".

kernel-park loads park.bpf.o, the other kernel modes relay.bpf.o, both from OBJECT_DIR. With
PROBE_PARK_LOG set the probe's per-direction counters are printed for each failed run.

usage: stream_check.py PROBE OBJECT_DIR [--runs N] [--size MiB] [--pause MiB] [--modes kernel,kernel-park,...]"""
import argparse
import os
import random
import socket
import subprocess
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("probe")
parser.add_argument("object_dir")
parser.add_argument("--runs", type=int, default=10)
parser.add_argument("--size", type=int, default=256, help="MiB per run")
parser.add_argument("--pause", type=int, default=0, help="the client sleeps 10 ms after every PAUSE MiB (0: never)")
parser.add_argument("--modes", default="splice,kernel,kernel-park")
args = parser.parse_args()

generator = random.Random(25)
expected = b"".join(generator.randbytes(65536) for _ in range(args.size * 16))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def classify(got):
    """Where the received bytes first differ from the stream, and what happened there."""
    step = 65536
    start = next(i for i in range(0, len(got), step) if got[i:i + step] != expected[i:i + step])
    at = next(i for i in range(start, min(start + step, len(got))) if got[i] != expected[i])
    piece = bytes(got[at:at + 256])
    found = expected.find(piece, max(0, at - 64 * 2**20), at + 64 * 2**20)
    if found < 0:
        return f"at byte {at}: bytes that are nowhere near in the stream"
    if found < at:
        return f"at byte {at}: duplicated, {at - found} bytes sent again (the client got {len(got) - len(expected):+d} bytes in all)"
    return f"at byte {at}: reordered or lost, bytes from {found - at} further on came first"


def one_run(mode):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = free_port()
    program = os.path.join(args.object_dir, "park.bpf.o" if mode == "kernel-park" else "relay.bpf.o")
    relay = subprocess.Popen([args.probe, str(port), str(server.getsockname()[1]), mode, program],
                             stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"hello")
    backend, _ = server.accept()
    header = b""
    while not header.endswith(b"\r\nhello"):
        header += backend.recv(1)

    def send():
        try:
            for offset in range(0, len(expected), 65536):
                backend.sendall(expected[offset:offset + 65536])
        except OSError:
            pass

    threading.Thread(target=send, daemon=True).start()
    got, since = bytearray(), 0
    client.settimeout(3)
    try:
        while len(got) < len(expected):
            data = client.recv(1 << 20)
            if not data:
                break
            got += data
            since += len(data)
            if args.pause and since >= args.pause << 20:
                since = 0
                time.sleep(0.01)
    except socket.timeout:
        pass
    client.close()
    backend.close()
    server.close()
    time.sleep(0.2)
    relay.terminate()
    _, log = relay.communicate()
    counters = [line for line in log.splitlines() if line.startswith("park:")]
    if got == expected:
        return None, counters
    if len(got) < len(expected) and got == expected[:len(got)]:
        return f"stopped after {len(got)} of {len(expected)} bytes", counters
    return classify(got), counters


for mode in args.modes.split(","):
    failures = []
    for run in range(args.runs):
        failure, counters = one_run(mode)
        if failure:
            failures.append(failure)
            print(f"  {mode} run {run + 1}: {failure}")
            for line in counters:
                print(f"    {line}")
    pause = f", a 10 ms pause every {args.pause} MiB" if args.pause else ""
    print(f"{mode}: {args.runs - len(failures)} of {args.runs} runs of {args.size} MiB arrived whole and in order{pause}")
