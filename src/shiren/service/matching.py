"""The 1:1 match of a capture with a subject's stored faces, across face networks (issue 14).

Every stored template and reference records the network that made it (``embedder``:
``"<network>@sha256:<hex>"``; a reference stored before migration 0007 holds NULL, which is dlib's
ResNet, the only network until 2026-12).  A check embeds the live face with the network of the
subject's best stored face — the shipped network when the subject has a template of it, else an
older network this deployment can still load — and decides with that network's own calibrated
thresholds.  After a step-up passes on an older network's template, the service adds the shipped
network's template made from the live frames: borrowers move to a new network as they come back,
with no raw photo kept and no re-enrolment.

The probe is built from several still frames of the capture (quality- and pose-weighted, see
:mod:`shiren.core.fusion`), and the template bound at enrolment from the reference plus the live
frames that matched it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from shiren.core.fusion import fuse, pose_weight
from shiren.core.geometry import FloatArray
from shiren.core.pose import head_pose
from shiren.errors import ShirenError
from shiren.fraud.index import network_of as network_name
from shiren.liveness.challenge import Challenge
from shiren.liveness.frames import FrameSequence
from shiren.liveness.memo import CaptureMemo, live_template
from shiren.reasons import ReasonCode
from shiren.thresholds import threshold_entry
from shiren.verifier import DLIB, MOBILEFACENET, PROFILES, Verifier

LEGACY_NETWORK = DLIB
"""The network of a reference row that predates migration 0007 (embedder NULL)."""
NETWORK_PROFILES = {MOBILEFACENET: "standard", DLIB: "dlib-standard"}
"""The profile each network's stored templates were made with (dlib's: the ``standard`` profile
of shiren before 2026-12, mesh + mirrored 5-point views)."""
PROBE_FRAMES = 3
"""Still frames fused into the probe (each costs one more embedding pass per view)."""


LEGACY_DIM = 128
"""dlib's ResNet template length: what a pre-0007 reference (embedder NULL) holds."""


def network_of(embedder: str | None) -> str:
    """The network name of an ``embedder`` id (``None``: a pre-0007 reference, dlib)."""
    return network_name(embedder or LEGACY_NETWORK)


def reference_network(embedder: str | None, dim: int, current: str, current_dim: int) -> str:
    """The network of a stored face: its recorded ``embedder``; for a row that recorded none
    (a reference stored before migration 0007), dlib's when it holds 128 values, the shipped
    network's when it holds that network's length (a row written by a deployment that ran the
    new network before the migration), else dlib's (reported as outdated by the match)."""
    if embedder:
        return network_of(embedder)
    if dim != LEGACY_DIM and dim == current_dim:
        return current
    return LEGACY_NETWORK


@dataclass(frozen=True, slots=True)
class StoredFace:
    """One opened stored face: a template or a reference, its network and its vector."""

    row_id: str
    table: str
    network: str
    vector: FloatArray


@dataclass(frozen=True, slots=True)
class MatchOutcome:
    """What the match of one capture found (``similarity`` None: nothing to compare)."""

    similarity: float | None
    threshold: float
    grey_threshold: float | None
    network: str
    reasons: tuple[str, ...] = ()
    bind_template: bytes | None = None
    """The shipped network's template to bind (enrolment) or to add (a step-up that passed on
    an older network's template); for an enrolment, fused with the same-network reference."""
    live_template: bytes | None = None
    """The shipped network's probe of this capture (for the anti-fraud searches)."""
    upgrade: bool = False
    """The match used an older network: a passing step-up adds ``bind_template``."""
    frames_used: tuple[int, ...] = field(default_factory=tuple)


class FaceMatcher:
    """Probes and thresholds per network, around the service's shipped verifier."""

    def __init__(self, verifier: Verifier, *, profile: str = "standard") -> None:
        self.verifier = verifier
        self.network = verifier.embedder.info.name
        self.profile = profile
        self.second_factor: float | None = None
        """The shipped network's grey-zone lower bound when configured (a lender's own
        network, ``SHIREN_SECOND_FACTOR_THRESHOLD``); else the shipped table's."""
        self._others: dict[str, Verifier | None] = {}
        self._lock = threading.Lock()

    # -- networks and thresholds ------------------------------------------------------------

    def verifier_for(self, network: str) -> Verifier | None:
        """The verifier of ``network``: the shipped one, or an older network loaded once
        (sharing the detector and the mesh); ``None`` when this deployment cannot load it."""
        if network == self.network:
            return self.verifier
        with self._lock:
            if network not in self._others:
                self._others[network] = self._load(network)
            return self._others[network]

    def _load(self, network: str) -> Verifier | None:
        name = NETWORK_PROFILES.get(network)
        if name is None:
            return None
        try:
            return self.verifier.sibling(
                PROFILES[name].config(threads=self.verifier.config.threads)
            )
        except ShirenError:
            return None

    def thresholds(self, verifier: Verifier) -> tuple[float, float | None]:
        """(pass threshold, grey-zone lower bound) of ``verifier``'s network and views."""
        if verifier is self.verifier and self.verifier.config.threshold is not None:
            return self.verifier.threshold, self.second_factor
        try:
            entry = threshold_entry(verifier.embedder.info.name, views=verifier.config.views)
        except ShirenError:
            return verifier.threshold, None
        grey = entry.get("second_factor_threshold")
        if verifier is self.verifier and self.second_factor is not None:
            grey = self.second_factor
        return float(entry["threshold"]), None if grey is None else float(grey)

    # -- probes -----------------------------------------------------------------------------

    def probe(
        self,
        verifier: Verifier,
        sequence: FrameSequence,
        indices: Sequence[int],
        memo: CaptureMemo | None,
    ) -> tuple[FloatArray | None, tuple[int, ...]]:
        """The fused template of the still frames ``indices`` (best first); frames without a
        usable face are skipped; ``None`` when none has one."""
        own = memo if (memo is not None and verifier is self.verifier) else _geometry(memo)
        templates: list[FloatArray] = []
        weights: list[float] = []
        used: list[int] = []
        for i in indices:
            image = sequence.frames[i].image
            template = live_template(verifier, image, i, own)
            if template is None:
                continue
            weight = _weight(own, i, (image.shape[1], image.shape[0]))
            templates.append(template)
            weights.append(weight if used else max(weight, 1e-3))  # the stillest always counts
            used.append(i)
        if not templates:
            return None, ()
        return fuse(templates, weights), tuple(used)

    def match(
        self,
        stored: Sequence[StoredFace],
        sequence: FrameSequence,
        challenge: Challenge,
        memo: CaptureMemo | None,
        *,
        enrolment: bool,
        default_threshold: float,
    ) -> MatchOutcome:
        """Compare the capture with the best stored face (see the module docstring)."""
        indices = still_frames(sequence, float(challenge.lead_in_ms or challenge.still_until_ms))
        current, used = self.probe(self.verifier, sequence, indices, memo)
        live_bytes = None if current is None else current.astype(np.float32).tobytes()
        chosen = self._choose(stored)
        if chosen is None:
            reason = (
                ReasonCode.MATCH_TEMPLATE_OUTDATED if stored else ReasonCode.MATCH_BELOW_THRESHOLD
            )
            return MatchOutcome(
                None,
                default_threshold,
                None,
                self.network,
                (reason.value,),
                live_template=live_bytes,
            )
        verifier, faces = chosen
        if current is None:
            return MatchOutcome(
                None, default_threshold, None, self.network, (ReasonCode.QUALITY_NO_FACE.value,)
            )
        probe: FloatArray = current
        if verifier is not self.verifier:
            other, used = self.probe(verifier, sequence, indices, memo)
            if other is None:
                return MatchOutcome(
                    None, default_threshold, None, self.network, (ReasonCode.QUALITY_NO_FACE.value,)
                )
            probe = other
        reference = (
            fuse([f.vector for f in faces])
            if verifier.embedder.metric == "cosine"
            else (faces[-1].vector)
        )
        if reference.shape != probe.shape:
            return MatchOutcome(
                None,
                default_threshold,
                None,
                self.network,
                (ReasonCode.MATCH_TEMPLATE_OUTDATED.value,),
                live_template=live_bytes,
            )
        score = verifier.score(probe, reference)
        threshold, grey = (
            (default_threshold, self.thresholds(verifier)[1])
            if verifier is self.verifier
            else self.thresholds(verifier)
        )
        bind = current
        if enrolment and verifier is self.verifier:
            bind = fuse([current, reference])  # the reference plus the live frames that match it
        return MatchOutcome(
            similarity=float(score),
            threshold=threshold,
            grey_threshold=grey,
            network=verifier.embedder.info.name,
            bind_template=bind.astype(np.float32).tobytes(),
            live_template=live_bytes,
            upgrade=verifier is not self.verifier and not enrolment,
            frames_used=used,
        )

    def _choose(self, stored: Sequence[StoredFace]) -> tuple[Verifier, list[StoredFace]] | None:
        """The shipped network's faces when the subject has any, else the newest face of an
        older network this deployment can load."""
        same = [f for f in stored if f.network == self.network]
        if same:
            return self.verifier, same[-1:]
        for face in reversed(stored):
            verifier = self.verifier_for(face.network)
            if verifier is not None:
                return verifier, [face]
        return None


def still_frames(sequence: FrameSequence, until_ms: float, k: int = PROBE_FRAMES) -> list[int]:
    """Up to ``k`` frames of the still phase (before ``until_ms``), the stillest first: the
    frames whose content moves least relative to their neighbours (sharp and frontal in
    practice), at least two frames apart so that they add evidence rather than repeat it."""
    idx = [i for i, f in enumerate(sequence.frames) if f.t_ms < until_ms] or [0]
    if len(idx) < 3:
        return idx[:k]
    small = [sequence.frames[i].image[::8, ::8].mean(axis=2) for i in idx]
    motion = {
        idx[j]: float(
            np.abs(small[j] - small[j - 1]).mean() + np.abs(small[j + 1] - small[j]).mean()
        )
        for j in range(1, len(small) - 1)
    }
    chosen: list[int] = []
    for i in sorted(motion, key=lambda x: (motion[x], x)):
        if all(abs(i - c) >= 2 for c in chosen):
            chosen.append(i)
        if len(chosen) == k:
            break
    return chosen


def _geometry(memo: CaptureMemo | None) -> CaptureMemo | None:
    """The memo's meshes and detections without its embeddings (another network's)."""
    if memo is None:
        return None
    return CaptureMemo(meshes=memo.meshes, detections=memo.detections)


def _weight(memo: CaptureMemo | None, index: int, size: tuple[int, int]) -> float:
    mesh = memo.mesh(index) if memo is not None else None
    if mesh is None:
        return 1.0
    try:
        pose = head_pose(mesh, size)
    except (ValueError, ShirenError):
        return 1.0
    return pose_weight(pose.yaw_deg, pose.pitch_deg)


__all__ = [
    "LEGACY_NETWORK",
    "FaceMatcher",
    "MatchOutcome",
    "StoredFace",
    "network_of",
    "reference_network",
    "still_frames",
]
