"""Goal streams for ``ik_bench stream``: the paths that matter to a robot following a stream of goal poses,
and the runner that feeds their goals to three solvers, interleaved goal by goal.

A path is a joint-space path ``q(t)`` (rad, chain order) sampled at the goal rate; its goals are FK of it,
the tip's pose (4x4) in the chain's base frame, then changed where the path is about something else (out
of reach, a jump). Every joint of every path moves at most ``MAX_PATH_SPEED_RAD_S`` (0.006 rad between
goals at 200 Hz) except at a jump, so that a solver within the joints' velocity limits can follow it.

The paths (``PATH_NAMES``):

1. ``smooth``: a slow sine per joint (0.2 to 0.5 Hz, amplitude 0.3 rad, phases spread over the joints)
   around a centre: for the Panda the middle of the limits with joint4 = -1.5 and joint6 = 1.9 rad (a
   collision-free configuration), for other chains the middle of the limits (0 for continuous joints).
2. ``wrist-singularity``: the smooth path with the wrist joint swept (0.25 Hz) through the value where the
   Jacobian's smallest singular value is smallest: the wrist joint is the one of the last three whose sweep
   within its limits at the centre reaches the smallest one (the Panda's joint6); the sweep stays inside
   the limits.
3. ``out-of-reach``: the smooth path's goals with the positions of the middle 40 % of the goals scaled
   smoothly away from the base frame's origin and back (by 1 + 0.5 sin², up to 1.5x; orientations kept):
   out of reach and back, as a teleoperator pushes past the workspace and returns. Which goals are
   reachable is judged by solving them in turn (``exact_solutions``); the path's description says how fast
   the exact solutions move near the boundary, where no arm within its velocity limits keeps up.
4. ``branch-jump``: the smooth path, but from the middle goal on, for 1 s (at most a quarter of the
   path), the goal is the pose of the middle configuration with joint 1 turned by 2.5 rad (+ if that is
   within its upper limit, else -): a goal far away in joint space, which no arm reaches within its
   velocity limits in that second; then back to the path.
5. ``obstacle``: the smooth path and a sphere obstacle centred on the middle goal's tip position, of the
   radius that puts 10 % of the goals' tip positions inside it (and the first goal outside). A command
   whose tip position (FK) lies within the sphere collides: the acceptance test (q -> bool) refuses it.
   Pure geometry of the tip point, not of the robot's bodies; simple on purpose.

Goals that no command may reach are not "reachable", and the tracking error is reported over the others:
the goals of path 3 no solve reaches, the jump of path 4, and the goals of path 5 whose tip lies within the
obstacle (no accepted command reaches them).

The solvers (``StreamSolver``), each started from the path's first configuration:

* the ``Tracker`` (``ik_neural.tracker``): each command a step from the last one within the step limits;
  a HELD command (the acceptance test refused the step) counts as none;
* each goal solved independently, as the node did before the Tracker: ``IKSolver.solve(T, seed=the last
  command, seed_first=True, timeout_s=0.005, accept=the path's test)``; a failure gives no command (the
  arm keeps the last one, which stays the next seed);
* TRAC-IK seeded with its previous answer (how MoveIt Servo uses TRAC-IK), 5 ms budget, eps 1e-5; a
  failure gives no command. It takes no acceptance test: its commands within the obstacle are counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

import numpy as np

from ik_neural.bench.protocol import Answer, SolverRun, run_interleaved
from ik_neural.bench.tracik import TracIK
from ik_neural.chain import KinematicChain
from ik_neural.query import AcceptanceTest
from ik_neural.solver import IKSolver
from ik_neural.tracker import APPROXIMATE, EXACT, Tracker

PATH_NAMES: tuple[str, ...] = ("smooth", "wrist-singularity", "out-of-reach", "branch-jump", "obstacle")
MAX_PATH_SPEED_RAD_S = 1.2
"""Fastest joint speed of every path outside a jump, rad/s: 0.006 rad between goals at 200 Hz."""
AMPLITUDE_RAD = 0.3
"""The smooth path's amplitude per joint, rad (less where a joint limit is closer)."""
FREQUENCIES_HZ = (0.2, 0.5)
"""The smooth path's sine frequencies, first joint to last, Hz: fastest joint 0.3 rad x 2 pi x 0.5 Hz =
0.94 rad/s, within ``MAX_PATH_SPEED_RAD_S``."""
WRIST_SWEEP_HZ = 0.25
"""Frequency of the wrist joint's sweep through the singularity, Hz (a crossing every 2 s)."""
LIMIT_MARGIN_RAD = 0.01
"""How far every path stays inside the joint limits, rad."""
PANDA_CENTRE = {"panda_joint4": -1.5, "panda_joint6": 1.9}
"""The Panda's smooth-path centre, rad, where it differs from the middle of the limits (collision-free)."""
OUT_OF_REACH_SCALE = 1.5
"""How far the out-of-reach path's goals go at most: their positions scaled this much from the base."""
OUT_OF_REACH_SHARE = 0.4
"""Share of the out-of-reach path's goals that go out and back (half out, half back)."""
REACH_TIMEOUT_S = 0.05
"""Budget of each solve that judges whether a goal of the out-of-reach stretch is reachable, s."""
JUMP_RAD = 2.5
JUMP_S = 1.0
OBSTACLE_SHARE = 0.1
TIMEOUT_S = 0.005
"""Budget per goal of the independent solve and of TRAC-IK, s."""
TRACIK_EPSILON = 1e-5

TRACKER = "Tracker"
INDEPENDENT = "independent solve"
TRACIK = "TRAC-IK"


@dataclass(frozen=True)
class Sphere:
    """A sphere obstacle: ``centre_m`` (3,) in the chain's base frame, m; ``radius_m`` m."""

    centre_m: np.ndarray
    radius_m: float

    def contains(self, points_m: np.ndarray) -> np.ndarray:
        """Whether each point (..., 3), base frame, m, lies within the sphere (boundary included)."""
        return np.linalg.norm(np.asarray(points_m) - self.centre_m, axis=-1) <= self.radius_m


@dataclass(frozen=True)
class StreamPath:
    """One path of goals, one goal per 1/rate s.

    ``q`` (N, dof): the joint-space path (rad, chain order), q[0] where every solver starts; ``T_goals``
    (N, 4, 4): the goals, the tip's pose in the base frame (FK of q where the path does not change them);
    ``reachable`` (N,): goals that a command may reach (the tracking error is reported over these);
    ``accept``: the acceptance test every command must pass (None: any), with the ``obstacle`` it tests.
    """

    name: str
    description: str
    q: np.ndarray
    T_goals: np.ndarray
    reachable: np.ndarray
    accept: Optional[AcceptanceTest] = None
    obstacle: Optional[Sphere] = None


# ------------------------------------------------------------------------------------------------- paths


def _limits(chain: KinematicChain) -> tuple[np.ndarray, np.ndarray]:
    """The limits the paths stay within, rad: the chain's less ``LIMIT_MARGIN_RAD``; [-pi, pi] for a
    continuous joint."""
    lower = np.where(chain.is_continuous, -math.pi, chain.lower + LIMIT_MARGIN_RAD)
    upper = np.where(chain.is_continuous, math.pi, chain.upper - LIMIT_MARGIN_RAD)
    return lower, upper


def path_centre(chain: KinematicChain) -> np.ndarray:
    """The smooth path's centre (dof,), rad: the middle of the limits, with ``PANDA_CENTRE`` for the joints
    named there (a Panda chain)."""
    centre = np.array(chain.middle, dtype=np.float64)
    for j, name in enumerate(chain.joint_names):
        centre[j] = PANDA_CENTRE.get(name, centre[j])
    return centre


def _amplitudes(centre: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``AMPLITUDE_RAD`` per joint, less where a limit is nearer to the centre."""
    return np.clip(np.minimum(centre - lower, upper - centre), 0.0, AMPLITUDE_RAD)


def smooth_path(chain: KinematicChain, times_s: np.ndarray, centre: Optional[np.ndarray] = None) -> np.ndarray:
    """Path 1 at ``times_s`` (N,), s: (N, dof) rad, joint j = centre_j + a_j sin(2 pi f_j t + 2 pi j / dof),
    f_j from 0.2 Hz (first joint) to 0.5 Hz (last)."""
    centre = path_centre(chain) if centre is None else centre
    amplitude = _amplitudes(centre, *_limits(chain))
    frequency = np.linspace(*FREQUENCIES_HZ, chain.dof)
    phase = 2 * math.pi * np.arange(chain.dof) / chain.dof
    return centre + amplitude * np.sin(2 * math.pi * frequency * times_s[:, None] + phase)


def smallest_singular_value(chain: KinematicChain, q: np.ndarray) -> np.ndarray:
    """The smallest singular value of the (6, dof) Jacobian (m and rad rows as they are) at each q (..., dof)."""
    return np.linalg.svd(chain.jacobian(q), compute_uv=False)[..., -1]


def wrist_singularity(chain: KinematicChain, centre: np.ndarray, samples: int = 721) -> tuple[int, float]:
    """(joint index, value rad): among the last three joints, the one whose sweep within its limits at the
    centre (``samples`` values) reaches the smallest smallest singular value of the Jacobian, and that value."""
    lower, upper = _limits(chain)
    best = (math.inf, 0, 0.0)
    for j in range(max(0, chain.dof - 3), chain.dof):
        values = np.linspace(lower[j], upper[j], samples)
        q = np.repeat(centre[None], samples, axis=0)
        q[:, j] = values
        sigma = smallest_singular_value(chain, q)
        k = int(np.argmin(sigma))
        if sigma[k] < best[0]:
            best = (float(sigma[k]), j, float(values[k]))
    return best[1], best[2]


def out_of_reach_path(chain: KinematicChain, rate_hz: float, q_smooth: np.ndarray, T_smooth: np.ndarray) -> StreamPath:
    """Path 3 from the smooth path's q (N, dof) and goals (N, 4, 4), a goal every 1/rate_hz s."""
    n = len(T_smooth)
    start, end = round(n * (0.5 - OUT_OF_REACH_SHARE / 2)), round(n * (0.5 + OUT_OF_REACH_SHARE / 2))
    scale = np.ones(n)
    scale[start:end] += (OUT_OF_REACH_SCALE - 1) * np.sin(math.pi * np.arange(end - start) / (end - start)) ** 2
    T = T_smooth.copy()
    T[:, :3, 3] *= scale[:, None]
    q_exact = exact_solutions(chain, T, q_smooth, start, end)
    reachable = np.isfinite(q_exact).all(-1)
    out = np.flatnonzero(~reachable)
    # Each joint's speed between neighbouring exact solutions, as a multiple of its velocity limit.
    speed = np.abs(np.diff(q_exact, axis=0)) * rate_hz / chain.velocity_limits
    pair, joint = np.unravel_index(np.nanargmax(speed), speed.shape) if np.isfinite(speed).any() else (0, 0)
    description = (
        f"the smooth path with goals {start}-{end - 1} moved out to {OUT_OF_REACH_SCALE:g}x their distance from "
        f"the base and back; goals {out[0]}-{out[-1]} out of reach"
        if out.size
        else "no goal out of reach"
    )
    if out.size:
        description += (
            f"; exact solutions, each seeded from its neighbour, move {chain.joint_names[joint]} at "
            f"{speed[pair, joint]:.1f}x its velocity limit between goals {pair} and {pair + 1}: no arm within "
            "its limits is exact at every reachable goal near the boundary"
        )
    return StreamPath("out-of-reach", description, q_smooth, T, reachable)


def exact_solutions(chain: KinematicChain, T_goals: np.ndarray, q_path: np.ndarray, start: int, end: int) -> np.ndarray:
    """The out-of-reach path's exact solutions (N, dof), NaN rows where none: q_path outside goals
    [start, end); inside, each goal solved (``REACH_TIMEOUT_S``, numerical) from its neighbour's solution,
    from start onwards until a goal is not solved and from end - 1 backwards until one is not. The goals
    between go farther out (the path's scale grows towards its middle): counted as out of reach unsolved."""
    solver = IKSolver(chain)
    solver.warm_up()  # the kernels loaded before the first budget starts
    q_exact = np.full_like(q_path, np.nan)
    q_exact[:start], q_exact[end:] = q_path[:start], q_path[end:]
    for indices, seed in ((range(start, end), q_path[start - 1]), (range(end - 1, start - 1, -1), q_path[end])):
        for i in indices:
            if np.isfinite(q_exact[i]).all():
                break  # the other walk got here
            result = solver.solve(T_goals[i], seed=seed, seed_first=True, timeout_s=REACH_TIMEOUT_S)
            if not result.success:
                break
            q_exact[i] = seed = result.q
    return q_exact


def _goals(chain: KinematicChain, q: np.ndarray) -> np.ndarray:
    return np.asarray(chain.forward(q), dtype=np.float64)


def _tip_accept(chain: KinematicChain, obstacle: Sphere) -> AcceptanceTest:
    """q (dof,) -> False when FK's tip position lies within ``obstacle``."""

    def accept(q: np.ndarray) -> bool:
        return not bool(obstacle.contains(chain.forward(q)[:3, 3]))

    return accept


def stream_paths(chain: KinematicChain, rate_hz: float, seconds: float, names: Sequence[str]) -> list[StreamPath]:
    """The paths named (``PATH_NAMES``), ``round(seconds * rate_hz)`` goals each (at least 8), a goal every
    1/rate_hz s. ValueError for an unknown name."""
    unknown = [name for name in names if name not in PATH_NAMES]
    if unknown:
        raise ValueError(f"unknown path {', '.join(unknown)}; choose from {', '.join(PATH_NAMES)}")
    n = max(8, round(seconds * rate_hz))
    times_s = np.arange(n) / rate_hz
    centre = path_centre(chain)
    q_smooth = smooth_path(chain, times_s, centre)
    T_smooth = _goals(chain, q_smooth)
    everywhere = np.ones(n, dtype=bool)
    middle = n // 2
    paths = []
    for name in names:
        if name == "smooth":
            description = (
                f"slow sines ({FREQUENCIES_HZ[0]:g}-{FREQUENCIES_HZ[1]:g} Hz, {AMPLITUDE_RAD:g} rad) around "
                f"[{', '.join(f'{v:.3g}' for v in centre)}]"
            )
            paths.append(StreamPath(name, description, q_smooth, T_smooth, everywhere))
        elif name == "wrist-singularity":
            j, value = wrist_singularity(chain, centre)
            lower, upper = _limits(chain)
            amplitude = float(np.clip(min(value - lower[j], upper[j] - value), 0.0, AMPLITUDE_RAD))
            q = q_smooth.copy()
            q[:, j] = value - amplitude * np.cos(2 * math.pi * WRIST_SWEEP_HZ * times_s)
            sigma = smallest_singular_value(chain, np.where(np.arange(chain.dof) == j, value, centre))
            description = (
                f"the smooth path with {chain.joint_names[j]} swept {value:.3f} -/+ {amplitude:.2f} rad "
                f"({WRIST_SWEEP_HZ:g} Hz; smallest singular value {sigma:.3g} there at the centre)"
            )
            paths.append(StreamPath(name, description, q, _goals(chain, q), everywhere))
        elif name == "out-of-reach":
            paths.append(out_of_reach_path(chain, rate_hz, q_smooth, T_smooth))
        elif name == "branch-jump":
            length = max(1, min(round(JUMP_S * rate_hz), n // 4))
            jump = np.zeros(n, dtype=bool)
            jump[middle : middle + length] = True
            q_far = q_smooth[middle].copy()
            lower, upper = _limits(chain)
            turn = JUMP_RAD if q_far[0] + JUMP_RAD <= upper[0] else -JUMP_RAD
            q_far[0] = np.clip(q_far[0] + turn, lower[0], upper[0])
            T = T_smooth.copy()
            T[jump] = _goals(chain, q_far)
            description = (
                f"the smooth path, goals {middle}-{middle + length - 1} ({length / rate_hz:g} s) the pose of the "
                f"middle configuration with {chain.joint_names[0]} {turn:+g} rad (not counted as reachable)"
            )
            paths.append(StreamPath(name, description, q_smooth, T, ~jump))
        else:  # obstacle
            tips = T_smooth[:, :3, 3]
            centre_m = tips[middle].copy()
            distance = np.linalg.norm(tips - centre_m, axis=-1)
            radius = float(min(np.quantile(distance, OBSTACLE_SHARE), 0.5 * distance[0]))
            obstacle = Sphere(centre_m, radius)
            inside = obstacle.contains(tips)
            description = (
                f"the smooth path; a sphere of radius {radius * 1e3:.1f} mm at the middle goal's tip "
                f"[{', '.join(f'{v:.3f}' for v in centre_m)}] m refuses commands whose tip is within it; "
                f"{int(inside.sum())} goals within it (not counted as reachable)"
            )
            paths.append(
                StreamPath(name, description, q_smooth, T_smooth, ~inside, _tip_accept(chain, obstacle), obstacle)
            )
    return paths


# ----------------------------------------------------------------------------------------------- solvers


class StreamSolver(Protocol):
    """A solver fed one goal after another: ``start`` at a path's first configuration, then ``command`` per
    goal (q (dof,), or None: no command, the arm keeps the last one)."""

    name: str

    def start(self, q0: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest]) -> None: ...

    def command(self, T_goal: np.ndarray) -> Optional[np.ndarray]: ...


class TrackerStream:
    """The ``Tracker``: ``reset(q0)``, then ``step(T_goal, dt_s, accept)`` per goal; exact and approximate
    commands count, a HELD one is none."""

    def __init__(self, tracker: Tracker, name: str = TRACKER) -> None:
        self.tracker, self.name = tracker, name
        self._dt_s, self._accept = 0.0, None

    def start(self, q0: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest]) -> None:
        self.tracker.reset(q0)
        self._dt_s, self._accept = dt_s, accept

    def command(self, T_goal: np.ndarray) -> Optional[np.ndarray]:
        cmd = self.tracker.step(T_goal, self._dt_s, accept=self._accept)
        return cmd.q if cmd.status in (EXACT, APPROXIMATE) else None


class IndependentStream:
    """Each goal solved on its own: ``IKSolver.solve(T, seed=the last command, seed_first=True,
    timeout_s, accept)``; a failure is no command, and the last command stays the seed."""

    def __init__(self, solver: IKSolver, timeout_s: float = TIMEOUT_S, name: str = INDEPENDENT) -> None:
        self.solver, self.timeout_s, self.name = solver, timeout_s, name
        self._q: np.ndarray = np.zeros(solver.chain.dof)
        self._accept: Optional[AcceptanceTest] = None

    def start(self, q0: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest]) -> None:
        self._q, self._accept = np.array(q0, dtype=np.float64), accept

    def command(self, T_goal: np.ndarray) -> Optional[np.ndarray]:
        result = self.solver.solve(T_goal, seed=self._q, seed_first=True, timeout_s=self.timeout_s, accept=self._accept)
        if not result.success:
            return None
        self._q = result.q
        return result.q


class TracIKStream:
    """TRAC-IK seeded with its previous answer (the path's first configuration at the start); a failure is
    no command. It takes no acceptance test."""

    def __init__(self, tracik: TracIK, name: str = TRACIK) -> None:
        self.tracik, self.name = tracik, name
        self._q: np.ndarray = np.zeros(tracik.dof)

    def start(self, q0: np.ndarray, dt_s: float, accept: Optional[AcceptanceTest]) -> None:
        self._q = np.array(q0, dtype=np.float64)

    def command(self, T_goal: np.ndarray) -> Optional[np.ndarray]:
        q = self.tracik.solve(T_goal, self._q)
        if q is not None:
            self._q = q
        return q


def _answer_of(solver: StreamSolver) -> Callable[[np.ndarray, np.ndarray], Answer]:
    """``solver.command`` as ``run_interleaved`` calls a solver (the seed is the solver's own: ignored)."""

    def solve(T_goal: np.ndarray, _seed: np.ndarray) -> Answer:
        q = solver.command(T_goal)
        return Answer(q, q is not None)

    return solve


def warm_up(solvers: Sequence[StreamSolver], path: StreamPath, dt_s: float, goals: int = 20) -> None:
    """Each solver on the first ``goals`` goals of ``path``, untimed (kernels compiled, caches filled)."""
    for solver in solvers:
        solver.start(path.q[0], dt_s, path.accept)
        for T in path.T_goals[:goals]:
            solver.command(T)


def run_stream(solvers: Sequence[StreamSolver], path: StreamPath, dt_s: float) -> list[SolverRun]:
    """Every solver started at ``path.q[0]`` and fed the path's goals ``dt_s`` s apart, interleaved goal by
    goal in a random order per goal (``run_interleaved``: perf_counter per call, GC off). Each run's q (N, dof)
    holds the commands, NaN rows where a solver gave none."""
    for solver in solvers:
        solver.start(path.q[0], dt_s, path.accept)
    seeds = np.repeat(path.q[:1], len(path.T_goals), axis=0)  # unused by the solvers: they seed themselves
    return run_interleaved([(s.name, _answer_of(s)) for s in solvers], path.T_goals, seeds, warmup=0)


def arm_commands(q0: np.ndarray, commands: np.ndarray) -> np.ndarray:
    """Where the arm is commanded after each goal (N, dof): each command, or the last one (q0 at first)
    where a solver gave none (NaN rows of ``commands``)."""
    arm = np.empty_like(commands)
    last = np.asarray(q0, dtype=np.float64)
    for i, q in enumerate(commands):
        if np.isfinite(q).all():
            last = q
        arm[i] = last
    return arm
