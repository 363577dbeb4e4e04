#!/usr/bin/env python3
"""Hostile and honest HTTP clients for serve_webhook_abuse.sh, against `pgconverge serve` on
127.0.0.1: raw sockets, so that each case controls exactly which bytes arrive when.

  hostile_clients.py refuse  PORT DIR   every request that must be refused, then /metrics
  hostile_clients.py flood   PORT       many concurrent connections and requests
  hostile_clients.py hook    PORT DIR RECEIVER DELIVERY [BODY]   one correctly signed webhook;
                                        prints the HTTP status
  hostile_clients.py idle    PORT SECONDS   holds one silent connection open (for the stop test)
  hostile_clients.py metric  PORT NAME LABELS   prints the sample's value (0 when absent)

DIR holds the receivers' secret files github.secret, gitlab.secret and generic.secret. Exits 1
with one line per failed check (and prints one line per case with its measured time)."""

import hashlib
import hmac
import json
import os
import select
import socket
import sys
import threading
import time

# What serve's HTTP server enforces (providers/http/http_server.hpp); not settable in serve.yaml.
READ_TIMEOUT = 10.0      # the whole request must arrive within it
MAX_CONNECTIONS = 64     # connections beyond it are closed as soon as accepted
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


def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(PROMPT)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s


def exchange(port, data=b"", limit=5.0, interval=0.0, piece=1, sock=None):
    """Sends data (all at once, or `piece` bytes every `interval` seconds) while reading the
    answer, until the server closes or `limit` passes. A failed write stops writing only: the
    answer may already be on its way."""
    out = Outcome()
    start = time.monotonic()
    try:
        s = sock if sock is not None else connect(port)
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


def expect_cut_off(case, outcome, earliest=READ_TIMEOUT - 1.0):
    """Closed by the read deadline, with no answer (and so no webhook verdict at all)."""
    report(case, outcome)
    check(outcome.closed, f"{case}: still open after {outcome.elapsed:.2f}s (read timeout {READ_TIMEOUT}s)")
    check(earliest <= outcome.elapsed <= READ_TIMEOUT + PROMPT,
          f"{case}: closed after {outcome.elapsed:.2f}s, want about {READ_TIMEOUT}s")
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
        # Headers trickled byte by byte, every byte well within any per-read timeout.
        "slowloris: headers one byte every 100ms": dict(
            data=get("/healthz")[:-2] + b"X-Slow: " + b"s" * 300 + b"\r\n\r\n", interval=0.1),
        # A correctly signed webhook whose body would complete after 20 s: too slow, no run.
        "slowloris: signed webhook, body one byte every 100ms": dict(
            data=signed_slowly, interval=0.1, piece=1, head=signed_slowly[:split]),
        # Connects and sends nothing at all.
        "idle: connects, sends nothing": dict(data=b""),
        # A declared body that never arrives in full.
        "stall: headers in time, body never completes": dict(
            data=post("/hooks/github", b"x" * 100)[:-90]),
    }

    def run_slow(name, case):
        sock = connect(port)
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
        results[i] = exchange(port, payload, limit=10.0)
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
    for name in slow_cases:
        expect_cut_off(name, slow[name])
    return counted


def flood(port):
    """Connections beyond MAX_CONNECTIONS are closed at once, held ones end with the client, and
    many concurrent bad requests are each refused or cut, never accepted. Returns the number of
    401s the daemon answered (it must have counted exactly those)."""
    n = 3 * MAX_CONNECTIONS
    start = time.monotonic()
    held = []
    for _ in range(n):
        try:
            held.append(connect(port))
        except OSError:
            pass
    time.sleep(0.5)
    closed = 0
    for s in held:
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    still_open = len(held) - closed
    print(f"  {'flood: %d idle connections at once' % n:<62} {still_open} held, {closed} closed at once "
          f"({time.monotonic() - start:.2f}s)", flush=True)
    check(len(held) == n, f"flood: only {len(held)} of {n} connections were accepted by the kernel")
    check(still_open <= MAX_CONNECTIONS, f"flood: {still_open} connections held, limit {MAX_CONNECTIONS}")
    check(closed >= n - MAX_CONNECTIONS, f"flood: only {closed} of {n} connections were closed at once")
    busy = exchange(port, get("/healthz"), limit=2.0)
    report("flood: /healthz while every place is taken", busy)
    check(busy.closed and busy.received == b"", f"flood: /healthz was served beyond the limit: {busy.summary()}")
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
        results[i] = exchange(port, data, limit=READ_TIMEOUT)
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
    check(statuses.count(401) >= MAX_CONNECTIONS // 2, f"flood: only {statuses.count(401)} answered 401")
    check(took < 2 * PROMPT, f"flood: {took:.2f}s for {len(results)} requests")
    return statuses.count(401)


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
    elif command == "hook":
        directory, receiver, delivery = argv[3], argv[4], argv[5]
        body = argv[6].encode() if len(argv) > 6 else PUSH
        got = exchange(port, signed_hook(directory, receiver, delivery, body))
        print(got.status())
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
