#!/usr/bin/env python3
"""Prints a free TCP port on 127.0.0.1 below the kernel's ephemeral range (ip_local_port_range
starts at 32768 on Debian). A port from bind(0) lies inside that range, where the client sockets
and bind(0)s of tests running beside this one may take it between this check and the daemon's
bind (seen: serve's "address already in use" beside integration.http's connection floods)."""

import random
import socket

low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(20000, min(low, 32768))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("free_port.py: no free port below the ephemeral range")
