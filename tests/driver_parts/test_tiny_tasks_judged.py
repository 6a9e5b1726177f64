"""Every tiny task's reference solution passes all its tests in the real sandboxed judge, and a wrong
solution does not (so the tests can tell them apart)."""
from judge.extract import extract_code
from judge.pool import JudgePool
from megatron_mc.data import tiny_tasks


def test_reference_solutions_are_accepted_and_wrong_ones_are_not():
    # phrasings of one (template, parameter) share the reference code; alternate them to halve the work
    problems = [p for p in tiny_tasks.make_problems("train") + tiny_tasks.make_problems("held_out")
                if p.id.endswith(f"/v{p.metadata['param'] % 2}")]
    with JudgePool(workers=2) as pool:
        submissions = []
        for problem in problems:
            code, language = extract_code(tiny_tasks.reference_response(problem), "python")
            submissions.append((problem, code, language))
        results = pool.judge_many(submissions, all_tests=True)
        failed = {p.id: r.to_dict() for p, r in zip(problems, results) if not (r.accepted and r.passed == r.total)}
        assert not failed
        # the same code with an extra word in its output must fail (one problem of each template and split)
        sample = list({(p.metadata["template"], p.metadata["split"]): p for p in problems}.values())
        wrong = [(p, p.metadata["reference_solution"].replace("print(", "print(1, ", 1), "python") for p in sample]
        assert not any(r.accepted for r in pool.judge_many(wrong))
