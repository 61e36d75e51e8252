#!/usr/bin/env python3
"""Memory of idle keep-alive REST connections, and RSS under load (issue 11).

Starts the streamgate users service and gateway as `streamgate bench serve`
processes on loopback (as `streamgate bench compare` does), then:

1. opens N keep-alive connections to the gateway, sends one
   GET /v1/users/{id} on each, reads the answer and leaves the connection
   open and idle; prints the gateway's RSS before and after, per connection;
   then the same against the direct handler (net/http alone), for scale.
   (A socket stream's memory is too small for RSS to show over the heap a
   process already holds: BenchmarkIdleStreams in services/socket counts
   it in the Go heap and stacks instead.)
2. with a third argument T (seconds), instead, loads the gateway (uncached)
   with `streamgate load` (64 connections, closed loop) for T seconds and
   prints the gateway's and the service's RSS every T/10 seconds.

Every number is the kernel's VmRSS of the process (/proc/PID/status), read
after the connections have settled. Usage:

    go build -o /tmp/streamgate ./tools/streamgate
    python3 benchmarks/idle_conns.py /tmp/streamgate 10000
    python3 benchmarks/idle_conns.py /tmp/streamgate 0 120
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
    svc = "\n".join(f"  {n}: {{target: {addr!r}, key_env: STREAMGATE_SERVICE_KEY}}" for n in names)
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


def rss_under_load(binary, seconds, tmp):
    svc, svc_addr = start(binary, "streamgate-users")
    gw, gw_addr = gateway(binary, svc_addr, 1, tmp)
    try:
        load = subprocess.Popen([binary, "load", "-c", "64", "-duration", f"{seconds}s", "-ids", "1-1000",
                                 "-H", f"X-API-Key: {KEY}", f"http://{gw_addr}/v1/users/{{id}}"],
                                stdout=subprocess.PIPE, text=True)
        step = seconds / 10
        print("seconds  gateway RSS MiB  service RSS MiB")
        for i in range(11):
            print(f"{i * step:7.0f}  {rss(gw.pid) / 2**20:15.1f}  {rss(svc.pid) / 2**20:15.1f}", flush=True)
            if i < 10:
                time.sleep(step)
        out, _ = load.communicate(timeout=seconds + 60)
        print(out)
    finally:
        gw.terminate()
        gw.wait()
        svc.terminate()
        svc.wait()


def main():
    binary, n = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3:
        with tempfile.TemporaryDirectory() as tmp:
            rss_under_load(binary, int(sys.argv[3]), tmp)
        return
    with tempfile.TemporaryDirectory() as tmp:
        svc, svc_addr = start(binary, "streamgate-users")
        try:
            idle("gateway", *gateway(binary, svc_addr, 1, tmp), n)
            idle("direct handler (net/http alone)", *start(binary, "direct"), n)
        finally:
            svc.terminate()
            svc.wait()


def idle(name, proc, addr, n):
    """Prints proc's RSS per idle keep-alive connection at addr, from 100
    connections (after warming up pools and code paths) to n; stops proc."""
    conns = []
    try:
        get(addr, conns, 100)
        before = settled_rss(proc.pid)
        get(addr, conns, n - 100)
        after = settled_rss(proc.pid)
        print(f"{name} RSS with 100 connections {before / 2**20:.1f} MiB, with {n}: {after / 2**20:.1f} MiB; "
              f"{(after - before) / (n - 100):.0f} bytes per idle keep-alive connection")
    finally:
        for s in conns:
            s.close()
        proc.terminate()
        proc.wait()

if __name__ == "__main__":
    main()
