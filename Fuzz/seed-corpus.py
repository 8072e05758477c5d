#!/usr/bin/env python3
"""(Re)creates Fuzz/corpus/: the seed inputs of the decoder fuzz target.

Each seed is one topic-selector byte followed by a Kafka message value (see Fuzz/README.md):
'0' scan-resources, '1' user-actions, '2' resource-lifecycle, '3' metric-samples,
'4' privacy-requests.

* every topics/*/examples/{valid,invalid}/*.json, prefixed with its topic's selector
  (cost-trends is an output topic: its examples get '0' and only exercise the parsers);
* hand-made edge cases (edge--*): nesting at and beyond the depth limit, long strings,
  surrogate escapes, calendar and offset corners of RFC 3339, number corners, id/tag corners.

Deterministic: run it again after adding topic examples; commit the result.
"""
import json
import pathlib
import shutil

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "Fuzz" / "corpus"
TOPICS = ["scan-resources", "user-actions", "resource-lifecycle", "metric-samples", "privacy-requests"]
NOW = "2026-11-28T12:00:00Z"  # before the target's fixed clock (2026-11-29T00:00:00Z)


def selector(topic: str) -> bytes:
    return str(TOPICS.index(topic)).encode() if topic in TOPICS else b"0"


def scan(**overrides) -> dict:
    record = {
        "event_id": "evt-1", "scan_id": "scan-1", "detected_at": NOW, "user_id": "user-1@example.com",
        "cloud_account_id": "123456789012", "provider": "aws", "region": "eu-west-3",
        "resource_type": "ebs_volume", "resource_id": "arn:aws:ec2:eu-west-3:123456789012:volume/vol-0abc",
        "scenario": "unattached", "confidence": "high", "estimated_monthly_cost": 40.96,
        "resource_created_at": "2025-08-02T14:03:11+02:00", "currency": "USD",
        "metrics": {"VolumeReadOps": {"avg": 0, "p95": 0, "trend": "flat"}},
        "tags": {"Environment": "prod", "Owner": "jane@example.com"},
        "parent_resource_id": None,
    }
    record.update(overrides)
    return record


def action(**overrides) -> dict:
    record = {
        "event_id": "evt-2", "user_id": "user-1", "cloud_account_id": "123456789012", "provider": "aws",
        "resource_id": "vol-1", "resource_type": "ebs_volume", "action": "deleted",
        "detected_at": "2026-11-01T00:00:00Z", "action_at": NOW, "cost_saved_monthly": 12.5,
    }
    record.update(overrides)
    return record


def lifecycle(**overrides) -> dict:
    record = {
        "event_id": "evt-3", "cloud_account_id": "123456789012", "provider": "gcp",
        "resource_id": "projects/p/zones/z/disks/d", "resource_type": "pd_disk", "to_state": "detached",
        "occurred_at": NOW, "from_state": "attached",
    }
    record.update(overrides)
    return record


def metrics(**overrides) -> dict:
    record = {
        "cloud_account_id": "123456789012", "provider": "azure",
        "resource_id": "/subscriptions/0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D/disks/d1",
        "metric": "CPUUtilization", "points": [{"ts": NOW, "value": 1.5}], "unit": "%",
    }
    record.update(overrides)
    return record


def privacy(**overrides) -> dict:
    record = {"event_id": "evt-4", "user_id": "user-1", "request": "opt_out", "requested_at": NOW}
    record.update(overrides)
    return record


def dumps(record) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def edge_cases() -> dict[str, bytes]:
    e: dict[str, bytes] = {}

    # Nesting: the decoder allows depth 32 (the record object is level 1).
    for depth in (30, 31, 32, 33):
        inner = "[" * depth + "]" * depth
        e[f"nested-array-depth-{depth + 1}"] = b"0" + dumps(scan())[:-1] + b', "x_trace": ' + inner.encode() + b"}"
    e["nested-array-20000"] = b"0" + b"[" * 20000 + b"]" * 20000
    e["nested-array-20000-unclosed"] = b"3" + b"[" * 20000
    e["nested-object-40"] = b"4" + b'{"a":' * 40 + b"1" + b"}" * 40
    e["nested-mixed-32"] = b"2" + (b'{"a":[' * 16) + b"null" + (b"]}" * 16)

    # Long strings, at and past the limits (ids 256 scalars, resource ids 2048, payload 64 KiB here).
    e["long-resource-id-2048"] = b"0" + dumps(scan(resource_id="r" * 2048))
    e["long-resource-id-2049"] = b"0" + dumps(scan(resource_id="r" * 2049))
    e["long-user-id-256-emoji"] = b"1" + dumps(action(user_id="\U0001F600" * 256))
    e["long-user-id-257"] = b"1" + dumps(action(user_id="u" * 257))
    e["long-unknown-field-60k"] = b"0" + dumps(scan(x_blob="x" * 60000))
    e["long-escaped-string"] = b"4" + dumps(privacy(x_blob="\\\"\n\t\u0001" * 600))
    e["long-tag-value-escapes"] = b"0" + json.dumps(scan(tags={"env": "\n\t\"\\/" * 500})).encode()

    # Surrogate escapes (valid pair, lone halves, reversed pair, truncated, upper-case hex).
    def with_user(raw: str) -> bytes:
        return b"4" + dumps(privacy(user_id="@@")).replace(b"@@", raw.encode())
    e["surrogate-pair"] = with_user("\\ud83d\\ude00 user")
    e["surrogate-pair-upper"] = with_user("\\uD83D\\uDE00")
    e["surrogate-lone-high"] = with_user("\\ud800")
    e["surrogate-lone-high-then-char"] = with_user("\\ud800x")
    e["surrogate-lone-low"] = with_user("\\udc00")
    e["surrogate-reversed"] = with_user("\\ude00\\ud83d")
    e["surrogate-high-then-bmp-escape"] = with_user("\\ud800\\u0041")
    e["surrogate-high-then-short-escape"] = with_user("\\ud800\\n")
    e["surrogate-truncated"] = b"4" + b'{"user_id":"\\ud800\\u12'
    e["escape-nul-in-id"] = with_user("user\\u0000")
    e["escape-all-short"] = with_user("\\\"\\\\\\/\\b\\f\\n\\r\\t x")
    e["escape-invalid"] = with_user("\\x41")
    e["raw-utf8-surrogate-bytes"] = b"4" + dumps(privacy(user_id="@@")).replace(b"@@", b"\xed\xa0\x80")
    e["raw-utf8-overlong"] = b"4" + dumps(privacy(user_id="@@")).replace(b"@@", b"\xc0\xaf")
    e["raw-utf8-bom"] = b"4\xef\xbb\xbf" + dumps(privacy())
    e["raw-control-char-in-string"] = b"4" + dumps(privacy(user_id="@@")).replace(b"@@", b"a\x01b")

    # RFC 3339 corners, inside records and as whole inputs (the raw-bytes check parses the input).
    stamps = [
        "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-11-28T23:59:59.999999999+23:59", "2026-11-28T00:00:00.1234567891Z",
        "2026-11-28t00:00:00z", "2026-11-28 00:00:00-00:00", "2026-11-29T23:59:59Z", "2026-11-30T00:00:01Z",
        "1999-12-31T23:59:59-01:00", "2000-01-01T00:00:00+00:01", "2026-11-28T24:00:00Z", "2026-11-28T00:00:60Z",
        "2026-11-28T00:00:00.Z", "2026-11-28T00:00:00+2400", "2026-11-28T00:00:00",
        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0000-01-01T00:00:00-23:59", "9999-12-31T00:00:00+23:59",
    ]
    # Not here: offsets that move the instant out of 0000...9999 UTC ("0000-01-01T00:00:00+00:01"),
    # an open issue kept in Fuzz/regressions/ instead, so that the seed corpus itself passes.
    for i, s in enumerate(stamps):
        e[f"timestamp-{i:02d}-record"] = b"4" + dumps(privacy(requested_at=s))
        e[f"timestamp-{i:02d}-raw"] = s.encode()
    e["timestamps-in-points"] = b"3" + dumps(metrics(points=[{"ts": s, "value": i} for i, s in enumerate(stamps[:6])]))
    e["action-before-detection-offsets"] = b"1" + dumps(action(detected_at="2026-11-01T10:00:00+02:00", action_at="2026-11-01T08:59:59Z"))
    e["action-same-instant"] = b"1" + dumps(action(detected_at="2026-11-01T10:00:00+02:00", action_at="2026-11-01T08:00:00Z"))

    # Numbers.
    for name, text in [("neg-zero", "-0"), ("neg-zero-float", "-0.0"), ("max-money", "10000000"), ("over-money", "10000000.000001"),
                       ("tiny", "5e-324"), ("underflow", "1e-400"), ("overflow", "1e309"), ("exp-plus", "1E+2"),
                       ("leading-zero", "01"), ("frac-no-digits", "1."), ("exp-no-digits", "1e"), ("long-digits", "1" * 400),
                       ("hex", "0x10"), ("plus", "+1"), ("nan", "NaN"), ("infinity", "-Infinity")]:
        e[f"number-{name}"] = b"0" + dumps(scan(estimated_monthly_cost="@@")).replace(b'"@@"', text.encode())
    e["metric-extremes"] = b"0" + dumps(scan(metrics={"a": {"avg": 1e15, "p95": -1e15, "trend": None},
                                                      "b": {"avg": 1e-7, "p95": 123456789.125, "trend": "up"},
                                                      "c.d/e-f_g": {"avg": -0.0, "p95": 5e-324}}))
    e["metric-64"] = b"0" + dumps(scan(metrics={f"m{i}": {"avg": i, "p95": i * 1.5} for i in range(64)}))
    e["metric-65"] = b"0" + dumps(scan(metrics={f"m{i}": {"avg": i, "p95": i} for i in range(65)}))
    e["points-extremes"] = b"3" + dumps(metrics(points=[{"ts": NOW, "value": v} for v in (1e15, -1e15, 0, -0.0, 5e-324)]))

    # Ids, regions, tags: coincidences the leak check must tolerate, and normalization corners.
    e["id-equals-resource-type"] = b"0" + dumps(scan(resource_id="ebs_volume", user_id="unattached", cloud_account_id="USD"))
    e["id-equals-tag-key"] = b"0" + dumps(scan(user_id="env", tags={"env": "dev", "ENV": "prod"}))
    e["id-equals-bucket"] = b"0" + dumps(scan(user_id="eu-*", scan_id="other", region="EU-west-1"))
    e["id-equals-empty-metrics-json"] = b"0" + dumps(scan(user_id="{}", metrics={}))
    e["id-whitespace-padded"] = b"0" + dumps(scan(user_id="\u3000 user-1 \t", resource_id=" ebs_volume "))
    e["id-whitespace-only"] = b"1" + dumps(action(user_id=" \t\u00a0"))
    e["id-all-equal"] = b"1" + dumps(action(event_id="x", user_id="x", cloud_account_id="x", resource_id="x"))
    e["azure-guid-upper"] = b"0" + dumps(scan(provider="azure", region="WestEurope",
                                              resource_id="/SUBSCRIPTIONS/0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D/Disks/İd",
                                              cloud_account_id="0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"))
    e["guid-runs"] = b"2" + dumps(lifecycle(resource_id="x0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D-0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5Dz"))
    e["m365-global"] = b"0" + dumps(scan(provider="microsoft365", region="anything"))
    e["gcp-region-prefix"] = b"0" + dumps(scan(provider="gcp", region=" northamerica-south1 "))
    e["region-global-upper"] = b"0" + dumps(scan(region="GLOBAL"))
    e["tags-100"] = b"0" + dumps(scan(tags={f"k{i}": (None if i % 3 else f"v{i}") for i in range(100)}))
    e["tags-101"] = b"0" + dumps(scan(tags={f"k{i}": "v" for i in range(101)}))
    e["tags-env-variants"] = b"0" + dumps(scan(tags={"Stage": " UAT ", "environment": None, "env": "Pre-Prod"}))
    e["tags-control-key"] = b"0" + dumps(scan(tags={"a\u0007b": "x"}))
    e["parent-whitespace"] = b"0" + dumps(scan(parent_resource_id=" "))
    e["duplicate-nested-key"] = b"0" + dumps(scan())[:-1] + b', "tags2": {"a": 1, "a": 2}}'
    e["duplicate-top-key-unknown"] = b"0" + dumps(scan())[:-1] + b', "zz": 1, "zz": 2}'
    e["trailing-garbage"] = b"4" + dumps(privacy()) + b" x"
    e["empty-payload"] = b"4"
    e["whitespace-payload"] = b"4 \t\r\n"
    e["top-level-scalars"] = b"2\"just a string\""
    for i, topic in enumerate(TOPICS):
        e[f"all-null-{topic}"] = str(i).encode() + b'{"event_id":null,"user_id":null,"provider":null}'
    return e


def main() -> None:
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    CORPUS.mkdir(parents=True)
    count = 0
    for path in sorted((ROOT / "topics").glob("*/examples/*/*.json")):
        topic, kind = path.parts[-4], path.parts[-2]
        if kind not in ("valid", "invalid"):
            continue
        (CORPUS / f"{topic}--{kind}--{path.name}").write_bytes(selector(topic) + path.read_bytes())
        count += 1
    edges = edge_cases()
    for name, data in edges.items():
        (CORPUS / f"edge--{name}").write_bytes(data)
    print(f"Fuzz/corpus: {count} topic examples + {len(edges)} edge cases")


if __name__ == "__main__":
    main()
