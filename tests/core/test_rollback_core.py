"""Target choice and preflight, on facts built by hand (the flows test the same against the sandbox)."""

from incidentops.core.rollback import LedgerSnapshot, PagesFacts, Pin, WorkerFacts, plan_pages, plan_worker

GOOD, BAD, OLDER = "v-good", "v-bad", "v-older"


def worker_facts(**kw: object) -> WorkerFacts:
    base = dict(
        live_version=BAD,
        deployments=(("2026-11-26T00:00:00Z", BAD), ("2026-11-20T00:00:00Z", GOOD), ("2026-11-10T00:00:00Z", OLDER)),
        deployable={
            BAD: ("2026-11-25T00:00:00Z", None),
            GOOD: ("2026-11-19T00:00:00Z", None),
            OLDER: ("2026-11-09T00:00:00Z", None),
        },
        secret_rotations=(),
    )
    base.update(kw)
    return WorkerFacts(**base)  # type: ignore[arg-type]


def snap(commit: str, version: str, verified: bool) -> LedgerSnapshot:
    return LedgerSnapshot(commit, {"api-worker": Pin(version, "alice", "2026-11-01T00:00:00Z", verified, commit)})


def test_newest_verified_pin_wins_over_newer_unverified_ones() -> None:
    history = [snap("c3", BAD, False), snap("c2", GOOD, True), snap("c1", OLDER, True)]
    plan = plan_worker("api-worker", worker_facts(), history, history[0].services["api-worker"])
    assert plan.target == GOOD and plan.ok and "ledger commit c2" in plan.why


def test_without_verified_pins_cloudflare_previous_full_deployment_is_used() -> None:
    plan = plan_worker("api-worker", worker_facts(), [snap("c3", BAD, False)], None)
    assert plan.target == GOOD and plan.fallback
    assert plan.why.startswith("no verified pin in the ledger's history: fallback to Cloudflare's previous deployment")


def test_the_fallback_skips_a_secret_change_and_the_code_it_re_deployed() -> None:
    # A secret rotation re-deployed BAD's code as a new version: the deployment before it is BAD itself.
    rotated = "v-bad-rotated"
    facts = worker_facts(
        live_version=rotated,
        deployments=(("4", rotated), ("3", BAD), ("2", GOOD), ("1", OLDER)),
        deployment_triggers=("secret", "upload", "upload", "upload"),
    )
    plan = plan_worker("api-worker", facts, [], None)
    assert plan.target == GOOD and plan.fallback, plan


def test_the_fallback_never_lands_on_an_older_secret_made_deployment() -> None:
    facts = worker_facts(
        deployments=(("4", BAD), ("3", "v-old-rotated"), ("2", GOOD)),
        deployment_triggers=("upload", "secret", "upload"),
    )
    assert plan_worker("api-worker", facts, [], None).target == GOOD


def test_a_verified_pin_is_not_a_fallback() -> None:
    assert not plan_worker("api-worker", worker_facts(), [snap("c2", GOOD, True)], None).fallback


def test_split_deployments_are_skipped_when_falling_back() -> None:
    facts = worker_facts(deployments=(("3", BAD), ("2", None), ("1", OLDER)))
    assert plan_worker("api-worker", facts, [], None).target == OLDER


def test_target_outside_the_100_version_window_is_refused() -> None:
    facts = worker_facts(deployable={BAD: ("2026-11-25T00:00:00Z", None)})
    plan = plan_worker("api-worker", facts, [snap("c2", GOOD, True)], None, target_exists=True)
    assert not plan.ok and "outside Cloudflare's newest-100-versions window" in plan.preflight


def test_missing_target_is_refused() -> None:
    facts = worker_facts(deployable={BAD: ("2026-11-25T00:00:00Z", None)})
    plan = plan_worker("api-worker", facts, [snap("c2", "v-gone", True)], None, target_exists=False)
    assert not plan.ok and "does not exist" in plan.preflight


def test_secret_rotation_after_target_needs_explicit_force() -> None:
    facts = worker_facts(secret_rotations=("2026-11-22T00:00:00Z",))
    history = [snap("c2", GOOD, True)]
    refused = plan_worker("api-worker", facts, history, None)
    assert not refused.ok and "set `force: true`" in refused.preflight
    forced_pin = Pin(BAD, "bob", "x", False, "c3", force=True)
    allowed = plan_worker("api-worker", facts, history, forced_pin)
    assert allowed.ok and allowed.force


def test_pages_only_successful_production_builds() -> None:
    facts = PagesFacts(
        live_deployment="p-bad",
        deployments=(
            ("p-bad", "5", "production", "success"),
            ("p-preview", "4", "preview", "success"),
            ("p-failed", "3", "production", "failure"),
            ("p-good", "2", "production", "success"),
        ),
    )
    assert plan_pages("user-portal", facts, [], None).target == "p-good"
    pinned_failed = LedgerSnapshot("c1", {"user-portal": Pin("p-failed", "a", "t", True, "c1")})
    refused = plan_pages("user-portal", facts, [pinned_failed], None)
    assert not refused.ok and "only rolls back to successful production builds" in refused.preflight
