"""Searchers, agent training, benchmarks and the ``ferrogym`` command line.

- :mod:`.searchers`: random, grid and Bayesian (Optuna GP, TPE) search behind ask/tell;
- :mod:`.policy`: a trained SB3 policy as a searcher; :mod:`.training`: SB3 training runs;
- :mod:`.search`: the one search loop; :mod:`.benchmark` and :mod:`.report`: benchmarks;
- :mod:`.audit`: reward against truth; :mod:`.analyze`: one's own data (``ferrogym.analyze``),
  :mod:`.result`: what it returns and writes, :mod:`.record`: how to reproduce it; :mod:`.cli`.
"""
