#!/usr/bin/env python3
"""Test fixture: connect to ADDRESS PORT within TIMEOUT seconds and read the server's greeting.

usage: lab_client.py ADDRESS PORT [TIMEOUT] [HOLD_SECONDS]
exit 0: connected and greeted (and, with HOLD_SECONDS, every echo during the hold came back);
exit 1: refused, timed out, or an echo failed."""
import socket, sys, time


def main():
    address, port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    hold = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect((address, port))
            if sock.recv(3) != b"ok\n":
                return 1
            end = time.monotonic() + hold
            count = 0
            while time.monotonic() < end:
                message = b"ping %d\n" % count
                sock.sendall(message)
                received = b""
                while len(received) < len(message):
                    chunk = sock.recv(len(message) - len(received))
                    if not chunk:
                        return 1
                    received += chunk
                if received != message:
                    return 1
                count += 1
                time.sleep(0.05)
            return 0
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
