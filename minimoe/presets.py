"""Named sizes that come from a paper, so that no number in a default goes unexplained."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizePreset:
    """Layer sizes of a published set-up; ``options(model)`` gives the keyword arguments of one model
    class (``SharedBottom``, ``OMoE``, ``MMoE``)."""

    name: str
    source: str
    n_experts: int
    expert_units: tuple
    tower_units: tuple
    bottom_units: tuple

    def options(self, model: str) -> dict:
        if model == "SharedBottom":
            return {"bottom_units": self.bottom_units, "tower_units": self.tower_units}
        return {"n_experts": self.n_experts, "expert_units": self.expert_units, "tower_units": self.tower_units}


MMOE_PAPER = SizePreset(
    name="mmoe-paper",
    source="Ma et al., KDD 2018, section 5.2 (synthetic data, D = 100 inputs): 8 experts of 16 units "
           "and towers of 8; a Shared-Bottom of 113 units then has about MMoE's parameter count.",
    n_experts=8, expert_units=(16,), tower_units=(8,), bottom_units=(113,))
