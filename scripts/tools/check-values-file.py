"""Checks a `bench-decode --write-values` file: COUNT values, each a 4-byte little-endian length
and that many bytes, nothing after the last; most of them JSON objects (the generator makes a few
hostile ones on purpose)."""
import json
import struct
import sys

path, expected = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
offset, values, objects = 0, 0, 0
while offset < len(data):
    if offset + 4 > len(data):
        sys.exit(f"{path}: a length cut short at byte {offset}")
    (n,) = struct.unpack_from("<I", data, offset)
    offset += 4
    if offset + n > len(data):
        sys.exit(f"{path}: value {values} runs past the end")
    try:
        objects += isinstance(json.loads(data[offset:offset + n]), dict)
    except ValueError:
        pass
    offset += n
    values += 1
if values != expected or objects < expected * 0.95:
    sys.exit(f"{path}: {values} values ({objects} JSON objects), expected {expected}")
print(f"{path}: {values} values, {objects} of them JSON objects")
