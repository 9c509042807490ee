"""DMD2's maths on a problem whose teacher is exact: a 2-D Gaussian mixture. The teacher's x0 estimate is the
mixture's posterior mean in closed form, so a student that learns from it must move toward the mixture."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.config import ScheduleConfig
from model.schedule import add_noise, alpha_sigma
from training.dmd import dmd_gradient, dmd_loss, sample_dmd_t, simulate_student_input

MEANS = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]])
STD = 0.3
SCHEDULE = ScheduleConfig()
TIMESTEPS = (1.0, 0.75, 0.5, 0.25)
CPU = torch.device("cpu")


def mixture_x0(x_t: Tensor, t: Tensor) -> Tensor:
    """E[x0 | x_t] for the equal-weight mixture: x_t (b 1 2), t (b,) -> (b 1 2)."""
    alpha, sigma = alpha_sigma(t, SCHEDULE)
    alpha, sigma = alpha[:, None, None], sigma[:, None, None]  # (b 1 1)
    var = alpha**2 * STD**2 + sigma**2  # (b 1 1)
    diff = x_t[:, :, None, :] - alpha[..., None] * MEANS  # (b 1 k 2)
    weights = (-(diff**2).sum(-1) / (2 * var)).softmax(-1)[..., None]  # (b 1 k 1)
    posterior = MEANS + (alpha * STD**2 / var)[..., None] * diff  # (b 1 k 2)
    return (weights * posterior).sum(-2)


class Mlp(nn.Module):
    """(z (b 1 2), t (b,)) -> x0 (b 1 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2))

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat((z, t[:, None, None].expand(-1, z.shape[1], 1)), -1))


def energy_distance(x: Tensor, y: Tensor) -> float:
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def student_samples(student: nn.Module, n: int) -> Tensor:
    """The 4-step chain exactly as inference runs it (seeded), final x0: (n 2)."""
    gen = torch.Generator().manual_seed(123)
    z, t = simulate_student_input(student, (n, 1, 2), TIMESTEPS, len(TIMESTEPS) - 1, SCHEDULE, gen, CPU)
    with torch.no_grad():
        return student(z, t)[:, 0]


def test_simulated_input_starts_from_pure_noise_and_follows_the_chain() -> None:
    calls: list[float] = []

    def x0_fn(z: Tensor, t: Tensor) -> Tensor:
        calls.append(float(t[0]))
        return torch.full_like(z, 5.0)

    gen = torch.Generator().manual_seed(0)
    z0, t0 = simulate_student_input(x0_fn, (4000, 1, 2), TIMESTEPS, 0, SCHEDULE, gen, CPU)
    assert calls == [] and float(t0[0]) == 1.0
    assert abs(float(z0.mean())) < 0.05 and abs(float(z0.std()) - 1.0) < 0.05  # pure noise, nothing of the data
    z2, t2 = simulate_student_input(x0_fn, (4000, 1, 2), TIMESTEPS, 2, SCHEDULE, gen, CPU)
    assert calls == [1.0, 0.75] and float(t2[0]) == 0.5
    alpha, _ = alpha_sigma(torch.tensor(0.5), SCHEDULE)
    assert abs(float(z2.mean()) - 5.0 * float(alpha)) < 0.05  # the student's own estimate, re-noised to t_2


def test_dmd_t_is_clamped() -> None:
    t = sample_dmd_t(10_000, (0.02, 0.98), torch.Generator().manual_seed(0), CPU)
    assert float(t.min()) >= 0.02 and float(t.max()) <= 0.98


def test_dmd_moves_a_four_step_student_onto_a_known_mixture() -> None:
    torch.manual_seed(0)
    student, fake = Mlp(), Mlp()
    opt_student = torch.optim.Adam(student.parameters(), 1e-3)
    opt_fake = torch.optim.Adam(fake.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    data = MEANS[torch.randint(0, 4, (2000,), generator=gen)] + STD * torch.randn(2000, 2, generator=gen)
    b = 256
    keep, mask = torch.ones(b, 1, 1), torch.ones(b, 1, dtype=torch.bool)
    before = energy_distance(student_samples(student, 2000), data)
    for _ in range(300):
        k = int(torch.randint(0, 4, (1,), generator=gen))
        z, t_k = simulate_student_input(student, (b, 1, 2), TIMESTEPS, k, SCHEDULE, gen, CPU)
        x0 = student(z, t_k)
        t = sample_dmd_t(b, (0.02, 0.98), gen, CPU)
        x_t = add_noise(x0, torch.randn(x0.shape, generator=gen), t, SCHEDULE)
        with torch.no_grad():
            grad = dmd_gradient(x0 - mixture_x0(x_t, t), x0 - fake(x_t, t), mask)
        opt_student.zero_grad()
        dmd_loss(x0, grad, keep).backward()
        opt_student.step()
        for _ in range(5):  # the fake score follows the student's current samples (fresh draws each time)
            k = int(torch.randint(0, 4, (1,), generator=gen))
            z, t_k = simulate_student_input(student, (b, 1, 2), TIMESTEPS, k, SCHEDULE, gen, CPU)
            with torch.no_grad():
                samples = student(z, t_k)
            t = sample_dmd_t(b, (0.02, 0.98), gen, CPU)
            noised = add_noise(samples, torch.randn(samples.shape, generator=gen), t, SCHEDULE)
            opt_fake.zero_grad()
            ((fake(noised, t) - samples) ** 2).mean().backward()
            opt_fake.step()
    final = student_samples(student, 2000)
    after = energy_distance(final, data)
    # Measured: 2.11 -> 0.08 (26x). The bar is 10x, and every mode must be found (DMD does not collapse).
    assert after < before / 10, (before, after)
    nearest = torch.cdist(final, MEANS).argmin(dim=1)
    shares = torch.bincount(nearest, minlength=4).float() / len(final)
    assert float(shares.min()) > 0.12, shares
