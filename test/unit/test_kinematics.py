"""Kinematics layer: FK against Pinocchio, Jacobian against finite differences, fingerprints, errors."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ik_neural.chain import KinematicChain
from reference import ReferenceChain, dh_fk, example_robot_urdf, pinocchio_fk, pose_errors

# URDFs written by others, each with (base, tip). Between them: fixed joints folded into the chain,
# a prismatic joint (TIAGo's torso), continuous joints (PR2's forearm and wrist roll), links and
# joints outside the chain, mesh and transmission tags the chain must ignore.
THIRD_PARTY_CHAINS = {
    "panda": ("panda_description/urdf/panda.urdf", "panda_link0", "panda_link8"),
    "ur5": ("ur_description/urdf/ur5_robot.urdf", "base_link", "tool0"),
    "tiago": ("tiago_description/robots/tiago.urdf", "base_link", "arm_tool_link"),
    "pr2_right_arm": ("pr2_description/urdf/pr2.urdf", "torso_lift_link", "r_gripper_tool_frame"),
    "kinova": ("kinova_description/robots/kinova.urdf", "j2s6s200_link_base", "j2s6s200_end_effector"),
}
N_CONFIGS = 1000


def random_q(chain: KinematicChain, n: int, seed: int = 0) -> np.ndarray:
    return chain.bounds.sample(np.random.default_rng(seed), n)


@pytest.fixture(scope="module", params=sorted(THIRD_PARTY_CHAINS))
def third_party(request):
    relative_path, base, tip = THIRD_PARTY_CHAINS[request.param]
    path = example_robot_urdf(relative_path)
    return path, KinematicChain.from_urdf(path, base, tip)


def test_fk_matches_pinocchio(third_party):
    path, chain = third_party
    q = random_q(chain, N_CONFIGS)
    T_ref = pinocchio_fk(path, chain.base_link, chain.tip_link, chain.joint_names, q)

    results = {
        "numpy batch": chain.forward(q),
        "numpy one pose at a time": np.stack([chain.forward(q_k) for q_k in q]),
        "torch float64": chain.forward(torch.from_numpy(q)).numpy(),
    }
    for name, T in results.items():
        position_m, rotation_rad = pose_errors(T, T_ref)
        assert position_m.max() <= 1e-9, name
        assert rotation_rad.max() <= 1e-9, name

    T32 = chain.forward(torch.from_numpy(q).float())
    assert T32.dtype == torch.float32
    position_m, rotation_rad = pose_errors(T32.double().numpy(), T_ref)
    assert position_m.max() <= 1e-5
    assert rotation_rad.max() <= 1e-5


def test_frames_of_one_pose_compiled_match_the_vectorised_ones_and_pinocchio(third_party):
    """chain.frames of one float64 pose (the compiled kernel the collision checker uses) against the
    vectorised numpy frames of a batch, and its tip against Pinocchio's FK."""
    path, chain = third_party
    q = random_q(chain, 50, seed=4)
    frames_batch, tip_batch = chain.frames(q)
    T_ref = pinocchio_fk(path, chain.base_link, chain.tip_link, chain.joint_names, q)
    for k, q_k in enumerate(q):
        frames, tip = chain.frames(q_k)
        assert frames.shape == (chain.dof, 4, 4)
        assert np.abs(frames - frames_batch[k]).max() < 1e-12
        position_m, rotation_rad = pose_errors(tip, T_ref[k])
        assert position_m < 1e-9 and rotation_rad < 1e-9


def test_chain_links_place_every_link_fk_gives_as_pinocchio_does(third_party):
    """UrdfModel.chain_links: each link fixed to the base or to a chain joint's child, in the base and in
    another link's frame, against Pinocchio's FK of that link (to 1e-9 m); links beyond other joints left out."""
    from ik_neural.urdf_model import UrdfModel

    path, chain = third_party
    model = UrdfModel.parse(path)
    links = model.chain_links(chain)
    path_links = {model.robot.joint_map[name].child for name in chain.joint_names}
    assert {chain.base_link, chain.tip_link} | path_links <= set(links.names)
    # A link below a joint outside the chain (but the base, PR2's torso) moves without the chain's q: not placed.
    outside = [j for j in model.robot.joints if j.type != "fixed" and j.name not in chain.joint_names]
    assert not ({j.child for j in outside} - {chain.base_link}) & set(links.names)
    names, q = links.names, random_q(chain, 5, seed=3)
    frame = sorted(path_links)[len(path_links) // 2]
    for base in (chain.base_link, frame):
        T = np.stack([links.poses(q_k, names, frame=None if base == chain.base_link else base) for q_k in q])
        T_ref = np.stack([pinocchio_fk(path, base, name, chain.joint_names, q) for name in names], axis=1)
        position_m, rotation_rad = pose_errors(T, T_ref)
        assert position_m.max() < 1e-9 and rotation_rad.max() < 1e-9, (base, names)
    with pytest.raises(KeyError):
        links.poses(chain.middle, ["no_such_link"])
    assert links.poses(chain.middle, []).shape == (0, 4, 4)


def finite_difference_jacobian(chain: KinematicChain, q: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of FK: linear rows from dp/dq, angular rows from dR/dq · Rᵀ = skew(ω)."""
    J = np.empty((6, chain.dof))
    R = chain.forward(q)[:3, :3]
    for i in range(chain.dof):
        dq = np.zeros(chain.dof)
        dq[i] = step
        T_plus, T_minus = chain.forward(q + dq), chain.forward(q - dq)
        J[:3, i] = (T_plus[:3, 3] - T_minus[:3, 3]) / (2 * step)
        W = (T_plus[:3, :3] - T_minus[:3, :3]) / (2 * step) @ R.T
        J[3:, i] = [W[2, 1], W[0, 2], W[1, 0]]
    return J


def test_jacobian_matches_finite_differences(third_party):
    _, chain = third_party
    q = random_q(chain, 50, seed=1)
    J_batch = chain.jacobian(q)
    J_torch = chain.jacobian(torch.from_numpy(q)).numpy()
    for k in range(len(q)):
        J_fd = finite_difference_jacobian(chain, q[k])
        assert np.abs(chain.jacobian(q[k]) - J_fd).max() <= 1e-6
        assert np.abs(J_batch[k] - J_fd).max() <= 1e-6
        assert np.abs(J_torch[k] - J_fd).max() <= 1e-6
    T, J = chain.forward_and_jacobian(q)
    np.testing.assert_array_equal(T, chain.forward(q))
    np.testing.assert_array_equal(J, J_batch)


def test_torch_forward_is_differentiable_and_keeps_batch_shape():
    _, base, tip = THIRD_PARTY_CHAINS["tiago"]
    chain = KinematicChain.from_urdf(example_robot_urdf(THIRD_PARTY_CHAINS["tiago"][0]), base, tip)
    q = torch.from_numpy(random_q(chain, 12).reshape(3, 4, chain.dof)).requires_grad_(True)
    T = chain.forward(q)
    assert T.shape == (3, 4, 4, 4)
    # d(tip position)/dq from autograd equals the Jacobian's linear rows.
    T[..., :3, 3].sum().backward()
    J = chain.jacobian(q.detach())
    torch.testing.assert_close(q.grad, J[..., :3, :].sum(-2), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- DH tables


# A 6-DoF table with every column non-zero somewhere, and offsets.
DH = dict(
    a=[0.0, -0.425, -0.392, 0.0, 0.0, 0.05],
    d=[0.163, 0.0, 0.0, 0.133, 0.1, 0.1],
    alpha=[np.pi / 2, 0.0, 0.3, np.pi / 2, -np.pi / 2, 0.0],
    theta_offset=[0.0, 0.1, -0.2, 0.0, np.pi, 0.5],
    lower=[-np.pi] * 6,
    upper=[np.pi] * 6,
)


def test_from_dh_matches_the_dh_product():
    chain = KinematicChain.from_dh(**DH)
    q = random_q(chain, 200, seed=2)
    for q_k in q:
        T_ref = dh_fk(DH["a"], DH["d"], DH["alpha"], q_k + np.array(DH["theta_offset"]))
        position_m, rotation_rad = pose_errors(chain.forward(q_k), T_ref)
        assert position_m <= 1e-12 and rotation_rad <= 1e-12


def test_to_urdf_round_trips_through_pinocchio():
    chain = KinematicChain.from_dh(**DH, base_link="base", tip_link="flange")
    urdf = chain.to_urdf("dh_test_robot")
    reloaded = KinematicChain.from_urdf(urdf, "base", "flange")
    assert reloaded.fingerprint == chain.fingerprint
    assert reloaded.joint_names == chain.joint_names
    q = random_q(chain, 200, seed=3)
    np.testing.assert_allclose(reloaded.forward(q), chain.forward(q), rtol=0, atol=1e-12)


def test_to_urdf_is_what_pinocchio_reads(tmp_path):
    chain = KinematicChain.from_dh(**DH, base_link="base", tip_link="flange")
    path = tmp_path / "dh.urdf"
    path.write_text(chain.to_urdf("dh_test_robot"))
    q = random_q(chain, 200, seed=4)
    position_m, rotation_rad = pose_errors(chain.forward(q), pinocchio_fk(path, "base", "flange", chain.joint_names, q))
    assert position_m.max() <= 1e-9 and rotation_rad.max() <= 1e-9


def test_velocity_limits_are_the_urdfs_as_pinocchio_reads_them(third_party):
    """rad/s (m/s for TIAGo's prismatic torso), in chain order; PR2's continuous joints keep theirs too."""
    path, chain = third_party
    reference = ReferenceChain(path, chain.base_link, chain.tip_link, chain.joint_names)
    expected = [reference.model.velocityLimit[reference.model.joints[i].idx_v] for i in reference.joint_ids]
    np.testing.assert_array_equal(chain.velocity_limits, expected)
    assert (chain.velocity_limits > 0).all() and np.isfinite(chain.velocity_limits).all()


def test_velocity_limits_not_given_are_inf_and_do_not_change_the_fingerprint():
    """A DH table's default, a URDF's velocity 0 (as kinematics-only URDFs write it) or none: no limit known
    (inf), never a refused URDF; given ones survive to_urdf; the kinematics' fingerprint ignores them all."""
    plain = KinematicChain.from_dh(**DH, base_link="base", tip_link="flange")
    assert np.isinf(plain.velocity_limits).all()
    velocities = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    limited = KinematicChain.from_dh(**DH, velocity_limits=velocities, base_link="base", tip_link="flange")
    np.testing.assert_array_equal(limited.velocity_limits, velocities)
    assert limited.fingerprint == plain.fingerprint
    reloaded = KinematicChain.from_urdf(limited.to_urdf("dh"), "base", "flange")
    np.testing.assert_array_equal(reloaded.velocity_limits, velocities)
    assert np.isinf(KinematicChain.from_urdf(plain.to_urdf("dh"), "base", "flange").velocity_limits).all()
    urdf = URDF_TEMPLATE.format(**NOMINAL).replace('velocity="1"', 'velocity="0"', 1)
    assert KinematicChain.from_urdf(urdf, "world", "tool").velocity_limits.tolist() == [math.inf, 1.0]
    with pytest.raises(ValueError, match=r"joint 'joint_2': velocity limit -1.0 is not > 0"):
        KinematicChain.from_dh(**DH, velocity_limits=[1, -1, 1, 1, 1, 1])


# ---------------------------------------------------------------------------- fingerprint

URDF_TEMPLATE = """<robot name="two_link">
  <link name="world"/><link name="base"/><link name="upper"/><link name="lower"/><link name="tool"/>
  <link name="camera"/>
  <joint name="mount" type="fixed"><parent link="world"/><child link="base"/>
    <origin xyz="0 0 0.1" rpy="0 0 0"/></joint>
  <joint name="shoulder" type="{shoulder_type}"><parent link="base"/><child link="upper"/>
    <origin xyz="0 0 0.2" rpy="0 0 0"/><axis xyz="{shoulder_axis}"/>
    <limit lower="-2.0" upper="{shoulder_upper}" effort="10" velocity="1"/></joint>
  <joint name="elbow" type="revolute"><parent link="upper"/><child link="lower"/>
    <origin xyz="{elbow_xyz}" rpy="0 0.5 0"/><axis xyz="0 1 0"/>
    <limit lower="-1.5" upper="1.5" effort="10" velocity="1"/></joint>
  <joint name="tool_mount" type="fixed"><parent link="lower"/><child link="tool"/>
    <origin xyz="0.3 0 0" rpy="0 0 0"/></joint>
  <joint name="camera_mount" type="fixed"><parent link="base"/><child link="camera"/>
    <origin xyz="0.1 0 0" rpy="0 0 0"/></joint>
</robot>"""
NOMINAL = dict(shoulder_type="revolute", shoulder_axis="0 0 1", shoulder_upper="2.0", elbow_xyz="0.4 0 0")


def two_link(base: str = "world", tip: str = "tool", **changes) -> KinematicChain:
    return KinematicChain.from_urdf(URDF_TEMPLATE.format(**{**NOMINAL, **changes}), base, tip)


def test_fingerprint_is_equal_for_equal_chains(tmp_path):
    path = tmp_path / "two_link.urdf"
    path.write_text(URDF_TEMPLATE.format(**NOMINAL))
    renamed = URDF_TEMPLATE.format(**NOMINAL).replace('"shoulder"', '"left_shoulder"')
    fingerprints = {
        two_link().fingerprint,
        KinematicChain.from_urdf(path, "world", "tool").fingerprint,
        KinematicChain.from_urdf(str(path), "world", "tool").fingerprint,
        KinematicChain.from_urdf(renamed, "world", "tool").fingerprint,
    }
    assert len(fingerprints) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"shoulder_type": "continuous"},
        {"shoulder_axis": "0 1 0"},
        {"shoulder_upper": "2.000001"},
        {"elbow_xyz": "0.400001 0 0"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_fingerprint_changes_with_one_value(change):
    assert two_link(**change).fingerprint != two_link().fingerprint


def test_fingerprint_changes_with_the_chain_ends():
    assert two_link(base="base").fingerprint != two_link().fingerprint
    assert two_link(tip="lower").fingerprint != two_link().fingerprint


def test_fingerprint_is_stable_across_processes_and_machines():
    # Pinned: a change of this value invalidates every trained model, so it must be deliberate.
    expected = "c9fb8b707443e7eb"
    assert two_link().fingerprint == expected
    code = "import sys; sys.path[:0] = sys.argv[1:];from test_kinematics import two_link; print(two_link().fingerprint)"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(Path(__file__).parent),
            str(Path(__file__).parents[1]),
            str(Path(__file__).parents[2]),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert out.stdout.strip() == expected


def test_chain_contents():
    chain = two_link()
    assert chain.dof == 2
    assert chain.joint_names == ["shoulder", "elbow"]
    np.testing.assert_array_equal(chain.lower, [-2.0, -1.5])
    np.testing.assert_array_equal(chain.upper, [2.0, 1.5])
    assert (chain.base_link, chain.tip_link) == ("world", "tool")
    # Zero configuration: mount 0.1 + shoulder 0.2 up, then elbow pitched 0.5 rad, tool 0.3 along x.
    expected = np.array([0.4 + 0.3 * np.cos(0.5), 0.0, 0.3 - 0.3 * np.sin(0.5)])
    np.testing.assert_allclose(chain.forward(np.zeros(2))[:3, 3], expected, atol=1e-15)
    with pytest.raises(ValueError, match="read-only"):
        chain.lower[0] = -3.0  # the fingerprint was computed from it
    continuous = two_link(shoulder_type="continuous")
    assert continuous.is_continuous.tolist() == [True, False]
    np.testing.assert_array_equal(chain.middle, [0.0, 0.0])
    np.testing.assert_array_equal(two_link(shoulder_upper="3.0").middle, [0.5, 0.0])
    assert continuous.middle[0] == 0.0
    assert (continuous.lower[0], continuous.upper[0]) == (-np.pi, np.pi)


# ---------------------------------------------------------------------------- bad input


# Not a tree: a and b are each other's parent. urdf_parser_py accepts it; the chain must not loop.
CYCLIC_URDF = """<robot name="cycle"><link name="a"/><link name="b"/><link name="c"/>
  <joint name="ab" type="fixed"><parent link="a"/><child link="b"/></joint>
  <joint name="ba" type="fixed"><parent link="b"/><child link="a"/></joint>
</robot>"""


@pytest.mark.parametrize(
    "urdf, base, tip, message",
    [
        ('<robot name="r"><link name="a"/>', "a", "a", "malformed URDF XML"),
        ("<robt/>", "a", "b", "expected <robot>"),
        (URDF_TEMPLATE.format(**NOMINAL), "nowhere", "tool", "base_link 'nowhere' is not a link"),
        (URDF_TEMPLATE.format(**NOMINAL), "world", "gripper", "tip_link 'gripper' is not a link"),
        (URDF_TEMPLATE.format(**NOMINAL), "tool", "world", "no path from base_link 'tool' to tip_link 'world'"),
        (URDF_TEMPLATE.format(**NOMINAL), "camera", "tool", "no path from base_link 'camera'"),
        (URDF_TEMPLATE.format(**NOMINAL), "lower", "tool", "no movable joints"),
        (
            URDF_TEMPLATE.format(**NOMINAL).replace('<limit lower="-1.5" upper="1.5" effort="10" velocity="1"/>', ""),
            "world",
            "tool",
            "revolute joint 'elbow' has no <limit",
        ),
        (
            URDF_TEMPLATE.format(**{**NOMINAL, "shoulder_upper": "-3"}),
            "world",
            "tool",
            "joint 'shoulder' has invalid limits",
        ),
        (
            URDF_TEMPLATE.format(**{**NOMINAL, "shoulder_type": "floating"}),
            "world",
            "tool",
            "joint 'shoulder' has type 'floating'",
        ),
        ("/nonexistent/robot.urdf", "a", "b", "cannot read URDF file '/nonexistent/robot.urdf'"),
        (CYCLIC_URDF, "c", "a", "no path from base_link 'c' to tip_link 'a'"),
    ],
)
def test_bad_urdf_is_refused_with_a_clear_error(urdf, base, tip, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        KinematicChain.from_urdf(urdf, base, tip)


@pytest.mark.parametrize("array", [np.asarray, torch.tensor])
def test_bad_q_is_refused_with_a_clear_error(array):
    chain = two_link()
    with pytest.raises(ValueError, match=r"q has shape \(3,\); expected \(\.\.\., 2\)"):
        chain.forward(array([0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"q has shape \(\); expected"):
        chain.jacobian(array(0.0))
    with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf\) for joints \['elbow'\]"):
        chain.forward(array([[0.0, 0.0], [0.1, float("nan")]]))
    with pytest.raises(ValueError, match=r"for joints \['shoulder'\]"):
        chain.forward_and_jacobian(array([float("inf"), 0.0]))


def test_bad_dh_table_is_refused():
    with pytest.raises(ValueError, match="DH table: d has 2 entries, a has 3"):
        KinematicChain.from_dh([0, 0, 0], [0, 0], [0, 0, 0], lower=[-1] * 3, upper=[1] * 3)
