"""Function-call (LeetCode style) problems: Solution methods and top-level functions, results serialized
to JSON inside the child, so objects that fake equality fail."""
import pytest

from judge.problem import Comparison
from judge.verdict import Verdict
from judge_test_helpers import function_problem

TWO_SUM = [("[2,7,11,15]\n9", "[0, 1]"), ("[3,2,4]\n6", "[1,2]"), ("[3,3]\n6", "[0,1]")]

SOLUTION = """
class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        seen = {}
        for j, x in enumerate(nums):
            if target - x in seen:
                return [seen[target - x], j]
            seen[x] = j
"""


def test_solution_class_method_is_accepted(judge_pool):
    result = judge_pool.judge(function_problem("twoSum", TWO_SUM), SOLUTION)
    assert result.verdict is Verdict.AC and result.passed == 3, result.to_dict()


def test_top_level_function_and_tuple_result_are_accepted(judge_pool):
    code = "def twoSum(nums, target):\n    d = {}\n    for j, x in enumerate(nums):\n        if target - x in d:\n            return (d[target - x], j)\n        d[x] = j\n"
    assert judge_pool.judge(function_problem("twoSum", TWO_SUM), code).verdict is Verdict.AC


def test_fresh_instance_and_fresh_class_state_per_test(judge_pool):
    code = "class Solution:\n    calls = 0\n    def f(self, x):\n        Solution.calls += 1\n        return x * 10 + Solution.calls\n"
    problem = function_problem("f", [("1", "11"), ("2", "21"), ("3", "31")])
    assert judge_pool.judge(problem, code).verdict is Verdict.AC


def test_floats_compare_within_tolerance(judge_pool):
    problem = function_problem("avg", [("[1, 2]", "1.5"), ("[1, 1, 2]", "1.3333333333")])
    code = "def avg(xs):\n    return sum(xs) / len(xs)\n"
    assert judge_pool.judge(problem, code).verdict is Verdict.AC
    strict = function_problem("avg", [("[1, 1, 2]", "1.3")], comparison=Comparison(abs_tol=1e-9, rel_tol=1e-9))
    assert judge_pool.judge(strict, code).verdict is Verdict.WA


@pytest.mark.parametrize("code", [
    # wrong order
    "class Solution:\n    def twoSum(self, nums, target):\n        d = {}\n        for j, x in enumerate(nums):\n            if target - x in d:\n                return [j, d[target - x]]\n            d[x] = j\n",
    # a list that claims to equal anything
    "class Eq(list):\n    def __eq__(self, other):\n        return True\nclass Solution:\n    def twoSum(self, nums, target):\n        return Eq()\n",
    # an object that claims to equal anything and is not JSON at all
    "class Eq:\n    def __eq__(self, other):\n        return True\nclass Solution:\n    def twoSum(self, nums, target):\n        return Eq()\n",
    # an int subclass that claims to equal anything serializes as its real value
    "class Eq(int):\n    def __eq__(self, other):\n        return True\nclass Solution:\n    def twoSum(self, nums, target):\n        return [Eq(99), Eq(98)]\n",
    # printing the answer instead of returning it
    "class Solution:\n    def twoSum(self, nums, target):\n        print([0, 1])\n",
])
def test_wrong_and_cheating_results_fail(judge_pool, code):
    result = judge_pool.judge(function_problem("twoSum", TWO_SUM), code)
    assert result.verdict is Verdict.WA, result.to_dict()


def test_missing_function_and_exception_are_runtime_errors(judge_pool):
    problem = function_problem("twoSum", TWO_SUM)
    assert judge_pool.judge(problem, "class Solution:\n    def other(self):\n        pass\n").verdict is Verdict.RE
    assert judge_pool.judge(problem, "class Solution:\n    def twoSum(self, n, t):\n        return n[99]\n").verdict is Verdict.RE


def test_cpp_for_a_function_problem_is_a_compile_error(judge_pool):
    result = judge_pool.judge(function_problem("twoSum", TWO_SUM), "int main() {}", "cpp")
    assert result.verdict is Verdict.CE and "Python" in result.detail
