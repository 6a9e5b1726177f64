"""Writes the bundled corpus: our own small problems, written for the pipeline's embedded default, with
planted defects that each stage should catch (see PLANTED), and a small evaluation set to decontaminate
against. Expected outputs come from running each reference solution, so tests and references agree
(except where a wrong test is planted on purpose).

    python -m megatron_mc.data.pipeline.corpus.make_corpus
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = 8

# problem id -> the defect planted in it and the stage expected to catch it
PLANTED = {
    "bundled/sum-of-evens-copy": "exact duplicate of bundled/sum-of-evens (process: exact_duplicate)",
    "bundled/vowel-count-reworded": "near duplicate of bundled/vowel-count (process: near_duplicate)",
    "bundled/no-output-section": "statement without an output section (process: missing_output_section)",
    "bundled/digit-sum-2025": "released in the evaluation window (process: released_in_eval_window)",
    "bundled/staircase-copy": "statement copied from the evaluation set (process: eval_ngram_overlap)",
    "bundled/add-two-numbers": "very easy (filter: too easy)",
    "bundled/two-tests-only": "two tests only (filter: too few tests)",
    "bundled/guess-number": "interactive (filter: interactive)",
    "bundled/max-subarray": "test 3 has a wrong expected output (verify: the test is dropped)",
    "bundled/absolute-difference": "tests so weak that a known-wrong solution passes (verify: weak_tests)",
}


def ints(values) -> str:
    return " ".join(map(str, values))


def gen_list(lo, hi, nlo=1, nhi=12):
    def make(rng):
        n = rng.randint(nlo, nhi)
        return f"{n}\n{ints(rng.randint(lo, hi) for _ in range(n))}\n"
    return make


def gen_word(alphabet="abcdefghijklmnopqrstuvwxyz", lo=1, hi=20):
    return lambda rng: "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi))) + "\n"


def gen_brackets(rng):
    if rng.random() < 0.3:   # as many ')' as '(' but out of order: what counting alone gets wrong
        k = rng.randint(1, 5)
        return ")" * k + "(" * k + "\n"
    if rng.random() < 0.5:
        s, depth = [], 0
        for _ in range(rng.randint(1, 10)):
            if depth and rng.random() < 0.5:
                s.append(")"); depth -= 1
            else:
                s.append("("); depth += 1
        s += [")"] * depth
        return "".join(s) + "\n"
    return "".join(rng.choice("()") for _ in range(rng.randint(1, 12))) + "\n"


def gen_graph(weighted=False, directed=False):
    def make(rng):
        n = rng.randint(2, 8)
        m = rng.randint(1, 10)
        edges = []
        for _ in range(m):
            u, v = rng.randint(1, n), rng.randint(1, n)
            edges.append(f"{u} {v} {rng.randint(1, 20)}" if weighted else f"{u} {v}")
        return f"{n} {m}\n" + "\n".join(edges) + "\n"
    return make


def gen_grid(rng):
    r, c = rng.randint(2, 6), rng.randint(2, 6)
    rows = [["#" if rng.random() < 0.25 else "." for _ in range(c)] for _ in range(r)]
    rows[0][0] = rows[-1][-1] = "."
    return f"{r} {c}\n" + "\n".join("".join(row) for row in rows) + "\n"


def gen_intervals(rng):
    n = rng.randint(1, 6)
    lines = []
    for _ in range(n):
        a = rng.randint(0, 30)
        lines.append(f"{a} {a + rng.randint(0, 10)}")
    return f"{n}\n" + "\n".join(lines) + "\n"


def gen_knapsack(rng):
    n, cap = rng.randint(1, 6), rng.randint(1, 20)
    items = [f"{rng.randint(1, 10)} {rng.randint(1, 30)}" for _ in range(n)]
    return f"{n} {cap}\n" + "\n".join(items) + "\n"


def gen_two_words(rng):
    w = gen_word("abc", 0, 7)
    return w(rng) + w(rng)


def gen_window(rng):
    n = rng.randint(1, 10)
    k = rng.randint(1, n)
    return f"{n} {k}\n{ints(rng.randint(1, 4) for _ in range(n))}\n"


def gen_queries(rng):
    n = rng.randint(1, 8)
    arr = sorted(rng.randint(0, 20) for _ in range(n))
    q = rng.randint(1, 5)
    return f"{n}\n{ints(arr)}\n{q}\n{ints(rng.randint(-2, 22) for _ in range(q))}\n"


def gen_matrix(rng):
    r, c = rng.randint(1, 4), rng.randint(1, 4)
    return f"{r} {c}\n" + "\n".join(ints(rng.randint(0, 9) for _ in range(c)) for _ in range(r)) + "\n"


def gen_pair(lo, hi, ordered=False):
    def make(rng):
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if ordered and a < b:
            a, b = b, a
        return f"{a} {b}\n"
    return make


def gen_one(lo, hi):
    return lambda rng: f"{rng.randint(lo, hi)}\n"


def gen_dag(rng):
    n = rng.randint(2, 7)
    order = list(range(1, n + 1))
    rng.shuffle(order)
    edges = set()
    for _ in range(rng.randint(1, 8)):
        i, j = sorted(rng.sample(range(n), 2))
        edges.add((order[i], order[j]))
    if rng.random() < 0.25:
        i, j = sorted(rng.sample(range(n), 2))
        edges.add((order[j], order[i]))
    return f"{n} {len(edges)}\n" + "\n".join(f"{u} {v}" for u, v in sorted(edges)) + "\n"


def io(input_text: str, output_text: str) -> str:
    return f"\n\nInput\n{input_text}\n\nOutput\n{output_text}"


STDIO = [
    dict(id="sum-of-evens", title="Sum of Evens", date="2022-03-14", difficulty="easy", rating=800, tags=["implementation"],
         statement="You are given a list of integers. Find the sum of the elements that are even." +
         io("The first line contains n (1 <= n <= 100). The second line contains n integers a_i (-1000 <= a_i <= 1000).",
            "Print the sum of the even elements (0 if there are none)."),
         solution="n = int(input())\na = list(map(int, input().split()))\nprint(sum(x for x in a if x % 2 == 0))",
         wrong="n = int(input())\na = list(map(int, input().split()))\nprint(sum(x for x in a if x > 0 and x % 2 == 0))",
         gen=gen_list(-50, 50)),
    dict(id="vowel-count", title="Vowel Count", date="2022-05-02", difficulty="easy", rating=800, tags=["strings"],
         statement="A word of lowercase Latin letters is written on the board. The letters a, e, i, o and u are "
         "vowels and every other letter is a consonant. Count how many letters of the word are vowels, counting "
         "repeated letters each time they appear." +
         io("A single line holds the word, of length between 1 and 100, made of lowercase Latin letters only.",
            "Print one integer: the number of vowels in the word."),
         solution="s = input().strip()\nprint(sum(c in 'aeiou' for c in s))",
         gen=gen_word()),
    dict(id="max-subarray", title="Best Stretch", date="2022-07-19", difficulty="medium", rating=1200, tags=["dp"],
         statement="A hiker records the height change of each hour of a walk. Find the largest total height change "
         "over a non-empty stretch of consecutive hours." +
         io("The first line contains n (1 <= n <= 10^5). The second line contains n integers c_i (|c_i| <= 10^4).",
            "Print the largest sum of a non-empty contiguous segment."),
         solution="n = int(input())\nbest = cur = None\nfor x in map(int, input().split()):\n"
                  "    cur = x if cur is None or cur < 0 else cur + x\n    best = cur if best is None else max(best, cur)\nprint(best)",
         solution2="n = int(input())\na = list(map(int, input().split()))\nbest = a[0]\nfor i in range(n):\n"
                   "    s = 0\n    for j in range(i, n):\n        s += a[j]\n        best = max(best, s)\nprint(best)",
         wrong="n = int(input())\nprint(max(map(int, input().split())))",
         gen=gen_list(-20, 20), wrong_test=3),
    dict(id="balanced-brackets", title="Balanced Brackets", date="2022-08-01", difficulty="easy", rating=1000,
         tags=["stack", "strings"],
         statement="A string of round brackets is balanced if every opening bracket has a matching closing bracket "
         "after it and brackets are properly nested. Decide whether the given string is balanced." +
         io("One line with a string of '(' and ')' characters, 1 to 10^5 characters long.",
            "Print YES if the string is balanced and NO otherwise."),
         solution="s = input().strip()\nd = 0\nok = True\nfor c in s:\n    d += 1 if c == '(' else -1\n"
                  "    if d < 0:\n        ok = False\nprint('YES' if ok and d == 0 else 'NO')",
         wrong="s = input().strip()\nprint('YES' if s.count('(') == s.count(')') else 'NO')",
         gen=gen_brackets),
    dict(id="gcd-of-list", title="Common Divisor", date="2022-09-10", difficulty="easy", rating=900, tags=["math"],
         statement="Find the greatest common divisor of all the given positive integers." +
         io("The first line contains n (1 <= n <= 10^5), the second n integers between 1 and 10^9.",
            "Print the greatest common divisor of the n numbers."),
         solution="import math\nn = int(input())\ng = 0\nfor x in map(int, input().split()):\n    g = math.gcd(g, x)\nprint(g)",
         gen=lambda rng: (lambda k, n: f"{n}\n{ints(k * rng.randint(1, 30) for _ in range(n))}\n")(rng.randint(1, 12), rng.randint(1, 8))),
    dict(id="prime-count", title="Counting Primes", date="2022-10-03", difficulty="medium", rating=1300,
         tags=["math", "number theory"],
         statement="Count the prime numbers that are less than or equal to n. A prime is an integer greater than 1 "
         "whose only positive divisors are 1 and itself." +
         io("A single integer n (1 <= n <= 10^6).", "Print the number of primes p with p <= n."),
         solution="n = int(input())\nsieve = bytearray([1]) * (n + 1)\nsieve[0:2] = b'\\x00\\x00'[:min(2, n + 1)]\n"
                  "i = 2\nwhile i * i <= n:\n    if sieve[i]:\n        sieve[i*i::i] = bytearray(len(sieve[i*i::i]))\n    i += 1\nprint(sum(sieve))",
         wrong="n = int(input())\nprint(sum(1 for k in range(2, n + 1) if all(k % d for d in range(2, k)) and k % 2))",
         gen=gen_one(1, 5000)),
    dict(id="longest-increasing", title="Rising Sequence", date="2022-11-21", difficulty="medium", rating=1500,
         tags=["dp", "binary search"],
         statement="Find the length of the longest strictly increasing subsequence of the array. A subsequence keeps "
         "the order of the elements but may skip some of them." +
         io("The first line contains n (1 <= n <= 2*10^5); the second n integers up to 10^9 in absolute value.",
            "Print the length of the longest strictly increasing subsequence."),
         solution="import bisect\nn = int(input())\ntails = []\nfor x in map(int, input().split()):\n"
                  "    i = bisect.bisect_left(tails, x)\n    tails[i:i+1] = [x]\nprint(len(tails))",
         gen=gen_list(0, 15)),
    dict(id="coin-ways", title="Coin Combinations", date="2023-01-09", difficulty="medium", rating=1500, tags=["dp"],
         statement="Using coins of the given values, each value available any number of times, count the number of "
         "ways to pay exactly the amount x. Two ways that use the same coins in a different order are the same way. "
         "The answer can be large: give it modulo 1000000007." +
         io("The first line contains n and x (1 <= n <= 100, 1 <= x <= 10^6). The second line has n distinct coin values.",
            "Print the number of ways modulo 1000000007."),
         solution="n, x = map(int, input().split())\nways = [1] + [0] * x\nfor c in map(int, input().split()):\n"
                  "    for s in range(c, x + 1):\n        ways[s] = (ways[s] + ways[s - c]) % 1000000007\nprint(ways[x])",
         gen=lambda rng: (lambda cs: f"{len(cs)} {rng.randint(1, 60)}\n{ints(cs)}\n")(rng.sample(range(1, 12), rng.randint(1, 4)))),
    dict(id="grid-path", title="Through the Maze", date="2023-02-13", difficulty="medium", rating=1400,
         tags=["graphs", "bfs"],
         statement="A maze is a grid of free cells '.' and walls '#'. From the top-left cell you may step to a free "
         "cell sharing a side. Find the fewest steps needed to reach the bottom-right cell." +
         io("The first line holds r and c (2 <= r, c <= 1000); then r lines of c characters each.",
            "Print the smallest number of steps, or -1 if the bottom-right cell cannot be reached."),
         solution="from collections import deque\nr, c = map(int, input().split())\ng = [input() for _ in range(r)]\n"
                  "dist = [[-1] * c for _ in range(r)]\ndist[0][0] = 0\nq = deque([(0, 0)])\nwhile q:\n    y, x = q.popleft()\n"
                  "    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):\n        ny, nx = y + dy, x + dx\n"
                  "        if 0 <= ny < r and 0 <= nx < c and g[ny][nx] == '.' and dist[ny][nx] < 0:\n"
                  "            dist[ny][nx] = dist[y][x] + 1\n            q.append((ny, nx))\nprint(dist[r-1][c-1])",
         gen=gen_grid),
    dict(id="pair-sum-count", title="Pairs with a Given Sum", date="2023-03-06", difficulty="medium", rating=1300,
         tags=["hashing", "two pointers"],
         statement="Count the pairs of positions i < j whose elements add up to k." +
         io("The first line contains n and k (1 <= n <= 2*10^5, |k| <= 10^9); the second n integers.",
            "Print the number of pairs (i, j), i < j, with a_i + a_j = k."),
         solution="from collections import Counter\nn, k = map(int, input().split())\nseen = Counter()\ntotal = 0\n"
                  "for x in map(int, input().split()):\n    total += seen[k - x]\n    seen[x] += 1\nprint(total)",
         gen=lambda rng: (lambda n: f"{n} {rng.randint(0, 10)}\n{ints(rng.randint(0, 8) for _ in range(n))}\n")(rng.randint(1, 10))),
    dict(id="interval-union", title="Painted Fence", date="2023-04-17", difficulty="medium", rating=1300,
         tags=["sorting"],
         statement="Several painters each painted a segment [l, r] of a long fence. Find the total length of fence "
         "that is painted at least once." +
         io("The first line holds n (1 <= n <= 2*10^5); each of the next n lines holds l and r (0 <= l <= r <= 10^9).",
            "Print the total painted length."),
         solution="n = int(input())\nsegs = sorted(tuple(map(int, input().split())) for _ in range(n))\ntotal = 0\n"
                  "cur_l, cur_r = segs[0]\nfor l, r in segs[1:]:\n    if l > cur_r:\n        total += cur_r - cur_l\n"
                  "        cur_l, cur_r = l, r\n    else:\n        cur_r = max(cur_r, r)\ntotal += cur_r - cur_l\nprint(total)",
         gen=gen_intervals),
    dict(id="knapsack", title="Backpack", date="2023-05-22", difficulty="medium", rating=1600, tags=["dp"],
         statement="Each item has a weight and a value. Choose items with total weight at most W to make the total "
         "value as large as possible; each item can be taken at most once." +
         io("The first line holds n and W (1 <= n <= 100, 1 <= W <= 10^5); each next line holds an item's weight and value.",
            "Print the largest total value."),
         solution="n, W = map(int, input().split())\nbest = [0] * (W + 1)\nfor _ in range(n):\n    w, v = map(int, input().split())\n"
                  "    for c in range(W, w - 1, -1):\n        best[c] = max(best[c], best[c - w] + v)\nprint(best[W])",
         gen=gen_knapsack),
    dict(id="edit-distance", title="Typo Fixer", date="2023-06-12", difficulty="medium", rating=1700,
         tags=["dp", "strings"],
         statement="Find the least number of single-character insertions, deletions and replacements that turn the "
         "first word into the second." +
         io("Two lines, each with a word of at most 5000 lowercase letters (a word may be empty).",
            "Print the edit distance between the two words."),
         solution="a = input().strip()\nb = input().strip()\nprev = list(range(len(b) + 1))\nfor i, ca in enumerate(a, 1):\n"
                  "    cur = [i]\n    for j, cb in enumerate(b, 1):\n        cur.append(min(prev[j] + 1, cur[j-1] + 1, prev[j-1] + (ca != cb)))\n"
                  "    prev = cur\nprint(prev[-1])",
         gen=gen_two_words),
    dict(id="components", title="Islands of Friends", date="2023-07-03", difficulty="medium", rating=1400,
         tags=["graphs", "dsu"],
         statement="People 1..n know each other through m friendships. A group is a set of people connected "
         "through chains of friendships. Count the groups." +
         io("The first line holds n and m (1 <= n, m <= 2*10^5); then m lines with two people u and v.",
            "Print the number of groups."),
         solution="import sys\ndata = sys.stdin.read().split()\nn, m = int(data[0]), int(data[1])\nparent = list(range(n + 1))\n"
                  "def find(x):\n    while parent[x] != x:\n        parent[x] = parent[parent[x]]\n        x = parent[x]\n    return x\n"
                  "groups = n\nfor i in range(m):\n    a, b = find(int(data[2 + 2*i])), find(int(data[3 + 2*i]))\n"
                  "    if a != b:\n        parent[a] = b\n        groups -= 1\nprint(groups)",
         gen=gen_graph()),
    dict(id="cheapest-route", title="Cheapest Route", date="2023-08-14", difficulty="hard", rating=1900,
         tags=["graphs", "shortest paths"],
         statement="Cities 1..n are joined by m two-way roads, each with a toll. Find the cheapest total toll to "
         "travel from city 1 to city n." +
         io("The first line holds n and m (2 <= n <= 10^5, 1 <= m <= 2*10^5); each next line holds u, v and the toll w (1 <= w <= 10^9).",
            "Print the cheapest total toll, or -1 if city n cannot be reached."),
         solution="import heapq, sys\ndata = sys.stdin.read().split()\nn, m = int(data[0]), int(data[1])\nadj = [[] for _ in range(n + 1)]\n"
                  "for i in range(m):\n    u, v, w = (int(t) for t in data[2 + 3*i:5 + 3*i])\n    adj[u].append((v, w))\n    adj[v].append((u, w))\n"
                  "dist = [None] * (n + 1)\nheap = [(0, 1)]\nwhile heap:\n    d, u = heapq.heappop(heap)\n    if dist[u] is not None:\n        continue\n"
                  "    dist[u] = d\n    for v, w in adj[u]:\n        if dist[v] is None:\n            heapq.heappush(heap, (d + w, v))\n"
                  "print(dist[n] if dist[n] is not None else -1)",
         gen=gen_graph(weighted=True)),
    dict(id="first-at-least", title="Lower Bound Queries", date="2023-09-04", difficulty="medium", rating=1200,
         tags=["binary search"],
         statement="A sorted array is given. For each query x, find the first position whose element is at least x." +
         io("Line 1: n. Line 2: n sorted integers. Line 3: q. Line 4: q integers x.",
            "Print q integers separated by spaces: the 1-based position of the first element >= x, or n + 1 if there is none."),
         solution="import bisect\nn = int(input())\na = list(map(int, input().split()))\nq = int(input())\n"
                  "print(' '.join(str(bisect.bisect_left(a, x) + 1) for x in map(int, input().split())))",
         gen=gen_queries),
    dict(id="rotate-matrix", title="Quarter Turn", date="2023-10-02", difficulty="easy", rating=1000,
         tags=["implementation"],
         statement="Rotate the given matrix by 90 degrees clockwise." +
         io("The first line holds r and c; then r lines of c integers.",
            "Print the rotated matrix: c lines of r integers separated by spaces."),
         solution="r, c = map(int, input().split())\nm = [input().split() for _ in range(r)]\n"
                  "for j in range(c):\n    print(' '.join(m[i][j] for i in range(r - 1, -1, -1)))",
         gen=gen_matrix),
    dict(id="run-length", title="Run-Length Code", date="2023-10-30", difficulty="easy", rating=900, tags=["strings"],
         statement="Compress a word by writing each maximal run of equal letters as the letter followed by the run's "
         "length, e.g. aaabcc becomes a3b1c2." +
         io("One line with a word of 1 to 10^5 lowercase letters.", "Print the compressed word."),
         solution="s = input().strip()\nout = []\ni = 0\nwhile i < len(s):\n    j = i\n    while j < len(s) and s[j] == s[i]:\n"
                  "        j += 1\n    out.append(f'{s[i]}{j - i}')\n    i = j\nprint(''.join(out))",
         gen=gen_word("ab", 1, 15)),
    dict(id="inversions", title="Out of Order", date="2023-11-20", difficulty="hard", rating=1800,
         tags=["divide and conquer", "data structures"],
         statement="Count the pairs of positions i < j with a_i > a_j." +
         io("The first line contains n (1 <= n <= 2*10^5); the second n integers.", "Print the number of inversions."),
         solution="def count(a):\n    if len(a) < 2:\n        return a, 0\n    mid = len(a) // 2\n    l, x = count(a[:mid])\n    r, y = count(a[mid:])\n"
                  "    merged, inv, i, j = [], x + y, 0, 0\n    while i < len(l) and j < len(r):\n        if r[j] < l[i]:\n"
                  "            merged.append(r[j]); inv += len(l) - i; j += 1\n        else:\n            merged.append(l[i]); i += 1\n"
                  "    return merged + l[i:] + r[j:], inv\ninput()\nprint(count(list(map(int, input().split())))[1])",
         gen=gen_list(0, 9)),
    dict(id="distinct-windows", title="Window Variety", date="2023-12-11", difficulty="medium", rating=1500,
         tags=["sliding window"],
         statement="For every window of k consecutive elements, count the distinct values in it." +
         io("The first line holds n and k (1 <= k <= n <= 2*10^5); the second n integers.",
            "Print n - k + 1 integers separated by spaces: the distinct counts of the windows from left to right."),
         solution="from collections import Counter\nn, k = map(int, input().split())\na = list(map(int, input().split()))\n"
                  "c = Counter(a[:k])\nres = [len(c)]\nfor i in range(k, n):\n    c[a[i]] += 1\n    c[a[i-k]] -= 1\n"
                  "    if c[a[i-k]] == 0:\n        del c[a[i-k]]\n    res.append(len(c))\nprint(' '.join(map(str, res)))",
         gen=gen_window),
    dict(id="topological-order", title="Course Plan", date="2024-01-15", difficulty="hard", rating=1700,
         tags=["graphs", "topological sort"],
         statement="Courses 1..n have prerequisites: an edge u v means course u must be taken before course v. "
         "Find the order of all courses that respects every prerequisite and is lexicographically smallest." +
         io("The first line holds n and m; the next m lines hold u and v.",
            "Print the n courses in order separated by spaces, or IMPOSSIBLE if no order exists."),
         solution="import heapq\nn, m = map(int, input().split())\nadj = [[] for _ in range(n + 1)]\nindeg = [0] * (n + 1)\n"
                  "for _ in range(m):\n    u, v = map(int, input().split())\n    adj[u].append(v)\n    indeg[v] += 1\n"
                  "heap = [i for i in range(1, n + 1) if indeg[i] == 0]\nheapq.heapify(heap)\norder = []\nwhile heap:\n"
                  "    u = heapq.heappop(heap)\n    order.append(u)\n    for v in adj[u]:\n        indeg[v] -= 1\n"
                  "        if indeg[v] == 0:\n            heapq.heappush(heap, v)\nprint(' '.join(map(str, order)) if len(order) == n else 'IMPOSSIBLE')",
         gen=gen_dag),
    dict(id="add-two-numbers", title="A+B", date="2022-01-10", difficulty="easy", rating=800, tags=["implementation"],
         statement="<p>Compute a&nbsp;+&nbsp;b.</p><p><b>Input</b></p><p>Two integers a and b "
         "(|a|, |b| &lt;= 10<sup>9</sup>) on one line.</p><p><b>Output</b></p><p>Print a + b.</p>",
         solution="a, b = map(int, input().split())\nprint(a + b)",
         gen=gen_pair(-1000, 1000)),
    dict(id="square-sum-mod", title="Squares Modulo", date="2024-02-05", difficulty="medium", rating=1300,
         tags=["math"],
         statement="Given $n$ and $m$, compute $\\left(\\sum_{i=1}^{n} i^{2}\\right) \\bmod m$.\n\n"
         "\\section*{Input}\nOne line with $n$ and $m$, where $1 \\le n \\le 10^{18}$ and $2 \\le m \\le 10^{9}$.\n\n"
         "\\section*{Output}\nPrint the sum of the squares $1^2 + 2^2 + \\ldots + n^2$ modulo $m$.",
         solution="n, m = map(int, input().split())\nprint(n * (n + 1) * (2 * n + 1) // 6 % m)",
         wrong="n, m = map(int, input().split())\nprint(sum(i * i for i in range(1, min(n, 10**6) + 1)) % m)",
         gen=lambda rng: f"{rng.choice([rng.randint(1, 50), rng.randint(10**12, 10**18)])} {rng.randint(2, 1000)}\n"),
    dict(id="min-palindrome-cuts", title="Palindrome Pieces", date="2024-03-18", difficulty="hard", rating=1900,
         tags=["dp", "strings"],
         statement="Cut the word into the fewest pieces such that every piece is a palindrome; print the number of cuts." +
         io("One line with a word of 1 to 2000 lowercase letters.", "Print the smallest number of cuts."),
         solution="s = input().strip()\nn = len(s)\npal = [[False] * n for _ in range(n)]\nfor i in range(n - 1, -1, -1):\n"
                  "    for j in range(i, n):\n        pal[i][j] = s[i] == s[j] and (j - i < 2 or pal[i+1][j-1])\n"
                  "cuts = [0] * n\nfor j in range(n):\n    if pal[0][j]:\n        continue\n"
                  "    cuts[j] = min(cuts[i-1] + 1 for i in range(1, j + 1) if pal[i][j])\nprint(cuts[-1])",
         gen=gen_word("ab", 1, 14)),
    dict(id="absolute-difference", title="Distance on a Line", date="2024-04-08", difficulty="easy", rating=800,
         tags=["math"],
         statement="Two points on a number line have coordinates a and b. Print the distance between them." +
         io("One line with the integers a and b (|a|, |b| <= 10^9).", "Print |a - b|."),
         solution="a, b = map(int, input().split())\nprint(abs(a - b))",
         wrong="a, b = map(int, input().split())\nprint(a - b)",
         gen=gen_pair(0, 100, ordered=True)),
    dict(id="no-output-section", title="Longest Plateau", date="2023-05-08", difficulty="easy", rating=1000,
         tags=["implementation"],
         statement="A plateau is a maximal run of equal consecutive elements. Find the length of the longest plateau."
         "\n\nInput\nThe first line contains n; the second n integers.",
         solution="n = int(input())\na = input().split()\nbest = run = 1\nfor i in range(1, n):\n"
                  "    run = run + 1 if a[i] == a[i-1] else 1\n    best = max(best, run)\nprint(best)",
         gen=gen_list(1, 3)),
    dict(id="digit-sum-2025", title="Digit Sum", date="2025-03-10", difficulty="easy", rating=900, tags=["math"],
         statement="Find the sum of the decimal digits of n." +
         io("One integer n (0 <= n <= 10^18).", "Print the sum of the digits of n."),
         solution="print(sum(map(int, input().strip())))",
         gen=gen_one(0, 10**12)),
    dict(id="staircase-copy", title="Climbing", date="2023-03-27", difficulty="easy", rating=1000, tags=["dp"],
         statement="",  # filled with the evaluation problem's statement below
         solution="n = int(input())\na, b = 1, 1\nfor _ in range(n):\n    a, b = b, (a + b) % 1000000007\nprint(a)",
         gen=gen_one(0, 60)),
    dict(id="two-tests-only", title="Bigger One", date="2023-06-26", difficulty="easy", rating=800,
         tags=["implementation"], tests=2,
         statement="Print the larger of two integers." +
         io("One line with two integers.", "Print the larger one."),
         solution="print(max(map(int, input().split())))",
         gen=gen_pair(-50, 50)),
    dict(id="guess-number", title="Guess the Number", date="2023-09-25", difficulty="medium", rating=1200,
         tags=["interactive", "binary search"],
         statement="This is an interactive problem. The jury picks a number between 1 and 10^9; you may ask at most "
         "30 questions '? x' and the jury answers '<', '>' or '='. Print '! x' once you know the number." +
         io("Answers of the jury to your questions, one per line.", "Your questions and the final answer, one per line; flush after each."),
         solution="lo, hi = 1, 10**9\nwhile True:\n    mid = (lo + hi) // 2\n    print('?', mid, flush=True)\n    r = input().strip()\n"
                  "    if r == '=':\n        print('!', mid, flush=True)\n        break\n    lo, hi = (mid + 1, hi) if r == '>' else (lo, mid - 1)",
         gen=None),
]
SAME_STATEMENT_AS = {"sum-of-evens-copy": "sum-of-evens"}
REWORDED = {"vowel-count-reworded": ("vowel-count", "Count how many letters of the word are vowels",
                                     "Find how many letters of the word are vowels")}

FUNCTION = [
    dict(id="two-sum-indices", title="Two Indices", date="2023-04-03", difficulty="easy", fn="two_sum",
         tags=["hashing"],
         statement="Given a list of integers nums and an integer target, return the indices [i, j] with i < j of the "
         "only pair of elements whose sum is target.",
         starter="def two_sum(nums: list[int], target: int) -> list[int]:\n    ...\n",
         solution="def two_sum(nums, target):\n    seen = {}\n    for j, x in enumerate(nums):\n        if target - x in seen:\n"
                  "            return [seen[target - x], j]\n        seen[x] = j\n",
         cases=[([2, 7, 11, 15], 9), ([3, 2, 4], 6), ([3, 3], 6), ([1, 5, 9, -2], 7), ([0, 4, 3, 0], 0), ([-1, -2, -3, -4, -5], -8)]),
    dict(id="anagram-check", title="Same Letters", date="2023-07-24", difficulty="easy", fn="is_anagram",
         tags=["strings"],
         statement="Return True when the word t is an anagram of the word s (uses the same letters the same number "
         "of times), and False otherwise.",
         starter="def is_anagram(s: str, t: str) -> bool:\n    ...\n",
         solution="def is_anagram(s, t):\n    return sorted(s) == sorted(t)\n",
         cases=[("anagram", "nagaram"), ("rat", "car"), ("", ""), ("ab", "a"), ("listen", "silent"), ("aab", "abb")]),
    dict(id="fibonacci-mod", title="Fibonacci Remainder", date="2024-01-29", difficulty="medium", fn="fib_mod",
         tags=["math", "matrix power"],
         statement="Return F(n) modulo m, where F(0) = 0, F(1) = 1 and F(k) = F(k-1) + F(k-2). n can be as large "
         "as 10^18, so a loop over n is too slow.",
         starter="def fib_mod(n: int, m: int) -> int:\n    ...\n",
         solution="def fib_mod(n, m):\n    def pair(k):\n        if k == 0:\n            return 0, 1\n        a, b = pair(k // 2)\n"
                  "        c = a * (2 * b - a) % m\n        d = (a * a + b * b) % m\n        return (d, (c + d) % m) if k % 2 else (c, d)\n"
                  "    return pair(n)[0] % m\n",
         cases=[(0, 7), (1, 7), (10, 1000), (50, 1000000007), (10**18, 1000000007), (123456789, 97)]),
    dict(id="merge-sorted", title="Zip Two Queues", date="2024-05-13", difficulty="easy", fn="merge_sorted",
         tags=["two pointers"],
         statement="Return one sorted list holding every element of the two sorted lists a and b.",
         starter="def merge_sorted(a: list[int], b: list[int]) -> list[int]:\n    ...\n",
         solution="def merge_sorted(a, b):\n    out, i, j = [], 0, 0\n    while i < len(a) and j < len(b):\n"
                  "        if a[i] <= b[j]:\n            out.append(a[i]); i += 1\n        else:\n            out.append(b[j]); j += 1\n"
                  "    return out + a[i:] + b[j:]\n",
         cases=[([1, 3, 5], [2, 4, 6]), ([], [1]), ([1, 1], [1]), ([-5, 0], [-6, 10, 11]), ([], []), ([2], [1])]),
]

EVAL_SET = [
    dict(id="eval/staircase", date="2025-02-03",
         statement="A staircase has n steps. Each move climbs either one step or two steps. In how many different "
         "ways can you climb from the ground to the top of the staircase? Give the answer modulo 1000000007." +
         io("A single integer n (0 <= n <= 10^6).", "Print the number of ways modulo 1000000007."),
         tests=[("0\n", "1\n"), ("3\n", "3\n"), ("5\n", "8\n")]),
    dict(id="eval/word-frequency", date="2025-03-17",
         statement="Find the word that occurs most often in a text and print it; on ties print the word that comes "
         "first in alphabetical order." +
         io("One line of lowercase words separated by single spaces.", "Print the most frequent word."),
         tests=[("a b a\n", "a\n"), ("x y\n", "x\n")]),
    dict(id="eval/robot-moves", date="2025-04-21",
         statement="A robot starts at the origin and follows a string of moves U, D, L, R. Print the Manhattan "
         "distance between its final position and the origin." +
         io("One line with the moves.", "Print the distance."),
         tests=[("UURD\n", "2\n"), ("LR\n", "0\n")]),
]


def run_python(code: str, stdin: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"reference failed on {stdin!r}: {done.stderr}")
    return done.stdout


def call_python(code: str, fn: str, args: tuple):
    namespace: dict = {}
    exec(code, namespace)
    return namespace[fn](*args)


def stdio_problem(spec: dict, eval_statements: dict[str, str]) -> dict:
    rng = random.Random(spec["id"])
    statement = spec["statement"] or eval_statements["eval/staircase"]
    inputs: list[str] = []
    if spec["gen"] is None:   # interactive: the tests only carry the hidden number
        inputs = [f"{rng.randint(1, 10**9)}\n" for _ in range(TESTS)]
        tests = [{"input": i, "output": ""} for i in inputs]
    else:
        for _ in range(200):
            text = spec["gen"](rng)
            if text not in inputs:
                inputs.append(text)
            if len(inputs) == spec.get("tests", TESTS):
                break
        tests = [{"input": i, "output": run_python(spec["solution"], i)} for i in inputs]
    if "wrong_test" in spec:
        broken = tests[spec["wrong_test"]]
        broken["output"] = str(int(broken["output"]) + 1) + "\n"
    references = [{"language": "python", "code": spec["solution"]}]
    if "solution2" in spec:
        references.append({"language": "python", "code": spec["solution2"]})
    return row(spec, statement, tests, "stdio", references)


def function_problem(spec: dict) -> dict:
    tests = [{"input": "\n".join(json.dumps(a) for a in args),
              "output": json.dumps(call_python(spec["solution"], spec["fn"], args))} for args in spec["cases"]]
    return row(spec, spec["statement"], tests, "function", [{"language": "python", "code": spec["solution"]}])


def row(spec: dict, statement: str, tests: list[dict], kind: str, references: list[dict]) -> dict:
    annotations = {"tags": spec.get("tags", [])}
    if spec.get("rating"):
        annotations["rating"] = spec["rating"]
    return {
        "id": f"bundled/{spec['id']}", "kind": kind, "tests": tests, "fn_name": spec.get("fn"),
        "time_limit_s": 2.0, "memory_limit_mb": 256, "metadata": {"question_title": spec["title"]},
        "source": "bundled", "release_date": spec["date"], "platform": "bundled", "difficulty": spec["difficulty"],
        "statement": f"{spec['title']}\n\n{statement}", "starter_code": spec.get("starter"),
        "reference_solutions": references,
        "incorrect_solutions": [{"language": "python", "code": spec["wrong"]}] if spec.get("wrong") else [],
        "annotations": annotations,
    }


def main() -> None:
    eval_statements = {e["id"]: e["statement"] for e in EVAL_SET}
    rows = [stdio_problem(spec, eval_statements) for spec in STDIO]
    by_id = {r["id"]: r for r in rows}
    for copy_id, original in SAME_STATEMENT_AS.items():
        rows.append({**by_id[f"bundled/{original}"], "id": f"bundled/{copy_id}"})
    for new_id, (original, old, new) in REWORDED.items():
        base = by_id[f"bundled/{original}"]
        assert old in base["statement"]
        rows.append({**base, "id": f"bundled/{new_id}", "statement": base["statement"].replace(old, new)})
    rows += [function_problem(spec) for spec in FUNCTION]
    (HERE / "problems.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    eval_rows = [{"id": e["id"], "kind": "stdio", "tests": [{"input": i, "output": o} for i, o in e["tests"]],
                  "source": "bundled-eval", "release_date": e["date"], "statement": e["statement"]} for e in EVAL_SET]
    (HERE / "eval_set.jsonl").write_text("".join(json.dumps(r) + "\n" for r in eval_rows))
    print(f"wrote {len(rows)} problems and {len(eval_rows)} evaluation problems to {HERE}")


if __name__ == "__main__":
    main()
