#!/usr/bin/env python3
"""An unfriendly peer: holds COUNT idle connections to HOST:PORT from SOURCE, sending nothing, and
reopens each one the server closes. Prints how many it opened in all when it gets SIGTERM."""
import selectors
import signal
import socket
import sys

host, port, source, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
selector = selectors.DefaultSelector()
opened = 0
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)


def open_one():
    global opened
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    try:
        sock.connect((host, port))
    except BlockingIOError:
        pass
    selector.register(sock, selectors.EVENT_READ)
    opened += 1


for _ in range(count):
    open_one()
print("holding", count, flush=True)
while running:
    for key, _ in selector.select(timeout=0.2):
        sock = key.fileobj
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            selector.unregister(sock)
            sock.close()
            open_one()
print("opened", opened, flush=True)
