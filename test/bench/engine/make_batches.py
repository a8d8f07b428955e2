#!/usr/bin/env python3
"""engine_1_ingest: signed webhook batches and the same rows as a plain INSERT.

make_batches.py OUTDIR RUN ROUNDS BATCHES BATCH_SIZE ORG_ID ORG_REF SECRET PLAIN_TABLE

Writes, for each round r (0 = the warm-up, one batch; then 1..ROUNDS, BATCHES batches each):
  OUTDIR/ingest-r.sql  one statement per batch:
      SELECT r->>'accepted', jsonb_array_length(r->'rejected')
        FROM saas.ingest_webhook('communication-service', <headers>, <body>) r;
    where the body is a JSON array of BATCH_SIZE message.sent events and the headers carry a
    Standard Webhooks v1 signature made now (webhook-timestamp = now: the receiver allows +-5 min).
  OUTDIR/plain-r.sql   the same rows (the columns saas.webhook_events stores, the whole event as
      payload) as one INSERT ... VALUES ... ON CONFLICT DO NOTHING per batch into PLAIN_TABLE.
Event ids are distinct across every batch and round of the run.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

out, run, rounds, batches, size, org_id, org_ref, secret, plain = sys.argv[1:10]
rounds, batches, size = int(rounds), int(batches), int(size)
key = base64.b64decode(secret[len("whsec_"):])
base = datetime.now(timezone.utc) - timedelta(minutes=1)


def sql_dollar(s, tag="b"):
    q = f"${tag}$"
    assert q not in s
    return q + s + q


n = 0
for r in range(rounds + 1):
    ing, pl = [], []
    for b in range(1 if r == 0 else batches):
        events = []
        for i in range(size):
            n += 1
            at = (base + timedelta(microseconds=n * 10)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            events.append({
                "event_id": f"evt_eb_{run}_{r}_{b}_{i}",
                "event_type": "message.sent",
                "timestamp": at,
                "organization_id": org_ref,
                "data": {"message_id": f"msg_eb_{run}_{n}", "organization_id": org_ref,
                         "recipient": f"user{n}@startup.io", "template": "welcome", "status": "sent"},
                "metadata": {"source": "saas-sim", "version": "1.0", "service": "communication-service",
                             "correlation_id": f"k-{run}-{n}"},
            })
        body = json.dumps(events, separators=(",", ":"))
        wid = f"msg_batch_{run}_{r}_{b}"
        ts = str(int(time.time()))
        sig = base64.b64encode(hmac.new(key, f"{wid}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
        headers = json.dumps({"content-type": "application/json", "webhook-id": wid,
                              "webhook-timestamp": ts, "webhook-signature": "v1," + sig})
        ing.append("SELECT r->>'accepted', jsonb_array_length(r->'rejected') FROM saas.ingest_webhook("
                   f"'communication-service', {sql_dollar(headers, 'h')}::jsonb, {sql_dollar(body)}) r;\n")
        rows = []
        for e in events:
            rows.append(f"('{org_id}','communication-service','{e['event_id']}','{e['event_type']}',"
                        f"'{e['timestamp']}','{e['data']['message_id']}',"
                        f"{sql_dollar(json.dumps(e, separators=(',', ':')))})")
        pl.append(f"INSERT INTO {plain} (org_id, service, event_id, event_type, occurred_at, entity_ref, payload) "
                  "VALUES " + ",".join(rows) + " ON CONFLICT DO NOTHING;\n")
    with open(os.path.join(out, f"ingest-{r}.sql"), "w") as f:
        f.writelines(ing)
    with open(os.path.join(out, f"plain-{r}.sql"), "w") as f:
        f.writelines(pl)
