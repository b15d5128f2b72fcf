"""The benchmark behind ``ik_bench``, without the command line.

``protocol``: targets, the seed, the interleaved runs and the FK-judged success of every answer;
``tracik``: TRAC-IK (pytracik) as one of the solvers; ``stream``: goal streams (the paths, the Tracker and
the solvers it is compared with, fed goal by goal); ``tables``: what each table measures and how it is
printed (``ik_bench`` is ``ik_neural.commands.bench``).
"""
