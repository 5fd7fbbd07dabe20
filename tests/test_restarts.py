"""Random restarts (issue 19, item 6): per example PGD keeps a restart that misclassifies
(targeted: reaches its target), a later one replacing an earlier one, as MadryLab's attacker
does; only where no restart succeeds does the highest loss decide. Loops without a success
test (inversion, feature visualization, layer robustness) keep the best loss."""

from __future__ import annotations

import torch
from torch import nn

from explorer.attacks import pgd
from explorer.optimize import optimize
from explorer.threat import LinfBall

N, R = 64, 8


def _expected(scores: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """[N] index of the restart the rule keeps: the last successful one, else the best score."""
    last_ok = torch.where(ok, torch.arange(R)[:, None], -1).max(0).values
    return torch.where(last_ok >= 0, last_ok, scores.argmax(0))


def test_the_loop_keeps_the_last_successful_restart_over_a_higher_loss():
    x0 = torch.full((N, 1, 1, 1), 0.5)
    loss = lambda x: x.flatten(1).sum(1)  # noqa: E731 - maximized: higher x, higher loss
    success = lambda x: x.flatten(1)[:, 0] < 0.3  # noqa: E731 - "misclassified": only low x
    run = lambda **kw: optimize(loss, x0, LinfBall(0.5), steps=0, step_size=0.1, random_start=True,  # noqa: E731
                                restarts=R, generator=torch.Generator().manual_seed(0), **kw)
    plain, rule = run(), run(success=success)
    starts = plain.history[:, 0]  # [R, N]: with no step, each restart's loss is its start x
    ok = starts < 0.3
    # the constructed case: on many examples the highest-loss restart fails while another succeeds
    case = ok.any(0) & ~ok.gather(0, starts.argmax(0, keepdim=True))[0]
    assert case.sum() >= 10
    assert torch.allclose(plain.x.flatten(), starts.max(0).values)  # no test: the best loss wins
    want = starts.gather(0, _expected(starts, ok)[None])[0]
    assert torch.allclose(rule.x.flatten(), want) and torch.allclose(rule.loss, want)
    assert (rule.x.flatten()[case] < 0.3).all()  # the old rule would have returned a failure there


class _OnePixel(nn.Module):
    """Three classes on one pixel v: logits (0, 0.3 - 0.6 v, -10 + 9.99 v). For y = 0 the cross-entropy
    is highest near v = 1, where class 0 still wins, while every v < 0.5 is misclassified at a
    lower loss."""

    def forward(self, x):
        v = x.flatten(1)[:, :1]
        return torch.cat([0 * v, 0.3 - 0.6 * v, -10 + 9.99 * v], 1)


def test_pgd_keeps_a_misclassifying_restart_not_the_highest_loss():
    model = _OnePixel()
    x0, y = torch.full((N, 1, 1, 1), 0.5), torch.zeros(N, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    starts = torch.stack([LinfBall(0.5).random_start(x0, g) for _ in range(R)])  # the starts pgd draws (seed 0)
    with torch.no_grad():
        logits = torch.stack([model(s) for s in starts])  # [R, N, 3]
    ce = -logits.log_softmax(2)[..., 0]
    ok = logits.argmax(2) != 0
    case = ok.any(0) & ~ok.gather(0, ce.argmax(0, keepdim=True))[0]
    assert case.sum() >= 5  # the constructed case happens
    # one tiny step: every restart ends where it started (within 1e-4)
    res = pgd(model, x0, y, "linf", 0.5, steps=1, step_size=1e-4, restarts=R, seed=0, fold_batchnorm=False)
    want = starts.flatten(1).gather(0, _expected(ce, ok)[None])[0]
    assert torch.allclose(res.x_adv.flatten(), want, atol=2e-4)
    assert res.success[case].all() and res.success.float().mean() == ok.any(0).float().mean()
    # targeted toward class 1: "success" is reaching the target (the same v < 0.5), not leaving y
    tgt = pgd(model, x0, y, "linf", 0.5, steps=1, step_size=1e-4, restarts=R, seed=0, fold_batchnorm=False,
              target=torch.ones(N, dtype=torch.long))
    assert torch.equal(tgt.success, (logits.argmax(2) == 1).any(0))


def test_one_restart_and_no_success_test_are_unchanged():
    x0 = torch.rand(N, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    loss = lambda x: -(x - 0.3).pow(2).flatten(1).sum(1)  # noqa: E731
    a = optimize(loss, x0, LinfBall(0.1), steps=3, random_start=True, restarts=1,
                 generator=torch.Generator().manual_seed(0))
    b = optimize(loss, x0, LinfBall(0.1), steps=3, random_start=True, restarts=1,
                 generator=torch.Generator().manual_seed(0), success=lambda x: torch.ones(len(x), dtype=torch.bool))
    assert torch.equal(a.x, b.x)
