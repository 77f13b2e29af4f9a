//! Every command, both output forms and every exit code, against snapshots.
//!
//! Each row: the snapshot's name, the arguments, the exit code it must end with.

use crate::check_table;

const EVENTS: &str = "tests/cli/policies/events.json";
const EVENTS_TOML: &str = "tests/cli/policies/events.toml";
const DELETES: &str = "tests/cli/policies/events-organizer-deletes.json";
const V2: &str = "tests/cli/policies/events-v2.json";
const REORDERED: &str = "tests/cli/policies/events-reordered.json";
const BROKEN: &str = "tests/cli/policies/broken.json";
const EVENTS_API: &str = "https://events.example.com/api";
const CASE_FILE: &str = "tests/cli/requests/case-file.json";

#[test]
fn check() {
    check_table(&[
        // A clean policy, JSON and TOML: exit 0.
        ("check-clean", &["check", EVENTS, EVENTS_TOML], 0),
        ("check-clean-json", &["--json", "check", EVENTS], 0),
        // Problems with file:line:column (JSON positions found from the path; TOML spans;
        // shape problems with the policy's own, the later of two keys; a syntax error): exit 1.
        (
            "check-broken",
            &[
                "check",
                BROKEN,
                "tests/cli/policies/broken.toml",
                "tests/cli/policies/shape.toml",
                "tests/cli/policies/shape.json",
                "tests/cli/policies/syntax.json",
            ],
            1,
        ),
        (
            "check-broken-json",
            &[
                "check",
                "--json",
                BROKEN,
                "tests/cli/policies/shape.json",
                "tests/cli/policies/syntax.json",
            ],
            1,
        ),
        // Warnings: exit 0, or 1 under --deny-warnings; --allow silences a lint.
        ("check-warnings", &["check", DELETES], 0),
        ("check-warnings-json", &["check", "--json", DELETES], 0),
        ("check-deny-warnings", &["check", "--deny-warnings", DELETES], 1),
        (
            "check-allow",
            &["check", "--deny-warnings", "--allow", "redundant-role", DELETES],
            0,
        ),
        ("check-quiet", &["check", "--quiet", DELETES], 0),
        // A policy inside a case file.
        ("check-pointer", &["check", "--pointer", "/policy", CASE_FILE], 0),
        // Unusable input: exit 2 (and 2 wins over 1).
        (
            "check-unusable",
            &[
                "check",
                "tests/cli/policies/missing.json",
                "tests/cli/README-missing.yaml",
                BROKEN,
            ],
            2,
        ),
        (
            "check-unusable-json",
            &["check", "--json", "tests/cli/policies/missing.json"],
            2,
        ),
        (
            "check-pointer-nowhere",
            &["check", "--pointer", "/nowhere", CASE_FILE],
            2,
        ),
        (
            "check-pointer-toml",
            &["check", "--pointer", "/policy", EVENTS_TOML],
            2,
        ),
        (
            "check-unknown-lint",
            &["check", "--allow", "no-such-lint", EVENTS],
            2,
        ),
        ("check-no-file", &["check"], 2),
    ]);
}

#[test]
fn explain() {
    check_table(&[
        // A request file (a bare request): a scope is denied, so exit 1.
        (
            "explain-request",
            &["explain", EVENTS, "tests/cli/requests/partner-organizer.json"],
            1,
        ),
        (
            "explain-request-json",
            &[
                "--json",
                "explain",
                EVENTS,
                "tests/cli/requests/partner-organizer.json",
            ],
            1,
        ),
        // A whole case (its request is read, the rest ignored): all asked, exit 0.
        (
            "explain-case",
            &["explain", EVENTS, "tests/cli/requests/device.json"],
            0,
        ),
        // The same request from flags; the TOML policy.
        (
            "explain-flags",
            &[
                "explain",
                EVENTS_TOML,
                "--client",
                "events-web",
                "--audience",
                EVENTS_API,
                "--scope",
                "view:events delete:events",
                "--user",
                "ada",
                "--role",
                "admin",
            ],
            0,
        ),
        // A direct permission, defaults (no scope parameter), a client grant's pattern.
        (
            "explain-flags-billing",
            &[
                "explain",
                EVENTS,
                "--client",
                "events-web",
                "--audience",
                "https://billing.example.com/api",
                "--scope",
                "read:invoices pay:invoices",
                "--permission",
                "https://billing.example.com/api read:invoices",
            ],
            0,
        ),
        // A case of a case file, by position and by name; a request refused as a whole: exit 1.
        (
            "explain-case-file",
            &[
                "explain",
                "--pointer",
                "/policy",
                CASE_FILE,
                CASE_FILE,
                "--case",
                "0",
            ],
            1,
        ),
        (
            "explain-refused",
            &[
                "explain",
                "--pointer",
                "/policy",
                CASE_FILE,
                CASE_FILE,
                "--case",
                "a refresh with another audience is refused",
            ],
            1,
        ),
        (
            "explain-refused-json",
            &[
                "--json",
                "explain",
                "--pointer",
                "/policy",
                CASE_FILE,
                CASE_FILE,
                "--case",
                "1",
            ],
            1,
        ),
        // Unusable input: a policy that does not build, a request that is not one.
        (
            "explain-broken-policy",
            &["explain", BROKEN, "tests/cli/requests/device.json"],
            2,
        ),
        ("explain-bad-request", &["explain", EVENTS, CASE_FILE], 2),
        ("explain-no-request", &["explain", EVENTS], 2),
    ]);
}

#[test]
fn who() {
    check_table(&[
        (
            "who-scope",
            &["who", EVENTS, "--audience", EVENTS_API, "--scope", "view:venues"],
            0,
        ),
        (
            "who-scope-json",
            &[
                "who",
                "--json",
                EVENTS,
                "--audience",
                EVENTS_API,
                "--scope",
                "delete:events",
            ],
            0,
        ),
        // On a policy with one API, --audience may be left out.
        (
            "who-scope-only-api",
            &["who", "--pointer", "/policy", CASE_FILE, "--scope", "share:notes"],
            1,
        ),
        ("who-role", &["who", EVENTS, "--role", "admin"], 0),
        (
            "who-role-json",
            &["who", "--json", EVENTS, "--role", "venue-manager"],
            0,
        ),
        ("who-client", &["who", EVENTS, "--client", "events-tv"], 0),
        ("who-client-m2m", &["who", EVENTS, "--client", "reporting-job"], 0),
        (
            "who-client-json",
            &["who", "--json", EVENTS, "--client", "partner-planner"],
            0,
        ),
        // Nobody: exit 1.
        (
            "who-nobody",
            &[
                "who",
                "tests/cli/lints/unreachable-scope.json",
                "--audience",
                "https://admin.example.com/api",
                "--scope",
                "purge:docs",
            ],
            1,
        ),
        (
            "who-empty-role",
            &["who", "tests/cli/lints/empty-role.json", "--role", "guest"],
            1,
        ),
        // Unusable input: exit 2.
        ("who-unknown-client", &["who", EVENTS, "--client", "ghost"], 2),
        (
            "who-unknown-scope",
            &["who", EVENTS, "--audience", EVENTS_API, "--scope", "fly:events"],
            2,
        ),
        ("who-which-api", &["who", EVENTS, "--scope", "view:events"], 2),
        ("who-nothing-asked", &["who", EVENTS], 2),
    ]);
}

#[test]
fn diff() {
    check_table(&[
        // A role gains `delete:*`: two widenings; the CI gate fails (exit 1).
        ("diff-role-gains-delete", &["diff", EVENTS, DELETES], 0),
        (
            "diff-role-gains-delete-json",
            &["diff", "--json", EVENTS, DELETES],
            0,
        ),
        (
            "diff-fail-on-widening",
            &["diff", "--fail-on-widening", EVENTS, DELETES],
            1,
        ),
        // The reverse narrows only: the gate passes.
        (
            "diff-narrowing",
            &["diff", "--fail-on-widening", DELETES, EVENTS],
            0,
        ),
        // Many kinds of change at once.
        ("diff-many", &["diff", EVENTS, V2], 0),
        ("diff-many-json", &["diff", "--json", EVENTS, V2], 0),
        // Reordering a file, or writing it as TOML, is no change.
        (
            "diff-reordered",
            &["diff", "--fail-on-widening", EVENTS, REORDERED],
            0,
        ),
        ("diff-toml", &["diff", "--json", EVENTS, EVENTS_TOML], 0),
        // Unusable input: exit 2.
        ("diff-broken", &["diff", EVENTS, BROKEN], 2),
        ("diff-broken-json", &["diff", "--json", EVENTS, BROKEN], 2),
    ]);
}

#[test]
fn help_documents_the_exit_codes() {
    check_table(&[("help", &["--help"], 0), ("check-help", &["check", "--help"], 0)]);
}
