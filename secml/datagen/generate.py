"""Write a dataset: CloudTrail log files in S3 delivery layout, GuardDuty findings, truth.csv.

Streamed one delivery window at a time (numpy draws for the whole window, then one Python
string join per record), so memory stays bounded by one window's records whatever the size.
Same seed, same bytes: one numpy Generator drives everything, and gzip gets mtime=0 and no name.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from secml.datagen import catalog, scenarios
from secml.datagen import model as m


@dataclass(frozen=True)
class Preset:
    name: str
    days: int
    teams: int
    file_minutes: int  # CloudTrail delivers about every 5 minutes; the small preset batches hourly
    compresslevel: int
    start: str = "2025-06-02T00:00:00"  # a Monday


PRESETS = {
    "workshop": Preset("workshop", days=14, teams=1, file_minutes=60, compresslevel=9),
    "large": Preset("large", days=14, teams=220, file_minutes=5, compresslevel=1),
}
DEFAULT_SEED = 20250602


@dataclass
class Summary:
    files: int = 0
    records: int = 0
    findings: int = 0
    bytes_written: int = 0


def generate(preset: Preset, out: Path, seed: int = DEFAULT_SEED, progress=None) -> Summary:
    if preset.days < 7:
        raise ValueError("a preset needs at least a week (weekdays, weekends, the attacks)")
    rng = np.random.default_rng(seed)
    world = m.build_world(rng, days=preset.days, start=preset.start, teams=preset.teams)
    catalog.finalize(world.account_id, world.detector_id)
    planted, specs = scenarios.plant(world, rng)
    findings = scenarios.render_findings(world, specs, rng)
    summary = Summary(findings=len(findings))

    out.mkdir(parents=True, exist_ok=True)
    ct_root = out / "cloudtrail" / "AWSLogs" / world.account_id
    writer = _Writer(world, preset, rng, ct_root, summary)
    writer.run(planted, progress)
    writer.write_digests()

    gd = out / "guardduty"
    gd.mkdir(parents=True, exist_ok=True)
    text = json.dumps(findings, indent=2) + "\n"
    (gd / "findings.json").write_text(text, encoding="utf-8")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["finding_id", "finding_type", "label", "principal", "ip", "scenario"])
    w.writerows(scenarios.truth_rows(world, specs, findings))
    (out / "truth.csv").write_text(buf.getvalue(), encoding="utf-8")
    return summary


class _Writer:
    def __init__(self, world: m.World, preset: Preset, rng, root: Path, summary: Summary) -> None:
        self.world, self.preset, self.rng, self.root, self.summary = (
            world,
            preset,
            rng,
            root,
            summary,
        )
        self.tpl_ids, self.tpl_cums, self.kind_no = m.catalog_arrays(world)
        a = world.actors
        self.rate = np.array([x.rate for x in a])
        self.profile = np.stack([m.PROFILES[x.profile] for x in a])  # [A, 168]
        self.east = np.array([x.east_share for x in a])
        self.ua_start = np.array([x.uas[0] for x in a])  # an actor's API user agents are contiguous
        self.ua_n = np.array([len(x.uas) for x in a])
        self.browser = np.array([x.browser_ua if x.browser_ua >= 0 else x.uas[0] for x in a])
        self.day_mult = np.ones((len(a), world.days))
        for i, x in enumerate(a):
            if x.person >= 0:
                for d in world.persons[x.person].away:
                    self.day_mult[i, d] = 0.05
        t = catalog.TEMPLATES
        self.tpl_global = np.array([x.global_service for x in t])
        self.tpl_console = np.array([x.console for x in t])
        self.tpl_signin = np.array([x.signin for x in t])
        self.tpl_nparams = np.array([len(x.params) for x in t])
        self.delivered: dict[tuple[int, int], list[tuple[str, str, int, int]]] = {}

    def _day_tables(self, day: int):
        cands = [m.day_candidates(self.world, a, day) for a in self.world.actors]
        k = max(len(c) for c in cands)
        n = len(cands)
        start = np.zeros((n, k), dtype=np.int64)
        span = np.ones((n, k), dtype=np.int64)
        cum = np.full((n, k), 2.0)
        for i, c in enumerate(cands):
            w = np.array([x[2] for x in c])
            start[i, : len(c)] = [x[0] for x in c]
            span[i, : len(c)] = [x[1] for x in c]
            cum[i, : len(c)] = np.cumsum(w) / w.sum()
            cum[i, len(c) - 1] = 1.0
        idents = [
            [m.identity_json(self.world, i, day, v) for i in range(n)]
            for v in ("api", "console", "signin")
        ]
        return start, span, cum, idents

    def run(self, planted: scenarios.Planted, progress) -> None:
        w, p, rng = self.world, self.preset, self.rng
        t0 = int(w.start.astype("int64"))
        step = p.file_minutes * 60
        n_bins = w.days * 86400 // step
        pl_t = np.array(planted.t, dtype=np.int64)
        pl_bin = (pl_t - t0) // step
        day = -1
        for b in range(n_bins):
            bin_start = t0 + b * step
            d = (bin_start - t0) // 86400
            if d != day:
                day = d
                start, span, cum, idents = self._day_tables(day)
                if progress:
                    progress(day, w.days)
            how = ((bin_start // 3600) + 72) % 168  # hour of week, Monday 00:00 UTC = 0
            lam = self.rate * self.profile[:, how] * self.day_mult[:, day] * (step / 3600)
            counts = rng.poisson(lam)
            actor = np.repeat(np.arange(len(lam)), counts)
            n = len(actor)
            t = bin_start + rng.integers(0, step, size=n)
            u = rng.random(n)
            tpl = np.empty(n, dtype=np.int64)
            kinds = self.kind_no[actor]
            for k in np.unique(kinds):
                sel = kinds == k
                tpl[sel] = self.tpl_ids[k][
                    np.searchsorted(self.tpl_cums[k], u[sel], side="right").clip(
                        0, len(self.tpl_ids[k]) - 1
                    )
                ]
            u2 = rng.random(n)
            slot = (u2[:, None] > cum[actor]).sum(axis=1)
            ip = start[actor, slot] + (rng.random(n) * span[actor, slot]).astype(np.int64)
            ua = self.ua_start[actor] + (rng.random(n) * self.ua_n[actor]).astype(np.int64)
            ua = np.where(self.tpl_console[tpl] | self.tpl_signin[tpl], self.browser[actor], ua)
            sel = pl_bin == b
            if sel.any():
                idx = np.flatnonzero(sel)
                t = np.concatenate([t, pl_t[idx]])
                actor = np.concatenate([actor, np.array(planted.actor)[idx]])
                tpl = np.concatenate([tpl, np.array(planted.tpl)[idx]])
                ip = np.concatenate([ip, np.array(planted.ip)[idx]])
                ua = np.concatenate([ua, np.array(planted.ua)[idx]])
                n = len(t)
            region = np.where(
                self.tpl_global[tpl], 1, (rng.random(n) < self.east[actor]).astype(np.int64)
            )
            variant = rng.integers(0, 1 << 30, size=n) % self.tpl_nparams[tpl]
            ids = rng.bytes(32 * n).hex()
            for r in (0, 1):
                rsel = np.flatnonzero(region == r)
                if len(rsel) == 0:
                    continue
                order = rsel[np.argsort(t[rsel], kind="stable")]
                self._write_file(
                    r, bin_start + step, order, t, actor, tpl, ip, ua, variant, ids, idents
                )

    def _write_file(self, r, bin_end, order, t, actor, tpl, ip, ua, variant, ids, idents) -> None:
        w, rng = self.world, self.rng
        region = catalog.REGIONS[r]
        ts = np.datetime_as_string(t[order].astype("datetime64[s]"))
        templates = catalog.TEMPLATES
        ipv, uav = w.ips.values, w.uas
        ui_api, ui_console, ui_signin = idents
        parts = []
        for j, i in enumerate(order.tolist()):
            k = int(tpl[i])
            tp = templates[k]
            a = int(actor[i])
            ui = ui_signin[a] if tp.signin else ui_console[a] if tp.console else ui_api[a]
            o = 64 * i
            h = ids
            rid = (
                ""
                if tp.signin
                else (
                    f',"requestID":"{h[o : o + 8]}-{h[o + 8 : o + 12]}-4{h[o + 13 : o + 16]}-a{h[o + 17 : o + 20]}-'
                    f'{h[o + 20 : o + 32]}"'
                )
            )
            parts.append(
                f'{{"eventVersion":"1.09","userIdentity":{ui},"eventTime":"{ts[j]}Z",{tp.heads[r]},'
                f'"sourceIPAddress":"{ipv[ip[i]]}","userAgent":"{uav[ua[i]]}",'
                f'"requestParameters":{tp.params[variant[i]]}{tp.mid}{rid},"eventID":"{h[o + 32 : o + 40]}-'
                f'{h[o + 40 : o + 44]}-4{h[o + 45 : o + 48]}-b{h[o + 49 : o + 52]}-{h[o + 52 : o + 64]}"'
                f"{tp.tails[r]}"
            )
        data = ('{"Records":[' + ",".join(parts) + "]}").encode()
        delivery = bin_end + int(rng.integers(60, 300))
        stamp = str(np.datetime64(delivery, "s"))  # YYYY-MM-DDTHH:MM:SS
        day_dir = stamp[:10].replace("-", "/")
        suffix = m.rand_ids(rng, 1, 16)[0]
        name = (
            f"{w.account_id}_CloudTrail_{region}_{stamp[:4]}{stamp[5:7]}{stamp[8:10]}T"
            f"{stamp[11:13]}{stamp[14:16]}Z_{suffix}.json.gz"
        )
        path = self.root / "CloudTrail" / region / day_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = gzip.compress(data, compresslevel=self.preset.compresslevel, mtime=0)
        path.write_bytes(blob)
        digest_day = (bin_end - 1 - int(w.start.astype("int64"))) // 86400
        self.delivered.setdefault((r, digest_day), []).append(
            (
                str(path.relative_to(self.root.parents[1])),
                hashlib.sha256(blob).hexdigest(),
                int(t[order[0]]),
                int(t[order[-1]]),
            )
        )
        self.summary.files += 1
        self.summary.records += len(order)
        self.summary.bytes_written += len(blob)

    def write_digests(self) -> None:
        """One digest file per region and day (CloudTrail writes them hourly; fewer keeps it small)."""
        w = self.world
        t0 = int(w.start.astype("int64"))
        for (r, day), files in sorted(self.delivered.items()):
            region = catalog.REGIONS[r]
            end = t0 + (day + 1) * 86400
            stamp = str(np.datetime64(end, "s"))
            doc = {
                "awsAccountId": w.account_id,
                "digestStartTime": f"{np.datetime64(end - 86400, 's')}Z",
                "digestEndTime": f"{stamp}Z",
                "digestS3Bucket": w.trail_bucket,
                "digestPublicKeyFingerprint": m.rand_hex(self.rng, 32),
                "digestSignatureAlgorithm": "SHA256withRSA",
                "newestEventTime": f"{np.datetime64(max(f[3] for f in files), 's')}Z",
                "oldestEventTime": f"{np.datetime64(min(f[2] for f in files), 's')}Z",
                "logFiles": [
                    {
                        "s3Bucket": w.trail_bucket,
                        "s3Object": key,
                        "hashValue": digest,
                        "hashAlgorithm": "SHA-256",
                        "newestEventTime": f"{np.datetime64(hi, 's')}Z",
                        "oldestEventTime": f"{np.datetime64(lo, 's')}Z",
                    }
                    for key, digest, lo, hi in files
                ],
            }
            compact = stamp.replace("-", "").replace(":", "")[:13] + "Z"
            path = (
                self.root
                / "CloudTrail-Digest"
                / region
                / stamp[:10].replace("-", "/")
                / f"{w.account_id}_CloudTrail-Digest_{region}_management-events_us-west-2_{compact}.json.gz"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(
                gzip.compress(
                    json.dumps(doc, separators=(",", ":")).encode(),
                    compresslevel=self.preset.compresslevel,
                    mtime=0,
                )
            )
