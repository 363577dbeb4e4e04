#!/usr/bin/env python3
"""Fake git servers on 127.0.0.1 for the fetch-deadline and credential tests (git_faults.sh).

Usage: fake_git_servers.py MODE PORT_FILE [LOG_FILE]
  silent       accepts connections and never sends a byte
  stall        reads the request, sends an HTTP 200 header for a smart-HTTP ref advertisement,
               then sends nothing more
  basic-auth   answers 401 (Basic) to every request; writes each Authorization it received,
               decoded ("user:password"), as one line to LOG_FILE
Writes the port it listens on to PORT_FILE, then serves until killed (by its PID).
"""
import base64
import socket
import sys
import threading

held = []  # connections kept open on purpose


def read_request(conn):
    data = b""
    conn.settimeout(30)
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def serve(mode, conn, log_file):
    try:
        if mode == "silent":
            held.append(conn)
            return
        request = read_request(conn)
        if mode == "stall":
            conn.sendall(b"HTTP/1.1 200 OK\r\n"
                         b"Content-Type: application/x-git-upload-pack-advertisement\r\n"
                         b"Cache-Control: no-cache\r\n\r\n")
            held.append(conn)
            return
        for line in request.split("\r\n"):
            if line.lower().startswith("authorization: basic "):
                decoded = base64.b64decode(line.split(" ", 2)[2].strip()).decode("utf-8", "replace")
                with open(log_file, "a") as log:
                    log.write(decoded + "\n")
        body = b"authentication required\n"
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\nConnection: close\r\n\r\n" + body)
        conn.close()
    except OSError:
        pass


def main():
    mode, port_file = sys.argv[1], sys.argv[2]
    log_file = sys.argv[3] if len(sys.argv) > 3 else "/dev/null"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(mode, conn, log_file), daemon=True).start()


if __name__ == "__main__":
    main()
