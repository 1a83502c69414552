"""The IP Insights network: entity embeddings, an IP encoder, and their dot product."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class IPInsightsNet(nn.Module):
    """score(entity, ip) = entity_embedding . ip_embedding, no bias (as the built-in).

    ip_embedding = FC layers applied to the sum of the address's rows of ``ip_table``; ReLU
    between layers, none after the last (so scores can be any sign).
    """

    def __init__(
        self,
        num_entity_vectors: int,
        ip_table_rows: int,
        vector_dim: int,
        num_ip_encoder_layers: int,
        padding_row: int,
    ):
        super().__init__()
        self.entity = nn.Parameter(torch.empty(num_entity_vectors, vector_dim))
        self.ip_table = nn.Parameter(torch.empty(ip_table_rows, vector_dim))
        self.layers = nn.ModuleList(
            nn.Linear(vector_dim, vector_dim) for _ in range(num_ip_encoder_layers)
        )
        self.padding_row = padding_row
        # the unseen-entity vector (mean of the trained rows); set after training
        self.register_buffer("population", torch.zeros(vector_dim))

    def reset_parameters(self, generator: torch.Generator) -> None:
        dim = self.entity.shape[1]
        with torch.no_grad():
            self.entity.normal_(0.0, dim**-0.5, generator=generator)
            self.ip_table.normal_(0.0, dim**-0.5, generator=generator)
            self.ip_table[self.padding_row].zero_()
            for layer in self.layers:
                bound = dim**-0.5
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.zero_()

    def bag(self, slots: torch.Tensor) -> torch.Tensor:
        """Sum of each address's table rows (the padding row is zero and gets no gradient)."""
        return F.embedding_bag(
            slots, self.ip_table, mode="sum", sparse=True, padding_idx=self.padding_row
        )

    def hidden(self, h: torch.Tensor) -> torch.Tensor:
        """All FC layers but the last (the training step folds the last into the entity side)."""
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        return h

    def encode_ips(self, slots: torch.Tensor) -> torch.Tensor:
        h = self.hidden(self.bag(slots))
        if len(self.layers):
            h = self.layers[-1](h)
        return h

    def forward(self, entity_rows: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        e = F.embedding(entity_rows, self.entity)
        return (e * self.encode_ips(slots)).sum(1)
