#!/usr/bin/env python3
"""Memory of idle keep-alive REST connections and of socket streams (issue 11).

Starts the streamgate users service and gateway as `streamgate bench serve`
processes on loopback (as `streamgate bench compare` does), then:

1. opens N keep-alive connections to the gateway, sends one
   GET /v1/users/{id} on each, reads the answer and leaves the connection
   open and idle; prints the gateway's RSS before and after, per connection;
   then the same against the direct handler (net/http alone), for scale;
2. restarts the gateway with a configuration that names the same service S
   times (S clients, so S socket streams into the one service) and prints
   the service's and the gateway's RSS per stream against a gateway with
   one stream.

Every number is the kernel's VmRSS of the process (/proc/PID/status), read
after the connections have settled. Usage:

    go build -o /tmp/streamgate ./tools/streamgate
    python3 benchmarks/idle_conns.py /tmp/streamgate 10000 100
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

KEY = "idle-bench-key"
SERVICE_KEY = "idle-bench-service-key"


def start(binary, *args):
    env = dict(os.environ, STREAMGATE_BENCH_KEY=KEY, STREAMGATE_SERVICE_KEY=SERVICE_KEY)
    # The gateway shares one client among services with the same target and
    # key: each of the S services names its own variable (same key).
    env.update({f"STREAMGATE_SERVICE_KEY_{i}": SERVICE_KEY for i in range(1000)})
    p = subprocess.Popen([binary, "bench", "serve", *args], stdout=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline().split()  # "ready ADDR"
    if len(line) != 2 or line[0] != "ready":
        p.kill()
        sys.exit(f"{args[0]} did not start: {line}")
    return p, line[1]


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def settled_rss(pid, rounds=5):
    """RSS once it stops moving by more than 1% between reads 0.5 s apart
    (bounded: at most `rounds` reads after the first)."""
    last = rss(pid)
    for _ in range(rounds):
        time.sleep(0.5)
        now = rss(pid)
        if abs(now - last) <= last / 100:
            return now
        last = now
    return last


def config(addr, services):
    names = [f"users{i}" for i in range(services)]
    svc = "\n".join(f"  {n}: {{target: {addr!r}, key_env: STREAMGATE_SERVICE_KEY_{i}}}" for i, n in enumerate(names))
    res = "\n".join(
        f"      {'users' if i == 0 else n}: {{service: {n}, crud: [get], cache: false, coalesce: false}}"
        for i, n in enumerate(names)
    )
    return f"""auth:
  api_keys:
    - {{name: bench, secret_env: STREAMGATE_BENCH_KEY, roles: [admin]}}
services:
{svc}
versions:
  v1:
    resources:
{res}
"""


def gateway(binary, addr, services, tmp):
    path = os.path.join(tmp, f"gw{services}.yaml")
    with open(path, "w") as f:
        f.write(config(addr, services))
    return start(binary, "streamgate-gateway", "-config", path)


def get(gw_addr, conns, n):
    host, port = gw_addr.rsplit(":", 1)
    req = f"GET /v1/users/1 HTTP/1.1\r\nHost: {gw_addr}\r\nX-API-Key: {KEY}\r\n\r\n".encode()
    for i in range(n):
        s = socket.create_connection((host, int(port)))
        s.sendall(req.replace(b"/users/1 ", f"/users/{i % 1000 + 1} ".encode()))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("the gateway closed a connection")
            head += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit(f"unexpected answer: {head[:200]!r}")
        conns.append(s)


def main():
    binary, n, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with tempfile.TemporaryDirectory() as tmp:
        svc, svc_addr = start(binary, "streamgate-users")
        try:
            gw, gw_addr = gateway(binary, svc_addr, 1, tmp)
            conns = []
            get(gw_addr, conns, 100)  # warm up: pools, code paths
            before = settled_rss(gw.pid)
            get(gw_addr, conns, n - 100)
            after = settled_rss(gw.pid)
            print(f"gateway RSS with 100 connections {before / 2**20:.1f} MiB, with {n}: {after / 2**20:.1f} MiB; "
                  f"{(after - before) / (n - 100):.0f} bytes per idle keep-alive connection")
            for s in conns:
                s.close()
            gw.terminate()
            gw.wait()

            direct, direct_addr = start(binary, "direct")
            conns = []
            get(direct_addr, conns, 100)
            before = settled_rss(direct.pid)
            get(direct_addr, conns, n - 100)
            after = settled_rss(direct.pid)
            print(f"direct handler (net/http alone) RSS with 100 connections {before / 2**20:.1f} MiB, with {n}: "
                  f"{after / 2**20:.1f} MiB; {(after - before) / (n - 100):.0f} bytes per idle keep-alive connection")
            for s in conns:
                s.close()
            direct.terminate()
            direct.wait()

            svc_one = settled_rss(svc.pid)
            gw1, _ = gateway(binary, svc_addr, 1, tmp)
            time.sleep(1)
            svc_1, gw_1 = settled_rss(svc.pid), settled_rss(gw1.pid)
            gw1.terminate()
            gw1.wait()
            gwn, _ = gateway(binary, svc_addr, streams, tmp)
            time.sleep(1)
            svc_n, gw_n = settled_rss(svc.pid), settled_rss(gwn.pid)
            gwn.terminate()
            gwn.wait()
            print(f"service RSS with 1 stream {svc_1 / 2**20:.1f} MiB (before: {svc_one / 2**20:.1f}), with {streams}: "
                  f"{svc_n / 2**20:.1f} MiB; {(svc_n - svc_1) / (streams - 1):.0f} bytes per stream (service side)")
            print(f"gateway RSS with 1 service stream {gw_1 / 2**20:.1f} MiB, with {streams}: {gw_n / 2**20:.1f} MiB; "
                  f"{(gw_n - gw_1) / (streams - 1):.0f} bytes per stream (gateway side: a client, a connection and a stream each)")
        finally:
            svc.terminate()
            svc.wait()


if __name__ == "__main__":
    main()
