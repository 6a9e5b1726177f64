import sys

# Accepts the answer in any letter case.
answer = open(sys.argv[2]).read().split()
output = sys.stdin.read().split()
sys.exit(42 if [w.lower() for w in output] == [w.lower() for w in answer] else 43)
