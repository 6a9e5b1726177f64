# Prints the last valid pair, not the one in the .ans file: only the output validator can accept it.
n, s = map(int, input().split())
a = list(map(int, input().split()))
best = None
for i in range(n):
    for j in range(i + 1, n):
        if a[i] + a[j] == s:
            best = (i + 1, j + 1)
print(*best)
