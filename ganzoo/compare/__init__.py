"""Comparisons of configurations over seeds: the jobs of ``ganzoo compare`` (train, then evaluate, one
run folder each), and the launcher that runs them as local subprocesses."""
