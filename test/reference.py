"""Independent references for the tests: Pinocchio FK, a plain-numpy pose error and DLS step, the
example-robot-data URDFs, collision judges on their meshes. Nothing here imports ik_neural: answers are judged by code that is not under test."""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path

import numpy as np
import coal
import pinocchio


SOURCE_TREE = Path(__file__).resolve().parents[1]


def example_robot_urdf(relative_path: str) -> Path:
    """A URDF shipped by the example-robot-data package, e.g. 'ur_description/urdf/ur5_robot.urdf'."""
    root = importlib.metadata.distribution("example-robot-data").locate_file(
        "cmeel.prefix/share/example-robot-data/robots"
    )
    return Path(str(root)) / relative_path


class ReferenceChain:
    """Pinocchio's FK of ``tip_link`` in ``base_link``'s frame for a URDF (a file path or an XML string),
    q in the order of ``joint_names``; the model is built once. Joints not named stay at Pinocchio's
    neutral configuration."""

    def __init__(self, urdf: Path | str, base_link: str, tip_link: str, joint_names) -> None:
        text = str(urdf)
        is_xml = text.lstrip().startswith("<")
        self.model = pinocchio.buildModelFromXML(text) if is_xml else pinocchio.buildModelFromUrdf(text)
        self.data = self.model.createData()
        # Links are BODY frames: a joint may share a link's name (the SO-100's 'gripper').
        self.base_id = self.model.getFrameId(base_link, pinocchio.FrameType.BODY)
        self.tip_id = self.model.getFrameId(tip_link, pinocchio.FrameType.BODY)
        # Continuous joints are (cos, sin) pairs in Pinocchio's configuration vector.
        self.joint_ids = [self.model.getJointId(name) for name in joint_names]
        self.slots = [(self.model.joints[i].idx_q, self.model.joints[i].nq) for i in self.joint_ids]

    def forward(self, q: np.ndarray) -> np.ndarray:
        """q (dof,) -> (4, 4), or q (N, dof) -> (N, 4, 4)."""
        q = np.asarray(q, dtype=np.float64)
        poses = np.empty((len(q.reshape(-1, len(self.slots))), 4, 4))
        for k, q_k in enumerate(q.reshape(-1, len(self.slots))):
            q_pin = pinocchio.neutral(self.model)
            for (index, nq), angle in zip(self.slots, q_k):
                if nq == 2:
                    q_pin[index : index + 2] = [np.cos(angle), np.sin(angle)]
                else:
                    q_pin[index] = angle
            pinocchio.framesForwardKinematics(self.model, self.data, q_pin)
            poses[k] = (self.data.oMf[self.base_id].inverse() * self.data.oMf[self.tip_id]).homogeneous
        return poses.reshape(q.shape[:-1] + (4, 4))

    def errors(self, q: np.ndarray, T_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position error m, rotation angle rad) of FK(q) against T_target, both judged here."""
        return pose_errors(self.forward(q), T_target)


def axis_angle_rad(R_a: np.ndarray, R_b: np.ndarray, axis: int) -> np.ndarray:
    """The angle between the frames' ``axis`` columns, (...,) rad, by atan2 (exact near zero)."""
    a, b = R_a[..., :, axis], R_b[..., :, axis]
    return np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1))


def perturbed(T: np.ndarray, rng: np.random.Generator, scale_rad: float) -> np.ndarray:
    """T (N, 4, 4) with each rotation turned by a random rotation vector of about ``scale_rad`` per axis."""
    out = T.copy()
    for T_k in out:
        v = rng.normal(scale=scale_rad, size=3)
        angle, K = np.linalg.norm(v), np.cross(np.eye(3), v / np.linalg.norm(v))
        T_k[:3, :3] = (np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K) @ T_k[:3, :3]
    return out


def stl_triangles(path: Path | str) -> np.ndarray:
    """The triangles (N, 3, 3) of a binary STL file, m, read with numpy here (no mesh library under test)."""
    data = Path(path).read_bytes()
    count = int(np.frombuffer(data, np.uint32, 1, 80)[0])
    record = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    return np.frombuffer(data, record, count, 84)["v"].astype(np.float64)


def pinocchio_fk(urdf_path: Path | str, base_link: str, tip_link: str, joint_names, q: np.ndarray) -> np.ndarray:
    """T_base_tip computed by Pinocchio: q (N, dof) in the order of joint_names -> (N, 4, 4)."""
    return ReferenceChain(urdf_path, base_link, tip_link, joint_names).forward(
        np.asarray(q, dtype=np.float64).reshape(-1, len(joint_names))
    )


def pose_errors(T_a: np.ndarray, T_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position error in m, rotation angle of R_a·R_bᵀ in rad) for (..., 4, 4) poses.

    The angle comes from atan2 of the log map's sine and cosine parts, exact near zero where arccos
    of the trace would lose half the digits.
    """
    position = np.linalg.norm(T_a[..., :3, 3] - T_b[..., :3, 3], axis=-1)
    R = T_a[..., :3, :3] @ np.swapaxes(T_b[..., :3, :3], -1, -2)
    sine = 0.5 * np.linalg.norm(
        np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1),
        axis=-1,
    )
    cosine = 0.5 * (np.trace(R, axis1=-2, axis2=-1) - 1.0)
    return position, np.arctan2(sine, cosine)


def dh_fk(a, d, alpha, theta) -> np.ndarray:
    """Standard DH product of Rz(theta_i)·Tz(d_i)·Tx(a_i)·Rx(alpha_i), each link written out element by element."""
    T = np.eye(4)
    for a_i, d_i, alpha_i, theta_i in zip(a, d, alpha, theta):
        ct, st, ca, sa = np.cos(theta_i), np.sin(theta_i), np.cos(alpha_i), np.sin(alpha_i)
        T = T @ np.array(
            [
                [ct, -st * ca, st * sa, a_i * ct],
                [st, ct * ca, -ct * sa, a_i * st],
                [0.0, sa, ca, d_i],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )
    return T


def jacobian(chain: ReferenceChain, q: np.ndarray) -> np.ndarray:
    """Pinocchio's geometric Jacobian (6, dof) of the tip in the base frame, rows [linear; angular], at q (dof,)."""
    model, data = chain.model, chain.data
    q_pin = pinocchio.neutral(model)
    for (index, nq), angle in zip(chain.slots, q):
        if nq == 2:
            q_pin[index : index + 2] = [np.cos(angle), np.sin(angle)]
        else:
            q_pin[index] = angle
    J_world = pinocchio.computeFrameJacobian(model, data, q_pin, chain.tip_id, pinocchio.LOCAL_WORLD_ALIGNED)
    pinocchio.framesForwardKinematics(model, data, q_pin)
    R_world_base = data.oMf[chain.base_id].rotation
    J = J_world[:, [model.joints[i].idx_v for i in chain.joint_ids]]
    # The base is fixed in the world: only the axes change.
    return np.vstack([R_world_base.T @ J[:3], R_world_base.T @ J[3:]])


def swing_vector(R_target: np.ndarray, R: np.ndarray, axis: int) -> np.ndarray:
    """The swing of the tip's rotation onto the target's about ``axis`` (3,), base frame, rad: the error
    rotation R_target Rᵀ split, by quaternions, into a twist about the tip's axis (applied first) and the
    swing, whose log is returned."""
    quaternion = pinocchio.Quaternion(R_target @ R.T)  # x, y, z, w
    v = R[:, axis]
    vector = np.array([quaternion.x, quaternion.y, quaternion.z])
    twist = np.concatenate([vector @ v * v, [quaternion.w]])
    twist /= np.linalg.norm(twist)
    swing = quaternion * pinocchio.Quaternion(twist[3], *twist[:3]).conjugate()
    return pinocchio.log3(swing.toRotationMatrix())


def dls_step(
    chain: ReferenceChain,
    q: np.ndarray,
    T_target: np.ndarray,
    reach_m: float,
    free_axis: int,
    position_tolerance_m: float,
    orientation_tolerance_x_rad: float,
    orientation_tolerance_y_rad: float,
    orientation_tolerance_z_rad: float,
    rotation_weight: float,
    damping: float,
    error_damping: float,
    lower: np.ndarray,
    upper: np.ndarray,
    bounded: np.ndarray,
):
    """One damped-least-squares step, written plainly with numpy's solver and Pinocchio's FK, Jacobian and log:
    (q_next, converged, position error m, orientation error rad, normalised error norm), as ik_neural's kernel.

    free_axis: -1 every rotation held, 0/1/2 the rotation about that axis of the target frame free, 3 position
    only. The rotation error c: log(R_target Rᵀ), or the swing (``swing_vector``) with a free axis, as components
    about the target frame's held axes; e = [dp / reach; w c], dq = Jᵀ (J Jᵀ + λ I)⁻¹ e with λ = damping +
    error_damping |e|²; converged: |dp| within the position tolerance and Σ (c_j / tolerance_j)² <= 1. A
    bounded joint the step would push past a limit is held at it and the others re-solved for what is left;
    bounded joints are then clamped, the others wrapped to [-pi, pi).
    """
    T = chain.forward(q)
    J = jacobian(chain, q)
    dp = T_target[:3, 3] - T[:3, 3]
    omega = pinocchio.log3(T_target[:3, :3] @ T[:3, :3].T)
    position_error, orientation_error = float(np.linalg.norm(dp)), float(np.linalg.norm(omega))
    converged = position_error <= position_tolerance_m
    e, J_task = dp / reach_m, J[:3] / reach_m
    if free_axis != 3:
        rotation = omega if free_axis == -1 else swing_vector(T_target[:3, :3], T[:3, :3], free_axis)
        held = [j for j in range(3) if j != free_axis]
        axes = T_target[:3, held].T  # rows: the target's held axes in the base frame
        c = axes @ rotation
        orientation_error = float(np.linalg.norm(c))
        tolerance = np.array([orientation_tolerance_x_rad, orientation_tolerance_y_rad, orientation_tolerance_z_rad])[
            held
        ]
        converged = converged and float(np.sum((c / tolerance) ** 2)) <= 1.0 and orientation_error <= tolerance.max()
        e = np.concatenate([e, rotation_weight * c])
        J_task = np.vstack([J_task, rotation_weight * axes @ J[3:]])
    J = J_task
    lam = damping + error_damping * float(e @ e)

    def damped(J_, e_):
        return J_.T @ np.linalg.solve(J_ @ J_.T + lam * np.eye(len(e_)), e_)

    q_try = q + damped(J, e)
    over = bounded & ((q_try < lower) | (q_try > upper))
    if over.any():
        delta = np.where(over, np.clip(q_try, lower, upper) - q, 0.0)
        q_try = q + delta + damped(J * ~over, e - J @ delta)
    q_next = np.where(bounded, np.clip(q_try, lower, upper), np.mod(q_try + np.pi, 2 * np.pi) - np.pi)
    return q_next, converged, position_error, orientation_error, float(np.linalg.norm(e))


class PinocchioCollisionJudge:
    """Self-collision by Pinocchio + coal on a URDF's collision geometry (Pinocchio's own parser and
    placement), over the link pairs ``enabled_pairs`` only; the arm's ``joint_names`` set from q, every
    other joint at Pinocchio's neutral (0)."""

    def __init__(self, urdf_path: Path | str, enabled_pairs, joint_names) -> None:
        self.model = pinocchio.buildModelFromUrdf(str(urdf_path))
        # The shipped URDFs name their meshes package://ik_neural/models/...: the source tree holds that package.
        xml = Path(urdf_path).read_text().replace("package://ik_neural/", f"{SOURCE_TREE}/")
        self.geom = pinocchio.buildGeomFromUrdfString(self.model, xml, pinocchio.GeometryType.COLLISION)
        enabled = {frozenset(pair) for pair in enabled_pairs}
        objects = self.geom.geometryObjects
        for i in range(len(objects)):
            for j in range(i + 1, len(objects)):
                links = frozenset(
                    (self.model.frames[objects[i].parentFrame].name, self.model.frames[objects[j].parentFrame].name)
                )
                if links in enabled:
                    self.geom.addCollisionPair(pinocchio.CollisionPair(i, j))
        self.data, self.geom_data = self.model.createData(), pinocchio.GeometryData(self.geom)
        self.arm = [self.model.joints[self.model.getJointId(name)].idx_q for name in joint_names]

    def collides(self, q: np.ndarray) -> bool:
        q_pin = pinocchio.neutral(self.model)
        q_pin[self.arm] = q
        return bool(pinocchio.computeCollisions(self.model, self.data, self.geom, self.geom_data, q_pin, False))

    def verdicts(self, in_collision, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``in_collision(q)``, this judge's) per configuration of Q (N, dof): the checker under test
        against this reference."""
        return np.array([in_collision(q) for q in Q]), np.array([self.collides(q) for q in Q])


class PandaMeshJudge:
    """Self-collision and box collision of the Panda on example-robot-data's collision meshes (Pinocchio
    places them): every pair of links that are not adjacent in the tree and do not touch at the
    middle configuration (fingers closed); ``hits_box``: any link against a box (size (3,) m at centre (3,)
    in the base frame), when one is given."""

    def __init__(self, joint_names, q_middle, box_center_m=None, box_size_m=None) -> None:
        urdf = str(example_robot_urdf("panda_description/urdf/panda.urdf"))
        share = str(example_robot_urdf("")).rsplit("/example-robot-data/", 1)[0]
        self.model = pinocchio.buildModelFromUrdf(urdf)
        self.geom = pinocchio.buildGeomFromUrdf(
            self.model, urdf, pinocchio.GeometryType.COLLISION, package_dirs=[share]
        )
        self.arm = [self.model.joints[self.model.getJointId(name)].idx_q for name in joint_names]
        self.box = (
            None
            if box_size_m is None
            else (coal.Box(*box_size_m), coal.Transform3s(np.eye(3), np.array(box_center_m, dtype=np.float64)))
        )
        objects = self.geom.geometryObjects
        link = [self.model.frames[o.parentFrame].name for o in objects]
        parent = {
            self.model.frames[f].name: self.model.frames[self.model.frames[f].parentFrame].name
            for f in range(len(self.model.frames))
        }
        with_geometry = set(link)

        def geometry_parent(name):  # the nearest link with geometry above it
            while name in parent and parent[name] != name:
                name = parent[name]
                if name in with_geometry:
                    return name
            return None

        candidates = [
            (i, j)
            for i in range(len(objects))
            for j in range(i + 1, len(objects))
            if link[i] != link[j] and geometry_parent(link[i]) != link[j] and geometry_parent(link[j]) != link[i]
        ]
        for i, j in candidates:
            self.geom.addCollisionPair(pinocchio.CollisionPair(i, j))
        data = pinocchio.GeometryData(self.geom)
        q = self._q(q_middle)
        pinocchio.computeCollisions(self.model, self.model.createData(), self.geom, data, q, False)
        touching = {k for k in range(len(candidates)) if data.collisionResults[k].isCollision()}
        self.geom.removeAllCollisionPairs()
        for k, (i, j) in enumerate(candidates):
            if k not in touching:
                self.geom.addCollisionPair(pinocchio.CollisionPair(i, j))
        self.pairs = len(candidates) - len(touching)
        self.data, self.geom_data = self.model.createData(), pinocchio.GeometryData(self.geom)

    def _q(self, q):
        q_pin = pinocchio.neutral(self.model)
        q_pin[self.arm] = q
        return q_pin

    def self_collides(self, q) -> bool:
        return bool(pinocchio.computeCollisions(self.model, self.data, self.geom, self.geom_data, self._q(q), True))

    def hits_box(self, q) -> bool:
        pinocchio.updateGeometryPlacements(self.model, self.data, self.geom, self.geom_data, self._q(q))
        box, T_box = self.box
        for k, obj in enumerate(self.geom.geometryObjects):
            M = self.geom_data.oMg[k]
            if coal.collide(
                obj.geometry,
                coal.Transform3s(M.rotation, M.translation),
                box,
                T_box,
                coal.CollisionRequest(),
                coal.CollisionResult(),
            ):
                return True
        return False


class MeshSelfCollisionJudge:
    """Self-collision of an example-robot-data URDF on its own collision meshes (Pinocchio parses the file and
    places them, coal collides them), over every pair of links that are not adjacent (a link and the nearest
    link with geometry above it); the arm's ``joint_names`` set from q, the other joints at ``held`` (name ->
    position) or 0."""

    def __init__(self, relative_path: str, joint_names, held=None) -> None:
        urdf = str(example_robot_urdf(relative_path))
        share = str(example_robot_urdf("")).rsplit("/example-robot-data/", 1)[0]
        self.model = pinocchio.buildModelFromUrdf(urdf)
        self.geom = pinocchio.buildGeomFromUrdf(
            self.model, urdf, pinocchio.GeometryType.COLLISION, package_dirs=[share]
        )
        frames = self.model.frames
        self.links = [frames[o.parentFrame].name for o in self.geom.geometryObjects]
        parent = {frame.name: frames[frame.parentFrame].name for frame in frames}
        with_geometry = set(self.links)

        def geometry_parent(name):
            while name in parent and parent[name] != name:
                name = parent[name]
                if name in with_geometry:
                    return name
            return None

        adjacent = {frozenset((link, geometry_parent(link))) for link in with_geometry}
        self.pairs = [
            (i, j)
            for i in range(len(self.links))
            for j in range(i + 1, len(self.links))
            if self.links[i] != self.links[j] and frozenset((self.links[i], self.links[j])) not in adjacent
        ]
        for i, j in self.pairs:
            self.geom.addCollisionPair(pinocchio.CollisionPair(i, j))
        self.data, self.geom_data = self.model.createData(), pinocchio.GeometryData(self.geom)
        self.arm = [self.model.joints[self.model.getJointId(name)].idx_q for name in joint_names]
        self.q_held = pinocchio.neutral(self.model)
        for name, value in (held or {}).items():
            self.q_held[self.model.joints[self.model.getJointId(name)].idx_q] = value

    def colliding_pairs(self, q) -> set[tuple[str, str]]:
        """The pairs of links (each sorted) whose meshes collide at q (dof,)."""
        q_pin = self.q_held.copy()
        q_pin[self.arm] = q
        pinocchio.computeCollisions(self.model, self.data, self.geom, self.geom_data, q_pin, False)
        return {
            tuple(sorted((self.links[i], self.links[j])))
            for k, (i, j) in enumerate(self.pairs)
            if self.geom_data.collisionResults[k].isCollision()
        }
