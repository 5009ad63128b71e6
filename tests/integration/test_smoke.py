from tests.conftest import run_cli


def test_claim_then_refusal(world, store_url):
    ok = run_cli(store_url, "claim", "L-1", "--at", "2026-03-03T09:00:00Z", actor="alice")
    assert ok.code == 0, ok
    assert ok.json["owner"] == "alice"
    refused = run_cli(store_url, "claim", "L-1", "--at", "2026-03-03T09:00:01Z", actor="bob")
    assert refused.code == 1
    err = refused.json["error"]
    assert err["code"] == "lead_owned"
    assert err["owner"] == "alice"
    assert err["owner_since_position"] == ok.json["position"]
