import math

import numpy as np
import pytest

from secml import analysis
from secml.analysis import (
    ScoredFinding,
    TrainingProfile,
    check_ranking,
    detection_at,
    explain_score,
    join_findings,
    rank_findings,
    roc_auc,
    split_holdout,
    threshold_from_scores,
)


def finding(fid, score, label, principal="AIDA1", ip="198.51.100.1"):
    return ScoredFinding(fid, "UnauthorizedAccess:IAMUser/X", principal, ip, score, label)


def test_threshold_is_the_requested_percentile_of_training_scores():
    scores = np.arange(1, 101, dtype=float)  # 1..100
    assert threshold_from_scores(scores, 1.0) == pytest.approx(1.99)
    assert threshold_from_scores(scores, 50.0) == pytest.approx(50.5)


def test_threshold_refuses_empty_scores():
    with pytest.raises(ValueError, match="no training scores"):
        threshold_from_scores([])


def test_split_holdout_is_seeded_disjoint_and_complete():
    pairs = [(f"p{i}", f"10.0.0.{i}") for i in range(50)]
    train, holdout = split_holdout(pairs, fraction=0.1, seed=3)
    assert len(holdout) == 5 and len(train) == 45
    assert sorted(train + holdout) == sorted(pairs)
    assert split_holdout(pairs, fraction=0.1, seed=3) == (train, holdout)
    assert split_holdout(pairs, fraction=0.1, seed=4)[1] != holdout


def test_auc_is_one_when_anomalous_all_score_lower():
    assert roc_auc([-3.0, -2.0], [1.0, 2.0, 3.0]) == 1.0
    assert roc_auc([1.0, 2.0, 3.0], [-3.0, -2.0]) == 0.0


def test_auc_counts_ties_half_and_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 40).astype(float)
    n = rng.integers(2, 8, 60).astype(float)
    pairwise = np.mean([(x < y) + 0.5 * (x == y) for x in a for y in n])
    assert roc_auc(a, n) == pytest.approx(pairwise)
    assert roc_auc([1.0], [1.0]) == 0.5


def test_auc_is_nan_without_both_classes():
    assert math.isnan(roc_auc([], [1.0]))


def test_detection_flags_scores_strictly_below_threshold():
    d = detection_at(anomalous=[-5.0, -1.0, 2.0], normal=[-2.0, 3.0, 4.0, 5.0], threshold=0.0)
    assert (d.true_positives, d.false_negatives) == (2, 1)
    assert (d.false_positives, d.true_negatives) == (1, 3)
    assert d.precision == pytest.approx(2 / 3)
    assert d.recall == pytest.approx(2 / 3)


def test_detection_precision_is_nan_when_nothing_flagged():
    assert math.isnan(detection_at([1.0], [2.0], threshold=-10).precision)


def test_join_takes_the_lowest_scoring_tuple_and_the_truth_label():
    scores = {("A", "1.1.1.1"): 0.5, ("A", "2.2.2.2"): -4.0}
    truth = {"f1": {"label": "malicious", "scenario": "stolen-keys"}}
    rows = join_findings(
        [("f1", "T1", [("A", "1.1.1.1"), ("A", "2.2.2.2")]), ("f2", "T2", [])], scores, truth
    )
    assert rows[0].score == -4.0 and rows[0].ip == "2.2.2.2"
    assert rows[0].label == "malicious" and rows[0].scenario == "stolen-keys"
    assert rows[1].score is None and rows[1].label == "unknown"


def test_rank_puts_lowest_scores_first_and_unscored_last():
    ranked = rank_findings([finding("b", 1.0, "benign"), finding("u", None, "malicious"),
                            finding("m", -2.0, "malicious")])  # fmt: skip
    assert [f.finding_id for f in ranked] == ["m", "b", "u"]


def test_ranking_ok_when_every_malicious_scores_below_every_benign():
    check = check_ranking([finding("m1", -3, "malicious"), finding("m2", -1, "malicious"),
                           finding("b1", 0.5, "benign"), finding("x", -9, "unknown")])  # fmt: skip
    assert check.ok and check.n_malicious == 2 and check.n_benign == 1


def test_ranking_names_the_findings_out_of_place():
    check = check_ranking([finding("m1", -3, "malicious"), finding("m2", 2, "malicious"),
                           finding("b1", 1, "benign"), finding("b2", 5, "benign")])  # fmt: skip
    assert not check.ok
    assert [f.finding_id for f in check.malicious_out_of_place] == ["m2"]
    assert [f.finding_id for f in check.benign_out_of_place] == ["b1"]


def test_unscored_findings_are_listed_not_ranked():
    check = check_ranking(
        [
            finding("m1", None, "malicious"),
            finding("m2", -1, "malicious"),
            finding("b1", 1, "benign"),
            finding("b2", None, "benign"),
            finding("x", None, "unknown"),
        ]
    )
    assert check.ok and (check.n_malicious, check.n_benign) == (1, 1)
    assert [f.finding_id for f in check.unscored] == ["m1", "b2"]


def test_explain_score_says_what_the_model_saw():
    profile = TrainingProfile.from_pairs([("A", "1.1.1.1"), ("A", "1.1.1.1"), ("B", "2.2.2.2")])
    assert "2 times" in explain_score(finding("f", 1.0, "benign", "A", "1.1.1.1"), profile)
    assert "never seen" in explain_score(finding("f", 1.0, "benign", "C", "1.1.1.1"), profile)
    assert "other principals" in explain_score(finding("f", 1.0, "x", "A", "2.2.2.2"), profile)
    assert "any principal" in explain_score(finding("f", 1.0, "x", "A", "9.9.9.9"), profile)
    assert "no IAM principal" in explain_score(finding("f", None, "x", "", "1.2.3.4"), profile)
    assert "no remote IP" in explain_score(finding("f", None, "x", "A", ""), profile)
    v6 = finding("f", None, "x", "A", "2001:db8::1")
    assert "IPV4_ONLY" in explain_score(v6, profile, ipv4_only=True)
    assert "not scored" in explain_score(v6, profile, ipv4_only=False)


def test_exclude_pairs_drops_every_tuple_of_a_scored_pair_and_counts_them():
    train = [("alice", "192.0.2.1"), ("bob", "192.0.2.9"), ("alice", "192.0.2.1"), ("eve", "::1")]
    kept, removed = analysis.exclude_pairs(train, [("alice", "192.0.2.1"), ("bob", "10.0.0.1")])
    assert kept == [("bob", "192.0.2.9"), ("eve", "::1")]
    assert removed == 2
    assert analysis.exclude_pairs(train, []) == (train, 0)


def test_entity_vectors_follow_sagemaker_advice_above_a_floor():
    assert analysis.entity_vectors(22) == analysis.MIN_ENTITY_VECTORS
    assert analysis.entity_vectors(50_000) == 100_000
