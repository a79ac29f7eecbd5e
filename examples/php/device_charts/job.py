#!/usr/bin/env python3
"""The Python side of the device-charts flow: process device readings (CSV) into chart data,
save it to the fallback file (data.json) and cache it for the PHP API.

    python3 job.py --csv readings.csv --data-dir /tmp/charts [--devices 6361819,6361820]
                   [--invalidate-device 6361819] [--soft-invalidate-date 2025-01-15]

Each chart is one module entry, written with plain redis-py (no package needed):

    CACHE.SETTAGGED processed_data:<device>:<date> <json> EX 60 STALE 300 TAGS device:<device> date:<date>

The write carries no lease, so it voids any lease a PHP request holds on that key: a request that
read the database before this run cannot overwrite the new chart with the old one. The values
are JSON, which the PHP API reads with `new RedisCache\\Cache($redis, ['serializer' => 'json'])`.

Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (0).
"""
import argparse
import csv
import json
import os
import sys
from collections import defaultdict

import redis

TTL = 60      # fresh for a minute, as in the write-up
STALE = 300   # then served STALE for up to 5 minutes (the job's period) while one request refreshes


def charts_from_csv(path, devices=None):
    """{(device, date): {"device": .., "date": .., "labels": [..], "values": [..]}}"""
    points = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if devices and row["device_id"] not in devices:
                continue
            date, time = row["timestamp"].split("T")
            points[(row["device_id"], date)].append((time[:5], float(row["value"])))
    return {
        (device, date): {
            "device": device,
            "date": date,
            "labels": [t for t, _ in sorted(pts)],
            "values": [v for _, v in sorted(pts)],
        }
        for (device, date), pts in points.items()
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", help="the readings to process (required unless --soft-invalidate-date)")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--devices", help="comma-separated device ids to process (default: all)")
    ap.add_argument("--invalidate-device", help="drop every cached day of this device first")
    ap.add_argument("--soft-invalidate-date", help="turn every cached chart of this date stale")
    args = ap.parse_args()

    r = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"),
                    port=int(os.environ.get("REDIS_PORT", "6379")),
                    db=int(os.environ.get("REDIS_DB", "0")), protocol=2)

    if args.invalidate_device:
        # Reprocessing one device's history: all its days at once, whatever their keys.
        n = r.execute_command("CACHE.INVALIDATETAG", f"device:{args.invalidate_device}")
        print(f"invalidated {n} chart(s) of device {args.invalidate_device}")
    if args.soft_invalidate_date:
        n = r.execute_command("CACHE.INVALIDATETAG", f"date:{args.soft_invalidate_date}", "SOFT")
        print(f"marked {n} chart(s) of {args.soft_invalidate_date} stale")
        return 0

    if not args.csv:
        ap.error("--csv is required")
    devices = set(args.devices.split(",")) if args.devices else None
    charts = charts_from_csv(args.csv, devices)

    # Fallback storage first (the PHP API reads it when Redis is down or the entry is gone).
    os.makedirs(args.data_dir, exist_ok=True)
    path = os.path.join(args.data_dir, "data.json")
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    for (device, date), chart in charts.items():
        data.setdefault(device, {})[date] = chart
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)

    pipe = r.pipeline(transaction=False)
    for (device, date), chart in sorted(charts.items()):
        pipe.execute_command("CACHE.SETTAGGED", f"processed_data:{device}:{date}",
                             json.dumps(chart, separators=(",", ":")),
                             "EX", TTL, "STALE", STALE, "TAGS", f"device:{device}", f"date:{date}")
    replies = pipe.execute()
    stored = sum(1 for x in replies if x in (True, b"OK", "OK"))
    print(f"cached {stored} chart(s) of {len(charts)}")
    return 0 if stored == len(charts) else 1


if __name__ == "__main__":
    sys.exit(main())
