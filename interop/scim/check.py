"""Runs scim2-tester's every check against a live Tessera.

Usage: SCIM_TOKEN=... python check.py http://127.0.0.1:PORT/scim/v2
Prints one line per check; exits 1 when any check ends in anything but SUCCESS or SKIPPED.
Nothing is disabled: checks of features Tessera does not offer (bulk, sort, etag, searching
every resource type at once) are skipped by scim2-tester itself, from what Tessera publishes.
"""

import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

base = sys.argv[1]
token = os.environ["SCIM_TOKEN"]
client = SyncSCIMClient(Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30))
results = check_server(client)
bad = 0
for result in results:
    ok = result.status in (Status.SUCCESS, Status.SKIPPED)
    bad += 0 if ok else 1
    where = f"[{result.resource_type}] " if result.resource_type else ""
    print(f"{result.status.name:8} {where}{result.title}: {result.reason or ''}".rstrip())
print(f"{len(results)} checks, {bad} not passed")
sys.exit(1 if bad or not results else 0)
