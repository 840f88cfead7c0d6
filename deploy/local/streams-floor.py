#!/usr/bin/env python3
"""The Redis CPU per job of a hot path with no Lua, for comparison with workq's functions:
Redis Streams consumer groups (XADD in pipelines of 1,000; XREADGROUP COUNT n; XACK and
XDEL of what was read, the peers' removeOnComplete), `INFO cpu` (user + sys) over each
phase divided by the jobs, the median of five runs. What a Streams design would cost this
Redis before any of workq's guarantees (chains, unique work, retries, leases, events).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install -q redis
    redis-server --port 7393 --save '' --daemonize yes
    /tmp/v/bin/python deploy/local/streams-floor.py 7393 50000 25   # port, jobs, read size

It flushes that Redis: never point it at one that holds data.
"""
import statistics as st
import sys

import redis

PORT, JOBS, COUNT = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = redis.Redis(port=PORT)
# The size of script-cost.py's no-op record.
PAY = b"\x95\x01\x00\x00\xcf" + b"\0" * 8 + b"\xa3nop\x81\xa1i\x01"


def cpu_us():
    i = r.info("cpu")
    return (i["used_cpu_user"] + i["used_cpu_sys"]) * 1e6


def one_run():
    r.flushall()
    r.xgroup_create("s", "g", id="0", mkstream=True)
    c0 = cpu_us()
    for _ in range(0, JOBS, 1000):
        p = r.pipeline(transaction=False)
        for _ in range(1000):
            p.xadd("s", {"r": PAY})
        p.execute()
    c1 = cpu_us()
    done = 0
    while done < JOBS:
        got = r.xreadgroup("g", "w1", {"s": ">"}, count=COUNT)
        ids = [m[0] for m in got[0][1]] if got else []
        if not ids:
            break
        p = r.pipeline(transaction=False)
        p.xack("s", "g", *ids)
        p.xdel("s", *ids)
        p.execute()
        done += len(ids)
    c2 = cpu_us()
    return (c1 - c0) / JOBS, (c2 - c1) / JOBS


runs = [one_run() for _ in range(5)]
enq = st.median(x[0] for x in runs)
drain = st.median(x[1] for x in runs)
print(f"streams, {JOBS} jobs read {COUNT} at a time: enqueue {enq:.2f} us/job, "
      f"read + ack + delete {drain:.2f} us/job, total {enq + drain:.2f} us/job")
