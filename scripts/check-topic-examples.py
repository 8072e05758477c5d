#!/usr/bin/env python3
"""Check the topic contracts in topics/ against their examples.

For every topic folder (topics/<short-name>/):
  * topic.json has the required keys and a create command that matches them;
  * schema.json is a valid JSON Schema (draft 2020-12) that ignores unknown fields;
  * every examples/valid/*.json file is one well-formed record that the schema accepts and that
    also passes the rules JSON Schema cannot express (no future timestamps, year >= 2000,
    action_at not before detected_at, no duplicate keys, no number overflow);
  * examples/invalid/reasons.json lists every invalid example and nothing else, with a reason
    `<code>: <field>` (or `<code>` alone for whole-record problems);
  * every invalid example with "schema_rejects": true is rejected by the schema, for that field
    only and with a matching kind of error; every invalid example with "schema_rejects": false
    shows exactly the decoder-only problem its reason names (and the schema would accept the
    record otherwise).

Prints one line per problem and a final line `topic-examples: N passed, M failed`; exits 1 when
anything failed, 2 when it cannot run (missing jsonschema or topics folder).

Usage: scripts/check-topic-examples.py [-v] [TOPICS_DIR]      (needs: pip install jsonschema)
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:  # pragma: no cover - environment problem, not a check failure
    print("check-topic-examples: the Python package jsonschema is missing; run: pip install jsonschema", file=sys.stderr)
    sys.exit(2)

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
TOPIC_KEYS = ["name", "direction", "purpose", "key", "partitions", "retention", "create_command"]
INPUT_TOPIC_KEYS = TOPIC_KEYS + ["table"]
DEAD_LETTER_HEADERS = ["cw.source.topic", "cw.source.partition", "cw.source.offset", "cw.reason"]
PROVIDERS = {"aws", "azure", "gcp", "microsoft365"}
MIN_VALID_PER_INPUT = 4
MIN_INVALID_PER_INPUT = 8
EXAMPLE_NAME = re.compile(r"^\d{2}-[a-z0-9]+(-[a-z0-9]+)*\.json$")
TS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$"
)
# The decoder's default depth limit. The examples stay far from it on both sides: valid ones nest
# at most 4 levels, the nesting_too_deep example 1000 levels.
NESTING_LIMIT = 32
MAX_PAYLOAD_BYTES = 1_048_576  # the decoder's default limit
FUTURE_TOLERANCE = dt.timedelta(hours=24)

# Reason codes. Whole-record codes carry no field.
RECORD_CODES = {"empty_payload", "payload_too_large", "malformed_json", "invalid_utf8", "not_an_object",
                "nesting_too_deep"}
FIELD_CODES = {
    "missing_field", "wrong_type", "invalid_value", "invalid_timestamp", "future_timestamp",
    "invalid_money", "unknown_provider", "inconsistent_record", "invalid_number", "duplicate_field",
}
# Codes a JSON Schema can detect, and the schema keywords whose failure each may come from.
SCHEMA_KEYWORDS_FOR_CODE = {
    "missing_field": {"required"},
    "wrong_type": {"type"},
    "invalid_value": {"enum", "const", "pattern", "minLength", "maxLength", "minItems", "maxItems",
                      "minimum", "maximum", "propertyNames", "required"},
    "invalid_timestamp": {"format", "pattern"},
    "invalid_money": {"minimum", "maximum"},
    "unknown_provider": {"enum"},
    "not_an_object": {"type"},
}
ROOT = "(root)"


# ------------------------------------------------------------------------------------------------
# Formats
# ------------------------------------------------------------------------------------------------

def parse_timestamp(text: str) -> dt.datetime | None:
    """RFC 3339 date-time with mandatory offset, as the decoder reads it; None if impossible."""
    m = TS_RE.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    fraction = m.group(7)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if m.group(8) in ("Z", "z"):
        tz = dt.timezone.utc
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            return None
        delta = dt.timedelta(hours=oh, minutes=om)
        tz = dt.timezone(-delta if m.group(9) == "-" else delta)
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None


DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_date(text: str) -> dt.datetime | None:
    """A calendar day YYYY-MM-DD as its first instant in UTC, as the decoder reads it; None if impossible."""
    m = DATE_RE.match(text)
    if not m:
        return None
    try:
        return dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def make_format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    if "date-time" not in checker.checkers:
        # jsonschema checks date-time only when rfc3339-validator is installed; fall back to ours.
        checker.checks("date-time")(lambda value: not isinstance(value, str) or parse_timestamp(value) is not None)
    if "date" not in checker.checkers:
        checker.checks("date")(lambda value: not isinstance(value, str) or parse_date(value) is not None)
    return checker


# ------------------------------------------------------------------------------------------------
# Strict parsing: what the decoder refuses before it looks at fields
# ------------------------------------------------------------------------------------------------

class _Overflow:
    """Marks a number literal that does not fit a finite double (e.g. 1e400)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class _StrictObject(dict):
    """A JSON object that remembers duplicate keys and the first value of each."""

    duplicates: list
    first_values: dict


def _object_hook(pairs):
    obj = _StrictObject()
    obj.duplicates = []
    obj.first_values = {}
    for key, value in pairs:
        if key in obj:
            obj.duplicates.append(key)
        else:
            obj.first_values[key] = value
        obj[key] = value
    return obj


def _float_hook(literal: str):
    value = float(literal)
    return _Overflow(literal) if value in (float("inf"), float("-inf")) else value


def _int_hook(literal: str):
    value = int(literal)
    return _Overflow(literal) if abs(value) > 1.8e308 else value


def _reject_constant(name: str):
    raise ValueError(f"non-standard literal {name}")


def nesting_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _find(value, predicate, top=None):
    """Yield the top-level field (or ROOT) of every node inside value for which predicate holds."""
    if predicate(value):
        yield top or ROOT
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _find(child, predicate, top or key)
        if isinstance(value, _StrictObject):
            for key in value.duplicates:
                if predicate(("dup", key)):
                    yield top or key
    elif isinstance(value, list):
        for child in value:
            yield from _find(child, predicate, top)


def _plain(value, first_wins=False, overflow_as=None):
    """Convert parsed values back to plain JSON types (optionally replacing overflowed numbers)."""
    if isinstance(value, _StrictObject) and first_wins:
        return {k: _plain(v, first_wins, overflow_as) for k, v in value.first_values.items()}
    if isinstance(value, dict):
        return {k: _plain(v, first_wins, overflow_as) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, first_wins, overflow_as) for v in value]
    if isinstance(value, _Overflow):
        return overflow_as
    return value


def strict_parse(data: bytes):
    """Return (parsed, reason). reason is None when the bytes are one well-formed JSON value."""
    if not data:
        return None, "empty_payload"
    if len(data) > MAX_PAYLOAD_BYTES:
        return None, "payload_too_large"
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return None, "invalid_utf8"
    if nesting_depth(text) > NESTING_LIMIT:
        return None, "nesting_too_deep"
    try:
        parsed = json.loads(text, object_pairs_hook=_object_hook, parse_float=_float_hook,
                            parse_int=_int_hook, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None, "malformed_json"
    dups = list(_find(parsed, lambda v: isinstance(v, tuple) and v[0] == "dup"))
    if dups:
        return parsed, f"duplicate_field: {dups[0]}"
    overflows = list(_find(parsed, lambda v: isinstance(v, _Overflow)))
    if overflows:
        return parsed, f"invalid_number: {overflows[0]}"
    return parsed, None


# ------------------------------------------------------------------------------------------------
# Decoder-only rules (JSON Schema cannot express them)
# ------------------------------------------------------------------------------------------------

def _resolve(schema: dict, root: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            break
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        merged = dict(target)
        merged.update({k: v for k, v in schema.items() if k != "$ref"})
        schema = merged
    return schema


def _timestamps(instance, schema, root, top):
    """Yield (top-level field, instant or None) for every date-time or date value the schema describes."""
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return
    if schema.get("format") == "date-time" and isinstance(instance, str):
        yield top, parse_timestamp(instance)
    if schema.get("format") == "date" and isinstance(instance, str):
        yield top, parse_date(instance)
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, child in instance.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from _timestamps(child, sub, root, top or key)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for child in instance:
            yield from _timestamps(child, schema["items"], root, top)


def decoder_only_problems(record, schema: dict, now: dt.datetime) -> list[str]:
    if not isinstance(record, dict):
        return []
    problems = []
    for field, when in _timestamps(record, schema, schema, None):
        if when is None:
            continue  # the schema reports it (pattern / format)
        try:
            utc_year = when.astimezone(dt.timezone.utc).year  # the UTC year, as the decoder checks it
        except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
            utc_year = when.year
        if utc_year < 2000:
            problems.append(f"invalid_timestamp: {field}")
        elif when > now + FUTURE_TOLERANCE:
            problems.append(f"future_timestamp: {field}")
    props = schema.get("properties", {})
    if "detected_at" in props and "action_at" in props:
        detected = parse_timestamp(record.get("detected_at")) if isinstance(record.get("detected_at"), str) else None
        acted = parse_timestamp(record.get("action_at")) if isinstance(record.get("action_at"), str) else None
        if detected and acted and acted < detected:
            problems.append("inconsistent_record: action_at")
    return sorted(set(problems))


# ------------------------------------------------------------------------------------------------
# Schema errors → implicated top-level fields
# ------------------------------------------------------------------------------------------------

def schema_errors(validator, record):
    """Return a list of (top-level field or ROOT, keyword) for every schema error."""
    found = []
    for error in validator.iter_errors(record):
        path = list(error.absolute_path)
        if error.validator == "required" and not path and isinstance(error.instance, dict):
            for name in error.validator_value:
                if name not in error.instance:
                    found.append((name, "required"))
        elif path:
            found.append((str(path[0]), error.validator))
        else:
            found.append((ROOT, error.validator))
    return found


# ------------------------------------------------------------------------------------------------
# The checks
# ------------------------------------------------------------------------------------------------

class Report:
    def __init__(self, base: Path, verbose: bool) -> None:
        self.base = base
        self.verbose = verbose
        self.passed = 0
        self.failed = 0

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.base))
        except ValueError:
            return str(path)

    def example(self, path: Path, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            for problem in problems:
                print(f"FAIL {self.rel(path)}: {problem}")
        else:
            self.passed += 1
            if self.verbose:
                print(f"ok   {self.rel(path)}")

    def problem(self, path: Path, message: str) -> None:
        self.failed += 1
        print(f"FAIL {self.rel(path)}: {message}")


def load_json_file(path: Path, report: Report):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        report.problem(path, f"cannot read JSON: {exc}")
        return None


def check_topic_json(folder: Path, topic: dict, report: Report) -> None:
    path = folder / "topic.json"
    direction = topic.get("direction")
    if direction not in ("input", "output"):
        report.problem(path, f'"direction" must be "input" or "output", not {direction!r}')
    required = INPUT_TOPIC_KEYS if direction == "input" else TOPIC_KEYS
    for key in required:
        if key not in topic or topic[key] in (None, ""):
            report.problem(path, f'missing key "{key}"')
    name = topic.get("name", "")
    if not re.fullmatch(r"cloudwaste\.[a-z0-9-]+\.v[0-9]+", str(name)):
        report.problem(path, f'"name" {name!r} is not like cloudwaste.<short-name>.v1')
    elif name.split(".")[1] != folder.name:
        report.problem(path, f'"name" {name!r} does not match the folder name {folder.name!r}')
    partitions = topic.get("partitions")
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        report.problem(path, f'"partitions" must be a positive integer, not {partitions!r}')
    command = str(topic.get("create_command", ""))
    for needle in ("kafka-topics.sh", "--create", f"--topic {name}", f"--partitions {partitions}",
                   "--replication-factor"):
        if needle not in command:
            report.problem(path, f'"create_command" lacks "{needle}"')
    if folder.name == "dead-letters":
        headers = topic.get("headers")
        if not isinstance(headers, dict) or any(h not in headers for h in DEAD_LETTER_HEADERS):
            report.problem(path, f'"headers" must describe {", ".join(DEAD_LETTER_HEADERS)}')


def check_schema_json(folder: Path, schema: dict, report: Report) -> bool:
    path = folder / "schema.json"
    ok = True
    if schema.get("$schema") != DRAFT_2020_12:
        report.problem(path, f'"$schema" must be {DRAFT_2020_12}')
        ok = False
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        report.problem(path, f"not a valid draft 2020-12 schema: {exc.message}")
        return False
    if schema.get("type") != "object" or schema.get("additionalProperties") is not True:
        report.problem(path, 'the value schema must be "type": "object" with "additionalProperties": true')
        ok = False
    return ok


def check_valid(path: Path, validator, schema: dict, now: dt.datetime) -> tuple[list[str], object]:
    data = path.read_bytes()
    parsed, reason = strict_parse(data)
    if reason:
        return [f"a valid example must be well-formed, but the decoder would say {reason!r}"], None
    record = _plain(parsed)
    problems = [f"schema rejects it: {field}: {kw}" for field, kw in schema_errors(validator, record)]
    problems += [f"decoder-only rule fails: {p}" for p in decoder_only_problems(record, schema, now)]
    return problems, record


def check_invalid(path: Path, entry, validator, schema: dict, now: dt.datetime) -> list[str]:
    if not isinstance(entry, dict) or not isinstance(entry.get("reason"), str) \
            or not isinstance(entry.get("schema_rejects"), bool):
        return ['reasons.json entry must be {"reason": "<code>: <field>", "schema_rejects": true|false}']
    reason, rejects = entry["reason"], entry["schema_rejects"]
    code, _, field = reason.partition(": ")
    if code in RECORD_CODES:
        if field:
            return [f"reason {reason!r}: the code {code} takes no field"]
    elif code in FIELD_CODES:
        if not field:
            return [f"reason {reason!r}: the code {code} needs a field (`{code}: <field>`)"]
        if field not in schema.get("properties", {}):
            return [f"reason {reason!r}: {field!r} is not a top-level field of the schema"]
    else:
        return [f"reason {reason!r}: unknown code {code!r}"]

    parsed, parse_reason = strict_parse(path.read_bytes())

    if rejects:
        if code not in SCHEMA_KEYWORDS_FOR_CODE:
            return [f"schema_rejects is true, but JSON Schema cannot detect {code}"]
        if parse_reason:
            return [f"schema_rejects is true, but the bytes are not plain JSON ({parse_reason})"]
        record = _plain(parsed)
        errors = schema_errors(validator, record)
        if not errors:
            return ["schema_rejects is true, but the schema accepts the record"]
        expected_field = ROOT if code == "not_an_object" else field
        fields = {f for f, _ in errors}
        problems = []
        if fields != {expected_field}:
            problems.append(f"schema errors concern {sorted(fields)}, expected only {expected_field!r} "
                            "(an invalid example must have exactly one problem)")
        keywords = {kw for _, kw in errors}
        if not keywords <= SCHEMA_KEYWORDS_FOR_CODE[code]:
            problems.append(f"schema failed on {sorted(keywords)}, which does not fit {code}")
        extra = decoder_only_problems(record, schema, now)
        if extra:
            problems.append(f"also breaks decoder-only rules: {extra}")
        return problems

    # schema_rejects false: the decoder alone catches it.
    if code in RECORD_CODES - {"not_an_object"} or code in ("duplicate_field", "invalid_number"):
        if parse_reason != reason:
            return [f"expected the decoder to say {reason!r} while parsing, got {parse_reason or 'no problem'!r}"]
        if code in ("duplicate_field", "invalid_number"):
            # The rest of the record must be fine, whichever duplicate wins.
            variants = [_plain(parsed, overflow_as=0.0), _plain(parsed, first_wins=True, overflow_as=0.0)]
            for variant in variants:
                errors = schema_errors(validator, variant)
                if errors or decoder_only_problems(variant, schema, now):
                    return [f"has more than one problem: {errors or decoder_only_problems(variant, schema, now)}"]
        return []
    if parse_reason:
        return [f"the bytes fail parsing ({parse_reason}) before the decoder can find {reason!r}"]
    record = _plain(parsed)
    errors = schema_errors(validator, record)
    if errors:
        return [f"schema_rejects is false, but the schema rejects it: {errors}"]
    found = decoder_only_problems(record, schema, now)
    if found != [reason]:
        return [f"decoder-only rules give {found}, expected [{reason!r}]"]
    return []


def example_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "reasons.json")


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    topics_dir = Path(args[0]) if args else Path(__file__).resolve().parent.parent / "topics"
    if not topics_dir.is_dir():
        print(f"check-topic-examples: no topics folder at {topics_dir}", file=sys.stderr)
        return 2
    report = Report(topics_dir.parent, verbose)
    format_checker = make_format_checker()
    now = dt.datetime.now(dt.timezone.utc)
    providers_seen: set[str] = set()

    folders = sorted(p for p in topics_dir.iterdir() if p.is_dir())
    if not folders:
        report.problem(topics_dir, "no topic folders")
    for folder in folders:
        topic = load_json_file(folder / "topic.json", report) if (folder / "topic.json").exists() else None
        if topic is None:
            if not (folder / "topic.json").exists():
                report.problem(folder, "topic.json is missing")
            continue
        check_topic_json(folder, topic, report)
        is_input = topic.get("direction") == "input"

        schema_path = folder / "schema.json"
        if not schema_path.exists():
            if is_input:
                report.problem(folder, "schema.json is missing (every input topic needs one)")
            continue
        schema = load_json_file(schema_path, report)
        if not isinstance(schema, dict) or not check_schema_json(folder, schema, report):
            continue
        validator = Draft202012Validator(schema, format_checker=format_checker)

        valid = example_files(folder / "examples" / "valid")
        invalid = example_files(folder / "examples" / "invalid")
        if is_input and len(valid) < MIN_VALID_PER_INPUT:
            report.problem(folder, f"{len(valid)} valid examples, at least {MIN_VALID_PER_INPUT} expected")
        if is_input and len(invalid) < MIN_INVALID_PER_INPUT:
            report.problem(folder, f"{len(invalid)} invalid examples, at least {MIN_INVALID_PER_INPUT} expected")
        if not is_input and not valid:
            report.problem(folder, "an output topic with a schema needs valid examples")

        for path in valid:
            problems, record = ([f"file name is not NN-short-description.json"], None) \
                if not EXAMPLE_NAME.match(path.name) else check_valid(path, validator, schema, now)
            if is_input and isinstance(record, dict) and record.get("provider") in PROVIDERS:
                providers_seen.add(record["provider"])
            report.example(path, problems)

        reasons_path = folder / "examples" / "invalid" / "reasons.json"
        reasons = {}
        if invalid or reasons_path.exists():
            loaded = load_json_file(reasons_path, report) if reasons_path.exists() else None
            if not reasons_path.exists():
                report.problem(reasons_path, "missing")
            elif not isinstance(loaded, dict):
                report.problem(reasons_path, "must be an object mapping file names to reasons")
            else:
                reasons = loaded
            for name in sorted(set(reasons) - {p.name for p in invalid}):
                report.problem(reasons_path, f"lists {name!r}, which is not an invalid example file")
        for path in invalid:
            if not EXAMPLE_NAME.match(path.name):
                report.example(path, ["file name is not NN-short-description.json"])
            elif path.name not in reasons:
                report.example(path, ["not listed in reasons.json"])
            else:
                report.example(path, check_invalid(path, reasons[path.name], validator, schema, now))

    missing = PROVIDERS - providers_seen
    if missing:
        report.problem(topics_dir, f"no valid input example for provider(s) {sorted(missing)}")

    print(f"topic-examples: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
