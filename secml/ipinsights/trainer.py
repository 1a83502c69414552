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
    """Adam for one embedding table whose gradient is (row indices, row gradients)."""

    def __init__(self, table: torch.Tensor, lr: float, weight_decay: float):
        self.table = table
        self.lr = lr
        self.weight_decay = weight_decay
        self.m = torch.zeros_like(table)
        self.v = torch.zeros_like(table)

    def step(self, rows: torch.Tensor, grads: torch.Tensor, t: int) -> None:
        """rows: (k,) may repeat; grads: (k, d). Gradients of repeated rows are summed."""
        uniq, inverse = torch.unique(rows, return_inverse=True)
        g = torch.zeros(len(uniq), grads.shape[1], dtype=grads.dtype, device=grads.device)
        g.index_add_(0, inverse, grads)
        w = self.table.index_select(0, uniq)
        if self.weight_decay:
            g.add_(w, alpha=self.weight_decay)
        m = self.m.index_select(0, uniq).mul_(BETA1).add_(g, alpha=1 - BETA1)
        v = self.v.index_select(0, uniq).mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
        self.m.index_copy_(0, uniq, m)
        self.v.index_copy_(0, uniq, v)
        step_size = self.lr * math.sqrt(1 - BETA2**t) / (1 - BETA1**t)
        w.addcdiv_(m, v.sqrt_().add_(EPS), value=-step_size)
        self.table.index_copy_(0, uniq, w)


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
        addresses = random_addresses(self.rng, is_v6)
        return torch.from_numpy(self.indexer.rows(addresses)).to(self.device)

    def step(self, entity_rows: torch.Tensor, slots: torch.Tensor, is_v6: np.ndarray):
        """One mini-batch. Returns (loss sum, correct count, records)."""
        net = self.net
        b = len(entity_rows)
        r = self.hp["random_negative_sampling_rate"]
        s = self.hp["shuffled_negative_sampling_rate"]
        all_slots = slots
        if r:
            neg = self.random_negative_slots(np.repeat(is_v6, r))
            all_slots = torch.cat([slots, neg])
        # leaf copies of the looked-up rows: their .grad is the row gradient, no sparse tensors
        e = net.entity.data.index_select(0, entity_rows).requires_grad_()
        bag = F.embedding_bag(
            all_slots, net.ip_table.data, mode="sum", padding_idx=net.padding_row
        ).requires_grad_()
        h = net.hidden(bag)
        if len(net.layers):
            last = net.layers[-1]
            q = e @ last.weight
            c = e @ last.bias
        else:
            q = e
            c = torch.zeros(b, device=e.device)
        real = (q * h[:b]).sum(1) + c
        scores = [real]
        if r:
            rand = torch.bmm(h[b:].view(b, r, -1), q.unsqueeze(2)).squeeze(2) + c[:, None]
            scores.append(rand.reshape(-1))
        for _ in range(s):
            # pair each entity with the address of another row of the batch (a random
            # rotation of the already shuffled batch: never the row's own address)
            shift = int(self.rng.integers(1, b)) if b > 1 else 0
            scores.append((q * torch.roll(h[:b], shift, 0)).sum(1) + c)
        logits = torch.cat(scores)
        labels = torch.zeros_like(logits)
        labels[:b] = 1.0
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="mean")
        if self.dense_opt:
            self.dense_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.t += 1
        self.entity_opt.step(entity_rows, e.grad, self.t)
        slot_grads = bag.grad.repeat_interleave(all_slots.shape[1], dim=0)
        flat = all_slots.reshape(-1)
        keep = flat != net.padding_row
        if not bool(keep.all()):
            flat, slot_grads = flat[keep], slot_grads[keep]
        self.ip_opt.step(flat, slot_grads, self.t)
        if self.dense_opt:
            self.dense_opt.step()
        with torch.no_grad():
            correct = ((logits > 0) == (labels > 0.5)).sum()
        n = len(logits)
        return loss.detach() * n, correct, n

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
        for k, i in enumerate(range(0, n, bsz), start=1):
            idx = order[i : i + bsz]
            l_sum, c, m = self.step(
                data.entity_rows[idx], data.ip_slots[idx], data.is_v6[order_np[i : i + bsz]]
            )
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
