"""Reusers: turn one or more market learnwares into a predictor for the user's task."""

from __future__ import annotations

from lwlib.reuse.auto import REUSER_KINDS, AutoChoice, ReuserKind, choose_reuser_auto
from lwlib.reuse.averaging import AveragingReuser
from lwlib.reuse.base import BaseReuser, InProcessLearnware, ReusableLearnware
from lwlib.reuse.combine import predict_solution
from lwlib.reuse.ensemble_pruning import EnsemblePruningReuser
from lwlib.reuse.feature_align import FeatureAlignReuser
from lwlib.reuse.feature_augment import FeatureAugmentReuser
from lwlib.reuse.job_selector import JobSelectorReuser

__all__ = [
    "AutoChoice",
    "REUSER_KINDS",
    "ReuserKind",
    "choose_reuser_auto",
    "AveragingReuser",
    "BaseReuser",
    "EnsemblePruningReuser",
    "FeatureAlignReuser",
    "FeatureAugmentReuser",
    "InProcessLearnware",
    "JobSelectorReuser",
    "ReusableLearnware",
    "predict_solution",
]
