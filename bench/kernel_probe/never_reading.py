#!/usr/bin/env python3
"""Backpressure through the probe: a client writes as fast as it can to a server that never reads, through
bench/kernel_probe's relay in each mode. Prints, every second, how many bytes the client got rid of and the
kernel's TCP memory (/proc/net/sockstat, pages). A relay that holds backpressure stops both within a few
MiB; one that does not lets them grow for as long as the client writes.

usage: never_reading.py PROBE OBJECT [SECONDS [MODE...]]

kernel-park loads park.bpf.o from OBJECT's directory."""
import os
import select
import socket
import subprocess
import sys
import time

probe, obj = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10


def tcp_mem_pages():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()
                return int(parts[parts.index("mem") + 1])
    return -1


def memory_used_mib():
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":")
            values[name] = int(value.split()[0])
    return (values["MemTotal"] - values["MemAvailable"]) / 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


modes = sys.argv[4:] or ("splice", "kernel", "kernel-parser", "kernel-skb", "kernel-park")
for mode in modes:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = free_port()
    program = os.path.join(os.path.dirname(obj), "park.bpf.o") if mode == "kernel-park" else obj
    relay = subprocess.Popen([probe, str(port), str(server.getsockname()[1]), mode, program])
    time.sleep(0.5)
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"hello")                  # the "ClientHello": starts the relay
    held, _ = server.accept()                 # accepted, never read
    client.setblocking(False)
    chunk = b"x" * 65536
    sent, start, last = 0, time.time(), 0.0
    base, used = tcp_mem_pages(), memory_used_mib()
    print(f"{mode}: TCP memory before {base} pages, machine memory in use {used:.0f} MiB")
    while time.time() - start < seconds:
        _, writable, _ = select.select([], [client], [], 0.1)
        if writable:
            try:
                sent += client.send(chunk)
            except BlockingIOError:
                pass
        if time.time() - start - last >= 1:
            last = time.time() - start
            print(f"  {last:4.1f} s: client wrote {sent / 2**20:8.1f} MiB, TCP memory {tcp_mem_pages() - base:+7d} pages, machine memory {memory_used_mib() - used:+8.1f} MiB")
    client.close()
    held.close()
    server.close()
    relay.terminate()
    relay.wait()
