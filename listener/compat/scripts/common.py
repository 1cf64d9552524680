"""Shared by the Python clients' scripts: the records and the checks."""
import sys


def parse(argv):
    if len(argv) != 4 or argv[2] not in ("setup", "resume", "member"):
        sys.exit("usage: %s ADDR setup|resume|member NAME" % argv[0])
    return argv[1], argv[2], argv[3]


def keyed(name, first, n):
    """n records numbered from first, over ten keys (as matrix_test.go)."""
    return [("%s-k%d" % (name, j % 10), "%s-v%d" % (name, j)) for j in range(first, first + n)]


def expect(step, want, got):
    if sorted(want) != sorted(got):
        sys.exit("%s: want %s, got %s" % (step, sorted(want), sorted(got)))
    print("ok", step, flush=True)


def member_out(partition, key):
    print("record", partition, key, flush=True)
