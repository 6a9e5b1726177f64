"""Kattis output validator: accepts any 1-based pair i < j with a_i + a_j = s."""
import sys

ACCEPT, WRONG = 42, 43


def main() -> int:
    input_file, _answer_file, feedback_dir = sys.argv[1:4]
    with open(input_file) as f:
        n, s = map(int, f.readline().split())
        a = list(map(int, f.readline().split()))
    tokens = sys.stdin.read().split()
    if len(tokens) != 2 or not all(t.lstrip("-").isdigit() for t in tokens):
        return WRONG
    i, j = map(int, tokens)
    return ACCEPT if 1 <= i < j <= n and a[i - 1] + a[j - 1] == s else WRONG


if __name__ == "__main__":
    sys.exit(main())
