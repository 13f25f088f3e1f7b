from incidentops.core.redact import MASK, Redactor


def test_values_of_secret_variables_are_masked() -> None:
    redact = Redactor.from_env(
        {
            "GITHUB_TOKEN": "sandbox-secret-123",
            "CLOUDFLARE_API_TOKEN": "cf-canary-abcdef",
            "SMOKE_TENANT_A": "tenant-key-xyz",
            "HOME": "/home/me",
        }
    )
    text = "tokens sandbox-secret-123 and cf-canary-abcdef and tenant-key-xyz in /home/me"
    assert redact(text) == f"tokens {MASK} and {MASK} and {MASK} in /home/me"


def test_well_known_token_shapes_are_masked_without_being_told() -> None:
    redact = Redactor()
    samples = [
        "ghp_" + "a" * 36,
        "github_pat_" + "B" * 40,
        "Authorization: Bearer abcdefghijklmnop1234",
        "curl -H 'Authorization: token zzzzzzzzzzzzzzzzzzzz'",
    ]
    for sample in samples:
        out = redact(sample)
        assert MASK in out
        assert "aaaaaaaaaaaaaaaaaaaa" not in out and "BBBBBBBBBBBBBBBBBBBB" not in out
        assert "abcdefghijklmnop1234" not in out and "zzzzzzzzzzzzzzzzzzzz" not in out


def test_short_values_are_not_treated_as_secrets() -> None:
    redact = Redactor.from_env({"SOME_TOKEN": "abc"})
    assert redact("abc def") == "abc def"
