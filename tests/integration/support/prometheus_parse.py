#!/usr/bin/env python3
"""Parses Prometheus text exposition format from stdin with the reference parser
(python3-prometheus-client) and prints it as JSON: {family: {type, samples: [[name, labels, value]]}}.
A malformed exposition makes the parser raise, which exits non-zero with its message."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {
        "type": fam.type,
        "samples": [[s.name, s.labels, None if math.isnan(s.value) else s.value] for s in fam.samples],
    }
json.dump(out, sys.stdout)
