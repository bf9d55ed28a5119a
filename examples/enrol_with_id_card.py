"""Enrol from the borrower's ID card, against a running shiren server — both ways a lender can.

    shiren serve &                                   # the OCR models load on the first card
    shiren tenant create "Demo lender"               # prints the API key once
    python examples/enrol_with_id_card.py --base-url http://127.0.0.1:8000 --api-key shk_…
    python examples/enrol_with_id_card.py … --front my_front.jpg --back my_back.jpg

1. **The lender has the card photos** (its own app took them): ``enrol_with_id_card`` sends the
   front and back; the server reads and checks the card, takes its portrait as the reference,
   and answers with the fields read (the ID number masked), each check's outcome and the
   enrolment session to send the borrower to.
2. **The borrower's phone takes them**: ``open_card_capture`` returns a ``capture_url``; open it
   on a phone and the capture page asks for consent, photographs the card, and goes on to the
   selfie.  This script prints the link, then — standing in for the phone — sends the same
   photos through the page's own API (consent, framing guidance, the card) so you can see the
   capture become ``enrolled``.

Without ``--front``/``--back`` the photos are generated at run time: a FICTIONAL holder's card
drawn with the CJK font the set-up installs (``shiren.eval.idcard_*``), with a face from
``../shared/data`` as its portrait when that folder is there (a grey silhouette otherwise), and
photographed on a table.  They are not real cards; real cards and real phones are what the
generated set cannot tell you about (docs/IDCARD.md).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import date
from pathlib import Path

import cv2
import httpx
import numpy as np

from shiren.client import ShirenApiError, ShirenClient
from shiren.client_types import Consent

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONSENT_TEXT = "Demo lender: identity verification with your ID card and face (demo text)."


def generated_card(seed: int) -> tuple[bytes, bytes, str]:
    """Front and back photos of a fictional holder's card, and the holder's ID number."""
    from shiren.eval.idcard_content import draw_person
    from shiren.eval.idcard_photo import photograph
    from shiren.eval.idcard_render import CardPainter, print_portrait
    from shiren.eval.idcard_synth import find_cjk_font

    rng = np.random.default_rng(seed)
    person = draw_person(rng, invalid_share=0.0, today=date.today())
    paint = CardPainter(find_cjk_font())
    faces = sorted(SHARED.glob("lfw_view2/lfw-deepfunneled/*/*.jpg"))[:1] if SHARED.is_dir() else []
    face = None
    if faces:
        face = np.ascontiguousarray(cv2.imread(str(faces[0]))[..., ::-1])
    front = photograph(paint.front(person, print_portrait(face, rng), rng), "moderate", rng)
    back = photograph(paint.back(person, rng), "moderate", rng)
    return front.jpeg, back.jpeg, person.id_number


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--front", type=Path, help="a photo of a card's front (else generated)")
    parser.add_argument("--back", type=Path, help="a photo of its back")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.front:
        front, number = args.front.read_bytes(), None
        back = args.back.read_bytes() if args.back else None
    else:
        front, back_photo, number = generated_card(args.seed)
        back = back_photo
    consent = Consent(
        purpose="credit_identity_verification",
        version="demo-1",
        text_sha256=hashlib.sha256(CONSENT_TEXT.encode()).hexdigest(),
        retention_days=365,
    )
    suffix = f"{args.seed}-{date.today():%Y%m%d}"
    with ShirenClient(args.base_url, args.api_key) as client:
        print("1. The lender sends the card photos: POST /v1/enrolments/id-card")
        try:
            done = client.enrol_with_id_card(
                external_ref=f"card-demo-{suffix}",
                consent=consent,
                id_card_front=front,
                id_card_back=back,
                id_number=number,
            )
        except ShirenApiError as exc:
            print(f"   refused: {exc.status} {exc.code} {exc.message}")
            return 1
        card = done.id_card
        print(f"   subject {done.enrolment.subject.id}, sides read: {card['sides']}")
        for name, field in card["fields"].items():
            print(f"   {name:12} {field['value']}  (confidence {field['confidence']:.2f})")
        print(f"   ID number    {card['id_number_masked']}")
        for check in card["checks"]:
            outcome = {True: "passed", False: "FAILED", None: "n/a"}[check["passed"]]
            print(f"   check {check['side']:5} {check['code']:30} {outcome}")
        print(f"   review signals: {card['review_signals'] or 'none'}")
        print(f"   the borrower's selfie: {done.enrolment.session.capture_url}")

        print("2. The borrower's phone takes the photos: POST /v1/enrolments/id-card/captures")
        capture = client.open_card_capture(
            external_ref=f"card-phone-{suffix}",
            consent=consent,
            id_number=number,
            back_required=back is not None,
        )
        print(f"   open this on a phone: {capture.capture_url}")
        assert capture.capture_url is not None
        token = capture.capture_url.rsplit("/", 1)[-1]
        page = httpx.Client(base_url=f"{args.base_url}/v1/capture/{token}", timeout=60)
        receipt = page.post("/consent", json={"accepted": True, "lang": "en"}).json()["receipt"]
        files = [("front", ("front.jpg", front, "image/jpeg"))]
        if back is not None:
            files.append(("back", ("back.jpg", back, "image/jpeg")))
        sent = page.post(
            "/id-card?lang=en", files=files, headers={"X-Shiren-Consent": receipt}
        ).json()
        if "capture_path" not in sent:
            print(f"   the page was told: {sent.get('code')} {sent.get('extra', {}).get('tips')}")
            return 1
        after = client.get_card_capture(capture.id)
        print(f"   the capture is now {after.status}: subject {after.subject_id}")
        print(f"   the page goes on to the selfie: {args.base_url}{sent['capture_path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
