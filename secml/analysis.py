"""Turning IP Insights scores into a verdict: threshold, findings ranking, precision/recall, AUC.

Pure functions over plain Python values and numpy arrays, so the offline demo and the workshop
notebook share one implementation. Score direction follows IP Insights: the ``dot_product`` of an
(entity, IP) pair is *high* for pairs that look like the entity's usual behaviour and *low* for
anomalous ones, so "more suspicious" always means "lower score" here.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from secml.ipinsights.metrics import roc_auc as rank_sum_auc

Pair = tuple[str, str]

MALICIOUS = "malicious"
BENIGN = "benign"


# The workshop's training settings (the public IP Insights tutorial's), shared by the offline
# demo and the notebook (which repeats them, since secml is not installed on a notebook instance;
# a test keeps the two equal).
WORKSHOP_HYPERPARAMETERS = {
    "vector_dim": 128,
    "random_negative_sampling_rate": 5,
    "mini_batch_size": 1000,
    "epochs": 5,
    "learning_rate": 0.01,
}
# Entities are hashed into num_entity_vectors rows. SageMaker's advice (twice the distinct
# entities) still puts a few of 22 principals on shared rows; the original workshop's 20,000
# rows make that unlikely at workshop scale and cost about 10 MB.
MIN_ENTITY_VECTORS = 20_000


def entity_vectors(n_entities: int) -> int:
    return max(MIN_ENTITY_VECTORS, 2 * n_entities)


def exclude_pairs(pairs: Sequence[Pair], scored: Iterable[Pair]) -> tuple[list[Pair], int]:
    """The training pairs without the (principal, ip) pairs about to be scored, and how many
    tuples that removed.

    The workshop's CloudTrail covers the attack days, so the attacker's own API calls are in it
    and a model trained on them learns the attacker's address as normal for the stolen key. In
    production the model is trained on the past, before the activity it judges; leaving out the
    pairs under investigation has the same effect. No labels are used: benign and malicious
    findings are treated alike.
    """
    scored_set = set(scored)
    kept = [pair for pair in pairs if pair not in scored_set]
    return kept, len(pairs) - len(kept)


def threshold_from_scores(training_scores: Sequence[float], percentile: float = 1.0) -> float:
    """The score below which a pair is flagged: a low percentile of the training distribution.

    Training pairs are (by assumption) normal, so flagging below their 1st percentile accepts
    that about 1% of normal traffic gets flagged, and nothing more.
    """
    values = np.asarray(training_scores, dtype=float)
    if values.size == 0:
        raise ValueError("no training scores to take a threshold from")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {percentile}")
    return float(np.percentile(values, percentile))


def split_holdout(
    pairs: Sequence[Pair], fraction: float = 0.1, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """Seeded random split into (train, holdout): normal traffic the model never trains on."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be within [0, 1), got {fraction}")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_holdout = int(round(len(pairs) * fraction))
    held = set(order[:n_holdout])
    train = [p for i, p in enumerate(pairs) if i not in held]
    holdout = [p for i, p in enumerate(pairs) if i in held]
    return train, holdout


@dataclass(frozen=True)
class ScoredFinding:
    """One GuardDuty finding with the score of its most suspicious (principal, IP) tuple."""

    finding_id: str
    finding_type: str
    principal: str
    ip: str
    score: float | None  # None: the finding yielded no tuple, so it cannot be scored
    label: str  # malicious | benign | unknown (not in truth.csv)
    scenario: str = ""


TRUTH_LABELS = (MALICIOUS, BENIGN)


def parse_truth(raw: bytes | str, source: str = "truth.csv") -> dict[str, dict[str, str]]:
    """truth.csv (``finding_id,...,label,...`` with a header) to {finding id: row}.

    Spreadsheets add a UTF-8 BOM and may capitalise: the BOM is dropped, column names and labels
    are compared without case or surrounding blanks. Anything else wrong is one line naming the
    line: a label other than malicious / benign, a finding listed twice, a missing id.
    """
    import csv
    import io

    from secml.errors import SecmlError, short, utf8_text

    if isinstance(raw, bytes):
        raw = utf8_text(raw, source)
    text = raw.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text))
    header = [c.strip().lower() for c in next(reader, [])]
    if "finding_id" not in header or "label" not in header:
        raise SecmlError(f"{source}: expected a header with the columns finding_id and label")
    truth: dict[str, dict[str, str]] = {}
    for row in reader:
        line = reader.line_num
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise SecmlError(
                f"{source} line {line}: {len(row)} fields, the header has {len(header)}"
            )
        record = {k: v.strip() for k, v in zip(header, row, strict=True)}
        record["label"] = record["label"].lower()
        if record["label"] not in TRUTH_LABELS:
            raise SecmlError(
                f"{source} line {line}: label {short(record['label'])} is not "
                f"{' or '.join(TRUTH_LABELS)}"
            )
        finding = record["finding_id"]
        if not finding:
            raise SecmlError(f"{source} line {line}: empty finding_id")
        if finding in truth:
            raise SecmlError(f"{source} line {line}: finding {short(finding)} is listed twice")
        truth[finding] = record
    return truth


def score_finding(
    pairs: Iterable[Pair], pair_scores: Mapping[Pair, float]
) -> tuple[Pair, float] | None:
    """A finding's lowest-scoring tuple: one anomalous access makes the finding suspicious."""
    scored = [(p, pair_scores[p]) for p in pairs if p in pair_scores]
    if not scored:
        return None
    return min(scored, key=lambda item: item[1])


def join_findings(
    findings: Iterable[tuple[str, str, Sequence[Pair]]],
    pair_scores: Mapping[Pair, float],
    truth: Mapping[str, Mapping[str, str]] | None = None,
) -> list[ScoredFinding]:
    """Scores joined back to findings.

    ``findings`` yields ``(finding_id, finding_type, pairs)`` with the pairs the ingest code
    extracts from that finding; ``truth`` maps finding id to a truth.csv row (label, scenario).
    """
    truth = truth or {}
    joined = []
    for finding_id, finding_type, pairs in findings:
        row = truth.get(finding_id, {})
        best = score_finding(pairs, pair_scores)
        if best is None:
            principal, ip = pairs[0] if pairs else (row.get("principal", ""), row.get("ip", ""))
            score = None
        else:
            (principal, ip), score = best
        joined.append(
            ScoredFinding(
                finding_id=finding_id,
                finding_type=finding_type,
                principal=principal,
                ip=ip,
                score=score,
                label=row.get("label", "unknown"),
                scenario=row.get("scenario", ""),
            )
        )
    return joined


def rank_findings(findings: Iterable[ScoredFinding]) -> list[ScoredFinding]:
    """Most suspicious first (lowest score); findings that could not be scored go last."""
    return sorted(
        findings,
        key=lambda f: (f.score is None, f.score if f.score is not None else 0.0, f.finding_id),
    )


def roc_auc(anomalous: Sequence[float], normal: Sequence[float]) -> float:
    """P(an anomalous item scores below a normal one), ties counting half (Mann-Whitney U).

    1.0: the scores separate the two sets perfectly; 0.5: no better than chance; NaN when either
    set is empty. The engine's rank-sum AUC on negated scores (low score = anomalous = positive).
    """
    a = np.asarray(anomalous, dtype=float)
    n = np.asarray(normal, dtype=float)
    if a.size == 0 or n.size == 0:
        return math.nan
    labels = np.concatenate([np.ones(a.size, dtype=bool), np.zeros(n.size, dtype=bool)])
    return rank_sum_auc(-np.concatenate([a, n]), labels)


@dataclass(frozen=True)
class Detection:
    """Confusion counts of "flagged = score below threshold" against known labels."""

    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else math.nan

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else math.nan


def detection_at(
    anomalous: Sequence[float], normal: Sequence[float], threshold: float
) -> Detection:
    a = np.asarray(anomalous, dtype=float)
    n = np.asarray(normal, dtype=float)
    tp = int((a < threshold).sum())
    fp = int((n < threshold).sum())
    return Detection(
        threshold=threshold,
        true_positives=tp,
        false_positives=fp,
        false_negatives=int(a.size - tp),
        true_negatives=int(n.size - fp),
    )


@dataclass(frozen=True)
class RankingCheck:
    """Does every scored malicious finding rank above (score lower than) every scored benign one?

    Findings without a (principal, IP) tuple are outside what IP Insights can rank; they are
    listed in ``unscored`` rather than silently dropped or counted as ranking errors.
    """

    ok: bool
    malicious_out_of_place: list[ScoredFinding]  # at or below the best-ranked benign finding
    benign_out_of_place: list[ScoredFinding]  # at or above the worst-ranked malicious finding
    unscored: list[ScoredFinding]  # labelled malicious or benign, but no tuple to score
    n_malicious: int  # scored
    n_benign: int  # scored


def check_ranking(findings: Iterable[ScoredFinding]) -> RankingCheck:
    findings = list(findings)
    labelled = [f for f in findings if f.label in (MALICIOUS, BENIGN)]
    malicious = [f for f in labelled if f.label == MALICIOUS and f.score is not None]
    benign = [f for f in labelled if f.label == BENIGN and f.score is not None]
    lowest_benign = min((f.score for f in benign), default=math.inf)
    highest_malicious = max((f.score for f in malicious), default=-math.inf)
    mal_bad = [f for f in malicious if f.score >= lowest_benign]
    ben_bad = [f for f in benign if f.score <= highest_malicious]
    return RankingCheck(
        ok=not mal_bad and not ben_bad,
        malicious_out_of_place=rank_findings(mal_bad),
        benign_out_of_place=rank_findings(ben_bad),
        unscored=[f for f in labelled if f.score is None],
        n_malicious=len(malicious),
        n_benign=len(benign),
    )


@dataclass(frozen=True)
class TrainingProfile:
    """What the model saw in training, to explain a score in words."""

    pair_counts: Counter
    principal_counts: Counter
    ips: frozenset

    @classmethod
    def from_pairs(cls, pairs: Iterable[Pair]) -> TrainingProfile:
        pair_counts = Counter(pairs)
        principal_counts: Counter = Counter()
        for (principal, _), n in pair_counts.items():
            principal_counts[principal] += n
        return cls(pair_counts, principal_counts, frozenset(ip for _, ip in pair_counts))


def explain_score(finding: ScoredFinding, profile: TrainingProfile, ipv4_only: bool = False) -> str:
    """Why a finding scored as it did (or was not scored), in terms of what the model saw."""
    if finding.score is None:
        if not finding.principal:
            return (
                "no IAM principal in this finding (a resource finding, e.g. EC2): "
                "IP Insights scores (principal, IP) pairs, so it cannot be ranked"
            )
        if not finding.ip:
            return "no remote IP address in this finding, so there is no pair to score"
        if ipv4_only and ":" in finding.ip:
            return "IPv6 address, dropped by IPV4_ONLY=true (the stack's setting), so not scored"
        return "no (principal, IP) tuple could be taken from this finding, so it was not scored"
    seen = profile.pair_counts.get((finding.principal, finding.ip), 0)
    if seen:
        total = profile.principal_counts[finding.principal]
        return (
            f"this principal used this IP {seen} times in the training data "
            f"({seen / total:.1%} of its {total:,} events)"
        )
    if not profile.principal_counts.get(finding.principal):
        return "principal never seen in training: the model has no profile of it"
    if finding.ip in profile.ips:
        return "IP seen in training, but only for other principals"
    return "IP never seen in training for any principal"
