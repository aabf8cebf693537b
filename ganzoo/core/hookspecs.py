"""Every hook ganzoo calls. Plugins implement them with ``from ganzoo import hookimpl``.

Registration hooks get a ``register`` callback and are called once per CLI invocation (or per
``ganzoo.core.host.load_host()`` call), each plugin separately so that one broken plugin is reported by
name and the others still load. Observer hooks are called by the trainer with keyword arguments,
trainer first, and return nothing. Under ``torchrun``, the hooks that observe a run are called on
rank 0 only (the rank that writes the run directory); those that shape the models on every rank.

Every hook is dispatched in one order: the plugins in load order (ganzoo's built-ins by entry-point
name, then other installed plugins by distribution and name, then ``--plugin`` files, then plugin
objects), then, for the hooks of a run, that run's observers (``ganzoo_run_observers``) in the
order they were made, then the observers the caller handed to the run (the progress bar).
A ``firstresult`` hook stops at the first answer in that order.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")


# -- registration -------------------------------------------------------------------------------


@hookspec
def ganzoo_register_strategies(register):
    """Register training strategies (``ganzoo.core.parts.Strategy``).

    :param register: call ``register(strategy)`` once per strategy.
    :return: nothing.

    Called when the host loads plugins. A name registered twice is an error naming both plugins.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_register_input_policies(register):
    """Register discriminator-input policies (``ganzoo.core.parts.NamedFactory`` building an InputPolicy).

    :param register: call ``register(NamedFactory(name, summary, build, options=(...), supports=Supports(...)))``;
        ``build(config)`` returns a callable ``policy(discriminator, real, fakes, phase) -> PolicyOutput``
        (``phase``: ``"discriminator"`` or ``"generator"``), which may ask for several
        discriminators (``discriminators``) and act after each D step
        (``after_discriminator_step``). Its options are accepted only in runs that use it
        (``--policy NAME``).
    :return: nothing.

    Called when the host loads plugins.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_register_aggregations(register):
    """Register loss-aggregation strategies (``ganzoo.core.parts.NamedFactory`` building an Aggregation).

    :param register: call ``register(NamedFactory(name, summary, build))``; ``build(config)``
        returns a callable ``aggregation(policy_output) -> Objective``.
    :return: nothing.

    Called when the host loads plugins.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_register_architectures(register):
    """Register generator/discriminator architectures (``ganzoo.core.parts.Architecture``).

    :param register: call ``register(architecture)``.
    :return: nothing.

    Called when the host loads plugins.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_register_datasets(register):
    """Register datasets (``ganzoo.core.parts.Dataset``).

    :param register: call ``register(dataset)``.
    :return: nothing.

    Called when the host loads plugins.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_register_commands(register):
    """Add CLI commands.

    :param register: call ``register(command, group="train")`` with a ``click.Command``;
        ``group`` is ``"root"`` (a top-level ``ganzoo <name>``) or ``"train"`` (a ``ganzoo train
        <name>`` subcommand that is not a strategy: the core makes every registered strategy's
        command itself, since plugin API 0.3).
    :return: nothing.

    Called once when the host loads plugins (once per CLI invocation). A name registered twice in
    one group is an error naming both plugins, and so is a root command named like one of ganzoo's
    own (train, sample, eval, compare, list, plugins, report).

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_register_extractors(register):
    """Register feature extractors for ``ganzoo eval`` (``ganzoo.core.parts.Extractor``).

    :param register: call ``register(extractor)``.
    :return: nothing.

    Called when the host loads plugins. ``ganzoo eval --features NAME`` picks one; the metrics
    (FID, KID, precision/recall, density/coverage) are computed on its features, and the
    class-based ones (classes covered, IS, modes) on its class logits when it has them.

    .. versionadded:: 0.2.0
    """


@hookspec
def ganzoo_register_train_options(register):
    """Add observer options to every ``ganzoo train <strategy>`` command (``ganzoo.core.parts.TrainOption``).

    :param register: call ``register(TrainOption(...))`` once per option.
    :return: nothing.

    Called when the host loads plugins. A value given on the command line (or under
    ``[options]`` in a ``--config`` file) is checked by the option's ``check``, kept in the run's
    ``config.options[key]`` and saved with the run, so a resumed run keeps it. An option that a
    part reads (a policy's, an aggregation's, a strategy's) belongs in that part's ``options``
    instead, so that it is accepted only when the part is in use. A flag of the core's (``--lr``,
    ``--steps``, ...) or another part's makes the plugin broken.

    .. versionadded:: 0.2.0
    """


# -- observers: called by the trainer, return nothing ---------------------------------------------


@hookspec
def ganzoo_run_observers(trainer):
    """Make this plugin's observers of one run: objects that keep their state per run.

    :param trainer: the ``ganzoo.training.trainer.Trainer``; ``trainer.config``, the networks and
        their optimizers are set, nothing is restored yet.
    :return: an object, a list of objects, or None. Each object's methods named like an observer
        hook (``ganzoo_on_step_end(self, trainer, step)``), ``ganzoo_add_checkpoint_tensors``,
        ``ganzoo_on_checkpoint_load`` or ``ganzoo_sampling_weights`` are called for this run only,
        with the same arguments (an object may take fewer), after the plugins' own implementations
        of that hook. A method named ``ganzoo_...`` that is no such hook is an error naming the plugin.

    An object may also have a ``close()`` method, called once when the run's session ends, however
    it ends (a run that fails never reaches ``ganzoo_on_train_end``): close files there.

    Called once per run, in ``Trainer.__init__``; under ``torchrun``, on rank 0 only (the rank that
    writes: the other ranks make no observers). Prefer it to module-level state: two runs in one
    process (a notebook, ``ganzoo.testing``) each get their own objects. The ema and tensorboard
    plugins are written this way.

    .. versionadded:: 0.5.0
    """


@hookspec
def ganzoo_on_train_start(trainer):
    """Training is about to take its first step (also after a resume).

    :param trainer: the ``ganzoo.training.trainer.Trainer``; ``trainer.config``, ``trainer.step``,
        ``trainer.epoch``, ``trainer.run_dir`` and ``trainer.total_steps`` are set.

    Under ``torchrun`` (data-parallel training), called on rank 0 only.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_on_models_built(trainer):
    """The generators and the discriminator are built, their optimizers not yet.

    :param trainer: the ``ganzoo.training.trainer.Trainer``; ``trainer.generators`` (an ``nn.ModuleList``)
        and ``trainer.discriminator`` (an ``nn.ModuleDict`` by name when the input policy asks for
        several) are set, on ``trainer.device``.

    Called once per run from ``Trainer.__init__``, before any checkpoint is restored. A plugin
    may change the networks in place here, e.g. make generators share layers: the optimizers are
    built afterwards over each distinct parameter once.

    Under ``torchrun`` (data-parallel training), called on every rank.

    .. versionadded:: 0.2.0
    """


@hookspec
def ganzoo_on_step_end(trainer, step):
    """One generator step (with its ``n_dis`` discriminator steps) is done.

    :param trainer: the ``ganzoo.training.trainer.Trainer``.
    :param step: generator steps done so far (1 after the first).

    Called every step: keep it cheap, and never read device tensors here (that forces a host
    sync); ``trainer.latest`` holds the last logged metrics as plain floats, updated every
    ``log_every`` steps.

    Under ``torchrun`` (data-parallel training), called on rank 0 only.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_on_epoch_end(trainer, epoch, metrics):
    """An epoch is done and its metrics are written to metrics.jsonl.

    :param trainer: the ``ganzoo.training.trainer.Trainer``.
    :param epoch: epochs done so far (1 after the first).
    :param metrics: the epoch's record as written (plain JSON-able values).

    Under ``torchrun`` (data-parallel training), called on rank 0 only.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_on_checkpoint_saved(trainer, path):
    """A checkpoint was written and renamed into place (epoch ends, ``checkpoint_every`` steps, a stop signal).

    :param trainer: the ``ganzoo.training.trainer.Trainer``.
    :param path: the ``pathlib.Path`` of the checkpoint.

    Under ``torchrun`` (data-parallel training), called on rank 0 only.

    .. versionadded:: 0.1.0
    """


@hookspec
def ganzoo_add_checkpoint_tensors(trainer, tensors):
    """A checkpoint is about to be written: add the tensors your plugin must keep to ``tensors``.

    :param trainer: the ``ganzoo.training.trainer.Trainer``.
    :param tensors: a dict, name -> ``torch.Tensor``, that is saved in the same safetensors file,
        in the same atomic write, as the trainer's own state. Use names that start with your own
        prefix (``"ema."``); a name the trainer already uses is an error.

    Tensors named ``<prefix>.generator.<i>.<key>`` are a second set of weights for generator i
    (``<key>`` as in its ``state_dict``): ``ganzoo sample`` uses such a set by default.

    Under ``torchrun`` (data-parallel training), called on rank 0 only.

    .. versionadded:: 0.3.0 (0.2.0 called it ``ganzoo_on_checkpoint_save``, which is still called, right after it, until 0.7.0)
    """


@hookspec(firstresult=True)
def ganzoo_sampling_weights(trainer):
    """Offer the weights that the run's sample grids and ``--eval-every`` evaluations should use.

    :param trainer: the ``ganzoo.training.trainer.Trainer``.
    :return: ``(name, state_dicts)``: a short name recorded with the evaluation (``"ema"``) and
        one ``state_dict`` per generator, or None to leave the trained weights. The first plugin
        that answers wins. The trainer loads them into its own copy of the generators; the
        trained ones are never touched.

    The ema plugin answers with its averages, so that what a run shows while it trains is what
    ``ganzoo sample`` and ``ganzoo eval`` use afterwards. Under ``torchrun``, called on rank 0 only.

    .. versionadded:: 0.4.0
    """


@hookspec
def ganzoo_on_checkpoint_load(trainer, tensors):
    """The trainer has restored its state from a checkpoint (``--resume``, or a NaN rollback).

    :param trainer: the ``ganzoo.training.trainer.Trainer``; ``trainer.step`` is the checkpoint's step.
    :param tensors: every tensor of the checkpoint, name -> ``torch.Tensor`` on the CPU;
        what ``ganzoo_add_checkpoint_tensors`` added is there under the same names.

    Called before ``ganzoo_on_train_start`` when resuming.

    Under ``torchrun`` (data-parallel training), called on every rank.

    .. versionadded:: 0.2.0
    """


@hookspec
def ganzoo_on_train_end(trainer, metrics):
    """Training finished (its budget is spent) and the final checkpoint is saved.

    Not called when a signal or a non-finite value stops the run early.

    :param trainer: the ``ganzoo.training.trainer.Trainer``.
    :param metrics: the last epoch's record.

    Under ``torchrun`` (data-parallel training), called on rank 0 only.

    .. versionadded:: 0.1.0
    """
