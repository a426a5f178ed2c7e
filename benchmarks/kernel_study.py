"""Issue 11 point 4/5: which comparison kernel makes the unlabelled top-1 right most often?

Same market RKMEs (as submitted: γ = 0.1 on raw features), same users; only the comparison kernel changes:

* ``market``: the dock's current kernel — features standardised with the pooled β-weighted mean/std of all reduced
  sets, γ = median heuristic over pairs of points of the same learnware;
* ``raw-median``: no standardisation, same γ rule on raw features;
* ``std-global``: standardised, γ from the median over the pooled market (the between-learnware scale);
* ``std-sharp``: standardised, 4 × the market γ;
* ``std-multiscale``: standardised, the mean of RBF kernels at ¼, 1 and 4 × the market γ;
* ``reference``: raw features, γ = 0.1 (the reference package);
* ``conv-features`` (image scenarios): the reduced points and the user's rows mapped through a fixed random
  convolutional feature map (:mod:`lwlib.rkme.image`), then ``market`` rules in that space — a kernel that suits
  images, computed by the dock from pixel RKMEs without any training data.

The user side is the exact empirical embedding of (up to 500 of) the user's rows, so no variant is favoured by an
RKME fitted in its own space. Reported per scenario: top-1 = best share and top-1/best loss (ratio of means).

Usage: ``python -m benchmarks.kernel_study --size full --scenarios tabular image text``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from benchmarks.metrics import best_in_market, market_losses
from benchmarks.quality import fit_specs
from benchmarks.report import machine_stamp
from benchmarks.scenarios import build
from lwlib.rkme.kernels import median_heuristic_gamma, rbf_kernel, stack_specs

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
MAX_USER_ROWS = 500


def _within_gamma(Zs: np.ndarray, betas: np.ndarray, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    pick = rng.choice(Zs.shape[0], size=min(64, Zs.shape[0]), replace=False)
    d2 = []
    for i in pick:  # a sample of learnwares; pairs within each
        Z = Zs[i][betas[i] > 0]
        D = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1)
        d2.append(D[np.triu_indices(Z.shape[0], 1)])
    v = np.concatenate(d2)
    v = v[v > 0]
    return 1.0 / (2.0 * float(np.median(v))) if v.size else 1.0


def _mmd2(Zs: np.ndarray, betas: np.ndarray, U: np.ndarray, kernel: Callable[[Any, Any], torch.Tensor]) -> np.ndarray:
    """MMD² of the empirical embedding of U against every stacked spec (cross + self terms; user self-term dropped:
    it is the same for all learnwares)."""
    n, k, d = Zs.shape
    flat = torch.from_numpy(Zs.reshape(n * k, d))
    b = torch.from_numpy(betas)
    cross = (kernel(torch.from_numpy(U), flat).mean(0).reshape(n, k) * b).sum(1)
    selfs = torch.stack([b[i] @ kernel(flat[i * k:(i + 1) * k], flat[i * k:(i + 1) * k]) @ b[i] for i in range(n)])
    return (selfs - 2.0 * cross).numpy()


def kernels_for(Zs: np.ndarray, betas: np.ndarray) -> dict[str, tuple[Callable[[np.ndarray], np.ndarray], Any]]:
    """Variant name -> (feature transform, kernel function on transformed points)."""
    real = betas.reshape(-1) > 0
    flat = Zs.reshape(-1, Zs.shape[2])[real]
    w = betas.reshape(-1)[real]
    w = w / w.sum()
    mu = w @ flat
    sd = np.sqrt(w @ (flat - mu) ** 2)
    sd = np.where(sd > 1e-8, sd, 1.0)
    std = lambda X: (X - mu) / sd  # noqa: E731
    raw = lambda X: X  # noqa: E731
    Zstd = (Zs - mu) / sd
    g_std, g_raw = _within_gamma(Zstd, betas), _within_gamma(Zs, betas)
    g_glob = median_heuristic_gamma(std(flat))

    def rbf(g: float) -> Any:
        return lambda A, B: rbf_kernel(A, B, g)

    def multi(g: float) -> Any:
        return lambda A, B: (rbf_kernel(A, B, g / 4) + rbf_kernel(A, B, g) + rbf_kernel(A, B, 4 * g)) / 3.0

    return {"market": (std, rbf(g_std)), "raw-median": (raw, rbf(g_raw)), "std-global": (std, rbf(g_glob)),
            "std-sharp": (std, rbf(4 * g_std)), "std-multiscale": (std, multi(g_std)), "reference": (raw, rbf(0.1))}


def study(name: str, size: str, max_users: int = 40, seed: int = 0) -> dict[str, Any]:
    scenario = build(name, size=size, seed=seed)
    specs = fit_specs(scenario)
    names = [lw.name for lw in scenario.learnwares]
    Zs, betas = stack_specs([specs[n] for n in names])
    variants = kernels_for(Zs, betas)
    image = scenario.info.get("pixel_max") is not None
    if image:
        from lwlib.rkme.image import ConvFeatureMap

        fmap = ConvFeatureMap(image_shape=_image_shape(Zs.shape[2]))
        Zf = fmap.transform(Zs.reshape(-1, Zs.shape[2])).reshape(Zs.shape[0], Zs.shape[1], -1)
        fv = kernels_for(Zf, betas)["market"]
        variants["conv-features"] = (lambda X, t=fv[0]: t(fmap.transform(X)), fv[1])
        zf_std = fv[0](Zf.reshape(-1, Zf.shape[2])).reshape(Zf.shape)
    out: dict[str, dict[str, list[float]]] = {v: {"top1": [], "best": [], "is_best": []} for v in variants}
    rng = np.random.default_rng(seed)
    for user in scenario.users[:max_users]:
        table = market_losses(scenario, user)
        best, best_name = best_in_market(scenario, user, table)
        U = user.X if user.X.shape[0] <= MAX_USER_ROWS else user.X[rng.choice(user.X.shape[0], MAX_USER_ROWS,
                                                                             replace=False)]
        with threadpool_limits(1), torch.no_grad():
            for v, (tf, kern) in variants.items():
                if v == "conv-features":
                    Zv = zf_std
                else:
                    Zv = tf(Zs.reshape(-1, Zs.shape[2])).reshape(Zs.shape)
                d = _mmd2(np.ascontiguousarray(Zv), betas, np.ascontiguousarray(tf(U)), kern)
                top = names[int(np.argmin(d))]
                out[v]["top1"].append(table[top])
                out[v]["best"].append(best)
                out[v]["is_best"].append(float(top == best_name or np.isclose(table[top], best)))
    return {v: {"top1_is_best_share": float(np.mean(r["is_best"])),
                "top1_ratio": float(np.mean(r["top1"]) / np.mean(r["best"])), "top1_loss": float(np.mean(r["top1"])),
                "users": len(r["top1"])} for v, r in out.items()}


def _image_shape(d: int) -> tuple[int, int]:
    side = int(round(np.sqrt(d)))
    return (side, side)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", default="full")
    p.add_argument("--scenarios", nargs="*", default=["tabular", "image", "text"])
    p.add_argument("--users", type=int, default=40)
    p.add_argument("--out", type=Path, default=RESULTS / "kernel_study.json")
    a = p.parse_args(argv)
    from lwlib.settings import configure_process
    import tempfile

    configure_process(Path(tempfile.mkdtemp(prefix="lwdock-kstudy-")))
    res = {n: study(n, a.size, a.users) for n in a.scenarios}
    lines = ["| scenario | kernel | top-1 = best | top-1/best | users |", "|---|---|---:|---:|---:|"]
    for n, r in res.items():
        for v, m in r.items():
            lines.append(f"| {n} | {v} | {m['top1_is_best_share']:.0%} | {m['top1_ratio']:.2f} | {m['users']} |")
    table = "\n".join(lines) + "\n"
    a.out.write_text(json.dumps({"machine": machine_stamp(), "size": a.size, "results": res}, indent=2))
    a.out.with_suffix(".md").write_text(f"# kernel study ({a.size})\n\nMachine: {machine_stamp()}\n\n"
                                        f"Command: python -m benchmarks.kernel_study --size {a.size} --scenarios "
                                        f"{' '.join(a.scenarios)} --users {a.users}\n\n{table}")
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
