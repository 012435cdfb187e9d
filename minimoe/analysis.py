"""Expert utilization: which experts each task uses, how sharply, and whether retraining keeps it.

For a trained mixture model (OMoE, MMoE, and any model with ``gate_weights`` and
``expert_outputs``) and probe rows X, at any of its levels (``level``, default the last):

- ``expert_usage``: (T, E), task k's mean gate weight on expert i;
- ``gate_entropy``: (T,), how spread a single row's gate is (0 = one expert per row, 1 = uniform);
- ``polarization``: experts a task almost never uses, the share of its busiest expert, and one score
  per task, 1 - entropy(usage) / log E (0 = all experts used equally, 1 = one expert takes all);
- ``expert_stability``: train the same model R times with different seeds, align each run's experts to
  the first run's by an optimal one-to-one matching (``linear_assignment``), and measure how much of
  the expert-task assignment survives retraining.

Experts are only defined up to a permutation: expert 3 of one run has no reason to be expert 3 of the
next. Matching them on their *outputs* (what they compute, compared by linear CKA, which is blind to
how the H units are ordered or rotated) and then asking whether the matched experts serve the same
tasks is the honest test; matching on the usage profiles themselves finds the most favourable
alignment of the usage, an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assignment import linear_assignment
from .checks import make_rng

MATCH_BY = ("outputs", "usage")


def _check_mixture_model(model) -> None:
    if not (callable(getattr(model, "gate_weights", None)) and callable(getattr(model, "expert_outputs", None))):
        raise TypeError(f"model must be a mixture model (with gate_weights and expert_outputs, such as OMoE or MMoE), "
                        f"got {type(model).__name__}")


def _check_same_shape(what: str, reference: np.ndarray, other: np.ndarray) -> None:
    """Two models whose experts can be matched: the same (T, E), or the same (N, E, H)."""
    if reference.shape != other.shape:
        raise ValueError(f"models must have the same experts and tasks to be compared, got {what} of shapes "
                         f"{reference.shape} and {other.shape}")


def expert_usage(model, X, level: int = -1) -> np.ndarray:
    """(T, E): mean over the rows of X of each task's gate weight on each expert; rows sum to 1."""
    _check_mixture_model(model)
    return model.gate_weights(X, level=level).mean(axis=1)


def group_usage(model, X, level: int = -1) -> tuple[list[str], np.ndarray]:
    """(group names, (T, groups)): the share of each task's gate weight that goes to each expert
    group of ``level`` (``shared``, ``task<k>``; ``model.expert_groups``). How much a task leans on
    its own experts against the shared ones; rows sum to 1."""
    _check_mixture_model(model)
    usage = expert_usage(model, X, level)                                    # (T, E)
    groups = model.expert_groups(level)
    return list(groups), np.stack([usage[:, columns].sum(axis=1) for columns in groups.values()], axis=1)


def normalized_entropy(distributions: np.ndarray) -> np.ndarray:
    """Entropy of distributions over the last axis, divided by log E: in [0, 1] (0 for E = 1)."""
    n = distributions.shape[-1]
    if n == 1:
        return np.zeros(distributions.shape[:-1])
    p = np.clip(distributions, 0.0, None)          # 0 log 0 = 0; softmax outputs are >= 0 anyway
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=-1) / np.log(n)


def gate_entropy(model, X, level: int = -1) -> np.ndarray:
    """(T,): the mean over rows of the normalised entropy of task k's gate: 0 when every row sends all
    its weight to one expert, 1 when every row weighs the experts equally."""
    _check_mixture_model(model)
    return normalized_entropy(model.gate_weights(X, level=level)).mean(axis=1)


@dataclass
class Polarization:
    """How unevenly each task uses the experts.

    usage: (T, E) mean gate weights; unused: (T, E), True where task k gives expert i less than
    ``unused_below`` of the weight; busiest_share: (T,) the largest entry of each row of usage;
    score: (T,) 1 - entropy(usage_k) / log E: 0 = experts used equally, 1 = one expert takes all.
    """

    usage: np.ndarray
    unused: np.ndarray
    busiest_share: np.ndarray
    score: np.ndarray

    @property
    def n_unused(self) -> np.ndarray:
        """(T,) how many experts each task leaves (almost) unused."""
        return self.unused.sum(axis=1)


def polarization(usage, unused_below: float | None = None) -> Polarization:
    """From usage (T, E) (``expert_usage``). ``unused_below`` defaults to 1 / (10 E), a tenth of an
    equal share."""
    usage = np.asarray(usage, dtype=np.float64)
    if usage.ndim != 2 or not np.isfinite(usage).all() or (usage < 0).any():
        raise ValueError(f"usage must be a (T, E) array of non-negative numbers, got shape {usage.shape}")
    if not np.allclose(usage.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError(f"each row of usage must sum to 1 (mean gate weights), got sums {usage.sum(axis=1)}")
    n_experts = usage.shape[1]
    threshold = 1.0 / (10 * n_experts) if unused_below is None else float(unused_below)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"unused_below must lie in [0, 1), got {unused_below}")
    return Polarization(usage=usage, unused=usage < threshold, busiest_share=usage.max(axis=1),
                        score=1.0 - normalized_entropy(usage))


def _gram_norms(outputs: np.ndarray) -> np.ndarray:
    """(N, E, H) centred -> (E,), ||X_i^T X_i||_F for every expert i."""
    gram = np.matmul(outputs.transpose(1, 2, 0), outputs.transpose(1, 0, 2))   # (E, H, H)
    return np.sqrt((gram ** 2).sum(axis=(1, 2)))


def linear_cka(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Linear CKA (Kornblith et al., ICML 2019) between every expert of A and every expert of B.

    A: (N, E_a, H), B: (N, E_b, H') -> (E_a, E_b) in [0, 1]. For column-centred X (N, H), Y (N, H'):
        CKA(X, Y) = ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F),
    1 when Y is X up to a rotation and a scale (so unit order does not matter), near 0 for
    unrelated outputs. An expert whose outputs are constant (a dead expert) gets 0.
    """
    A = A - A.mean(axis=0)
    B = B - B.mean(axis=0)
    (n, e_a, h_a), (_, e_b, h_b) = A.shape, B.shape
    # Every expert pair's X^T Y at once: one (E_a H, N) @ (N, E_b H') product, cut into blocks.
    cross = (A.reshape(n, -1).T @ B.reshape(n, -1)).reshape(e_a, h_a, e_b, h_b)
    numerator = (cross ** 2).sum(axis=(1, 3))                             # (E_a, E_b)
    denominator = np.outer(_gram_norms(A), _gram_norms(B))                 # (E_a, E_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, 0.0)


def match_experts(reference, other, X, by: str = "outputs", level: int = -1) -> np.ndarray:
    """match: (E,), expert ``match[i]`` of ``other`` is the counterpart of expert i of ``reference``.

    ``by="outputs"`` minimises sum_i (1 - CKA) of matched experts' outputs on X; ``by="usage"``
    minimises the summed L1 distance between matched experts' usage profiles (the T-vector of
    mean gate weights each expert receives).
    """
    if by not in MATCH_BY:
        raise ValueError(f"by must be one of {MATCH_BY}, got {by!r}")
    _check_mixture_model(reference)
    _check_mixture_model(other)
    if by == "outputs":
        outputs = reference.expert_outputs(X, level), other.expert_outputs(X, level)
        _check_same_shape("expert outputs", *outputs)
        return _match(by, cka=linear_cka(*outputs))
    usages = expert_usage(reference, X, level), expert_usage(other, X, level)
    _check_same_shape("usage", *usages)
    return _match(by, usage_ref=usages[0], usage_other=usages[1])


def _match(by: str, cka=None, usage_ref=None, usage_other=None) -> np.ndarray:
    """The optimal matching from an (E, E) output CKA, or from two (T, E) usages."""
    if by == "outputs":
        cost = 1.0 - cka                                                          # (E, E)
    else:
        cost = np.abs(usage_ref[:, :, None] - usage_other[:, None, :]).sum(axis=0)  # (E, E): L1 of profiles
    return linear_assignment(cost)


def _served(usage: np.ndarray) -> np.ndarray:
    """(T, E) bool: the experts a task gives more than an equal share (1 / E) of its weight."""
    return usage > 1.0 / usage.shape[1]


def _agreements(reference_usage: np.ndarray, usage: np.ndarray) -> tuple[float, float, float]:
    """Usage agreement, assignment agreement and top-expert agreement of two aligned (T, E) usages."""
    total_variation = 0.5 * np.abs(reference_usage - usage).sum(axis=1)   # (T,)
    served_ref, served = _served(reference_usage), _served(usage)
    union = (served_ref | served).sum(axis=1)
    jaccard = np.where(union > 0, (served_ref & served).sum(axis=1) / np.maximum(union, 1), 1.0)
    top = reference_usage.argmax(axis=1) == usage.argmax(axis=1)
    return float(1.0 - total_variation.mean()), float(jaccard.mean()), float(top.mean())


@dataclass
class StabilityReport:
    """How much of the expert-task assignment survives retraining, run by run against run 0.

    matches: (R, E), run r's expert ``matches[r, i]`` is run 0's expert i (row 0 the identity);
    usage: (R, T, E), each run's usage with its experts in run 0's order;
    usage_agreement: (R - 1,), 1 - the mean over tasks of the total-variation distance between a
        task's aligned usage and run 0's (1 = the same distribution over experts);
    assignment_agreement: (R - 1,), the mean over tasks of the Jaccard overlap of the sets of
        experts a task serves itself from (those above an equal share, 1 / E);
    top_expert_agreement: (R - 1,), the fraction of tasks whose busiest expert is the counterpart of
        run 0's busiest;
    matched_similarity: (R - 1,), the mean output CKA of matched experts (do the experts reappear?);
    chance_usage_agreement, chance_assignment_agreement: the same agreements under random
        alignments (the mean over ``n_chance`` random permutations), the level that says nothing;
    usage_excess, assignment_excess: (agreement - chance) / (1 - chance), the part of the way from
        chance to perfect agreement (0 = no better than a random alignment).
    """

    by: str
    matches: np.ndarray
    usage: np.ndarray
    usage_agreement: np.ndarray
    assignment_agreement: np.ndarray
    top_expert_agreement: np.ndarray
    matched_similarity: np.ndarray
    chance_usage_agreement: float
    chance_assignment_agreement: float

    @staticmethod
    def _excess(agreement: np.ndarray, chance: float) -> float:
        """(mean agreement - chance) / (1 - chance): 0 at chance, 1 for perfect agreement; NaN when
        chance is 1 (flat usage, where any alignment agrees and agreement says nothing)."""
        return float((agreement.mean() - chance) / (1.0 - chance)) if chance < 1.0 else float("nan")

    @property
    def usage_excess(self) -> float:
        return self._excess(self.usage_agreement, self.chance_usage_agreement)

    @property
    def assignment_excess(self) -> float:
        return self._excess(self.assignment_agreement, self.chance_assignment_agreement)

    def summary(self) -> str:
        rows = [f"expert stability over {len(self.matches)} runs, experts matched by {self.by}",
                f"  usage agreement       {self.usage_agreement.mean():.3f} "
                f"(chance {self.chance_usage_agreement:.3f}, excess over chance {self.usage_excess:.2f})",
                f"  assignment agreement  {self.assignment_agreement.mean():.3f} "
                f"(chance {self.chance_assignment_agreement:.3f}, excess over chance {self.assignment_excess:.2f})",
                f"  top-expert agreement  {self.top_expert_agreement.mean():.3f}",
                f"  matched output CKA    {self.matched_similarity.mean():.3f}"]
        return "\n".join(rows)


def expert_stability(models, X, by: str = "outputs", n_chance: int = 200, seed=0, level: int = -1) -> StabilityReport:
    """Align the experts of every model to ``models[0]``'s and measure agreement (``StabilityReport``).

    ``models``: R >= 2 trained OMoE/MMoE of one architecture (typically the same set-up with R
    seeds); X: probe rows (validation rows, say) for usage and outputs.
    """
    models = list(models)
    if len(models) < 2:
        raise ValueError(f"models must hold at least 2 trained models to compare, got {len(models)}")
    if by not in MATCH_BY:
        raise ValueError(f"by must be one of {MATCH_BY}, got {by!r}")
    usages = [expert_usage(model, X, level) for model in models]          # R x (T, E), mixture models checked
    reference_outputs = models[0].expert_outputs(X, level)                 # (N, E, H)
    for usage in usages[1:]:
        _check_same_shape("usage", usages[0], usage)
    n_experts = usages[0].shape[1]
    matches, aligned, similarity = [np.arange(n_experts)], [usages[0]], []
    for model, usage in zip(models[1:], usages[1:]):
        outputs = model.expert_outputs(X, level)
        _check_same_shape("expert outputs", reference_outputs, outputs)
        cka = linear_cka(reference_outputs, outputs)                       # (E, E)
        match = _match(by, cka=cka, usage_ref=usages[0], usage_other=usage)
        matches.append(match)
        aligned.append(usage[:, match])
        similarity.append(float(cka[np.arange(n_experts), match].mean()))
    agreements = np.array([_agreements(usages[0], usage) for usage in aligned[1:]])   # (R - 1, 3)

    rng = make_rng(seed)
    chance = np.array([_agreements(usages[0], usage[:, rng.permutation(n_experts)])
                       for usage in usages[1:] for _ in range(n_chance)])
    return StabilityReport(by=by, matches=np.array(matches), usage=np.array(aligned),
                           usage_agreement=agreements[:, 0], assignment_agreement=agreements[:, 1],
                           top_expert_agreement=agreements[:, 2], matched_similarity=np.array(similarity),
                           chance_usage_agreement=float(chance[:, 0].mean()),
                           chance_assignment_agreement=float(chance[:, 1].mean()))
