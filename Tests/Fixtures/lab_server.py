#!/usr/bin/env python3
"""Test fixture: a TCP server for the firewall tests. Greets each connection with b"ok\n", then echoes.

usage: lab_server.py ADDRESS PORT [ADDRESS PORT ...]   (IPv6 addresses without brackets)"""
import socket, sys, threading


def serve(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def echo(conn):
    with conn:
        try:
            conn.sendall(b"ok\n")
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        except OSError:
            return


def main():
    args = sys.argv[1:]
    threads = []
    for address, port in zip(args[::2], args[1::2]):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, int(port)))
        sock.listen(64)
        thread = threading.Thread(target=serve, args=(sock,), daemon=True)
        thread.start()
        threads.append(thread)
    print("listening", flush=True)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
