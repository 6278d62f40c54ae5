"""Shared code of the snn-tutorial notebooks: the model, the data, training and plotting.

>>> from helpers import SNN, poisson_dataset, fit

Notebooks import only from this face (``helpers.X``, and the namespaces ``helpers.realdata``,
``helpers.selection`` and ``helpers.activity``). As d2l tags each function with the section that
introduces it, the table names the notebook where each name first appears (README: the CLI and
checkpoints).

========  ==================================================================================
notebook  names
========  ==================================================================================
01        SNN, default_input_scale, poisson_spikes, plot_network_activity, print_stack
02        poisson_dataset, random_labels, dataset_fingerprint, plot_raster
03        heaviside, detach_reset, READOUTS, readout, cross_entropy, Trainer, fit, fit_runs
04        accuracy, count_compilations, CompilationLog, PAGE_PRINTED, run_page_recipe, plot_readout,
          plot_loss, LossBlowUpWarning
05        SwitchableSurrogate, check_answer
06        pattern_dataset, timing_dataset, split_batch, plot_history
07        TrainableTauLIF (and Trainer.reinitialize)
08        SpikeEvents, spike_events, event_input
09        realdata, selection, EpochPlan, MinibatchTrainer, masked_mean, confusion_matrix, plot_confusion
11        activity
14        OnlineTrainer, OnlineMinibatchTrainer, LEARNING_RULES, per_step_cross_entropy, cosine
README    save_checkpoint, load_checkpoint, read_checkpoint, CheckpointError, TrainingCore,
          TESTED_VERSIONS, stack_versions, check_stack, StackWarning
========  ==================================================================================

The modules form layers, each importing only from the layers below it (checked by import-linter in
``make lint``; the contract is in pyproject.toml), so the package has no import cycle::

    __main__
    cli                                        the command line, one for every dataset
    cli_datasets | runfolder                   real datasets' settings | the files a run writes
    checkpoint | runs | online | page_recipe | exercises | selection
                                               network + optimiser on disk | many runs (vmap) |
                                               online learning (braintrace; a TrainingCore path) | ...
    minibatch                                  minibatch training (a TrainingCore)
    training                                   the training core and the full-batch Trainer
    model | activity | realdata | synthetic | plotting
    events | readout | diagnostics
    validation | versions
    arraytypes
"""

from helpers.versions import check_stack as _check_stack

_check_stack()  # a clear error, before anything else, when the installed stack lacks what we use

from helpers import (
    activity,  # what spikes cost: helpers.activity.synaptic_operations, ...
    realdata,  # real data and its spike codes: helpers.realdata.load_digits, ...
    selection,  # choices on validation: helpers.selection.fit_best_epoch, tune_on_validation
)
from helpers.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from helpers.diagnostics import CompilationLog, count_compilations
from helpers.events import SpikeEvents, event_input, spike_events
from helpers.exercises import check_answer
from helpers.minibatch import EpochPlan, MinibatchTrainer
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
    cosine,
    per_step_cross_entropy,
)
from helpers.page_recipe import PAGE_PRINTED, run_page_recipe
from helpers.plotting import (
    plot_confusion,
    plot_history,
    plot_loss,
    plot_network_activity,
    plot_raster,
    plot_readout,
)
from helpers.readout import READOUTS, confusion_matrix, cross_entropy, masked_mean, readout
from helpers.runs import fit_runs
from helpers.synthetic import (
    dataset_fingerprint,
    pattern_dataset,
    poisson_dataset,
    poisson_spikes,
    random_labels,
    split_batch,
    timing_dataset,
)
from helpers.training import LossBlowUpWarning, Trainer, TrainingCore, accuracy, fit
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
    "TrainingCore",
    "Trainer",
    "LossBlowUpWarning",
    "fit",
    "fit_runs",
    "accuracy",
    "count_compilations",
    "CompilationLog",
    "check_answer",
    "realdata",
    "activity",
    "selection",
    "EpochPlan",
    "MinibatchTrainer",
    "masked_mean",
    "LEARNING_RULES",
    "OnlineTrainer",
    "OnlineMinibatchTrainer",
    "per_step_cross_entropy",
    "cosine",
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
