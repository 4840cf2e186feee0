"""The plain send loop of ../shared/bench/limit_fanout.py, with its receivers running the way a
real WebSocket client fleet runs: in another process, waiting in epoll while the sender writes.

limit_fanout.py drains its client sockets in the same process, after the measured loop, so
no receiver is ever woken while it sends. A server fanning out to real clients (the wsload
probe) pays for that wake-up on every send() to an idle receiver: the kernel's
sock_def_readable -> try_to_wake_up runs in the sender's context. This probe measures the send
loop both ways in one run, so a server can be compared with the limit that includes it.

usage: python3 limit_fanout_readers.py N TICKS
"""
import os, resource, selectors, signal, socket, sys, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
TICKS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
resource.setrlimit(resource.RLIMIT_NOFILE,
                   (min(2 * N + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]),) * 2)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(4096)
port = ls.getsockname()[1]
cli, srv = [], []
for i in range(N):
    c = socket.create_connection(("127.0.0.1", port)); cli.append(c)
    s, _ = ls.accept(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); srv.append(s)
payload = (b'{"type":"price_update","payload":{"symbol_code":"XAUUSD","price":"2658.50",'
           b'"change":"28.30","change_percent":"1.08","timestamp":"2026-12-01T20:00:00.000000Z",'
           b'"seq":42}}')
frame = bytes([0x81, 126]) + len(payload).to_bytes(2, "big") + payload


def send_ticks(drain_inline):
    cpu = 0.0
    loops = []
    for _ in range(TICKS):
        a = time.perf_counter(); c0 = time.process_time()
        for s in srv:
            s.send(frame)
        loops.append((time.perf_counter() - a) * 1000); cpu += time.process_time() - c0
        if drain_inline:
            for c in cli:
                c.recv(65536)
        else:
            time.sleep(1.0)  # one tick a second, as the servers are measured
    loops.sort()
    return cpu * 1e6 / (N * TICKS), loops[len(loops) // 2]


inline_cpu, inline_ms = send_ticks(drain_inline=True)

# The receivers move to a child process that waits in epoll, like a client fleet.
child = os.fork()
if child == 0:
    for s in srv:
        s.close()
    sel = selectors.EpollSelector()
    for c in cli:
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            try:
                key.fileobj.recv(65536)
            except BlockingIOError:
                pass
for c in cli:
    c.close()
time.sleep(1.0)
woken_cpu, woken_ms = send_ticks(drain_inline=False)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)

print(f"limit {N}: {len(frame)}-byte frame, {TICKS} ticks")
print(f"limit {N}: receivers drained after the loop (limit_fanout.py): "
      f"{inline_cpu:.2f} us sender CPU per message, loop p50 {inline_ms:.1f} ms")
print(f"limit {N}: receivers waiting in epoll in another process: "
      f"{woken_cpu:.2f} us sender CPU per message, loop p50 {woken_ms:.1f} ms")
