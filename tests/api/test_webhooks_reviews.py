"""``PUT /v1/webhook``, ``GET /v1/reviews`` and ``POST /v1/reviews/{id}`` over HTTP (SQLite and
PostgreSQL, via the ``api`` fixture of test_api)."""

from __future__ import annotations

from shiren.domain.decisions import RetryRules
from tests.api.test_api import Api, _is_problem, api  # noqa: F401 - api is a fixture
from tests.conftest import lfw


def test_webhook_put_generates_secret_once_and_validates(api: Api) -> None:  # noqa: F811
    _, auth = api.tenant()
    answers = {"lender.example": ["93.184.216.34"], "metadata.example": ["169.254.169.254"]}

    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    api.service.resolver = resolve
    resp = api.client.put("/v1/webhook", json={"url": "http://127.0.0.1:9/hook"}, headers=auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["url"] == "http://127.0.0.1:9/hook"
    assert body["secret"].startswith("whsec_")
    given = api.client.put(
        "/v1/webhook",
        json={"url": "https://lender.example/hook", "secret": "x" * 20},
        headers=auth,
    )
    assert given.json() == {"url": "https://lender.example/hook"}
    bad = api.client.put("/v1/webhook", json={"url": "http://lender.example/"}, headers=auth)
    _is_problem(bad, 400, "input.webhook_url_invalid")
    for url in ("https://metadata.example/x", "https://10.0.0.1/x", "https://nowhere.example/"):
        refused = api.client.put("/v1/webhook", json={"url": url}, headers=auth)
        _is_problem(refused, 400, "input.webhook_url_forbidden")
    assert api.client.put("/v1/webhook", json={"url": "https://a.example"}).status_code == 401


def test_review_queue_over_http(api: Api) -> None:  # noqa: F811
    api.service.rules = RetryRules(review_margin=2.0)  # any live non-match goes to review
    _, auth = api.tenant()
    _, other = api.tenant("other")
    enrolled = api.enrol(auth, lfw("Jeb_Bush", 1).read_bytes())
    assert enrolled.status_code == 201, enrolled.text
    check = api.submit(auth, enrolled.json()["session"])
    assert check.json()["decision"] == "review", check.text
    queue = api.client.get("/v1/reviews?status=open", headers=auth).json()["reviews"]
    assert [r["check_id"] for r in queue] == [check.json()["id"]]
    assert api.client.get("/v1/reviews", headers=other).json() == {"reviews": []}
    review_id = queue[0]["id"]
    decision = {"outcome": "approve", "reviewer": "alice", "note": "ok"}
    _is_problem(api.client.post(f"/v1/reviews/{review_id}", json=decision, headers=other), 404)
    done = api.client.post(f"/v1/reviews/{review_id}", json=decision, headers=auth)
    assert done.status_code == 200, done.text
    assert (done.json()["outcome"], done.json()["face_bound"]) == ("approved", True)
    again = api.client.post(f"/v1/reviews/{review_id}", json=decision, headers=auth)
    _is_problem(again, 409, "review.already_closed")
    bad = api.client.post(
        f"/v1/reviews/{review_id}", json={"outcome": "maybe", "reviewer": "a"}, headers=auth
    )
    assert bad.status_code == 422
