"""RBM/DBN and sparse coding: the math against exact answers, the agents' refusals, and short CLI runs whose
encoders other agents load with net.pretrained=."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.configs import DBNConfig, SparseCodingConfig
from agents.rbm import DBNAgent
from agents.sparse_coding import SparseCodingAgent
from envs.datasets import load_digits
from nets import LISTA, build_extractor
from nets.configs import LISTAConfig, MLPConfig
from nets.rbm import DBN, RBM, CDSettings, CDTrainer, log_likelihood_gradient
from nets.rbm_ais import ais_betas, ais_log_partition, exact_log_partition
from nets.sparse_coding import dictionary_step, ista, objective, soft_threshold
from rlcore.base.checkpoint import load_checkpoint
from rlcore.base.errors import CheckpointError, ConfigError
from rlcore.run import run
from tests.conftest import compose_config, run_cli

DIGITS = gym.spaces.Box(0, 255, (1, 8, 8), np.uint8)
CPU = torch.device("cpu")
torch.set_num_threads(1)


def tiny_rbm(seed: int = 0) -> RBM:
    """A 6-visible, 4-hidden RBM with weights large enough for a non-trivial distribution, in float64."""
    torch.manual_seed(seed)
    rbm = RBM(6, 4).double()
    with torch.no_grad():
        rbm.weight.normal_(0, 1.0)
        rbm.visible_bias.normal_(0, 0.5)
        rbm.hidden_bias.normal_(0, 0.5)
    return rbm


def all_states(n: int) -> torch.Tensor:
    return ((torch.arange(2**n)[:, None] >> torch.arange(n)) & 1).double()


# ------------------------------------------------------------------------------------------------ RBM math


def test_free_energy_and_log_partition_match_brute_force() -> None:
    rbm = tiny_rbm()
    v, h = all_states(6), all_states(4)
    energy = -(v @ rbm.visible_bias)[:, None] - (h @ rbm.hidden_bias)[None, :] - v @ rbm.weight.T @ h.T
    torch.testing.assert_close(rbm.free_energy(v), -torch.logsumexp(-energy, 1))
    torch.testing.assert_close(exact_log_partition(rbm), torch.logsumexp(-energy.flatten(), 0))


def test_cd_gradient_points_along_the_exact_log_likelihood_gradient() -> None:
    """CD-k's update direction against d/dθ of the exact mean log-likelihood (all 2^6 visible states enumerated)."""
    rbm = tiny_rbm(1)
    data = torch.bernoulli(
        torch.full((64, 6), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(0)
    )
    data[:, 0] = 1.0  # a structured data set, far from the model
    log_likelihood = (-rbm.free_energy(data)).mean() - exact_log_partition(rbm)
    exact = torch.autograd.grad(log_likelihood, [rbm.weight, rbm.visible_bias, rbm.hidden_bias])
    generator = torch.Generator().manual_seed(1)
    for k in (1, 5):
        with torch.no_grad():  # average many negative phases so the sampling noise is small
            chains = [rbm.gibbs(data, k, generator)[0] for _ in range(200)]
            estimates = [log_likelihood_gradient(rbm, data, c) for c in chains]
        cd = [torch.stack([e[i] for e in estimates]).mean(0) for i in range(3)]
        flat_cd, flat_exact = torch.cat([g.flatten() for g in cd]), torch.cat([g.flatten() for g in exact])
        cosine = torch.nn.functional.cosine_similarity(flat_cd, flat_exact, dim=0)
        assert cosine > 0.9, (k, cosine)
    # with exact model samples (the model's own distribution) the estimate is the exact gradient
    p_v = torch.softmax(-rbm.free_energy(all_states(6)), 0).detach()
    h_model = rbm.hidden_probs(all_states(6)).detach()
    model_weight = (h_model * p_v[:, None]).T @ all_states(6)
    h_data = rbm.hidden_probs(data).detach()
    torch.testing.assert_close(h_data.T @ data / len(data) - model_weight, exact[0])


def test_cd_training_raises_the_exact_log_likelihood() -> None:
    rbm = tiny_rbm(2)
    data = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float64).repeat(32, 1)

    def log_likelihood() -> float:
        return float((-rbm.free_energy(data)).mean().detach() - exact_log_partition(rbm).detach())

    before = log_likelihood()
    for persistent in (False, True):
        trainer = CDTrainer(
            rbm, CDSettings(lr=0.05, k=1, persistent=persistent, chains=64), torch.Generator().manual_seed(0)
        )
        for _ in range(200):
            trainer.step(data)
    assert log_likelihood() > before + 2.0
    assert log_likelihood() > -2.5  # two patterns: the optimum is log(1/2) = -0.69


def test_ais_matches_the_exact_partition_function() -> None:
    rbm = tiny_rbm(3)
    exact = float(exact_log_partition(rbm).detach())
    result = ais_log_partition(
        rbm, torch.zeros(6), runs=200, betas=ais_betas(1000), generator=torch.Generator().manual_seed(0)
    )
    assert abs(result.log_z - exact) < 0.05
    assert result.log_z_low <= exact + 0.05 and result.log_z_high >= exact - 0.05
    assert (
        len(ais_betas(1000)) == 1001
        and ais_betas()[0] == 0
        and ais_betas()[-1] == 1
        and len(ais_betas()) == 14_501
    )


def test_dbn_unroll_equals_the_stacked_up_pass() -> None:
    torch.manual_seed(0)
    dbn = DBN(64, [32, 16, 8])
    for rbm in dbn.rbms:
        torch.nn.init.normal_(rbm.hidden_bias)
    mlp = dbn.to_mlp((1, 8, 8))
    obs = torch.as_tensor(np.array(load_digits("train").images[:16]))
    v = obs.float().div(255).flatten(1)
    for rbm in dbn.rbms:
        v = rbm.hidden_probs(v)
    torch.testing.assert_close(mlp(obs)[0], v, rtol=0, atol=1e-6)
    torch.testing.assert_close(dbn.up(obs.float().div(255).flatten(1)), v)


def test_gaussian_visible_units() -> None:
    rbm = RBM(3, 2, visible="gaussian")
    v = torch.randn(5, 3)
    h = rbm.hidden_probs(v)
    torch.testing.assert_close(rbm.visible_mean(h), h @ rbm.weight + rbm.visible_bias)  # linear, no sigmoid
    expected = 0.5 * ((v - rbm.visible_bias) ** 2).sum(-1) - torch.nn.functional.softplus(
        rbm.hidden_input(v)
    ).sum(-1)
    torch.testing.assert_close(rbm.free_energy(v), expected)
    with pytest.raises(ValueError, match="Bernoulli"):
        ais_log_partition(rbm, torch.zeros(3))


# -------------------------------------------------------------------------------------------- sparse coding


def test_ista_on_an_orthonormal_dictionary_is_soft_thresholding() -> None:
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(16, 16, dtype=torch.float64))
    x = torch.randn(8, 16, dtype=torch.float64)
    closed_form = soft_threshold(x @ q, 0.3)  # argmin ||x - Qz||^2/2 + 0.3 ||z||_1 for orthonormal Q
    for fast in (False, True):
        torch.testing.assert_close(ista(x, q, 0.3, steps=3, fast=fast), closed_form)
    assert torch.equal(
        soft_threshold(torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0]), 1.0), torch.tensor([-1.0, 0, 0, 0, 1.0])
    )


def test_ista_objective_never_rises_and_fista_gets_there_first() -> None:
    torch.manual_seed(1)
    d = torch.nn.functional.normalize(torch.randn(20, 40, dtype=torch.float64), dim=0)
    x = torch.randn(10, 20, dtype=torch.float64)
    values, z = [], None
    for _ in range(60):
        z = ista(x, d, 0.2, steps=1, fast=False, codes=z)
        values.append(float(objective(x, d, z, 0.2).mean()))
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:], strict=False))
    fista = float(objective(x, d, ista(x, d, 0.2, steps=60, fast=True), 0.2).mean())
    assert fista <= values[-1] + 1e-9


def test_dictionary_learning_keeps_unit_atoms_and_lowers_the_objective() -> None:
    x = torch.as_tensor(np.array(load_digits("train").images[:512])).float().div(255).flatten(1)
    agent = SparseCodingAgent(
        SparseCodingConfig(atoms=32, lam=0.1, lr=0.2, inference_steps=30), DIGITS, device=CPU
    )
    agent.begin_stage(0, x, 1)
    first = agent.evaluate(0, x)["objective"]
    for _ in range(5):
        for start in range(0, 512, 64):
            agent.update(0, x[start : start + 64])
    torch.testing.assert_close(agent.dictionary.norm(dim=0), torch.ones(32))
    assert agent.evaluate(0, x)["objective"] < first
    z = agent.codes(x)
    new = dictionary_step(x, agent.dictionary, z, 0.1)
    torch.testing.assert_close(new.norm(dim=0), torch.ones(32))


def test_lista_starts_as_ista_and_learns_towards_fista() -> None:
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(64, 32), dim=0)
    x = torch.rand(16, 64)
    lista = LISTA((64,), atoms=32, iterations=2)
    lista.init_from_dictionary(d, 0.1)
    torch.testing.assert_close(lista(x)[0], ista(x, d, 0.1, steps=3, fast=False), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------- agents and configs


def test_bad_options_are_refused_naming_the_key() -> None:
    cases = [
        (lambda: DBNConfig(hidden_sizes=[]), "agent.hidden_sizes"),
        (lambda: DBNConfig(visible="poisson"), "agent.visible"),
        (lambda: DBNConfig(k=0), "agent.k"),
        (lambda: DBNConfig(momentum=1.0), "agent.momentum"),
        (lambda: DBNConfig(sparsity_cost=0.1), "agent.sparsity_cost"),
        (lambda: DBNConfig(visible="gaussian", binarize=True), "agent.binarize"),
        (lambda: DBNConfig(ais_runs=10), "agent.ais_runs"),  # three layers: AIS is for one RBM
        (lambda: SparseCodingConfig(lam=0), "agent.lam"),
        (lambda: SparseCodingConfig(atoms=0), "agent.atoms"),
        (lambda: LISTAConfig(iterations=-1), "net.iterations"),
    ]
    cases.append((lambda: DBNAgent(DBNConfig(), gym.spaces.Box(-5, 5, (4,)), device=CPU), "agent.visible"))
    for make, key in cases:
        with pytest.raises(ConfigError, match=f"config key '{key}'"):
            make()
    result = run_cli("train.py", "agent=rbm", "env=Digits", "agent.k=0", "threads=1")
    assert (
        result.returncode == 2
        and "config key 'agent.k'" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_agent_state_dict_round_trip() -> None:
    x = torch.as_tensor(np.array(load_digits("train").images[:200]))
    cfg = DBNConfig(hidden_sizes=[16, 8], persistent=True, chains=20, epochs=2)
    a, b = DBNAgent(cfg, DIGITS, device=CPU, seed=0), DBNAgent(cfg, DIGITS, device=CPU, seed=1)
    data = a.prepare(x)
    a.begin_stage(0, data, 2)
    a.update(0, data[:100])
    b.load_state_dict(a.state_dict())
    b.begin_stage, b.updates_per_epoch = b.begin_stage, a.updates_per_epoch
    assert a.update(0, data[100:]) == b.update(0, data[100:])
    torch.testing.assert_close(a.dbn.state_dict(), b.dbn.state_dict(), rtol=0, atol=0)


# -------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classic")
    commands = {
        "rbm": [
            "agent=rbm",
            "agent.hidden_sizes=[32]",
            "agent.persistent=true",
            "agent.ais_runs=20",
            "agent.ais_steps=500",
        ],
        "dbn": ["agent=dbn", "agent.hidden_sizes=[32,16]", "agent.epochs=2"],
        "sparse_coding": ["agent=sparse_coding", "agent.atoms=32", "agent.epochs=2", "agent.lista_epochs=2"],
    }
    out = {}
    for name, args in commands.items():
        common = [
            "env=Digits",
            "agent.epochs=2",
            "threads=1",
            "logger.progress=false",
            f"run_dir={root / name}",
        ]
        if name == "rbm":  # one real command line; the others in process (no interpreter start-up)
            result = run_cli("train.py", *args, *common)
            assert result.returncode == 0, result.stderr[-2000:]
        else:
            run(compose_config([*args, *common]), root / name)
        out[name] = root / name
    return out


def test_cli_runs_write_their_files(runs: dict[str, Path]) -> None:
    for name, run_dir in runs.items():
        pictures = ["filters.png", "reconstructions.png", "learning_curve.png"]
        pictures += [] if name == "sparse_coding" else ["samples.png"]
        for file in [
            "config.yaml",
            "metrics.csv",
            "summary.json",
            "encoder.pt",
            "checkpoints/last.pt",
            "checkpoints/best.pt",
            *pictures,
        ]:
            assert (run_dir / file).is_file(), (name, file)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["agent"] == name and "net.pretrained=" in summary["reuse"]
    rbm = json.loads((runs["rbm"] / "summary.json").read_text())
    assert (
        rbm["ais_runs"] == 20
        and (rbm["ais_log_z_minus_3se"] or -np.inf) <= rbm["ais_log_z"] <= rbm["ais_log_z_plus_3se"]
    )
    assert rbm["test_log_likelihood"] < 0
    dbn = load_checkpoint(runs["dbn"] / "checkpoints" / "last.pt")
    assert dbn["counters"]["epoch"] == 4  # two layers x two epochs


def test_encoders_load_through_net_pretrained(runs: dict[str, Path], tmp_path: Path) -> None:
    obs = torch.as_tensor(np.array(load_digits("train").images[:8]))
    dbn_state = load_checkpoint(runs["dbn"] / "checkpoints" / "last.pt")["agent"]["dbn"]
    dbn = DBN(64, [32, 16])
    dbn.load_state_dict(dbn_state)
    encoder = build_extractor(
        MLPConfig(hidden_sizes=[32, 16], activation="sigmoid", pretrained=str(runs["dbn"])), DIGITS
    )
    torch.testing.assert_close(encoder(obs)[0], dbn.up(obs.float().div(255).flatten(1)), rtol=0, atol=1e-6)
    with pytest.raises(CheckpointError, match="net.activation=sigmoid"):  # same shapes, other units: refused
        build_extractor(
            MLPConfig(hidden_sizes=[32, 16], activation="relu", pretrained=str(runs["dbn"])), DIGITS
        )
    lista = build_extractor(
        LISTAConfig(atoms=32, iterations=3, pretrained=str(runs["sparse_coding"])), DIGITS
    )
    assert lista(obs)[0].shape == (8, 32)
    # a supervised run fine-tunes the DBN encoder, frozen
    overrides = [
        "agent=supervised",
        "env=Digits",
        "net=mlp",
        "net.hidden_sizes=[32,16]",
        "net.activation=sigmoid",
        f"net.pretrained={runs['dbn']}",
        "net.freeze=true",
        "agent.epochs=1",
        "threads=1",
        "logger.progress=false",
        f"run_dir={tmp_path / 'sup'}",
    ]
    assert run(compose_config(overrides), tmp_path / "sup")["epochs"] == 1
    head = load_checkpoint(tmp_path / "sup" / "checkpoints" / "last.pt")["agent"]
    weights = head.get("model", head)
    first = next(v for k, v in weights.items() if k.endswith("layers.1.0.weight"))
    torch.testing.assert_close(first, dbn_state["rbms.0.weight"])  # frozen: still the RBM's weights


def test_same_seed_same_numbers() -> None:
    cfg = compose_config(["agent=dbn", "env=Digits", "agent.hidden_sizes=[8]"])
    del cfg  # composing checks the YAML against the schema
    x = torch.as_tensor(np.array(load_digits("train").images[:100]))
    results = []
    for _ in range(2):
        agent = DBNAgent(DBNConfig(hidden_sizes=[8], persistent=True, chains=10), DIGITS, device=CPU, seed=3)
        data = agent.prepare(x)
        agent.begin_stage(0, data, 1)
        results.append([agent.update(0, data)["recon_error"] for _ in range(3)])
    assert results[0] == results[1]
