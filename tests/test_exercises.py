"""Every exercise's check passes the notebook's worked solution, says "not attempted yet" to its stub,
and fails wrong answers with a message that says what is off and gives the hint."""
import math
import re
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch

import lsbcore as lsb
import lsbcore.exercises as E

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py"))
CHECK = re.compile(r'^lsb\.exercises\.check\("(\d\d\.\d+)",\s*(\w+)\)\s*$')


def _tags(cell):
    return cell.metadata.get("tags", [])


def _exercise_cells():
    """id → (notebook, stub source, solution source, answer name), read from the notebooks' cells."""
    found = {}
    for path in NOTEBOOKS:
        stub = solution = None
        for cell in jupytext.read(path).cells:
            if cell.cell_type != "code":
                continue
            if "stub" in _tags(cell):
                stub = cell.source
            elif "solution" in _tags(cell):
                solution = cell.source
            else:
                m = CHECK.match(cell.source.strip())
                if m:
                    assert m.group(1) not in found, f"exercise {m.group(1)} is checked twice"
                    found[m.group(1)] = (path, stub, solution, m.group(2))
                    stub = solution = None
    return found


CELLS = _exercise_cells()


def _run(source, name):
    """Execute a cell in a namespace with the notebooks' common imports; return the answer it defines."""
    ns = {"lsb": lsb, "torch": torch, "math": math, "np": np}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns[name]


def test_every_notebook_has_three_checked_exercises_and_every_check_is_used():
    assert set(CELLS) == set(E.exercises()), "notebook check cells and registered checks differ"
    for path in NOTEBOOKS:
        ids = [i for i, (p, *_rest) in CELLS.items() if p == path]
        assert len(ids) >= 3, path.name
        assert all(i.startswith(path.name[:2] + ".") for i in ids), (path.name, ids)
    for i, (path, stub, solution, name) in CELLS.items():
        assert stub is not None and solution is not None, f"{i} needs a stub cell and a solution cell before its check"
        ex = E.get(i)
        assert ex.question and ex.hint and ex.verifies


@pytest.mark.parametrize("exercise_id", sorted(CELLS))
def test_the_worked_solution_passes_its_check(exercise_id):
    path, _, solution, name = CELLS[exercise_id]
    torch.manual_seed(0)
    feedback = E.check(exercise_id, _run(solution, name))
    assert feedback.correct, str(feedback)
    assert bool(feedback) and str(feedback).startswith(f"Exercise {exercise_id}: ✓ correct")


@pytest.mark.parametrize("exercise_id", sorted(CELLS))
def test_the_stub_is_not_attempted_yet(exercise_id):
    _, stub, _, name = CELLS[exercise_id]
    feedback = E.check(exercise_id, _run(stub, name))
    assert feedback.status == "not attempted" and not feedback, str(feedback)
    assert "not attempted yet" in str(feedback)


def _cc(v0, v1, s):
    return (math.sqrt(4 * v0 * v1 + s**4) - s**2) / 2


def _var(t, v0, v1, s, c=None):
    c = _cc(v0, v1, s) if c is None else c
    return (1 - t) ** 2 * v0 + t**2 * v1 + t * (1 - t) * (2 * c + s**2)


def _sqrtm(S):
    lam, U = torch.linalg.eigh(S)
    return U @ torch.diag(lam.clamp(min=0).sqrt()) @ U.T


def _tau(bm, b0=0.1, br=1.7):
    return b0 + (bm - b0) / (br + 1)


def _tau_t(t, bm, b0=0.1, br=1.7):
    """∫_0^t β = β_min t + (β_max − β_min) t^(β_r + 1) / (β_r + 1)."""
    return b0 * t + (bm - b0) * t ** (br + 1) / (br + 1)


# a few typical mistakes per exercise: each must be caught
WRONG = {
    "01.1": [lambda f1, C, eps, lb: -eps * torch.logsumexp((f1[None] - C) / eps, 1),                 # forgot log b
             lambda f1, C, eps, lb: -eps * torch.log(torch.exp(lb[None] + (f1[None] - C) / eps).sum(1)),  # underflows
             lambda f1, C, eps, lb: -eps * torch.logsumexp(lb[None] + (f1[None] - C) / eps, 0)],  # wrong axis
    "01.2": [lambda v0, v1, s: math.sqrt(4 * v0 * v1 + s**4) - s**2,
             lambda v0, v1, s: math.sqrt(v0 * v1),
             lambda v0, v1, s: (math.sqrt(4 * v0 * v1 + s**2) - s**2) / 2],
    "01.3": [lambda t, v0, v1, s: _var(t, v0, v1, 0.0, c=_cc(v0, v1, s)),
             lambda t, v0, v1, s: (1 - t) ** 2 * v0 + t**2 * v1 + t * (1 - t) * (_cc(v0, v1, s) + s**2),
             lambda t, v0, v1, s: (1 - t) * v0 + t * v1],
    "01.4": [lambda x, t, m0, v0, m1, v1, s: (t * v1 - (1 - t) * v0 + (1 - 2 * t) * _cc(v0, v1, s) - s**2 * t)
             / _var(t, v0, v1, s) * (x - ((1 - t) * m0 + t * m1)),
             lambda x, t, m0, v0, m1, v1, s: (t * v1 - (1 - t) * v0 + (1 - 2 * t) * _cc(v0, v1, s) + s**2 * t)
             / _var(t, v0, v1, s) * (x - ((1 - t) * m0 + t * m1)) + m1 - m0,
             lambda x, t, m0, v0, m1, v1, s: (m1 - x) / (1 - t)],
    "02.1": [lambda x0, x1, t, s, seed: (1 - t) * x0 + t * x1 + s * math.sqrt(t * (1 - t))
             * torch.randn(x0.shape, generator=lsb.generator(seed + 1)),
             lambda x0, x1, t, s, seed: (1 - t) * x0 + t * x1 + s * t * (1 - t)
             * torch.randn(x0.shape, generator=lsb.generator(seed))],
    "02.2": [lambda x, t, m, s, sig: (s**2 * m + (sig**2 - s**2) * x) / (s**2 * (1 - t) + sig**2 * t),
             lambda x, t, m, s, sig: ((s**2 - sig**2) * x) / (sig**2 * (1 - t) + s**2 * t)],
    "02.3": [lambda steps, s: s**2 / 4,
             lambda steps, s: s**2 / 2,
             lambda steps, s: s**2 / 4 * (1 + 1 / steps)],
    "03.1": [lambda z, t, p, s: (torch.exp(-torch.cdist(z, p) ** 2 / (2 * s**2 * (1 - t))) @ p - z) / (1 - t),
             lambda z, t, p, s: torch.softmax(-torch.cdist(z, p) ** 2 / (2 * s**2 * (1 - t)), 1) @ p - z,
             lambda z, t, p, s: ((w := torch.exp(-torch.cdist(z, p) ** 2 / (2 * s**2 * (1 - t))))
                                 / w.sum(1, keepdim=True) @ p - z) / (1 - t)],
    "03.2": [lambda x, t, p, s: torch.softmax(x @ p.T / s**2, 1) @ p,
             lambda x, t, p, s: p.mean(0).expand(x.shape[0], -1)],
    "03.3": [lambda x, y: float(((x.mean(0) - y.mean(0)) ** 2).sum() + torch.trace(torch.cov(x.T))
                                + torch.trace(torch.cov(y.T)) - 2 * torch.trace(_sqrtm(torch.cov(x.T)) @ _sqrtm(torch.cov(y.T)))),
             lambda x, y: float(torch.trace(torch.cov(x.T)) + torch.trace(torch.cov(y.T))
                                - 2 * torch.linalg.eigvalsh(_sqrtm(torch.cov(x.T)) @ torch.cov(y.T) @ _sqrtm(torch.cov(x.T)))
                                .clamp(min=0).sqrt().sum())],
    "04.1": [lambda n, e: tuple(np.polyfit(n.ravel(), e.ravel(), 1)),
             lambda n, e: tuple(np.polyfit(np.log10(n).ravel(), np.log10(e).ravel(), 1)),
             lambda n, e: tuple(np.polyfit(np.log(n).ravel(), np.log(e).ravel(), 1))[::-1]],
    "04.2": [lambda x, tr, ref: float(torch.cdist(x, tr).min(1).values.mean() / torch.cdist(ref, tr).min(1).values.mean()),
             lambda x, tr, ref: float(torch.cdist(ref, tr).min(1).values.median() / torch.cdist(x, tr).min(1).values.median())],
    "04.3": [lambda S, tau: tau * math.sqrt(S.shape[0]),
             lambda S, tau: float(((torch.linalg.eigvalsh(S).clamp(min=0) + tau**2).sqrt()
                                   - torch.linalg.eigvalsh(S).clamp(min=0).sqrt()).pow(2).sum()),
             lambda S, tau: math.sqrt(float(torch.trace(S)) + tau**2 * S.shape[0]) - math.sqrt(float(torch.trace(S)))],
    "05.1": [lambda m0, v0, k, T: (lambda e: (lambda mT, vT: 0.5 * (1 / vT + mT**2 / vT - 1 + math.log(vT)))(
                 e * m0, e**2 * v0 + (1 - e**2) / (2 * k)))(math.exp(-k * T)),
             lambda m0, v0, k, T: (lambda e: 0.5 * (e**2 * v0 + (1 - e**2) / (2 * k) + (e * m0) ** 2 - 1))(math.exp(-k * T)),
             lambda m0, v0, k, T: (lambda e: 0.5 * (e**2 * v0 + (e * m0) ** 2 - 1 - math.log(e**2 * v0)))(math.exp(-k * T))],
    "05.2": [0.0, 0.5, "best+0.3"],
    "05.3": [lambda x, t, m0, v0: -(x - math.exp(-t) * m0) / (math.exp(-t) * v0 + 1 - math.exp(-t)),
             lambda x, t, m0, v0: -(x - math.exp(-t / 2) * m0) / (math.exp(-t) * v0),
             lambda x, t, m0, v0: (x - math.exp(-t / 2) * m0) / (math.exp(-t) * v0 + 1 - math.exp(-t))],
    "06.1": [lambda s, bm: (1 - torch.exp(-(bm - 0.1) / 2.7 * (1 - 2 * s))) / (1 - 2 * s),
             lambda s, bm: 1 - torch.exp(-_tau(bm) * (1 - 2 * s)),
             lambda s, bm: (1 - torch.exp(-_tau(bm) * (1 - 2 * s) / 2)) / (1 - 2 * s)],
    "06.2": [lambda bm: math.exp(-_tau(bm)),
             lambda bm: math.exp(-(0.1 + bm) / 4)],
    "06.3": [lambda e, S: -e @ torch.linalg.cholesky(S).T,
             lambda e, S: -torch.linalg.solve(S, e.T).T,
             lambda e, S: torch.linalg.solve_triangular(torch.linalg.cholesky(S), e, upper=False, left=False)],
    "07.1": [lambda s, t, bm: (torch.exp(-_tau_t(t, bm) * (1 - 2 * s)),                        # φ without the ½
                               -torch.expm1(-_tau_t(t, bm) * (1 - 2 * s)) / (1 - 2 * s)),
             lambda s, t, bm: (torch.exp(-bm * t * (1 - 2 * s) / 2),                            # β constant = β_max
                               -torch.expm1(-bm * t * (1 - 2 * s)) / (1 - 2 * s))],
    "07.2": [lambda mu, sd, y: (y - mu).abs()],                                                # the point forecast's error
    "07.3": [lambda a, q, r, T: q / (1 - a * a) + r,                                           # ignores the history
             lambda a, q, r, T: q + r],                                                        # as if the state were seen
}


def test_every_exercise_has_wrong_answers_to_fail():
    assert set(WRONG) == set(E.exercises())


@pytest.mark.parametrize("exercise_id,k", [(i, k) for i in sorted(WRONG) for k in range(len(WRONG[i]))])
def test_a_wrong_answer_fails_with_what_is_off_and_the_hint(exercise_id, k):
    answer = WRONG[exercise_id][k]
    if answer == "best+0.3":
        from lsbcore.exercises.nb05 import best_kappa

        answer = best_kappa(1.0) + 0.3
    feedback = E.check(exercise_id, answer)
    assert feedback.status == "wrong" and not feedback, str(feedback)
    text = str(feedback)
    assert "Hint: " + E.get(exercise_id).hint in text
    assert len(text.split("Hint:")[0]) > 40, text  # says what is off, not only "wrong"


def test_check_reports_unknown_ids_and_non_answers():
    with pytest.raises(ValueError, match="exercise_id"):
        E.check("99.1", 1.0)
    with pytest.raises(TypeError, match="exercise_id"):
        E.check(1.1, 1.0)
    assert E.check("01.2", Ellipsis).status == "not attempted"
    fb = E.check("01.2", 3.0)            # a number where a function is asked for
    assert fb.status == "wrong" and "expected a function" in fb.message
    fb = E.check("01.2", lambda v0, v1, s: 1 / 0)    # code that raises: reported, not raised
    assert fb.status == "wrong" and "ZeroDivisionError" in fb.message
    fb = E.check("05.2", float("nan"))
    assert fb.status == "wrong" and "NaN" in fb.message
