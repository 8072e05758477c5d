#!/usr/bin/env python3
"""The plain Python consumer that `cloudwaste-stream bench --python` compares the daemon with.

What an afternoon's Python would do for scan records: confluent-kafka reads every input topic,
json.loads each scan record, pseudonymizes its ids with keyed HMAC-SHA256, and every batch of
5,000 records is COPYed (text) into a temp staging table and upserted into a table shaped like
ml_training_data (same columns and indexes), with the partitions' offsets in the same
transaction. Other topics' records are only counted (the daemon does much more with them).
Prints `python: records=N seconds=S rps=R cpu_us_per_record=C`: C is the process's CPU (every
thread, librdkafka's included) from the first record to the last commit, per record.

Needs: pip install confluent-kafka "psycopg[binary]"
"""
import argparse
import hashlib
import hmac
import json
import time

import psycopg
from confluent_kafka import Consumer

COLUMNS = [
    "scan_hash", "resource_hash", "account_hash", "user_hash", "event_hash", "provider", "region_bucket",
    "resource_type", "scenario", "confidence", "estimated_monthly_cost", "currency", "resource_age_days",
    "created_hour_utc", "created_dow", "metrics", "tag_keys", "env_class", "parent_hash", "detected_at", "key_id",
    "source_topic", "source_partition", "source_offset",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--records", type=int, required=True)
    ap.add_argument("--key", required=True, help="HMAC key, hex")
    ap.add_argument("--group", default="python-baseline")
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    key = bytes.fromhex(args.key)
    key_id = hashlib.sha256(key).hexdigest()[:8]

    def pseudonym(domain, value):
        return hmac.new(key, (domain + ":" + value.strip()).encode(), hashlib.sha256).digest()

    db = psycopg.connect(args.dsn)
    with db.cursor() as cur:
        cur.execute("""
            CREATE TABLE IF NOT EXISTS py_training (
                scan_hash bytea NOT NULL, resource_hash bytea NOT NULL,
                account_hash bytea NOT NULL, user_hash bytea NOT NULL, event_hash bytea NOT NULL,
                provider text NOT NULL, region_bucket text NOT NULL, resource_type text NOT NULL, scenario text NOT NULL,
                confidence text NOT NULL, estimated_monthly_cost double precision NOT NULL, currency text NOT NULL,
                resource_age_days int, created_hour_utc smallint, created_dow smallint, metrics jsonb NOT NULL,
                tag_keys text[] NOT NULL, env_class text, parent_hash bytea, detected_at timestamptz NOT NULL,
                key_id text NOT NULL, source_topic text NOT NULL, source_partition int NOT NULL, source_offset bigint NOT NULL,
                ingested_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (scan_hash, resource_hash));
            CREATE INDEX IF NOT EXISTS py_training_detected ON py_training USING brin (detected_at);
            CREATE INDEX IF NOT EXISTS py_training_user ON py_training (user_hash);
            CREATE TABLE IF NOT EXISTS py_offsets (topic text, partition int, next_offset bigint, PRIMARY KEY (topic, partition));
            CREATE TEMP TABLE stage (LIKE py_training INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
        """)
    db.commit()
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[2:])
    upsert = f"INSERT INTO py_training ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM stage ON CONFLICT (scan_hash, resource_hash) DO UPDATE SET {updates}"

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 10000,
    })
    topics = [f"cloudwaste.{t}.v1" for t in ("scan-resources", "user-actions", "resource-lifecycle", "metric-samples", "privacy-requests", "billed-costs")]
    consumer.subscribe(topics)
    seen = 0
    first = None
    last_commit = None
    cpu_first = cpu_last = 0.0
    idle_since = time.time()
    while seen < args.records:
        messages = consumer.consume(num_messages=args.batch, timeout=1.0)
        if not messages:
            if first is not None and time.time() - idle_since > 10:
                break
            continue
        idle_since = time.time()
        if first is None:
            first = time.time()
            cpu_first = time.process_time()
        rows = []
        offsets = {}
        for m in messages:
            if m.error():
                continue
            seen += 1
            offsets[(m.topic(), m.partition())] = m.offset() + 1
            if not m.topic().endswith("scan-resources.v1"):
                continue
            try:
                r = json.loads(m.value())
                tags = r.get("tags") or {}
                env = next((v for k, v in tags.items() if k.lower() in ("env", "environment", "stage")), None)
                rows.append((
                    pseudonym("scan", r["scan_id"]), pseudonym("resource", r["resource_id"]),
                    pseudonym("account", r["cloud_account_id"]), pseudonym("user", r["user_id"]), pseudonym("event", r["event_id"]),
                    r["provider"], r["region"][:2] + "-*", r["resource_type"], r["scenario"], r["confidence"],
                    float(r["estimated_monthly_cost"]), r.get("currency", "USD"), None, None, None,
                    json.dumps(r.get("metrics") or {}), sorted({k.lower() for k in tags}), env,
                    pseudonym("resource", r["parent_resource_id"]) if r.get("parent_resource_id") else None,
                    r["detected_at"], key_id, m.topic(), m.partition(), m.offset(),
                ))
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # a dead letter for the daemon; skipped here
        # One row per key per statement.
        rows = list({(row[0], row[1]): row for row in rows}.values())
        with db.cursor() as cur:
            with cur.copy(f"COPY stage ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(upsert)
            cur.executemany(
                "INSERT INTO py_offsets VALUES (%s, %s, %s) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                [(t, p, o) for (t, p), o in offsets.items()])
        db.commit()
        last_commit = time.time()
        cpu_last = time.process_time()
    consumer.close()
    seconds = (last_commit or time.time()) - (first or time.time())
    cpu_us = (cpu_last - cpu_first) / seen * 1e6 if seen else 0.0
    print(f"python: records={seen} seconds={seconds:.3f} rps={int(seen / seconds) if seconds > 0 else 0} cpu_us_per_record={cpu_us:.1f}")


if __name__ == "__main__":
    main()
