"""``ganzoo tune``: a hyperparameter search with Optuna over ``ganzoo train`` runs. The search space
comes from the options (``ganzoo.tune.space``), each trial is a run folder trained and evaluated like
a comparison's job and pruned from its in-training evaluations (``ganzoo.tune.worker``), the study
lives in an Optuna storage in the output folder, and ``ganzoo.tune.report`` writes what it found."""
