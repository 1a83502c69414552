"""Training: negative sampling, binary cross-entropy, Adam with lazy (row-sparse) updates.

Per mini-batch of B real pairs the step scores B real pairs, R*B pairs of each real entity with
a uniformly random address of the same family (``random_negative_sampling_rate`` R) and S*B pairs
of an entity with another pair's address from the same batch (``shuffled_negative_sampling_rate``
S): (1 + R + S) * B records, which is how SageMaker counts records/s.

What makes it fast on a CPU (measured in benchmarks/ipinsights.py):

* Address parsing, hashing and the real pairs' table rows are computed once, before epoch 1.
* Shuffled negatives re-use the batch's IP encodings: no extra lookups or FC work.
* The last FC layer is linear, so ``e . (W h + b) = (e W) . h + e . b``: it is applied to the B
  entity vectors instead of the (1 + R) * B IP vectors.
* Embedding tables are updated lazily: only the rows a batch touched get Adam moments and a step
  (MXNet's ``lazy_update`` semantics, which the built-in's Adam has). Weight decay is L2 added
  to the gradient (MXNet/PyTorch Adam ``wd``), applied to those rows only; the FC layers get
  ordinary dense Adam with the same L2.

Two engine settings shape how the prefix rows learn (``prefix`` and ``hashed`` encoders; see
``encoder.py`` and docs/ipinsights-engine.md):

* ``prefix_dropout``: each training pair (real, random and hence shuffled negatives) loses its
  finest prefix level (/32; IPv6 /128) with probability ``prefix_dropout[0]``, its two finest
  with ``prefix_dropout[1]``, ... (the dropped slots point at the zero padding row), so the
  coarser rows learn to carry a network on their own, as they must for an address training never
  saw. A boolean mask on the (B, 6) slot tensor: no extra lookups. Never applied when scoring.
* ``prefix_lr_scale``: learning-rate multipliers for the finest levels' rows (index 0: /32 and
  IPv6 /128, 1: /24 and /64, ...), one multiply of the touched rows' Adam step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from secml.ipinsights.addresses import (
    IPV4_PREFIXES,
    IPV6_PREFIXES,
    NUM_SLOTS,
    Addresses,
    random_addresses,
)
from secml.ipinsights.encoder import AddressIndexer
from secml.ipinsights.network import IPInsightsNet

log = logging.getLogger("secml.ipinsights")

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
# engine defaults (measured in benchmarks/ipinsights.py; docs/ipinsights-engine.md)
DEFAULT_PREFIX_DROPOUT = (0.5,)  # drop /32 (IPv6 /128) from half the training pairs
DEFAULT_PREFIX_LR_SCALE = (0.25, 0.25)  # /32 and /24 rows (IPv6 /128, /64) learn at lr / 4
# after training: e <- 0.15 e_trained + 0.85 (login-weighted mean of network means), 3 passes
DEFAULT_ENTITY_SMOOTHING = 0.85
SMOOTHING_PASSES = 3
NETWORK_SLOT = 2  # the /16 row of an IPv4 address (IPv6: /32): "which network"


class LazyAdam:
    """Adam for one embedding table, updating only the rows a batch touched."""

    def __init__(self, table: torch.Tensor, lr: float, weight_decay: float):
        self.table = table
        self.lr = lr
        self.weight_decay = weight_decay
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)
        # per-row learning-rate multiplier (num_rows,), or None for 1 everywhere
        self.row_lr_scale: torch.Tensor | None = None

    def step(self, rows: torch.Tensor, g: torch.Tensor, t: int) -> None:
        """rows: (k,) distinct row indices; g: (k, d) their summed gradients (modified)."""
        w = self.table.index_select(0, rows)
        if self.weight_decay:
            g.add_(w, alpha=self.weight_decay)
        m = self.m.index_select(0, rows).mul_(BETA1).add_(g, alpha=1 - BETA1)
        v = self.v.index_select(0, rows).mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
        self.m.index_copy_(0, rows, m)
        self.v.index_copy_(0, rows, v)
        step_size = self.lr * math.sqrt(1 - BETA2**t) / (1 - BETA1**t)
        if self.row_lr_scale is not None:
            m.mul_(self.row_lr_scale.index_select(0, rows).unsqueeze(1))  # already stored
        w.addcdiv_(m, v.sqrt_().add_(EPS), value=-step_size)
        self.table.index_copy_(0, rows, w)


class DenseAdam:
    """``torch.optim.Adam`` for the FC layers (L2 weight decay added to the gradient, as its
    single-tensor path computes it, step for step), written out because constructing a
    ``torch.optim`` optimizer imports ``torch._dynamo``: 1.5 s of a 12 s ``secml train`` of
    250,000 pairs here, for a 128 x 128 layer (docs/ipinsights-engine.md)."""

    def __init__(self, params: list[torch.Tensor], lr: float, weight_decay: float):
        self.params = list(params)
        self.lr = lr
        self.weight_decay = weight_decay
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        step_size = self.lr / (1 - BETA1**self.t)
        bias_correction2_sqrt = (1 - BETA2**self.t) ** 0.5
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g = p.grad
            if g is None:
                continue
            if self.weight_decay:
                g = g.add(p, alpha=self.weight_decay)
            m.lerp_(g, 1 - BETA1)
            v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
            p.addcdiv_(m, (v.sqrt() / bias_correction2_sqrt).add_(EPS), value=-step_size)


def sum_rows(index: torch.Tensor, grads: torch.Tensor, skip: int | None = None):
    """Sum the gradient rows that share an index: (distinct indices, summed gradients).

    ``index`` is (n,) or (n, k): with k columns (an address's table rows), gradient row i
    counts once per column. Entries equal to ``skip`` (the padding row) are left out of the
    answer. One sort of all the indices, then one ``index_add_`` per column straight from
    ``grads``: no per-column copies of the gradients (concatenating them was a 50 MB copy per
    batch at mini_batch_size 10,000). Padding entries (most of a random negative's /16, /24
    and /32 slots) are summed into the padding row's slot and dropped with it.
    """
    if index.dim() == 1:
        index = index.unsqueeze(1)
    uniq, inverse = torch.unique(index, return_inverse=True)
    summed = torch.zeros(len(uniq), grads.shape[1], dtype=grads.dtype, device=grads.device)
    for j in range(index.shape[1]):
        summed.index_add_(0, inverse[:, j], grads)
    if skip is not None and len(uniq):
        if int(uniq[-1]) == skip:  # the padding row is the table's last: sorted last
            return uniq[:-1], summed[:-1]
        keep = (uniq != skip).nonzero().squeeze(1)
        if len(keep) < len(uniq):
            return uniq.index_select(0, keep), summed.index_select(0, keep)
    return uniq, summed


def prefix_dropout_mask(
    rng: np.random.Generator, is_v6: np.ndarray, rates: tuple[float, ...]
) -> np.ndarray | None:
    """(n, NUM_SLOTS) bool: True for the slots to blank; None when no rate is set.

    ``rates[k]`` is the probability that a row loses its k + 1 finest prefix levels; the rates
    are non-increasing and nested (one uniform draw per row), so a row that loses /24 has lost
    /32 too, as an address in a known /16 but an unseen /24 has neither. Slot 0 (the family row)
    and the coarsest prefix are never dropped (``rates`` has fewer entries than IPv4 has levels).
    """
    if not any(rates):
        return None
    u = rng.random(len(is_v6))
    depth = (u[:, None] < np.asarray(rates, dtype=np.float64)[None, :]).sum(1)
    kept = np.where(is_v6, len(IPV6_PREFIXES), len(IPV4_PREFIXES)) - depth
    return np.arange(NUM_SLOTS)[None, :] > kept[:, None]


def level_lr_scale(indexer: AddressIndexer, scales: tuple[float, ...]) -> torch.Tensor | None:
    """(num_rows,) learning-rate multipliers: ``scales[k]`` for the rows of the k-th finest
    prefix level, 1 elsewhere; None when every multiplier is 1 (or the encoder has no levels)."""
    depth = torch.from_numpy(indexer.row_depths())
    out = torch.ones(indexer.num_rows)
    for k, f in enumerate(scales):
        out[depth == k] = f
    return None if bool((out == 1).all()) else out


@dataclass
class TrainData:
    entity_rows: torch.Tensor  # (n,) int64
    ip_slots: torch.Tensor  # (n, slots) int64
    is_v6: np.ndarray  # (n,) bool, to draw random negatives of the same family


class Trainer:
    def __init__(
        self,
        net: IPInsightsNet,
        indexer: AddressIndexer,
        hp: dict,
        device: torch.device,
        rng: np.random.Generator,
        *,
        prefix_dropout: tuple[float, ...] = (),
        prefix_lr_scale: tuple[float, ...] = (),
        dropout_rng: np.random.Generator | None = None,
    ):
        """``prefix_dropout`` and ``prefix_lr_scale``: see the module docstring (empty: off).
        ``dropout_rng`` draws the dropout masks (its own stream, so the negatives a seed draws
        do not depend on the dropout setting)."""
        self.net = net
        self.indexer = indexer
        self.hp = hp
        self.device = device
        self.rng = rng
        lr, wd = hp["learning_rate"], hp["weight_decay"]
        self.entity_opt = LazyAdam(net.entity.data, lr, wd)
        self.ip_opt = LazyAdam(net.ip_table.data, lr, wd)
        dense = [p for layer in net.layers for p in layer.parameters()]
        self.dense_opt = DenseAdam(dense, lr, wd) if dense else None
        self.t = 0
        self.prefix_dropout = tuple(prefix_dropout) if indexer.kind != "octet" else ()
        self.dropout_rng = dropout_rng if dropout_rng is not None else np.random.default_rng(0)
        scale = level_lr_scale(indexer, tuple(prefix_lr_scale))
        self.ip_opt.row_lr_scale = None if scale is None else scale.to(device)

    def drop_prefixes(self, slots: torch.Tensor, is_v6: np.ndarray) -> torch.Tensor:
        """Prefix dropout (training only): a copy of ``slots`` with some rows' finest levels
        pointing at the padding row."""
        mask = prefix_dropout_mask(self.dropout_rng, is_v6, self.prefix_dropout)
        if mask is None:
            return slots
        return slots.masked_fill(torch.from_numpy(mask).to(slots.device), self.net.padding_row)

    def random_negative_slots(self, is_v6: np.ndarray) -> torch.Tensor:
        """Table rows of uniformly random addresses, one per entry of is_v6 (same family)."""
        if not is_v6.any():
            rows = self.indexer.random_ipv4_rows(self.rng, len(is_v6))
        else:
            rows = self.indexer.rows(random_addresses(self.rng, is_v6))
        return torch.from_numpy(rows).to(self.device)

    def step(self, entity_rows: torch.Tensor, slots: torch.Tensor, neg_slots: torch.Tensor | None):
        """One mini-batch: gradients, then Adam updates. Returns (loss sum, correct, records)."""
        b = len(entity_rows)
        r = self.hp["random_negative_sampling_rate"]
        s = self.hp["shuffled_negative_sampling_rate"] if b > 1 else 0
        all_slots = torch.cat([slots, neg_slots]) if r else slots
        shifts = self.rng.integers(1, b, size=s).tolist() if s else []
        loss, correct, n_rec, rows, de, dbag = self.gradients(entity_rows, all_slots, r, shifts)
        self.t += 1
        self.entity_opt.step(rows, de, self.t)
        rows, g = sum_rows(all_slots, dbag, skip=self.net.padding_row)
        self.ip_opt.step(rows, g, self.t)
        if self.dense_opt:
            self.dense_opt.step()
        return loss, correct, n_rec

    def gradients(self, entity_rows, all_slots, r: int, shifts: list[int]):
        """Loss sum, correct count, records, the batch's distinct entity rows and their summed
        gradients, d(IP bags); sets FC layer grads.

        Hand-written gradients of the mean BCE: autograd is used only for hidden FC layers
        (num_ip_encoder_layers > 1). The last FC layer is folded into the entity side, and its
        products run once per distinct entity of the batch, not per row (a batch of 10,000
        pairs holds about 5,000 of 6,000 users): ``q = e W`` is gathered per row, and the
        rows' gradients are summed per entity before ``de = dq W^T`` and ``dW = e^T dq``.
        Shuffled negative k pairs batch row i's entity with row (i - shifts[k]) % b's address.
        """
        net = self.net
        b = len(entity_rows)
        s = len(shifts)
        rows, inverse = torch.unique(entity_rows, return_inverse=True)
        e = net.entity.data.index_select(0, rows)
        bag = F.embedding_bag(all_slots, net.ip_table.data, mode="sum", padding_idx=net.padding_row)
        layers = net.layers
        deep = len(layers) > 1
        if deep:
            for p in layers.parameters():
                p.grad = None
            bag.requires_grad_()
            with torch.enable_grad():
                h_graph = net.hidden(bag)
            h = h_graph.detach()
        else:
            h = bag
        if len(layers):
            weight, bias = layers[-1].weight.data, layers[-1].bias.data
            q = (e @ weight).index_select(0, inverse)
            c = (e @ bias).index_select(0, inverse)
        else:
            q, c = e.index_select(0, inverse), None
        hr = h[:b]
        n_rec = b * (1 + r + s)
        # each block: (logits, label); gradient of mean BCE w.r.t. a logit is (sigmoid - y) / N
        real = (q * hr).sum(1)
        if c is not None:
            real += c
        g_real = (torch.sigmoid(real) - 1.0).div_(n_rec)
        loss = F.softplus(-real).sum()
        correct = (real > 0).sum()
        dq = g_real[:, None] * hr
        dc = g_real.clone()
        dh = torch.empty_like(h)
        dh_r = dh[:b]
        torch.mul(g_real[:, None], q, out=dh_r)
        if r:
            hn = h[b:].view(b, r, -1)
            rand = (hn * q.unsqueeze(1)).sum(2)  # bmm of 1 x d by d x 1: 2-5x slower
            if c is not None:
                rand += c[:, None]
            g_rand = torch.sigmoid(rand).div_(n_rec)
            loss += F.softplus(rand).sum()
            correct += (rand <= 0).sum()
            dq += torch.einsum("br,brd->bd", g_rand, hn)  # bmm: 20x slower at r = 1
            dc += g_rand.sum(1)
            torch.mul(g_rand.unsqueeze(2), q.unsqueeze(1), out=dh[b:].view(b, r, -1))
        if s:
            # pair each entity with the address of another row of the (already shuffled) batch:
            # a random rotation, so never the row's own address
            for shift in shifts:
                other = torch.roll(hr, shift, 0)
                shuf = (q * other).sum(1)
                if c is not None:
                    shuf += c
                g_shuf = torch.sigmoid(shuf).div_(n_rec)
                loss += F.softplus(shuf).sum()
                correct += (shuf <= 0).sum()
                dq += g_shuf[:, None] * other
                dc += g_shuf
                dh_r += torch.roll(g_shuf[:, None] * q, -shift, 0)
        dq = torch.zeros_like(e).index_add_(0, inverse, dq)
        if len(layers):
            dc = torch.zeros(len(rows), dtype=dc.dtype, device=dc.device).index_add_(0, inverse, dc)
            de = dq @ weight.T
            de += dc[:, None] * bias
            layers[-1].weight.grad = e.T @ dq
            layers[-1].bias.grad = e.T @ dc
        else:
            de = dq
        if deep:
            h_graph.backward(dh)
            dbag = bag.grad
        else:
            dbag = dh
        return loss, correct, n_rec, rows, de, dbag

    def epoch(
        self,
        data: TrainData,
        on_batch: Callable[[int, float, float, float], None] | None = None,
    ) -> dict:
        n = len(data.entity_rows)
        bsz = self.hp["mini_batch_size"]
        order = torch.from_numpy(self.rng.permutation(n)).to(self.device)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        records = 0
        start = time.perf_counter()
        interval = self.hp["batch_metrics_publish_interval"]
        order_np = order.cpu().numpy()
        r = self.hp["random_negative_sampling_rate"]
        chunk = max(1, 200_000 // max(1, bsz * r))  # batches whose negatives are drawn at once
        negatives = None
        for k, i in enumerate(range(0, n, bsz), start=1):
            idx = order[i : i + bsz]
            if r and (k - 1) % chunk == 0:
                stop = min(n, i + chunk * bsz)
                neg_v6 = np.repeat(data.is_v6[order_np[i:stop]], r)
                negatives = self.drop_prefixes(self.random_negative_slots(neg_v6), neg_v6)
                neg_at = 0
            neg = None
            if r:
                neg = negatives[neg_at : neg_at + len(idx) * r]
                neg_at += len(idx) * r
            # the batch's real slots, finest levels dropped; shuffled negatives re-use them
            slots = self.drop_prefixes(data.ip_slots[idx], data.is_v6[order_np[i : i + bsz]])
            l_sum, c, m = self.step(data.entity_rows[idx], slots, neg)
            loss_sum += l_sum
            correct += c
            records += m
            if on_batch or k % interval == 0:
                elapsed = time.perf_counter() - start
                loss = float(loss_sum) / records
                acc = float(correct) / records
                rate = records / max(elapsed, 1e-9)
                if on_batch:
                    on_batch(m, loss, acc, rate)
                if k % interval == 0:
                    log.info("batch %d: loss=%.4f accuracy=%.4f records/s=%.0f", k, loss, acc, rate)
        elapsed = time.perf_counter() - start
        return {
            "loss": float(loss_sum) / records,
            "accuracy": float(correct) / records,
            "records": records,
            "seconds": elapsed,
            "records_per_second": records / max(elapsed, 1e-9),
        }


def smooth_entities(
    table: torch.Tensor,
    entity_rows: torch.Tensor,
    network_rows: torch.Tensor,
    weight: float,
    passes: int = SMOOTHING_PASSES,
    skip: int | None = None,
) -> None:
    """Learn from colleagues, after training: each training entity's vector becomes
    ``(1 - weight) * its trained vector + weight * around``, where ``around`` is the mean, over
    the entity's logins, of the mean vector of the entities that used the login's network;
    ``passes`` times, ``around`` from the previous pass's vectors (colleagues of colleagues),
    the trained vector kept as the anchor of every pass (a personalised-PageRank walk). In place.

    Users of one organisation who were each seen at a few of its offices end up near each
    other, so an office a user never used but colleagues did scores as theirs. Networks are
    the /16 rows (IPv6 /32) of the training pairs, one entry per pair (a network a user logs in
    from often weighs more in their ``around`` than one seen once); ``skip`` (the padding row) is
    no network. Anchoring keeps each pass's pull towards colleagues without shrinking the
    user's own vector pass after pass: on the quality sets it reached further on the
    organisation sets for the same cost on the tutorial-style ones (docs/ipinsights-engine.md).
    """
    if weight <= 0 or passes <= 0 or len(entity_rows) == 0:
        return
    keep = network_rows != skip if skip is not None else torch.ones_like(network_rows, dtype=bool)
    span = int(network_rows.max()) + 1
    pairs, logins = torch.unique(entity_rows[keep] * span + network_rows[keep], return_counts=True)
    users, networks = pairs // span, pairs % span
    networks, net_index = torch.unique(networks, return_inverse=True)
    users, user_index = torch.unique(users, return_inverse=True)
    logins = logins.to(table.dtype)
    per_network = torch.bincount(net_index, minlength=len(networks)).to(table.dtype)[:, None]
    per_user = torch.zeros(len(users), dtype=table.dtype).index_add_(0, user_index, logins)
    trained = table.index_select(0, users)
    vectors = trained
    for _ in range(passes):
        means = torch.zeros(len(networks), table.shape[1], dtype=table.dtype)
        means.index_add_(0, net_index, vectors.index_select(0, user_index)).div_(per_network)
        around = torch.zeros_like(vectors)
        around.index_add_(0, user_index, means.index_select(0, net_index).mul_(logins[:, None]))
        around.div_(per_user[:, None])
        vectors = around.mul_(weight).add_(trained, alpha=1 - weight)
    table.index_copy_(0, users, vectors)


def addresses_to_slots(indexer: AddressIndexer, addresses: Addresses, device) -> torch.Tensor:
    return torch.from_numpy(indexer.rows(addresses)).to(device)
