"""Learning from colleagues (trainer.smooth_entities) and the quality benchmark's generators."""

import numpy as np
import pytest
import torch

from secml.errors import SecmlError
from secml.ipinsights import IPInsights
from secml.ipinsights.metrics import roc_auc
from secml.ipinsights.synthetic import adjacent_range_logins, organisation_logins
from secml.ipinsights.trainer import smooth_entities


def test_smoothing_moves_users_towards_those_who_share_their_networks():
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [9.0, 9.0]])
    before = table.clone()
    # users 0 and 1 share network 10; user 2 alone uses network 11; row 3 is not trained
    users = torch.tensor([0, 0, 1, 2, 2])
    networks = torch.tensor([10, 10, 10, 11, 12])
    smooth_entities(table, users, networks, 0.5, passes=1, skip=12)
    # 0 and 1: halfway to the mean of network 10's users, (0.5, 0.5)
    assert torch.allclose(table[0], torch.tensor([0.75, 0.25]))
    assert torch.allclose(table[1], torch.tensor([0.25, 0.75]))
    assert torch.equal(table[2], before[2])  # its networks are its own (12 is padding)
    assert torch.equal(table[3], before[3])
    smooth_entities(table, users, networks, 0.0, skip=12)
    assert torch.allclose(table[0], torch.tensor([0.75, 0.25]))


def test_smoothing_weighs_each_network_by_the_users_logins_there():
    table = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    # user 0: three logins at network 10 (shared with user 1), one at 11 (shared with user 2)
    users = torch.tensor([0, 0, 0, 0, 1, 2])
    networks = torch.tensor([10, 10, 10, 11, 10, 11])
    smooth_entities(table, users, networks, 1.0, passes=1)
    # network means: 10 -> (2, 0), 11 -> (0, 2); user 0's logins: 3/4 at 10, 1/4 at 11
    assert torch.allclose(table[0], torch.tensor([1.5, 0.5]))


def test_every_pass_keeps_the_trained_vector_as_its_anchor():
    trained = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    users = torch.tensor([0, 1, 1, 2])
    networks = torch.tensor([10, 10, 11, 11])
    w = 0.8
    # around = A v: user 0 <- mean(10); user 1 <- mean of mean(10) and mean(11); user 2 <- mean(11)
    a = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25], [0.0, 0.5, 0.5]])
    want = trained.clone()
    for _ in range(3):
        want = (1 - w) * trained + w * (a @ want)
    table = trained.clone()
    smooth_entities(table, users, networks, w, passes=3)
    assert torch.allclose(table, want, atol=1e-6)


def org_auc(**settings) -> float:
    data = organisation_logins(num_orgs=20, offices_per_org=8, seed=5)
    model = IPInsights(
        num_entity_vectors=2 * len(np.unique(data.train_entities)),
        vector_dim=32,
        epochs=3,
        random_negative_sampling_rate=5,
        mini_batch_size=500,
        learning_rate=0.01,
        seed=0,
        **settings,
    )
    model.fit(data.train_frame(), progress=False)
    return roc_auc(model.score(data.test_entities, data.to_text(data.test_ips)), data.test_labels)


def test_users_score_offices_only_their_colleagues_used():
    without, default = org_auc(entity_smoothing=0), org_auc()
    assert default > without + 0.01, (default, without)


def test_entity_smoothing_is_checked():
    small = dict(num_entity_vectors=8, vector_dim=8)
    for bad in (-0.1, 1.5, "0.5", True, float("nan")):
        with pytest.raises(SecmlError, match="entity_smoothing"):
            IPInsights(entity_smoothing=bad, **small)
    with pytest.raises(SecmlError, match="prefix levels"):
        IPInsights(ip_encoder="octet", entity_smoothing=0.5, **small)
    assert IPInsights(ip_encoder="octet", **small).entity_smoothing == 0


def test_adjacent_ranges_share_no_slash16_with_training():
    data = adjacent_range_logins(num_orgs=10, seed=3)
    train16 = set((data.train_ips >> 16).tolist())
    real = data.test_labels == 1
    test16 = data.test_ips[real] >> 16
    unseen = np.array([n not in train16 for n in test16.tolist()])
    assert unseen.mean() > 0.6  # the office logins; home logins (30%) repeat training networks
    # ... and each lies within 8 /16s of one of the user's training addresses' /16s
    for user in np.unique(data.test_entities[real])[:20]:
        mine = data.train_ips[data.train_entities == user] >> 16
        later = data.test_ips[real & (data.test_entities == user)] >> 16
        far = [x for x in later.tolist() if x not in train16]
        assert all(np.abs(mine.astype(np.int64) - x).min() < 8 for x in far)


@pytest.mark.parametrize("make", [organisation_logins, adjacent_range_logins])
def test_anomalies_are_drawn_for_the_same_users_as_the_normal_pairs(make):
    data = make(num_orgs=10, seed=1)
    real = data.test_labels == 1
    assert sorted(data.test_entities[real].tolist()) == sorted(data.test_entities[~real].tolist())
