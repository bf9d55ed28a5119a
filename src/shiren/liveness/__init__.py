"""Liveness: proof that a live person is in front of the camera now.

Signals (each its own module, each pure given the per-frame measurements):

* :mod:`.challenge` — the server's random challenge (actions with time windows, a colour
  sequence, a nonce), signed so a client cannot forge or edit it;
* :mod:`.frames` — the frame sequence a capture page uploads (images or a video, with the
  metadata that says when each frame was taken), validated before any model runs;
* :mod:`.actions` — blink / open mouth / turn / nod from face-mesh signals, per-person baselines;
* :mod:`.parallax` — a flat photo or screen moves as a plane, a head does not;
* :mod:`.flash` — the face's reflected colour must follow the screen's colour sequence;
* :mod:`.identity` — the same face from the first frame to the last;
* passive presentation-attack detection (MiniFASNet, texture cues);
* :mod:`.check` — fusion into one :class:`~shiren.liveness.check.LivenessResult`.
"""
