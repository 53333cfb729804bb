"""Population model of newly diagnosed patients.

This subpackage will hold the population of virtual patients at diagnosis: per-patient
parameters drawn from a population distribution with covariates the clinic uses (risk group,
BCR-ABL1 load), and its calibration against published trials. So far it holds the published
calibration targets and the drug-potency data (:mod:`sim.population.targets`) and the scorecard
that simulates each target's trial arm and scores it (:mod:`sim.population.scorecard`, imported
on its own since it runs cohorts).
"""

from sim.population.targets import (
    KINDS,
    Potency,
    Score,
    Target,
    TargetsError,
    load_potency,
    load_targets,
    score,
    wilson_interval,
)

__all__ = [
    "KINDS",
    "Potency",
    "Score",
    "Target",
    "TargetsError",
    "load_potency",
    "load_targets",
    "score",
    "wilson_interval",
]
