"""The network layer: encodings, the model file, its refusals, and the hybrid solver's use of it."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from reference import ReferenceChain, pose_errors

from ik_neural import IKSolver, load_robot
from ik_neural.chain import KinematicChain
from ik_neural.network import (
    FORMAT_VERSION,
    METADATA_ENTRY,
    WEIGHTS_ENTRY,
    NetworkWeights,
    chain_metadata,
    load_network,
)
from ik_neural.torch_network import PoseToJoints, in_memory_network, save_network
from ik_neural.sampling import reachable_targets

# The tests call torch.jit themselves (as a user would); its deprecation notice is not ours to act on.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


def _targets(chain: KinematicChain, n: int, seed: int = 0) -> torch.Tensor:
    """n reachable target poses (n, 4, 4), float32 as the network takes them."""
    return torch.from_numpy(reachable_targets(chain, n, seed)[1]).float()


def _module(chain: KinematicChain, batch_norm: bool = False, **kwargs) -> PoseToJoints:
    torch.manual_seed(0)
    module = PoseToJoints(
        chain, position_only=False, output_encoding="biternion", width=32, depth=2, batch_norm=batch_norm, **kwargs
    )
    if batch_norm:
        # Non-trivial running statistics, so that folding them into the weights is exercised.
        with torch.no_grad():
            for layer in module.mlp:
                if isinstance(layer, torch.nn.BatchNorm1d):
                    layer.running_mean.uniform_(-0.5, 0.5)
                    layer.running_var.uniform_(0.5, 2.0)
                    layer.weight.uniform_(0.5, 1.5)
                    layer.bias.uniform_(-0.2, 0.2)
    return module.eval()


@pytest.fixture(scope="module")
def panda():
    return load_robot("panda").chain


@pytest.fixture(scope="module")
def ur5e():
    return load_robot("ur5e").chain


@pytest.mark.parametrize("batch_norm", [False, True])
def test_export_load_round_trip_gives_identical_outputs(tmp_path, panda, batch_norm):
    module = _module(panda, batch_norm)
    path = tmp_path / "net.pt"
    save_network(module, {**chain_metadata(panda), "note": "round trip"}, path)
    net = load_network(path, panda)
    assert net.metadata["note"] == "round trip" and net.fingerprint == panda.fingerprint
    T = _targets(panda, 1024)  # enough rows for the numpy products to be split over the cores
    with torch.no_grad():
        expected = module(T)
    assert torch.equal(net.predict(T), expected)
    assert torch.equal(torch.jit.load(str(path))(T), expected)  # the file alone is a usable guesser
    # numpy poses take the folded float32 weights (one pose: the compiled kernel; several: numpy's matrix
    # products, in parts side by side): equal to the TorchScript module's output up to float32 rounding.
    for i in range(8):
        q_one = net.predict(T[i].double().numpy())
        assert q_one.shape == (7,) and q_one.dtype == np.float64
        np.testing.assert_allclose(q_one, expected[i].double().numpy(), atol=2e-5)
    q_rows = net.predict(T.double().numpy())
    assert q_rows.shape == (1024, 7) and q_rows.dtype == np.float64
    np.testing.assert_allclose(q_rows, expected.double().numpy(), atol=2e-5)


def test_compiled_forward_equals_the_module_for_large_activations_and_continuous_joints(ur5e):
    """Weights scaled up push the SiLU inputs to |x| ~ 1e3 (exp would overflow float32 at 89): the
    kernel's sigmoid must not, and UR5e's joints all decode from (sin, cos) pairs."""
    module = _module(ur5e)
    with torch.no_grad():
        for layer in module.mlp:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(30.0)
    net = in_memory_network(module, chain_metadata(ur5e))
    T = _targets(ur5e, 64, seed=3)
    with torch.no_grad():
        expected = module(T).double().numpy()
        assert module.mlp[:3](module.features(T)).abs().max() > 100.0  # the second SiLU's input
    one = np.stack([net.predict(T[i].double().numpy()) for i in range(len(T))])
    assert np.isfinite(one).all()
    # Angles compare modulo a turn: a pair near (0, -1) may wrap to either end of [-pi, pi).
    for q in (one, net.predict(T.double().numpy())):
        np.testing.assert_allclose(np.angle(np.exp(1j * (q - expected))), 0.0, atol=5e-5)


def test_outputs_stay_within_limits_and_decode_inverts_encode(ur5e):
    module = _module(ur5e)
    # Every UR5e joint turns a full circle (the elbow spans exactly 2 pi, the others 4 pi): all are
    # biternions, wrapped into [-pi, pi).
    assert module.n_periodic == 6 and module.n_linear == 0
    raw = 5.0 * torch.randn(4096, module.n_linear + 2 * module.n_periodic)
    q = module.decode(raw, clamp=True).double().numpy()
    assert ur5e.bounds.contains(q, tolerance=1e-6).all()
    assert ((q >= -math.pi - 1e-6) & (q < math.pi + 1e-6)).all()
    # decode(encode(q)) is q up to whole turns of the periodic joints: the same pose, by the reference FK.
    q_in = ur5e.bounds.sample(np.random.default_rng(1), 512)
    q_out = module.decode(module.encode(torch.from_numpy(q_in).float()), clamp=True).double().numpy()
    reference = ReferenceChain(load_robot("ur5e").urdf_path, ur5e.base_link, ur5e.tip_link, ur5e.joint_names)
    position_error, rotation_error = pose_errors(reference.forward(q_out), reference.forward(q_in))
    assert position_error.max() < 2e-5 and rotation_error.max() < 2e-5


def test_linear_encoding_and_position_only_input(panda):
    torch.manual_seed(0)
    module = PoseToJoints(panda, position_only=True, output_encoding="linear", width=16, depth=1, batch_norm=False)
    assert module.n_periodic == 0 and module.mlp[0].in_features == 3
    q = torch.from_numpy(panda.bounds.sample(np.random.default_rng(2), 64)).float()
    torch.testing.assert_close(module.decode(module.encode(q), clamp=True), q, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="output encoding 'sincos'"):
        PoseToJoints(panda, False, "sincos", 16, 1, False)


def test_load_refuses_another_chains_network_naming_file_and_fingerprints(tmp_path, panda):
    path = tmp_path / "panda_net.pt"
    save_network(_module(panda), chain_metadata(panda), path)
    # The same arm with one limit changed is another chain.
    joints = list(panda.joints)
    joints[3] = dataclasses.replace(joints[3], upper=-0.1)
    other = KinematicChain(joints, panda.T_last_tip, panda.base_link, panda.tip_link)
    assert other.fingerprint != panda.fingerprint
    with pytest.raises(ValueError) as error:
        load_network(path, other)
    message = str(error.value)
    assert str(path) in message and panda.fingerprint in message and other.fingerprint in message
    with pytest.raises(ValueError, match="trained for chain fingerprint"):
        IKSolver(other, network=load_network(path, panda))


def test_load_refuses_corrupt_missing_and_foreign_files(tmp_path, panda):
    good = tmp_path / "good.pt"
    save_network(_module(panda), chain_metadata(panda), good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"{truncated} is not a readable TorchScript model"):
        load_network(truncated, panda)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all\n" * 100)
    with pytest.raises(ValueError, match=f"{garbage} is not a readable TorchScript model"):
        load_network(garbage, panda)

    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        load_network(tmp_path / "missing.pt", panda)

    # A TorchScript file that is not ours: no metadata entry.
    foreign = tmp_path / "foreign.pt"
    torch.jit.save(torch.jit.script(_module(panda)), str(foreign))
    with pytest.raises(ValueError, match=f"{foreign} has no readable {METADATA_ENTRY} metadata"):
        load_network(foreign, panda)


def test_load_refuses_unknown_format_version(tmp_path, panda):
    path = tmp_path / "future.pt"
    save_network(_module(panda), {**chain_metadata(panda), "format_version": FORMAT_VERSION + 1}, path)
    with pytest.raises(
        ValueError, match=f"{path} has format version {FORMAT_VERSION + 1}; .* reads versions 3, {FORMAT_VERSION}$"
    ):
        load_network(path, panda)
    extra = {METADATA_ENTRY: ""}
    torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra[METADATA_ENTRY])["format_version"] == FORMAT_VERSION + 1


def test_predict_checks_shape(tmp_path, panda):
    path = tmp_path / "net.pt"
    save_network(_module(panda), chain_metadata(panda), path)
    net = load_network(path, panda)
    with pytest.raises(ValueError, match=r"T_target has shape \(3, 4\)"):
        net.predict(np.eye(4)[:3])
    assert net.predict(np.tile(np.eye(4), (2, 3, 1, 1))).shape == (2, 3, 7)


def test_a_multi_head_file_gives_all_guesses_and_a_single_head_file_still_loads(tmp_path, panda):
    module = _module(panda, heads=3)
    path = tmp_path / "k3.pt"
    save_network(module, {**chain_metadata(panda), "architecture": {"heads": 3}}, path)
    net = load_network(path, panda)
    T = _targets(panda, 64, seed=4)
    with torch.no_grad():
        expected = module.guesses(T)
    assert net.heads == 3 and expected.shape == (64, 3, 7)
    assert torch.equal(net.predict_all(T), expected) and torch.equal(net.predict(T), expected[:, 0])
    assert torch.equal(torch.jit.load(str(path))(T), expected[:, 0])  # the file alone: the first guess
    np.testing.assert_allclose(net.predict_all(T.double().numpy()), expected.double().numpy(), atol=2e-5)
    one = net.predict_all(T[0].double().numpy())
    assert one.shape == (3, 7)
    np.testing.assert_allclose(one, expected[0].double().numpy(), atol=2e-5)
    assert not np.allclose(one[0], one[1], atol=1e-3)  # three heads, three guesses
    # The shipped Panda network has four heads (ik_train's default).
    shipped = load_robot("panda").network
    assert shipped.heads == 4
    assert shipped.predict_all(T.double().numpy()).shape == (64, 4, 7)
    with pytest.raises(ValueError, match="at least one head, got heads=0"):
        _module(panda, heads=0)


def test_a_file_without_a_weights_entry_is_refused_by_name(tmp_path, panda):
    """Format 1 and 2 files (no weights entry; none shipped) are refused naming the version and what to do;
    so is a format 3 or 4 file whose weights entry is missing or damaged. A current file loads."""
    module = _module(panda, batch_norm=True)
    current, old = tmp_path / "v4.pt", tmp_path / "v2.pt"
    save_network(module, chain_metadata(panda), current)
    assert load_network(current, panda).predict(reachable_targets(panda, 3, 7)[1]).shape == (3, 7)
    extra = {METADATA_ENTRY: json.dumps({**chain_metadata(panda), "format_version": 2})}
    torch.jit.save(torch.jit.script(module), str(old), _extra_files=extra)
    with pytest.raises(ValueError, match=f"{old} has format version 2; this ik_neural reads versions 3, 4; train it"):
        load_network(old, panda)
    # Format 3 without its weights entry, or with a damaged one, is refused by name.
    torch.jit.save(torch.jit.script(module), str(old), _extra_files={METADATA_ENTRY: json.dumps(chain_metadata(panda))})
    with pytest.raises(ValueError, match=f"{old} is format version {FORMAT_VERSION} but has no {WEIGHTS_ENTRY}"):
        load_network(old, panda)
    extra = {METADATA_ENTRY: json.dumps(chain_metadata(panda)), WEIGHTS_ENTRY: b"PK\x03\x04 not an npz"}
    torch.jit.save(torch.jit.script(module), str(old), _extra_files=extra)
    with pytest.raises(ValueError, match=f"{old} has an unreadable {WEIGHTS_ENTRY} entry"):
        load_network(old, panda)


def test_a_format_3_file_keeps_its_six_column_input():
    """Files written before format 4 take position and columns x, y of R (9 inputs): the weights path reads
    that from the file and predicts what the file's own TorchScript module does, one pose and many."""
    robot = load_robot("chain7_003")
    net = robot.network
    assert net.metadata["format_version"] == 3 and net.weights.input_encoding == "position+rotation6"
    T = reachable_targets(robot.chain, 100, 11)[1]
    with torch.inference_mode():
        expected = torch.jit.load(str(net.path)).guesses(torch.from_numpy(T).float()).double().numpy()
    np.testing.assert_allclose(net.predict_all(T), expected, atol=2e-5)
    np.testing.assert_allclose(net.predict_all(T[0]), expected[0], atol=2e-5)
    np.testing.assert_allclose(net.predict_all(T[:10]), expected[:10], atol=2e-5)


def test_the_pose_input_is_position_rotation_and_position_in_the_tip_frame(panda):
    """15 inputs (format 4): p / reach, columns x, y, z of R, Rᵀ p / reach; the torch module and the
    compiled kernel compute the same, and a weights entry whose input does not fit its first layer is refused."""
    from ik_neural.kernels.mlp import features
    from ik_neural.torch_network import network_weights

    T = reachable_targets(panda, 50, 5)[1]
    p, R = T[:, :3, 3] / panda.reach_m, T[:, :3, :3]
    expected = np.concatenate([p, R[:, :, 0], R[:, :, 1], R[:, :, 2], np.einsum("nij,ni->nj", R, p)], axis=1)
    module = _module(panda)
    assert module.input_encoding == "position+rotation9+tip_frame_position" and module.mlp[0].in_features == 15
    np.testing.assert_allclose(module.features(torch.from_numpy(T).float()).numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(features(T, 1.0 / panda.reach_m, 15), expected, atol=1e-6)
    weights = network_weights(torch.jit.script(module))
    with pytest.raises(ValueError, match="first layer takes 15 inputs, input encoding 'position\\+rotation6' gives 9"):
        NetworkWeights.from_npz(dataclasses.replace(weights, input_encoding="position+rotation6").to_npz())
    with pytest.raises(ValueError, match="unknown input encoding 'quaternion'"):
        NetworkWeights.from_npz(dataclasses.replace(weights, input_encoding="quaternion").to_npz())
