"""Shared code of the snn-tutorial notebooks: the model, the data, training and plotting.

>>> from helpers import SNN, poisson_dataset, fit
"""

from helpers.versions import check_stack as _check_stack

_check_stack()  # a clear error, before anything else, when the installed stack lacks what we use

from helpers import (
    activity,  # what spikes cost: helpers.activity.synaptic_operations, ...
    datasets,  # real data and its spike codes: helpers.datasets.load_digits, ...
)
from helpers.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from helpers.data import (
    dataset_fingerprint,
    pattern_dataset,
    poisson_dataset,
    poisson_spikes,
    random_labels,
    split_batch,
    timing_dataset,
)
from helpers.diagnostics import CompilationLog, count_compilations
from helpers.events import SpikeEvents, event_input, spike_events
from helpers.exercises import check_answer
from helpers.minibatch import EpochPlan, MinibatchTrainer, masked_cross_entropy
from helpers.model import (
    SNN,
    SwitchableSurrogate,
    TrainableTauLIF,
    default_input_scale,
    detach_reset,
    heaviside,
)
from helpers.online import (
    LEARNING_RULES,
    OnlineMinibatchTrainer,
    OnlineTrainer,
    per_step_cross_entropy,
)
from helpers.page import PAGE_PRINTED, run_page_recipe
from helpers.plotting import (
    plot_confusion,
    plot_history,
    plot_loss,
    plot_network_activity,
    plot_raster,
    plot_readout,
)
from helpers.readout import READOUTS, confusion_matrix, cross_entropy, readout
from helpers.runs import fit_runs
from helpers.training import LossBlowUpWarning, Trainer, accuracy, fit
from helpers.versions import TESTED_VERSIONS, StackWarning, check_stack, print_stack, stack_versions

# (helpers.readout is the function; its module, helpers/readout.py, also holds accuracy_score)
__all__ = [
    "SNN",
    "default_input_scale",
    "heaviside",
    "detach_reset",
    "SwitchableSurrogate",
    "TrainableTauLIF",
    "PAGE_PRINTED",
    "run_page_recipe",
    "poisson_dataset",
    "poisson_spikes",
    "random_labels",
    "pattern_dataset",
    "timing_dataset",
    "split_batch",
    "dataset_fingerprint",
    "SpikeEvents",
    "spike_events",
    "event_input",
    "READOUTS",
    "readout",
    "cross_entropy",
    "confusion_matrix",
    "Trainer",
    "LossBlowUpWarning",
    "fit",
    "fit_runs",
    "accuracy",
    "count_compilations",
    "CompilationLog",
    "check_answer",
    "datasets",
    "activity",
    "EpochPlan",
    "MinibatchTrainer",
    "masked_cross_entropy",
    "LEARNING_RULES",
    "OnlineTrainer",
    "OnlineMinibatchTrainer",
    "per_step_cross_entropy",
    "plot_raster",
    "plot_network_activity",
    "plot_readout",
    "plot_loss",
    "plot_history",
    "plot_confusion",
    "TESTED_VERSIONS",
    "stack_versions",
    "print_stack",
    "check_stack",
    "StackWarning",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "CheckpointError",
]
