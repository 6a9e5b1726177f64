#include <algorithm>
#include <iostream>
#include <vector>
#include "validate.h"
// Accepts the numbers 1..n in any order.
int main(int argc, char** argv) {
    std::ifstream answer(argv[2]);
    std::vector<long long> want, got;
    for (long long x; answer >> x;) want.push_back(x);
    for (long long x; std::cin >> x;) got.push_back(x);
    std::sort(want.begin(), want.end());
    std::sort(got.begin(), got.end());
    return want == got ? ACCEPTED : WRONG;
}
