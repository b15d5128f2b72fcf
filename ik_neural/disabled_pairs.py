"""Pairs of robot links never checked against each other, as MoveIt decides them: adjacent links always (a
link and the nearest link with geometry above it); then the SRDF's ``<disable_collisions link1= link2=>``
(``srdf_disabled_pairs``) when one is given; otherwise the pairs MoveIt Setup Assistant disables, computed
from the robot's bodies alone (``compute_disabled_pairs``): in collision at the middle configuration, in
collision in at least ``ALWAYS_FRACTION`` or in none of ``samples`` random configurations (seeded). That
takes about a second; the result is cached under the per-user cache
(``~/.cache/ik_neural/collision/<key>.json``), keyed (``cache_key``) by the URDF's text, the chain, the held
positions and the sampling, so the next construction reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Mapping, Optional, Union
from xml.etree import ElementTree

import numpy as np

from ik_neural.joint_bounds import JointBounds
from ik_neural.kernels.cache import user_cache_dir
from ik_neural.robot_bodies import Pair, RobotBodies, pair

DEFAULT_SAMPLES = 10_000
"""Random configurations of the disabled-pair computation (MoveIt Setup Assistant's default density)."""
ALWAYS_FRACTION = 0.95
"""A pair in collision in at least this fraction of the samples is disabled as always colliding (MoveIt
Setup Assistant's default)."""
_CACHE_FORMAT = 1

ADJACENT, SRDF, GIVEN, DEFAULT, ALWAYS, NEVER = "adjacent", "srdf", "given", "default", "always", "never"


def adjacent_pairs(bodies: RobotBodies) -> set[Pair]:
    """Each link with geometry and the nearest link with geometry above it in the URDF tree."""
    robot, with_geometry = bodies.model.robot, set(bodies.link_names)
    pairs = set()
    for link in with_geometry:
        parent = link
        while parent in robot.parent_map:
            parent = robot.parent_map[parent][1]
            if parent in with_geometry:
                pairs.add(pair(link, parent))
                break
    return pairs


def compute_disabled_pairs(
    bodies: RobotBodies, samples: int = DEFAULT_SAMPLES, random_seed: int = 0
) -> dict[Pair, str]:
    """The pairs MoveIt Setup Assistant disables, each with its reason: 'adjacent'; 'default' (in collision
    at the middle configuration, the other joints at ``bodies.positions``); 'always' (in collision in at
    least ``ALWAYS_FRACTION`` of ``samples`` random configurations, drawn with ``random_seed``, the other
    joints drawn within their limits too); 'never' (in none of them). World objects play no part."""
    chain, model = bodies.chain, bodies.model
    reasons: dict[Pair, str] = {link_pair: ADJACENT for link_pair in adjacent_pairs(bodies)}
    reasons.update({pair(*found): DEFAULT for found in _colliding(bodies, chain.middle, None, reasons)})
    rng = np.random.default_rng(random_seed)
    Q = chain.bounds.sample(rng, samples)
    others = [name for name in bodies.other_joints if model.robot.joint_map[name].mimic is None]
    limits = np.array([model.joint_limits(name) for name in others]).reshape(-1, 2)
    other_bounds = JointBounds.of_limits(others, limits[:, 0], limits[:, 1], [False] * len(others))
    P = other_bounds.sample(rng, samples)
    I, J = bodies.body_pairs(reasons)
    counts: dict[Pair, int] = {pair(a, b): 0 for a, b in bodies.link_pairs(I, J)}
    for q, p in zip(Q, P):
        found: list[tuple[str, str]] = []
        bodies.self_collisions(
            bodies.place(q, dict(zip(others, p.tolist())) if others else None, (I, J)), I, J, found, False
        )
        for link_pair in set(found):
            counts[pair(*link_pair)] += 1
    for link_pair, count in counts.items():
        if count == 0:
            reasons[link_pair] = NEVER
        elif count >= ALWAYS_FRACTION * samples:
            reasons[link_pair] = ALWAYS
    return reasons


def _colliding(bodies: RobotBodies, q: np.ndarray, positions, disabled: Mapping[Pair, str]) -> set[tuple[str, str]]:
    """The colliding pairs of links (each sorted) at q (dof,), but the ``disabled`` ones."""
    found: list[tuple[str, str]] = []
    bodies.self_collisions(bodies.place(q, positions), *bodies.body_pairs(disabled), found, False)
    return set(found)


def cache_key(bodies: RobotBodies, samples: int, random_seed: int) -> str:
    """The cache key of the pairs computed for ``bodies`` with this sampling: a hash of the URDF's text, the
    chain's base and tip, the held positions and the sampling."""
    content = {
        "format": _CACHE_FORMAT,
        "urdf": bodies.model.xml,
        "base": bodies.chain.base_link,
        "tip": bodies.chain.tip_link,
        "positions": sorted(bodies.positions.items()),
        "samples": samples,
        "seed": random_seed,
        "always": ALWAYS_FRACTION,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]


def cache_path(key: str) -> Path:
    """Where the disabled pairs of cache key ``key`` are kept."""
    return user_cache_dir() / "collision" / f"{key}.json"


def read_cache(key: str) -> Optional[dict[Pair, str]]:
    """The pairs cached under ``key`` with their reasons; None where there are none (or none readable)."""
    try:
        content = json.loads(cache_path(key).read_text())
        if content.get("format") != _CACHE_FORMAT:
            return None
        return {pair(a, b): reason for a, b, reason in content["pairs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cache(key: str, reasons: Mapping[Pair, str]) -> None:
    """Write atomically (concurrent first constructions agree); an unwritable cache is skipped."""
    path = cache_path(key)
    pairs = sorted([*sorted(link_pair), reason] for link_pair, reason in reasons.items())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
            json.dump({"format": _CACHE_FORMAT, "pairs": pairs}, out)
        os.replace(out.name, path)
    except OSError:
        pass


def srdf_disabled_pairs(srdf: Union[str, os.PathLike]) -> set[Pair]:
    """The ``<disable_collisions link1= link2=>`` pairs of an SRDF (XML text or a file path)."""
    text = str(srdf)
    origin = "SRDF XML string"
    if not text.lstrip().startswith("<"):
        origin = f"SRDF file {text!r}"
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read {origin}: {exc.strerror}") from exc
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"malformed {origin}: {exc}") from exc
    pairs = set()
    for element in root.iter("disable_collisions"):
        a, b = element.get("link1"), element.get("link2")
        if not a or not b:
            raise ValueError(f"{origin}: <disable_collisions> needs link1= and link2=, got {dict(element.attrib)}")
        pairs.add(pair(a, b))
    return pairs
