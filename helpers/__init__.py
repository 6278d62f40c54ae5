"""Shared code of the snn-tutorial notebooks: the model, the data, training and plotting.

>>> from helpers import SNN, poisson_dataset, fit

Notebooks import only from this face (``helpers.X``, and the namespaces ``helpers.realdata``,
``helpers.selection``, ``helpers.activity``, ``helpers.deep``, ``helpers.nir_spyx``, ``helpers.distributed``,
``helpers.launcher`` and ``helpers.shd``). As d2l tags each function with the section that introduces
it, the table names the notebook where each name first appears (README: the CLI and checkpoints).

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
12        to_nir, write_nir, read_nir, from_nir, simulate_nir, spike_agreement, NIRError, quantised,
          quantise_array, load_network, nir_spyx
13        distributed (DataParallelTrainer), launcher (launch), shd (SHD-layout files: load, read,
          write_synthetic)
14        OnlineTrainer, OnlineMinibatchTrainer, LEARNING_RULES, per_step_cross_entropy, cosine,
          map_in_threads
issue 19  deep (DeepSNN: hidden LIF/ALIF layers, spiking output), LOSSES, SPIKE_LOSSES (and
          activity.firing_bounds)
README    save_checkpoint, load_checkpoint, read_checkpoint, CheckpointError, TrainingCore,
          TESTED_VERSIONS, stack_versions, check_stack, StackWarning
========  ==================================================================================

The modules form layers, each importing only from the layers below it (checked by import-linter in
``make lint``; the contract is in pyproject.toml), so the package has no import cycle::

    __main__
    cli                                        the command line, one for every dataset
    cli_datasets | runfolder | cli_export | nir_spyx | launcher | cli_deep
                                               real datasets' settings | the files a run writes |
                                               the export command | a NIR graph run in spyx |
                                               N local processes on 127.0.0.1 (--processes) |
                                               the deeper networks' options (--layers, --loss, ...)
    checkpoint | runs | online | page_recipe | exercises | selection | nir_export | quantise |
    distributed                                network + optimiser on disk | many runs (vmap) |
                                               online learning (braintrace; a TrainingCore path) | ... |
                                               a network as a NIR graph and back | weights of few bits
                                               | data parallel over processes (a MinibatchTrainer)
    minibatch                                  minibatch training (a TrainingCore)
    training | shd | deep                      the training core and the full-batch Trainer |
                                               SHD-layout files (on realdata's Splits) | networks
                                               from a list of LIF/ALIF layers (a kind of SNN)
    model | activity | realdata | synthetic | plotting
    events | readout | diagnostics
    validation | versions | process_group      ... | joining a group of processes (jax.distributed)
    arraytypes

``process_group`` is imported first and joins a group of processes only when the environment asks
for it (a process started by ``--processes``, or ``HELPERS_DISTRIBUTED=auto`` on a cluster): joining
has to precede the stack's import, which starts JAX's backend. In any other process, importing
``helpers`` starts, joins and binds nothing (see :mod:`helpers.process_group`).
"""

from helpers import process_group as _process_group

if _process_group.wanted():  # asked to join a group of processes: before the stack starts JAX's backend
    _process_group.initialize()

from helpers.versions import check_stack as _check_stack  # noqa: E402

_check_stack()  # a clear error, before anything else, when the installed stack lacks what we use

from helpers import (
    activity,  # what spikes cost: helpers.activity.synaptic_operations, ...
    deep,  # deeper networks: helpers.deep.DeepSNN (issue 19)
    distributed,  # many processes: helpers.distributed.DataParallelTrainer (notebook 13)
    launcher,  # N local processes: helpers.launcher.launch (notebook 13)
    nir_spyx,  # a NIR graph run in spyx (an optional dependency): helpers.nir_spyx.run_spyx
    realdata,  # real data and its spike codes: helpers.realdata.load_digits, ...
    selection,  # choices on validation: helpers.selection.fit_best_epoch, tune_on_validation, ...
    shd,  # SHD and SSC from local files: helpers.shd.load (notebook 13)
)
from helpers.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_network,
    read_checkpoint,
    save_checkpoint,
)
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
from helpers.nir_export import NIRError, from_nir, read_nir, simulate_nir, spike_agreement, to_nir, write_nir
from helpers.online import (
    LEARNING_RULES,
    OnlineMinibatchTrainer,
    OnlineTrainer,
    cosine,
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
from helpers.quantise import quantise_array, quantised
from helpers.readout import (
    LOSSES,
    READOUTS,
    SPIKE_LOSSES,
    confusion_matrix,
    cross_entropy,
    masked_mean,
    per_step_cross_entropy,
    readout,
)
from helpers.runs import fit_runs, map_in_threads
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
    "LOSSES",
    "SPIKE_LOSSES",
    "deep",
    "readout",
    "cross_entropy",
    "confusion_matrix",
    "TrainingCore",
    "Trainer",
    "LossBlowUpWarning",
    "fit",
    "fit_runs",
    "map_in_threads",
    "accuracy",
    "count_compilations",
    "CompilationLog",
    "check_answer",
    "realdata",
    "activity",
    "nir_spyx",
    "selection",
    "distributed",
    "launcher",
    "shd",
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
    "to_nir",
    "from_nir",
    "write_nir",
    "read_nir",
    "load_network",
    "simulate_nir",
    "spike_agreement",
    "NIRError",
    "quantised",
    "quantise_array",
]
