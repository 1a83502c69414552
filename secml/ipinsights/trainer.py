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

from secml.ipinsights.addresses import Addresses, random_addresses
from secml.ipinsights.encoder import AddressIndexer
from secml.ipinsights.network import IPInsightsNet

log = logging.getLogger("secml.ipinsights")

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


class LazyAdam:
    """Adam for one embedding table, updating only the rows a batch touched."""

    def __init__(self, table: torch.Tensor, lr: float, weight_decay: float):
        self.table = table
        self.lr = lr
        self.weight_decay = weight_decay
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)

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
        w.addcdiv_(m, v.sqrt_().add_(EPS), value=-step_size)
        self.table.index_copy_(0, rows, w)


def sum_rows(index: torch.Tensor, grads: torch.Tensor, skip: int | None = None):
    """Sum the gradient rows that share an index: (distinct indices, summed gradients).

    ``index`` is (n,) or (n, k): with k columns (an address's table rows), gradient row i
    counts once per column. Entries equal to ``skip`` (the padding row) are dropped first, per
    column, and a column holding a single value (the family row of an all-IPv4 batch) is
    summed directly: random negatives mostly fall in prefixes training never saw, so most of
    their entries are padding and the scatter stays small.
    """
    if index.dim() == 1:
        index = index.unsqueeze(1)
    parts_rows: list[torch.Tensor] = []
    parts_grads: list[torch.Tensor] = []
    for j in range(index.shape[1]):
        col = index[:, j]
        lo, hi = torch.aminmax(col)
        if int(lo) == int(hi):
            if skip is None or int(lo) != skip:
                parts_rows.append(col[:1])
                parts_grads.append(grads.sum(0, keepdim=True))
            continue
        if skip is not None:
            keep = (col != skip).nonzero().squeeze(1)
            if len(keep) < len(col):
                parts_rows.append(col.index_select(0, keep))
                parts_grads.append(grads.index_select(0, keep))
                continue
        parts_rows.append(col)
        parts_grads.append(grads)
    if not parts_rows:
        return index.new_zeros(0), grads.new_zeros(0, grads.shape[1])
    rows = torch.cat(parts_rows)
    uniq, inverse = torch.unique(rows, return_inverse=True)
    summed = torch.zeros(len(uniq), grads.shape[1], dtype=grads.dtype, device=grads.device)
    summed.index_add_(0, inverse, torch.cat(parts_grads))
    return uniq, summed


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
    ):
        self.net = net
        self.indexer = indexer
        self.hp = hp
        self.device = device
        self.rng = rng
        lr, wd = hp["learning_rate"], hp["weight_decay"]
        self.entity_opt = LazyAdam(net.entity.data, lr, wd)
        self.ip_opt = LazyAdam(net.ip_table.data, lr, wd)
        dense = [p for layer in net.layers for p in layer.parameters()]
        self.dense_opt = torch.optim.Adam(dense, lr=lr, weight_decay=wd) if dense else None
        self.t = 0

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
        loss, correct, n_rec, de, dbag = self.gradients(entity_rows, all_slots, r, shifts)
        self.t += 1
        rows, g = sum_rows(entity_rows, de)
        self.entity_opt.step(rows, g, self.t)
        rows, g = sum_rows(all_slots, dbag, skip=self.net.padding_row)
        self.ip_opt.step(rows, g, self.t)
        if self.dense_opt:
            self.dense_opt.step()
        return loss, correct, n_rec

    def gradients(self, entity_rows, all_slots, r: int, shifts: list[int]):
        """Loss sum, correct count, records, d(entity rows), d(IP bags); sets FC layer grads.

        Hand-written gradients of the mean BCE: autograd is used only for hidden FC layers
        (num_ip_encoder_layers > 1). The last FC layer is folded into the entity side.
        Shuffled negative k pairs batch row i's entity with row (i - shifts[k]) % b's address.
        """
        net = self.net
        b = len(entity_rows)
        s = len(shifts)
        e = net.entity.data.index_select(0, entity_rows)
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
            q = e @ weight
            c = e @ bias
        else:
            q, c = e, None
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
            rand = torch.bmm(hn, q.unsqueeze(2)).squeeze(2)
            if c is not None:
                rand += c[:, None]
            g_rand = torch.sigmoid(rand).div_(n_rec)
            loss += F.softplus(rand).sum()
            correct += (rand <= 0).sum()
            dq += torch.bmm(g_rand.unsqueeze(1), hn).squeeze(1)
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
        if len(layers):
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
        return loss, correct, n_rec, de, dbag

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
                negatives = self.random_negative_slots(np.repeat(data.is_v6[order_np[i:stop]], r))
                neg_at = 0
            neg = None
            if r:
                neg = negatives[neg_at : neg_at + len(idx) * r]
                neg_at += len(idx) * r
            l_sum, c, m = self.step(data.entity_rows[idx], data.ip_slots[idx], neg)
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


def addresses_to_slots(indexer: AddressIndexer, addresses: Addresses, device) -> torch.Tensor:
    return torch.from_numpy(indexer.rows(addresses)).to(device)
