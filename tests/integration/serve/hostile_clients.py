#!/usr/bin/env python3
"""Hostile and honest HTTP clients for serve_webhook_abuse.sh, against `pgconverge serve` on
127.0.0.1: raw sockets, so that each case controls exactly which bytes arrive when.

  hostile_clients.py refuse  PORT DIR   every request that must be refused, then /metrics
  hostile_clients.py flood   PORT       many concurrent connections and requests
  hostile_clients.py floods  PORT [MAX_SECONDS [METRICS_PORT]]   /healthz latency (median/max) under idle,
                                        slowloris and webhook floods, from 127.0.0.x sources;
                                        fails when a probe is not answered 200 within MAX_SECONDS
  hostile_clients.py hook    PORT DIR RECEIVER DELIVERY [BODY]   one correctly signed webhook;
                                        prints the HTTP status
  hostile_clients.py replay  PORT DIR RECEIVER COUNT SECONDS   COUNT replays of one signed
                                        delivery spread over SECONDS, each with a new delivery id
                                        (and one in ten with the first id again); prints the
                                        statuses and the seconds taken
  hostile_clients.py idle    PORT SECONDS   holds one silent connection open (for the stop test)
  hostile_clients.py metric  PORT NAME LABELS   prints the sample's value (0 when absent)

DIR holds the receivers' secret files github.secret, gitlab.secret and generic.secret. Exits 1
with one line per failed check (and prints one line per case with its measured time)."""

import hashlib
import hmac
import json
import multiprocessing
import os
import select
import socket
import sys
import threading
import time

# What serve's HTTP server enforces (providers/http/http_server.hpp); not settable in serve.yaml.
READ_TIMEOUT = 10.0      # the whole request must arrive within it
HEAD_TIMEOUT = 5.0       # the request line and headers must arrive within it
DEFER_ACCEPT = 1.0       # a silent connection reaches the server only after about this (the
                         # kernel's TCP_DEFER_ACCEPT); its head timeout starts then
MAX_CONNECTIONS = 64     # beyond it, a newcomer takes the place of the stalest connection
PER_ADDRESS = 8          # serve.yaml maxConnectionsPerAddress, default
MAX_BODY = 1 << 20       # serve.yaml maxBodyBytes, default
HEADER_LIMIT = 8 * 1024
# How long any refusal that does not wait for a time limit may take on a busy 2-core machine.
PROMPT = 3.0

failures = []
failures_lock = threading.Lock()


def check(ok, what):
    if not ok:
        with failures_lock:
            failures.append(what)
    return ok


def report(case, outcome, note=""):
    print(f"  {case:<62} {outcome.summary():<34} {note}", flush=True)


class Outcome:
    def __init__(self):
        self.received = b""
        self.closed = False      # the server closed (EOF or reset) before the client's limit
        self.elapsed = 0.0       # from connect to close (or to the client's limit)
        self.answered = None     # seconds from connect to the first byte of the answer
        self.connected = True

    def status(self):
        at = self.received.rfind(b"HTTP/1.1 ")
        return int(self.received[at + 9:at + 12]) if at >= 0 else 0

    def body(self):
        at = self.received.find(b"\r\n\r\n", max(self.received.rfind(b"HTTP/1.1 "), 0))
        return self.received[at + 4:].decode("utf-8", "replace") if at >= 0 else ""

    def summary(self):
        status = self.status() or "-"
        how = "closed" if self.closed else "open"
        answered = f", answer at {self.answered:.2f}s" if self.answered is not None else ""
        return f"{status} {how} after {self.elapsed:.2f}s{answered}"


def connect(port, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(PROMPT)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s


def exchange(port, data=b"", limit=5.0, interval=0.0, piece=1, sock=None, source=None):
    """Sends data (all at once, or `piece` bytes every `interval` seconds) while reading the
    answer, until the server closes or `limit` passes. A failed write stops writing only: the
    answer may already be on its way."""
    out = Outcome()
    start = time.monotonic()
    try:
        s = sock if sock is not None else connect(port, source)
    except OSError:
        out.connected = False
        out.closed = True
        return out
    poller = select.poll()
    sent, writable, next_write = 0, True, start
    try:
        while True:
            now = time.monotonic()
            if now - start >= limit:
                break
            pending = writable and sent < len(data)
            want_write = pending and now >= next_write
            wait = limit - (now - start)
            if pending and not want_write:
                wait = min(wait, next_write - now)
            poller.register(s, select.POLLIN | (select.POLLOUT if want_write else 0))
            events = dict(poller.poll(max(wait, 0.001) * 1000))
            poller.unregister(s)
            ev = events.get(s.fileno(), 0)
            if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    chunk = None
                except OSError:
                    out.closed = True
                    break
                if chunk == b"":
                    out.closed = True
                    break
                if chunk:
                    if out.answered is None:
                        out.answered = time.monotonic() - start
                    out.received += chunk
            if want_write and ev & select.POLLOUT:
                size = len(data) - sent if interval == 0 else min(piece, len(data) - sent)
                try:
                    sent += s.send(data[sent:sent + size])
                    next_write = time.monotonic() + interval
                except BlockingIOError:
                    pass
                except OSError:
                    writable = False
    finally:
        s.close()
    out.elapsed = time.monotonic() - start
    return out


def secret(directory, receiver):
    with open(os.path.join(directory, receiver + ".secret"), "rb") as f:
        return f.read().strip()


def hub_signature(key, body):
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def post(path, body, headers=(), chunked=False):
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        step = 64 * 1024
        parts = [f"{len(body[i:i + step]):x}\r\n".encode() + body[i:i + step] + b"\r\n"
                 for i in range(0, len(body), step)]
        return head.encode() + b"".join(parts) + b"0\r\n\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


PUSH = json.dumps({"ref": "refs/heads/main", "after": "0" * 40}).encode()


def signed_hook(directory, receiver, delivery, body=PUSH):
    """The request a forge sends for one delivery to serve_webhook_abuse.sh's receivers."""
    key = secret(directory, receiver)
    if receiver == "github":
        headers = [("X-GitHub-Event", "push"), ("X-GitHub-Delivery", delivery),
                   ("X-Hub-Signature-256", hub_signature(key, body))]
    elif receiver == "gitlab":
        headers = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", delivery),
                   ("X-Gitlab-Token", key.decode())]
    else:
        headers = [("X-Delivery-Id", delivery), ("X-Signature-256", hub_signature(key, body))]
    return post("/hooks/" + receiver, body, headers)


def expect_prompt(case, outcome, status, body_prefix=None):
    report(case, outcome)
    check(outcome.status() == status, f"{case}: want HTTP {status}, got {outcome.summary()}")
    check(outcome.closed, f"{case}: the connection was not closed")
    check(outcome.answered is not None and outcome.answered < PROMPT,
          f"{case}: not answered within {PROMPT}s: {outcome.summary()}")
    if body_prefix is not None:
        check(outcome.body().startswith(body_prefix), f"{case}: body {outcome.body()!r}, want {body_prefix!r}...")


def expect_cut_off(case, outcome, deadline):
    """Closed by the deadline (HEAD_TIMEOUT or READ_TIMEOUT), with no answer (and so no
    webhook verdict at all)."""
    report(case, outcome)
    check(outcome.closed, f"{case}: still open after {outcome.elapsed:.2f}s (deadline {deadline}s)")
    check(deadline - 1.0 <= outcome.elapsed <= deadline + PROMPT,
          f"{case}: closed after {outcome.elapsed:.2f}s, want about {deadline}s")
    check(outcome.received == b"", f"{case}: answered {outcome.received[:80]!r}")


def refuse(port, directory):
    """Every request here must be refused and none may trigger a run. Slow clients run on their
    own threads meanwhile (they take READ_TIMEOUT); the rest use a few connections at a time.
    Returns the webhook verdicts the daemon must have counted, {(receiver, status): n}."""
    counted = {}

    def count(receiver, status):
        counted[(receiver, status)] = counted.get((receiver, status), 0) + 1

    # --- slow clients, in the background -------------------------------------------------------
    slow = {}
    # 200 bytes at 10 per second: complete after 20 s, twice the read timeout.
    signed_slowly = signed_hook(directory, "github", "slow-body-1",
                                json.dumps({"ref": "refs/heads/main", "pad": "p" * 160}).encode())
    split = signed_slowly.index(b"\r\n\r\n") + 4
    slow_cases = {
        # Headers trickled byte by byte, every byte well within any per-read timeout: cut at
        # the head deadline, which the bytes do not extend.
        "slowloris: headers one byte every 100ms": dict(
            data=get("/healthz")[:-2] + b"X-Slow: " + b"s" * 300 + b"\r\n\r\n", interval=0.1,
            deadline=HEAD_TIMEOUT),
        # A correctly signed webhook whose body would complete after 20 s: too slow, no run.
        "slowloris: signed webhook, body one byte every 100ms": dict(
            data=signed_slowly, interval=0.1, piece=1, head=signed_slowly[:split], deadline=READ_TIMEOUT),
        # Connects and sends nothing at all.
        "idle: connects, sends nothing": dict(data=b"", deadline=DEFER_ACCEPT + HEAD_TIMEOUT),
        # A declared body that never arrives in full.
        "stall: headers in time, body never completes": dict(
            data=post("/hooks/github", b"x" * 100)[:-90], deadline=READ_TIMEOUT),
    }
    # Each from its own address: the other clients below must not take their places.
    slow_sources = {name: "127.0.2.%d" % (i + 1) for i, name in enumerate(slow_cases)}

    def run_slow(name, case):
        sock = connect(port, slow_sources[name])
        if "head" in case:  # the headers at once, then the body trickled
            sock.sendall(case["head"])
            data = case["data"][len(case["head"]):]
        else:
            data = case["data"]
        slow[name] = exchange(port, data, limit=READ_TIMEOUT + 2 * PROMPT, interval=case.get("interval", 0.0),
                              piece=case.get("piece", 1), sock=sock)

    threads = [threading.Thread(target=run_slow, args=item) for item in slow_cases.items()]
    for t in threads:
        t.start()

    # --- oversized bodies ----------------------------------------------------------------------
    big = b"{" + b'"a":"' + b"z" * (2 * MAX_BODY) + b'"}'
    gh = secret(directory, "github")
    case = "oversized: 2 MiB, Content-Length, correctly signed"
    expect_prompt(case, exchange(port, post("/hooks/github", big, [("X-Hub-Signature-256", hub_signature(gh, big))])),
                  413, "request body larger than")
    case = "oversized: 2 MiB chunked, correctly signed"
    expect_prompt(case, exchange(port, post("/hooks/github", big, [("X-Hub-Signature-256", hub_signature(gh, big))],
                                            chunked=True)), 413, "request body larger than")
    case = "oversized: Content-Length 10^15, no body sent"
    expect_prompt(case, exchange(port, post("/hooks/github", b"")[:-4].replace(b"Content-Length: 0",
                                                                              b"Content-Length: 1000000000000000")
                                 + b"\r\n\r\n"), 413)
    # 32 at once: memory must not grow by their size (checked by the caller through VmRSS).
    results = [None] * 32
    payload = post("/hooks/gitlab", big, [("X-Gitlab-Token", "x" * 32)], chunked=True)

    def oversized(i):
        results[i] = exchange(port, payload, limit=10.0, source="127.0.3.%d" % (i % 8 + 1))
    workers = [threading.Thread(target=oversized, args=(i,)) for i in range(len(results))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    statuses = [r.status() for r in results]
    print(f"  {'oversized: 32 concurrent 2 MiB chunked bodies':<62} {statuses.count(413)} x 413, slowest "
          f"{max(r.elapsed for r in results):.2f}s", flush=True)
    check(statuses.count(413) == len(results), f"32 concurrent oversized bodies: statuses {statuses}")

    # --- headers and malformed requests --------------------------------------------------------
    expect_prompt("headers: one 9 KiB header", exchange(port, get("/healthz")[:-2] + b"X-Big: " + b"h" * 9000 +
                                                         b"\r\n\r\n"), 431, "request headers larger than")
    expect_prompt("headers: 2000 small headers", exchange(port, get("/healthz")[:-2] +
                                                           b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) +
                                                           b"\r\n"), 431)
    expect_prompt("headers: a 10 KiB request target", exchange(port, get("/hooks/github?" + "q" * 10240)), 431)
    malformed = {
        "malformed: TLS ClientHello on the plain port": bytes.fromhex("16030100a5010000a10303") + os.urandom(160),
        "malformed: random bytes": b"\x00\x01\x02\xff\xfe" + os.urandom(200) + b"\r\n\r\n",
        "malformed: no HTTP version (HTTP/0.9)": b"GET /healthz\r\n\r\n",
        "malformed: HTTP/9.9": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        "malformed: header line without a colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        "malformed: NUL in a header value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "malformed: Content-Length abc": b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "malformed: two different Content-Lengths":
            b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}}",
        "malformed: bad chunk size": b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"zz\r\n{}\r\n0\r\n\r\n",
        "malformed: space before the colon": b"POST /hooks/github HTTP/1.1\r\nHost: x\r\n"
                                             b"X-Hub-Signature-256 : sha256=00\r\nContent-Length: 2\r\n\r\n{}",
    }
    for case, data in malformed.items():
        expect_prompt(case, exchange(port, data), 400, "malformed request: ")

    # --- bad signatures and tokens -------------------------------------------------------------
    gl, gen = secret(directory, "gitlab"), secret(directory, "generic")
    other = b"another-secret-of-enough-length-0123456789"
    tampered = PUSH.replace(b"main", b"evil")
    bad = [
        ("github", "github: signature of zeros", [("X-Hub-Signature-256", "sha256=" + "0" * 64)], PUSH),
        ("github", "github: signed with another secret", [("X-Hub-Signature-256", hub_signature(other, PUSH))], PUSH),
        ("github", "github: signature of another body (tampered)",
         [("X-Hub-Signature-256", hub_signature(gh, PUSH))], tampered),
        ("github", "github: sha1= signature", [("X-Hub-Signature-256", "sha1=" + hmac.new(gh, PUSH, hashlib.sha1)
                                                .hexdigest())], PUSH),
        ("github", "github: signature truncated by one digit",
         [("X-Hub-Signature-256", hub_signature(gh, PUSH)[:-1])], PUSH),
        ("github", "github: signature with one digit more",
         [("X-Hub-Signature-256", hub_signature(gh, PUSH) + "0")], PUSH),
        ("github", "github: signature header empty", [("X-Hub-Signature-256", "")], PUSH),
        ("github", "github: signature header missing", [("X-GitHub-Event", "push")], PUSH),
        ("github", "github: right signature in the generic header", [("X-Signature-256", hub_signature(gh, PUSH))],
         PUSH),
        ("github", "github: two signature headers, one right",
         [("X-Hub-Signature-256", hub_signature(gh, PUSH)), ("X-Hub-Signature-256", "sha256=" + "0" * 64)], PUSH),
        ("github", "gitea: X-Gitea-Signature wrong", [("X-Gitea-Signature", "0" * 64)], PUSH),
        ("github", "github: signed with the gitlab secret", [("X-Hub-Signature-256", hub_signature(gl, PUSH))], PUSH),
        ("gitlab", "gitlab: token wrong", [("X-Gitlab-Token", "not-the-token-0123456789")], PUSH),
        ("gitlab", "gitlab: token missing", [("X-Gitlab-Event", "Push Hook")], PUSH),
        ("gitlab", "gitlab: token one character short", [("X-Gitlab-Token", gl.decode()[:-1])], PUSH),
        ("gitlab", "gitlab: token one character more", [("X-Gitlab-Token", gl.decode() + "x")], PUSH),
        ("gitlab", "gitlab: HMAC signature instead of the token", [("X-Hub-Signature-256", hub_signature(gl, PUSH))],
         PUSH),
        ("gitlab", "gitlab: the github secret as token", [("X-Gitlab-Token", gh.decode())], PUSH),
        ("generic", "generic: signature wrong", [("X-Signature-256", "sha256=" + "f" * 64)], PUSH),
        ("generic", "generic: signature missing", [], PUSH),
        ("generic", "generic: right signature in the github header",
         [("X-Hub-Signature-256", hub_signature(gen, PUSH))], PUSH),
    ]
    for i, (receiver, case, headers, body) in enumerate(bad):
        headers = headers + [("X-GitHub-Delivery", f"bad-{i}")]  # a refused delivery id is not remembered
        expect_prompt(case, exchange(port, post("/hooks/" + receiver, body, headers)), 401, f"webhook {receiver}: ")
        count(receiver, 401)
    # Right secret, wrong method: refused before the signature counts.
    good_get = signed_hook(directory, "github", "wrong-method").replace(b"POST ", b"GET ", 1)
    expect_prompt("github: GET with a valid signature", exchange(port, good_get), 405, "webhook github: method GET")
    count("github", 405)
    good_put = signed_hook(directory, "gitlab", "wrong-method").replace(b"POST ", b"PUT ", 1)
    expect_prompt("gitlab: PUT with a valid token", exchange(port, good_put), 405, "webhook gitlab: method PUT")
    count("gitlab", 405)
    expect_prompt("no receiver: POST /hooks/unknown",
                  exchange(port, post("/hooks/unknown", PUSH, [("X-Hub-Signature-256", hub_signature(gh, PUSH))])),
                  404)
    expect_prompt("no receiver: signed POST to /hooks/github/ (trailing slash)",
                  exchange(port, signed_hook(directory, "github", "slash").replace(b"/hooks/github ",
                                                                                  b"/hooks/github/ ", 1)), 404)

    for t in threads:
        t.join()
    for name, case in slow_cases.items():
        expect_cut_off(name, slow[name], case["deadline"])
    return counted


def flood(port):
    """An address holds at most PER_ADDRESS connections (a newcomer takes the place of its oldest
    idle one), /healthz is answered meanwhile, held ones end with the client, and many concurrent
    bad requests are each refused or cut, never accepted. Returns the number of 401s the daemon
    answered (it must have counted exactly those)."""
    n = 3 * MAX_CONNECTIONS
    start = time.monotonic()
    held = []
    for _ in range(n):
        try:
            held.append(connect(port))
        except OSError:
            pass
    # Handed to the server about DEFER_ACCEPT after they connected, each newcomer over the
    # address's cap then takes the place of an older one.
    deadline = time.monotonic() + DEFER_ACCEPT + PROMPT
    gone = set()
    while len(gone) < n - PER_ADDRESS and time.monotonic() < deadline:
        time.sleep(0.1)
        for i, s in enumerate(held):
            if i in gone:
                continue
            try:
                if s.recv(1) == b"":
                    gone.add(i)
            except BlockingIOError:
                pass
            except OSError:
                gone.add(i)
    closed = len(gone)
    still_open = len(held) - closed
    print(f"  {'flood: %d idle connections at once' % n:<62} {still_open} held, {closed} closed once handed over "
          f"({time.monotonic() - start:.2f}s)", flush=True)
    check(len(held) == n, f"flood: only {len(held)} of {n} connections were accepted by the kernel")
    check(still_open <= PER_ADDRESS, f"flood: {still_open} connections held, limit {PER_ADDRESS} per address")
    check(closed >= n - PER_ADDRESS, f"flood: only {closed} of {n} connections were closed within {DEFER_ACCEPT + PROMPT}s")
    busy = exchange(port, get("/healthz"), limit=2.0)
    expect_prompt("flood: /healthz from the flood's own address", busy, 200)
    for s in held:
        s.close()
    # The places come back as soon as the clients have gone, not after the read timeout.
    deadline = time.monotonic() + PROMPT
    healthy = Outcome()
    while time.monotonic() < deadline:
        healthy = exchange(port, get("/healthz"), limit=1.0)
        if healthy.status() == 200:
            break
        time.sleep(0.05)
    report("flood: /healthz once the idle clients have gone", healthy)
    check(healthy.status() == 200, f"flood: /healthz after the flood: {healthy.summary()}")

    # 4 x MAX_CONNECTIONS concurrent requests with a wrong signature.
    results = [None] * (4 * MAX_CONNECTIONS)
    data = post("/hooks/github", PUSH, [("X-Hub-Signature-256", "sha256=" + "0" * 64)])
    barrier = threading.Barrier(len(results))

    def one(i):
        barrier.wait()
        results[i] = exchange(port, data, limit=READ_TIMEOUT, source="127.0.4.%d" % (i % 64 + 1))
    workers = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.monotonic() - start
    statuses = [r.status() for r in results]
    refused = sum(1 for r in results if r.closed and r.received == b"")
    print(f"  {'flood: %d concurrent wrongly signed webhooks' % len(results):<62} {statuses.count(401)} x 401, "
          f"{refused} closed unanswered, {took:.2f}s", flush=True)
    check(statuses.count(401) + refused == len(results),
          f"flood: unexpected answers {sorted(set(statuses) - {0, 401})}")
    check(statuses.count(401) >= MAX_CONNECTIONS // 4, f"flood: only {statuses.count(401)} answered 401")
    check(took < 2 * PROMPT, f"flood: {took:.2f}s for {len(results)} requests")
    return statuses.count(401)


class Crowd:
    """Holds `count` connections to PORT from the source addresses `sources` (round robin),
    reconnecting each one the server closes, until stop(). Each sends `prefix` at once and then
    `trickle` one byte every `interval` seconds (nothing when both are empty).

    It runs in a process of its own: as a thread beside the probes it could hold the interpreter
    lock between a probe's connect and its send while the crowd kept reconnecting, so the probe
    could lose its place before its request had left — a measure of this script's scheduling,
    not of the server."""

    def __init__(self, port, count, sources, prefix=b"", trickle=b"", interval=0.1):
        self.port, self.count, self.sources = port, count, sources
        self.prefix, self.trickle, self.interval = prefix, trickle, interval
        self.stopping = multiprocessing.Event()
        self.process = multiprocessing.Process(target=self.run, daemon=True)

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((self.sources[i % len(self.sources)], 0))
            s.settimeout(PROMPT)
            s.connect(("127.0.0.1", self.port))
            s.setblocking(False)
            if self.prefix:
                s.send(self.prefix)
        except OSError:
            s.close()
            return None
        return [s, 0]

    def run(self):
        held = [self.open(i) for i in range(self.count)]
        next_trickle = time.monotonic() + self.interval
        deadline = time.monotonic() + 120  # bounded, whatever the caller does
        while not self.stopping.is_set() and time.monotonic() < deadline:
            poller = select.poll()
            for entry in held:
                if entry:
                    poller.register(entry[0], select.POLLIN)
            for fd, _ in poller.poll(20):
                for i, entry in enumerate(held):
                    if entry and entry[0].fileno() == fd:
                        try:
                            gone = entry[0].recv(4096) == b""
                        except BlockingIOError:
                            gone = False
                        except OSError:
                            gone = True
                        if gone:
                            entry[0].close()
                            held[i] = None
            for i, entry in enumerate(held):
                if entry is None and not self.stopping.is_set():
                    held[i] = self.open(i)
            if self.trickle and time.monotonic() >= next_trickle:
                next_trickle = time.monotonic() + self.interval
                for entry in held:
                    if entry and entry[1] < len(self.trickle):
                        try:
                            entry[0].send(self.trickle[entry[1]:entry[1] + 1])
                            entry[1] += 1
                        except OSError:
                            pass
        for entry in held:
            if entry:
                entry[0].close()

    def __enter__(self):
        self.process.start()
        time.sleep(DEFER_ACCEPT + 0.5)  # every place the crowd can take is taken
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class Hammer:
    """`threads` threads sending wrongly signed webhooks with a `size`-byte body back to back
    from the sources, until stop()."""

    def __init__(self, port, threads, size, sources):
        self.port, self.size, self.sources = port, size, sources
        self.stopping = threading.Event()
        self.sent = 0
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, i):
        body = b"{" + b"x" * self.size + b"}"
        data = post("/hooks/github", body, [("X-Hub-Signature-256", "sha256=" + "0" * 64)])
        deadline = time.monotonic() + 120
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((self.sources[i % len(self.sources)], 0))
                s.settimeout(PROMPT)
                s.connect(("127.0.0.1", self.port))
                s.sendall(data)
                while s.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                s.close()
            self.sent += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join()


def probe_healthz(port, count, limit, source="127.0.0.1"):
    """`count` GET /healthz from source, one after the other; their latencies (limit when not
    answered 200) and the number not answered 200. Prints how each failed probe ended."""
    latencies, failed = [], 0
    for _ in range(count):
        start = time.monotonic()
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((source, 0))
            s.settimeout(PROMPT)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            got = exchange(port, get("/healthz"), limit=limit, sock=s)
        except OSError:
            got = Outcome()
        took = time.monotonic() - start
        if got.status() != 200:
            failed += 1
            how = "could not connect" if not got.connected else got.summary()
            print(f"    probe from {source} not answered 200: {how} ({took:.2f}s)", flush=True)
            took = max(took, limit)
        latencies.append(took)
        time.sleep(0.1)
    return sorted(latencies), failed


def floods(port, limit, metrics_port=None):
    """/healthz under each flood of PORT; every probe must be answered 200 within limit seconds,
    on PORT and, when given, on metrics_port (serve.yaml metricsListen)."""
    one = ["127.0.0.1"]
    many = ["127.0.0.%d" % i for i in range(2, 66)]  # 64 source addresses
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    cases = [
        ("no flood", lambda: Crowd(port, 0, one)),
        ("64 idle connections, 127.0.0.1", lambda: Crowd(port, 64, one)),
        ("70 idle connections held (reconnecting), 127.0.0.1", lambda: Crowd(port, 70, one)),
        ("256 idle connections held, 64 sources 127.0.0.2-65", lambda: Crowd(port, 256, many)),
        ("70 slowloris (a header byte every 100 ms), 127.0.0.1",
         lambda: Crowd(port, 70, one, prefix=head, trickle=b"X-Slow: " + b"s" * 400)),
        ("128 slowloris held, 64 sources", lambda: Crowd(port, 128, many, prefix=head, trickle=b"X-Slow: " + b"s" * 400)),
        ("8 threads of wrongly signed 256 KiB webhooks, 64 sources", lambda: Hammer(port, 8, 256 * 1024, many)),
    ]
    for name, make in cases:
        with make():
            # Probes from a source the flood does not use, and from one it does.
            latencies, failed = probe_healthz(port, 10, limit, "127.0.1.1")
            more, failed_more = probe_healthz(port, 5, limit, "127.0.0.1")
            side, failed_side = probe_healthz(metrics_port, 10, limit) if metrics_port else ([], 0)
        all_ = sorted(latencies + more)
        median = all_[len(all_) // 2]
        print(f"  {name:<62} /healthz median {median * 1000:7.1f} ms, max {all_[-1] * 1000:7.1f} ms, "
              f"{failed + failed_more}/{len(all_)} not answered 200 within {limit:.0f}s", flush=True)
        check(failed + failed_more == 0, f"floods: {name}: {failed + failed_more} of {len(all_)} /healthz "
                                         f"probes not answered 200 within {limit}s")
        if metrics_port:
            print(f"  {'  ... on metricsListen':<62} /healthz median {side[len(side) // 2] * 1000:7.1f} ms, "
                  f"max {side[-1] * 1000:7.1f} ms, {failed_side}/{len(side)} not answered 200", flush=True)
            check(failed_side == 0, f"floods: {name}: {failed_side} /healthz probes on metricsListen failed")


def metrics(port):
    """The /metrics samples as {'name{labels}': value}."""
    got = exchange(port, get("/metrics"), limit=PROMPT)
    check(got.status() == 200, f"/metrics: {got.summary()}")
    samples = {}
    for line in got.body().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def webhook_counts(samples):
    out = {}
    prefix = 'pgconverge_webhook_requests_total{receiver="'
    for key, value in samples.items():
        if key.startswith(prefix):
            receiver, _, rest = key[len(prefix):].partition('",status="')
            out[(receiver, int(rest.rstrip('"}')))] = int(value)
    return out


def main(argv):
    command, port = argv[1], int(argv[2])
    if command == "refuse":
        directory = argv[3]
        print("refused requests:")
        counted = refuse(port, directory)
        print("concurrent connections:")
        counted[("github", 401)] = counted.get(("github", 401), 0) + flood(port)
        samples = metrics(port)
        seen = webhook_counts(samples)
        print(f"webhook verdicts counted by the daemon: {dict(sorted(seen.items()))}")
        check(seen == counted, f"/metrics webhook verdicts {dict(sorted(seen.items()))}, "
                               f"want {dict(sorted(counted.items()))}")
        runs = sum(v for k, v in samples.items() if k.startswith("pgconverge_reconcile_total{"))
        check(runs == 1, f"/metrics: {runs} reconcile runs, want 1 (the first poll only)")
    elif command == "flood":
        flood(port)
    elif command == "floods":
        print("/healthz under floods:")
        floods(port, float(argv[3]) if len(argv) > 3 else 3.0, int(argv[4]) if len(argv) > 4 else None)
    elif command == "hook":
        directory, receiver, delivery = argv[3], argv[4], argv[5]
        body = argv[6].encode() if len(argv) > 6 else PUSH
        got = exchange(port, signed_hook(directory, receiver, delivery, body))
        print(got.status())
        return 0
    elif command == "replay":
        directory, receiver, count, seconds = argv[3], argv[4], int(argv[5]), float(argv[6])
        statuses = {}
        start = time.monotonic()
        first = "replayed-0"
        for i in range(count):
            time.sleep(max(0.0, start + seconds * i / count - time.monotonic()))
            delivery = first if i % 10 == 9 else "replayed-%d" % i
            got = exchange(port, signed_hook(directory, receiver, delivery), limit=PROMPT)
            statuses[got.status()] = statuses.get(got.status(), 0) + 1
        print(",".join(f"{k}:{v}" for k, v in sorted(statuses.items())), f"{time.monotonic() - start:.2f}")
        return 0
    elif command == "idle":
        s = connect(port)
        time.sleep(float(argv[3]))
        s.close()
        return 0
    elif command == "metric":
        name = argv[3] + (argv[4] if len(argv) > 4 else "")
        print(int(metrics(port).get(name, 0)))
    else:
        print(__doc__, file=sys.stderr)
        return 64
    for failure in failures:
        print("FAIL: " + failure, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
