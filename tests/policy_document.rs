//! The policy document (DESIGN.md §4): every problem with its path, shape
//! errors, defaults, JSON and TOML alike, and round trips. Public API only.

mod common;

use common::{policy, policy_errors, policy_toml, Case, Expect, Outcome};
use scope_policy::{
    ClientAccess, ClientKind, DenyReason, ErrorCode, Flow, Limits, LoadError, Policy, PolicyDocument,
    Problem, Request, ScopeDocument, Subject, UnknownScopes, User, UserAccess,
};

/// The name of a problem's variant, for tables.
fn kind(problem: &Problem) -> &'static str {
    match problem {
        Problem::Duplicate { .. } => "Duplicate",
        Problem::Empty { .. } => "Empty",
        Problem::InvalidScope { .. } => "InvalidScope",
        Problem::InvalidAudience { .. } => "InvalidAudience",
        Problem::ReservedScope { .. } => "ReservedScope",
        Problem::Wildcard { .. } => "Wildcard",
        Problem::InvalidPattern { .. } => "InvalidPattern",
        Problem::UnknownValue(_) => "UnknownValue",
        Problem::UnknownApi { .. } => "UnknownApi",
        Problem::UndefinedScope { .. } => "UndefinedScope",
        Problem::PatternMatchesNothing { .. } => "PatternMatchesNothing",
        Problem::DuplicateGrant { .. } => "DuplicateGrant",
        Problem::UnknownRole { .. } => "UnknownRole",
        Problem::InheritanceCycle { .. } => "InheritanceCycle",
        Problem::UnknownField { .. } => "UnknownField",
        Problem::DuplicateKey { .. } => "DuplicateKey",
        Problem::MissingField { .. } => "MissingField",
        Problem::WrongType { .. } => "WrongType",
        _ => "a problem this test does not know",
    }
}

/// Every problem of a document that must not build, as (path, variant), in the order reported.
#[track_caller]
fn problems(json: &str) -> Vec<(String, &'static str)> {
    policy_errors(json)
        .iter()
        .map(|error| (error.path().to_owned(), kind(error.problem())))
        .collect()
}

/// The name and first definition of a duplicate reported at `path`.
#[track_caller]
fn duplicate(json: &str, path: &str) -> (String, String) {
    match problem_at(json, path) {
        Problem::Duplicate { name, first, .. } => (name, first),
        other => panic!("expected a duplicate at {path}, got {other:?}"),
    }
}

/// The problem reported at `path`, which must be the only one there.
#[track_caller]
fn problem_at(json: &str, path: &str) -> Problem {
    let errors = policy_errors(json);
    let mut at = errors.iter().filter(|error| error.path() == path);
    match (at.next(), at.next()) {
        (Some(error), None) => error.problem().clone(),
        _ => panic!("expected one problem at {path}, got: {errors}"),
    }
}

// ---------------------------------------------------------------------------
// One broken document per problem class, with the exact paths.
// ---------------------------------------------------------------------------

/// A broken document: what it shows, its text, and each problem's path and variant, in order.
type Broken = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const BROKEN: &[Broken] = &[
    // about, document, problems (path, variant) in order
    (
        "a role permission names a scope its API does not define",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "roles":[{"name":"r0"},{"name":"r1"},
                     {"name":"r2","permissions":[{"audience":"https://a","scope":"delete:a"}]}]}"#,
        &[("roles[2].permissions[0].scope", "UndefinedScope")],
    ),
    (
        "a role permission names a scope of another API",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]},
                    {"audience":"https://b","scopes":[{"name":"read:b"}]}],
            "roles":[{"name":"r","permissions":[{"audience":"https://a","scope":"read:b"}]}]}"#,
        &[("roles[0].permissions[0].scope", "UndefinedScope")],
    ),
    (
        "a role permission names an unknown API",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "roles":[{"name":"r","permissions":[{"audience":"https://A","scope":"read:a"}]}]}"#,
        &[("roles[0].permissions[0].audience", "UnknownApi")],
    ),
    (
        "a role permission names an empty scope",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "roles":[{"name":"r","permissions":[{"audience":"https://a","scope":""}]}]}"#,
        &[("roles[0].permissions[0].scope", "Empty")],
    ),
    (
        "a second API with the same audience is reported at the later one",
        r#"{"apis":[{"audience":"https://a"},{"audience":"https://b"},{"audience":"https://a"}]}"#,
        &[("apis[2].audience", "Duplicate")],
    ),
    (
        "a scope defined twice by one API is reported at the later one",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"},{"name":"write:a"},{"name":"read:a"}]}]}"#,
        &[("apis[0].scopes[2].name", "Duplicate")],
    ),
    (
        "a role defined twice is reported at the later one",
        r#"{"apis":[],"roles":[{"name":"r"},{"name":"s"},{"name":"r"}]}"#,
        &[("roles[2].name", "Duplicate")],
    ),
    (
        "a client id defined twice is reported at the later one",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa"},{"client_id":"c","kind":"native"}]}"#,
        &[("clients[1].client_id", "Duplicate")],
    ),
    (
        "a second grant for the same audience and subject",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"},{"name":"write:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[
              {"audience":"https://a","subject":"user","scopes":["read:a"]},
              {"audience":"https://a","subject":"user","scopes":["write:a"]}]}]}"#,
        &[("clients[0].grants[1]", "DuplicateGrant")],
    ),
    (
        "a machine client's grant without a subject is a client grant, so an explicit one collides",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"m","kind":"machine_to_machine","grants":[
              {"audience":"https://a","scopes":["read:a"]},
              {"audience":"https://a","subject":"client","scopes":["read:a"]}]}]}"#,
        &[("clients[0].grants[1]", "DuplicateGrant")],
    ),
    (
        "an app's grant without a subject is a user grant, so an explicit one collides",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"s","kind":"spa","grants":[
              {"audience":"https://a","subject":"user","scopes":["read:a"]},
              {"audience":"https://a","scopes":["read:a"]}]}]}"#,
        &[("clients[0].grants[1]", "DuplicateGrant")],
    ),
    (
        "a three-role cycle is reported at every role on it, not at a role hanging off it",
        r#"{"apis":[],"roles":[{"name":"a","inherits":["b"]},{"name":"b","inherits":["c"]},
                               {"name":"c","inherits":["a"]},{"name":"d","inherits":["a"]}]}"#,
        &[
            ("roles[0].inherits", "InheritanceCycle"),
            ("roles[1].inherits", "InheritanceCycle"),
            ("roles[2].inherits", "InheritanceCycle"),
        ],
    ),
    (
        "two roles inheriting each other are both on the cycle",
        r#"{"apis":[],"roles":[{"name":"base"},{"name":"viewer","inherits":["base","editor"]},
                               {"name":"editor","inherits":["viewer"]}]}"#,
        &[
            ("roles[1].inherits", "InheritanceCycle"),
            ("roles[2].inherits", "InheritanceCycle"),
        ],
    ),
    (
        "a role inheriting itself is a cycle of one",
        r#"{"apis":[],"roles":[{"name":"ok"},{"name":"self","inherits":["ok","self"]}]}"#,
        &[("roles[1].inherits", "InheritanceCycle")],
    ),
    (
        "an unknown inherited role is reported at its position",
        r#"{"apis":[],"roles":[{"name":"r0"},{"name":"r1","inherits":["r0","ghost"]}]}"#,
        &[("roles[1].inherits[1]", "UnknownRole")],
    ),
    (
        "inherited role names are case-sensitive",
        r#"{"apis":[],"roles":[{"name":"r0"},{"name":"r1","inherits":["R0"]}]}"#,
        &[("roles[1].inherits[0]", "UnknownRole")],
    ),
    (
        "default_audience names no API",
        r#"{"settings":{"default_audience":"https://a/"},"apis":[{"audience":"https://a"}]}"#,
        &[("settings.default_audience", "UnknownApi")],
    ),
    (
        "a default scope the API does not define",
        r#"{"apis":[{"audience":"https://a","default_scopes":["read:a","delete:a"],"scopes":[{"name":"read:a"}]}]}"#,
        &[("apis[0].default_scopes[1]", "UndefinedScope")],
    ),
    (
        "a default scope may not be an OIDC scope",
        r#"{"apis":[{"audience":"https://a","default_scopes":["openid"],"scopes":[{"name":"read:a"}]}]}"#,
        &[("apis[0].default_scopes[0]", "UndefinedScope")],
    ),
    (
        "a default scope may not be a pattern",
        r#"{"apis":[{"audience":"https://a","default_scopes":["read:*"],"scopes":[{"name":"read:a"}]}]}"#,
        &[("apis[0].default_scopes[0]", "UndefinedScope")],
    ),
    (
        "an unknown client kind",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"desktop"}]}"#,
        &[("clients[0].kind", "UnknownValue")],
    ),
    (
        "client kinds are case-sensitive",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"SPA"}]}"#,
        &[("clients[0].kind", "UnknownValue")],
    ),
    (
        "an unknown grant type",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa","grant_types":["implicit"]}]}"#,
        &[("clients[0].grant_types[0]", "UnknownValue")],
    ),
    (
        "an unknown grant type after a known one",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa","grant_types":["authorization_code","password"]}]}"#,
        &[("clients[0].grant_types[1]", "UnknownValue")],
    ),
    (
        "an unknown grant subject",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","subject":"users","scopes":["read:a"]}]}]}"#,
        &[("clients[0].grants[0].subject", "UnknownValue")],
    ),
    (
        "an unknown user access policy",
        r#"{"apis":[{"audience":"https://a","user_access":"allow"}]}"#,
        &[("apis[0].user_access", "UnknownValue")],
    ),
    (
        "client access has no allow_all",
        r#"{"apis":[{"audience":"https://a","client_access":"allow_all"}]}"#,
        &[("apis[0].client_access", "UnknownValue")],
    ),
    (
        "an unknown unknown_scopes setting",
        r#"{"settings":{"unknown_scopes":"drop"},"apis":[]}"#,
        &[("settings.unknown_scopes", "UnknownValue")],
    ),
    (
        "a role pattern that matches nothing",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "roles":[{"name":"r","permissions":[{"audience":"https://a","scope":"delete:*"}]}]}"#,
        &[("roles[0].permissions[0].scope", "PatternMatchesNothing")],
    ),
    (
        "patterns are case-sensitive",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "roles":[{"name":"r","permissions":[{"audience":"https://a","scope":"READ:*"}]}]}"#,
        &[("roles[0].permissions[0].scope", "PatternMatchesNothing")],
    ),
    (
        "a grant pattern that matches nothing",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scopes":["read:a","admin:*"]}]}]}"#,
        &[("clients[0].grants[0].scopes[1]", "PatternMatchesNothing")],
    ),
    (
        "`*` matches nothing on an API without scopes",
        r#"{"apis":[{"audience":"https://a"}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scopes":["*"]}]}]}"#,
        &[("clients[0].grants[0].scopes[0]", "PatternMatchesNothing")],
    ),
    (
        "a star inside a scope is not a pattern",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scopes":["read:*:a"]}]}]}"#,
        &[("clients[0].grants[0].scopes[0]", "InvalidPattern")],
    ),
    (
        "a grant names an unknown API",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://b","scopes":["read:a"]}]}]}"#,
        &[("clients[0].grants[0].audience", "UnknownApi")],
    ),
    (
        "a grant names a scope the API does not define",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scopes":["read:a","openid"]}]}]}"#,
        &[("clients[0].grants[0].scopes[1]", "UndefinedScope")],
    ),
    (
        "a grant scope with a space is not a scope token",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"}]}],
            "clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scopes":["read a"]}]}]}"#,
        &[("clients[0].grants[0].scopes[0]", "InvalidScope")],
    ),
    (
        "an API may not define openid",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"openid"}]}]}"#,
        &[("apis[0].scopes[0].name", "ReservedScope")],
    ),
    (
        "an API may not define offline_access",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"},{"name":"offline_access"}]}]}"#,
        &[("apis[0].scopes[1].name", "ReservedScope")],
    ),
    (
        "an API scope name may not end in *",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:*"}]}]}"#,
        &[("apis[0].scopes[0].name", "Wildcard")],
    ),
    (
        "an API scope name may not hold * anywhere",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a"},{"name":"a*b"},{"name":"*"}]}]}"#,
        &[
            ("apis[0].scopes[1].name", "Wildcard"),
            ("apis[0].scopes[2].name", "Wildcard"),
        ],
    ),
    (
        "a scope name with a space",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read a"}]}]}"#,
        &[("apis[0].scopes[0].name", "InvalidScope")],
    ),
    (
        "a scope name with a quote or a backslash",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read\"a"},{"name":"read\\a"}]}]}"#,
        &[
            ("apis[0].scopes[0].name", "InvalidScope"),
            ("apis[0].scopes[1].name", "InvalidScope"),
        ],
    ),
    (
        "a non-ASCII scope name",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"lire:été"}]}]}"#,
        &[("apis[0].scopes[0].name", "InvalidScope")],
    ),
    (
        "an audience with a space",
        r#"{"apis":[{"audience":"https://a/ api"}]}"#,
        &[("apis[0].audience", "InvalidAudience")],
    ),
    (
        "an audience with a tab or a trailing newline",
        r#"{"apis":[{"audience":"https://a/\tapi"},{"audience":"https://b\n"}]}"#,
        &[
            ("apis[0].audience", "InvalidAudience"),
            ("apis[1].audience", "InvalidAudience"),
        ],
    ),
    (
        "an empty audience",
        r#"{"apis":[{"audience":""}]}"#,
        &[("apis[0].audience", "Empty")],
    ),
    (
        "an empty scope name",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":""}]}]}"#,
        &[("apis[0].scopes[0].name", "Empty")],
    ),
    (
        "an empty role name",
        r#"{"apis":[],"roles":[{"name":""}]}"#,
        &[("roles[0].name", "Empty")],
    ),
    (
        "an empty client id",
        r#"{"apis":[],"clients":[{"client_id":"","kind":"spa"}]}"#,
        &[("clients[0].client_id", "Empty")],
    ),
    (
        "an API name written empty",
        r#"{"apis":[{"audience":"https://a","name":""}]}"#,
        &[("apis[0].name", "Empty")],
    ),
    (
        "a client name written empty",
        r#"{"apis":[],"clients":[{"client_id":"c","name":"","kind":"spa"}]}"#,
        &[("clients[0].name", "Empty")],
    ),
];

#[test]
fn each_broken_document_reports_its_problems_at_their_paths() {
    let mut failures = String::new();
    for (about, json, expected) in BROKEN {
        let expected: Vec<(String, &str)> = expected.iter().map(|(p, k)| ((*p).to_owned(), *k)).collect();
        let actual = match Policy::from_json(json) {
            Err(LoadError::Policy(errors)) => errors
                .iter()
                .map(|error| (error.path().to_owned(), kind(error.problem())))
                .collect(),
            Err(error) => {
                failures.push_str(&format!("\n- {about}: a shape error: {error}"));
                continue;
            }
            Ok(_) => Vec::new(),
        };
        if actual != expected {
            failures.push_str(&format!(
                "\n- {about}\n    expected: {expected:?}\n    actual:   {actual:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "documents that failed:{failures}");
}

#[test]
fn names_that_differ_only_slightly_are_distinct() {
    // Exact comparison everywhere: none of these is a duplicate.
    let policy = policy(
        r#"{"apis":[
              {"audience":"https://a/api","scopes":[{"name":"read"},{"name":"Read"}]},
              {"audience":"https://a/api/","scopes":[{"name":"read"}]},
              {"audience":"https://A/api","scopes":[{"name":"read"}]}],
            "roles":[{"name":"admin"},{"name":"Admin"}],
            "clients":[
              {"client_id":"c","kind":"machine_to_machine","grant_types":["client_credentials","authorization_code"],
               "grants":[{"audience":"https://a/api","subject":"client","scopes":["read"]},
                         {"audience":"https://a/api","subject":"user","scopes":["Read"]},
                         {"audience":"https://a/api/","scopes":["read"]}]},
              {"client_id":"C","kind":"spa"}]}"#,
    );
    assert_eq!(policy.apis().len(), 3);
    assert_eq!(policy.roles().len(), 2);
    assert_eq!(policy.clients().len(), 2);
    assert_eq!(policy.api("https://a/api").map(|api| api.scopes().len()), Some(2));
}

#[test]
fn problems_say_what_is_wrong_and_where_it_was_first() {
    let two_apis = r#"{"apis":[{"audience":"https://a"},{"audience":"https://a"}]}"#;
    assert_eq!(
        duplicate(two_apis, "apis[1].audience"),
        ("https://a".to_owned(), "apis[0].audience".to_owned())
    );
    let two_scopes =
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"x"},{"name":"y"},{"name":"x"}]}]}"#;
    assert_eq!(
        duplicate(two_scopes, "apis[0].scopes[2].name"),
        ("x".to_owned(), "apis[0].scopes[0].name".to_owned())
    );
    // An invalid name before the first one does not shift where it was first.
    let after_a_reserved_name =
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"openid"},{"name":"a"},{"name":"a"}]}]}"#;
    assert_eq!(
        duplicate(after_a_reserved_name, "apis[0].scopes[2].name"),
        ("a".to_owned(), "apis[0].scopes[1].name".to_owned())
    );
    let two_roles = r#"{"apis":[],"roles":[{"name":"r"},{"name":"r"}]}"#;
    assert_eq!(
        duplicate(two_roles, "roles[1].name"),
        ("r".to_owned(), "roles[0].name".to_owned())
    );
    let two_clients =
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa"},{"client_id":"c","kind":"spa"}]}"#;
    assert_eq!(
        duplicate(two_clients, "clients[1].client_id"),
        ("c".to_owned(), "clients[0].client_id".to_owned())
    );
    let two_grants = r#"{"apis":[{"audience":"https://a","scopes":[{"name":"x"}]},{"audience":"https://b","scopes":[{"name":"x"}]}],
        "clients":[{"client_id":"c","kind":"spa","grants":[
          {"audience":"https://a","scopes":["x"]},{"audience":"https://b","scopes":["x"]},
          {"audience":"https://a","subject":"client","scopes":["x"]},{"audience":"https://b","scopes":["*"]}]}]}"#;
    assert_eq!(
        problem_at(two_grants, "clients[0].grants[3]"),
        Problem::DuplicateGrant {
            audience: "https://b".to_owned(),
            subject: Subject::User,
            first: "clients[0].grants[1]".to_owned()
        }
    );
    let ghost = r#"{"apis":[],"roles":[{"name":"r","inherits":["ghost"]}]}"#;
    assert_eq!(
        problem_at(ghost, "roles[0].inherits[0]"),
        Problem::UnknownRole {
            name: "ghost".to_owned()
        }
    );
    let undefined = r#"{"apis":[{"audience":"https://a","scopes":[{"name":"x"}]}],
        "roles":[{"name":"r","permissions":[{"audience":"https://a","scope":"y"}]}]}"#;
    assert_eq!(
        problem_at(undefined, "roles[0].permissions[0].scope"),
        Problem::UndefinedScope {
            audience: "https://a".to_owned(),
            scope: "y".to_owned()
        }
    );
    let nothing = r#"{"apis":[{"audience":"https://a","scopes":[{"name":"x"}]}],
        "roles":[{"name":"r","permissions":[{"audience":"https://a","scope":"y*"}]}]}"#;
    assert_eq!(
        problem_at(nothing, "roles[0].permissions[0].scope"),
        Problem::PatternMatchesNothing {
            audience: "https://a".to_owned(),
            pattern: "y*".to_owned()
        }
    );
    let reserved = r#"{"apis":[{"audience":"https://a","scopes":[{"name":"email"},{"name":"x*"}]}]}"#;
    assert_eq!(
        problem_at(reserved, "apis[0].scopes[0].name"),
        Problem::ReservedScope {
            name: "email".to_owned()
        }
    );
    assert_eq!(
        problem_at(reserved, "apis[0].scopes[1].name"),
        Problem::Wildcard {
            name: "x*".to_owned()
        }
    );
    let spaced = r#"{"apis":[{"audience":"https://a b"}],"settings":{"default_audience":"https://c"}}"#;
    assert_eq!(
        problem_at(spaced, "apis[0].audience"),
        Problem::InvalidAudience {
            value: "https://a b".to_owned()
        }
    );
    assert_eq!(
        problem_at(spaced, "settings.default_audience"),
        Problem::UnknownApi {
            audience: "https://c".to_owned()
        }
    );
    match problem_at(
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"desktop"}]}"#,
        "clients[0].kind",
    ) {
        Problem::UnknownValue(unknown) => {
            assert_eq!(unknown.value, "desktop");
            for accepted in ["spa", "regular_web", "native", "machine_to_machine"] {
                assert!(
                    unknown.expected.contains(accepted),
                    "{accepted} in {:?}",
                    unknown.expected
                );
            }
        }
        other => panic!("expected an unknown value, got {other:?}"),
    }
}

#[test]
fn an_inheritance_cycle_names_the_roles_on_it() {
    let three = r#"{"apis":[],"roles":[{"name":"a","inherits":["b"]},{"name":"b","inherits":["c"]},
                                       {"name":"c","inherits":["a"]},{"name":"d","inherits":["a"]}]}"#;
    for (path, cycle) in [
        ("roles[0].inherits", ["a", "b", "c", "a"]),
        ("roles[1].inherits", ["b", "c", "a", "b"]),
        ("roles[2].inherits", ["c", "a", "b", "c"]),
    ] {
        assert_eq!(
            problem_at(three, path),
            Problem::InheritanceCycle {
                cycle: cycle.map(str::to_owned).to_vec(),
                omitted: 0,
            },
            "{path}"
        );
    }
    let own = r#"{"apis":[],"roles":[{"name":"me","inherits":["me"]}]}"#;
    assert_eq!(
        problem_at(own, "roles[0].inherits"),
        Problem::InheritanceCycle {
            cycle: vec!["me".to_owned(), "me".to_owned()],
            omitted: 0
        }
    );
}

#[test]
fn the_public_broken_policy_reports_its_expected_paths() {
    // /work/shared/conformance/public/broken-policy.json
    let broken = r#"{
      "apis": [ { "audience": "https://calendar.example.com/api", "name": "Calendar API",
                  "scopes": [ { "name": "read:appointments" } ] } ],
      "roles": [
        { "name": "viewer", "inherits": ["editor"],
          "permissions": [ { "audience": "https://calendar.example.com/api", "scope": "read:appointments" } ] },
        { "name": "editor", "inherits": ["viewer"],
          "permissions": [ { "audience": "https://calendar.example.com/api", "scope": "write:appointments" } ] }
      ]
    }"#;
    let mut paths: Vec<String> = problems(broken).into_iter().map(|(path, _)| path).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "roles[0].inherits",
            "roles[1].inherits",
            "roles[1].permissions[0].scope"
        ]
    );
}

// ---------------------------------------------------------------------------
// Every problem at once, in document order.
// ---------------------------------------------------------------------------

#[test]
fn a_document_with_many_problems_reports_them_all_in_document_order() {
    let json = r#"{
      "settings": { "unknown_scopes": "drop", "default_audience": "https://nowhere" },
      "apis": [
        { "audience": "https://a", "user_access": "sometimes",
          "scopes": [ { "name": "read:a" }, { "name": "openid" } ] },
        { "audience": "https://a" },
        { "audience": "https://c", "scopes": [ { "name": "x*" } ] }
      ],
      "roles": [
        { "name": "r0", "permissions": [ { "audience": "https://a", "scope": "nope" } ] },
        { "name": "r0" },
        { "name": "r2", "inherits": ["ghost"] }
      ],
      "clients": [
        { "client_id": "c0", "kind": "robot" },
        { "client_id": "c1", "kind": "spa", "grant_types": ["implicit"] },
        { "client_id": "c2", "kind": "spa", "grants": [ { "audience": "https://zzz", "scopes": [] } ] }
      ]
    }"#;
    let paths: Vec<String> = problems(json).into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "settings.unknown_scopes",
            "settings.default_audience",
            "apis[0].user_access",
            "apis[0].scopes[1].name",
            "apis[1].audience",
            "apis[2].scopes[0].name",
            "roles[0].permissions[0].scope",
            "roles[1].name",
            "roles[2].inherits[0]",
            "clients[0].kind",
            "clients[1].grant_types[0]",
            "clients[2].grants[0].audience",
        ]
    );
}

#[test]
fn positions_are_ordered_as_numbers_not_as_text() {
    let mut apis: Vec<String> = (0..12)
        .map(|i| format!(r#"{{"audience":"https://api{i}"}}"#))
        .collect();
    apis[2] = r#"{"audience":""}"#.to_owned();
    apis[10] = r#"{"audience":"https://ten","user_access":"x"}"#.to_owned();
    apis[11] = r#"{"audience":"https://eleven","client_access":"x"}"#.to_owned();
    let json = format!(r#"{{"apis":[{}]}}"#, apis.join(","));
    let paths: Vec<String> = problems(&json).into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "apis[2].audience",
            "apis[10].user_access",
            "apis[11].client_access"
        ]
    );
}

#[test]
fn an_apis_problems_follow_its_field_order() {
    // Field order as DESIGN.md §4 and the document types list it.
    let api = r#"{"apis":[{"audience":"https://a","name":"","user_access":"x","client_access":"y",
                          "default_scopes":["nope"],"scopes":[{"name":"openid"}]}]}"#;
    let paths: Vec<String> = problems(api).into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "apis[0].name",
            "apis[0].user_access",
            "apis[0].client_access",
            "apis[0].default_scopes[0]",
            "apis[0].scopes[0].name",
        ],
        "an API's problems"
    );
}

#[test]
fn a_roles_problems_follow_its_field_order() {
    let role = r#"{"apis":[{"audience":"https://a","scopes":[{"name":"x"}]}],
                   "roles":[{"name":"r","inherits":["ghost"],"permissions":[{"audience":"https://a","scope":"nope"}]}]}"#;
    let paths: Vec<String> = problems(role).into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        ["roles[0].inherits[0]", "roles[0].permissions[0].scope"],
        "a role's problems"
    );
}

#[test]
fn a_clients_problems_follow_its_field_order() {
    let client = r#"{"apis":[],"clients":[{"client_id":"","name":"","kind":"robot","grant_types":["implicit"],
                                            "grants":[{"audience":"https://zzz"}]}]}"#;
    let paths: Vec<String> = problems(client).into_iter().map(|(path, _)| path).collect();
    assert_eq!(
        paths,
        [
            "clients[0].client_id",
            "clients[0].name",
            "clients[0].kind",
            "clients[0].grant_types[0]",
            "clients[0].grants[0].audience",
        ],
        "a client's problems"
    );
}

#[test]
fn policy_errors_print_one_problem_per_line() {
    let json = r#"{"apis":[{"audience":"https://a\napi","scopes":[{"name":"read\nx"}]},{"audience":""}],
                  "roles":[{"name":"r","inherits":["r"]}]}"#;
    let errors = policy_errors(json);
    assert_eq!(errors.len(), 4, "{errors}");
    assert!(!errors.is_empty());
    let text = errors.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + errors.len(),
        "a heading and one line per problem:\n{text}"
    );
    for (line, error) in lines[1..].iter().zip(&errors) {
        let shown = error.to_string();
        assert_eq!(line.trim(), shown, "{text}");
        assert!(shown.starts_with(&format!("{}: ", error.path())), "{shown}");
    }
    let load = Policy::from_json(json).unwrap_err();
    assert_eq!(load.to_string(), text, "a load error shows the same problems");
    assert_eq!(
        load.paths(),
        errors.iter().map(|error| error.path()).collect::<Vec<_>>()
    );
}

#[test]
fn a_document_built_in_code_is_checked_the_same_way() {
    let mut document = PolicyDocument::from_json(
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"read:a","description":"Read"}]}]}"#,
    )
    .unwrap();
    assert!(Policy::from_document(document.clone()).is_ok());
    document.apis[0].scopes.push(ScopeDocument::new("profile"));
    document.settings.unknown_scopes = "Reject".to_owned();
    let errors = Policy::from_document(document).unwrap_err();
    let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.path(), kind(e.problem()))).collect();
    assert_eq!(
        found,
        [
            ("settings.unknown_scopes", "UnknownValue"),
            ("apis[0].scopes[1].name", "ReservedScope")
        ]
    );
}

// ---------------------------------------------------------------------------
// Shape errors: unknown fields, wrong types, duplicate keys, missing fields.
// ---------------------------------------------------------------------------

const JSON_SHAPES: &[(&str, &str, &str, &str)] = &[
    // about, document, path, a word of the message
    (
        "an unknown field",
        r#"{"apis":[{"audience":"https://a","rbca":true}]}"#,
        "apis[0].rbca",
        "rbca",
    ),
    (
        "an unknown top-level section",
        r#"{"apis":[],"setings":{}}"#,
        "setings",
        "setings",
    ),
    (
        "an unknown setting",
        r#"{"settings":{"max_scopes":3},"apis":[]}"#,
        "settings.max_scopes",
        "max_scopes",
    ),
    (
        "an unknown field in a grant",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scope":["x"]}]}]}"#,
        "clients[0].grants[0].scope",
        "scope",
    ),
    (
        "an unknown field in a scope definition",
        r#"{"apis":[{"audience":"https://a","scopes":[{"name":"x","desc":"y"}]}]}"#,
        "apis[0].scopes[0].desc",
        "desc",
    ),
    (
        "a string where a boolean belongs",
        r#"{"apis":[{"audience":"https://a","rbac":"yes"}]}"#,
        "apis[0].rbac",
        "boolean",
    ),
    (
        "a negative limit",
        r#"{"settings":{"max_scope_length":-1},"apis":[]}"#,
        "settings.max_scope_length",
        "-1",
    ),
    (
        "a string where a list belongs",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa","grants":[{"audience":"https://a","scopes":"x"}]}]}"#,
        "clients[0].grants[0].scopes",
        "expected a list, found the string \"x\"",
    ),
    (
        "a number where a name belongs",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":3}]}"#,
        "clients[0].kind",
        "string",
    ),
    (
        "a duplicate key in one object",
        r#"{"apis":[{"audience":"https://a","rbac":true,"rbac":false}]}"#,
        "apis[0].rbac",
        "duplicate key `rbac`",
    ),
    (
        "a duplicate key in a client",
        r#"{"apis":[],"clients":[{"client_id":"c","kind":"spa","client_id":"d"}]}"#,
        "clients[0].client_id",
        "duplicate key `client_id`",
    ),
    (
        "a missing audience",
        r#"{"apis":[{"name":"A"}]}"#,
        "apis[0].audience",
        "missing field `audience`",
    ),
    (
        "a missing client kind",
        r#"{"apis":[],"clients":[{"client_id":"c"}]}"#,
        "clients[0].kind",
        "missing field `kind`",
    ),
    (
        "a missing scope name",
        r#"{"apis":[{"audience":"https://a","scopes":[{"description":"x"}]}]}"#,
        "apis[0].scopes[0].name",
        "missing field `name`",
    ),
    (
        "a missing permission scope",
        r#"{"apis":[],"roles":[{"name":"r","permissions":[{"audience":"https://a"}]}]}"#,
        "roles[0].permissions[0].scope",
        "missing field `scope`",
    ),
];

/// The message of the problem reported at `path`.
#[track_caller]
fn message_at(loaded: Result<Policy, LoadError>, path: &str, about: &str) -> String {
    match loaded {
        Err(LoadError::Policy(errors)) => match errors.iter().find(|error| error.path() == path) {
            Some(error) => error.problem().to_string(),
            None => panic!("{about}: no problem at {path}: {errors}"),
        },
        other => panic!("{about}: expected policy problems, got {other:?}"),
    }
}

#[test]
fn json_shape_errors_carry_their_path() {
    for (about, json, path, word) in JSON_SHAPES {
        let message = message_at(Policy::from_json(json), path, about);
        assert!(message.contains(word), "{about}: {message:?} lacks {word:?}");
        assert!(!message.contains('\n'), "{about}: one line");
    }
}

const TOML_SHAPES: &[(&str, &str, &str, &str)] = &[
    // about, document, path, a word of the message
    (
        "an unknown field",
        "[[apis]]\naudience = \"https://a\"\nrbca = true\n",
        "apis[0].rbca",
        "rbca",
    ),
    (
        "a string where a boolean belongs",
        "[[apis]]\naudience = \"https://a\"\nrbac = \"yes\"\n",
        "apis[0].rbac",
        "boolean",
    ),
    (
        "a string where a list belongs",
        "apis = []\n[[clients]]\nclient_id = \"c\"\nkind = \"spa\"\ngrants = [ { audience = \"https://a\", scopes = \"x\" } ]\n",
        "clients[0].grants[0].scopes",
        "expected a list",
    ),
    (
        "a missing audience",
        "[[apis]]\nname = \"A\"\n",
        "apis[0].audience",
        "missing field `audience`",
    ),
];

#[test]
fn toml_shape_errors_carry_their_path() {
    for (about, toml, path, word) in TOML_SHAPES {
        let message = message_at(Policy::from_toml(toml), path, about);
        assert!(message.contains(word), "{about}: {message:?} lacks {word:?}");
    }
}

#[test]
fn toml_duplicate_keys_are_refused() {
    // The TOML parser refuses these before any field is read, so the
    // location is in the message (line and key), not in the path.
    let cases = [
        ("[[apis]]\naudience = \"https://a\"\nrbac = true\nrbac = false\n", "rbac"),
        ("[settings]\nunknown_scopes = \"ignore\"\n[settings]\nmax_scope_length = 3\n[[apis]]\naudience = \"https://a\"\n", "settings"),
    ];
    for (toml, key) in cases {
        match PolicyDocument::from_toml(toml) {
            Err(LoadError::Syntax { message, .. }) => {
                assert!(message.contains("duplicate"), "{message}");
                assert!(message.contains(key), "{message} names {key}");
            }
            other => panic!("a duplicate {key} must be refused, got {other:?}"),
        }
    }
}

#[test]
fn a_syntax_error_is_not_a_policy_error() {
    let error = Policy::from_json(r#"{"apis":[]} trailing"#).unwrap_err();
    assert!(matches!(error, LoadError::Syntax { .. }), "{error:?}");
    let error = Policy::from_json(r#"{"apis":[{"audience":"https://a","rbca":true}]}"#).unwrap_err();
    assert!(
        matches!(error, LoadError::Policy(_)),
        "a shape problem is a policy problem"
    );
    assert_eq!(error.paths(), ["apis[0].rbca"]);
    let error = Policy::from_toml("apis = [").unwrap_err();
    assert!(matches!(error, LoadError::Syntax { .. }), "{error:?}");
}

/// Issue: the first shape error used to hide every other problem. Now an
/// unknown field, a wrong type, a duplicate key and a missing field anywhere
/// are reported in one pass, with the policy's own problems, in document
/// order, so that an operator fixes the file in one round.
#[test]
fn shape_problems_come_together_with_the_policys_problems() {
    let json = r#"{
      "settings": { "unknown_scopes": "ignore", "max_scope_tokens": "many" },
      "apis": [{
        "audience": "https://a.example", "rbca": true,
        "scopes": [ { "name": "read" }, { "name": "openid" }, { "name": "write", "required": "yes" } ]
      }],
      "roles": [
        { "name": "viewer", "permissions": [ { "audience": "https://a.example", "scope": "read" } ] },
        { "name": "editor", "name": "writer", "inherits": ["ghost"],
          "permissions": [ { "audience": "https://a.example", "scope": "delete" } ] }
      ],
      "clients": [ { "client_id": "app", "kind": "spa", "first_party": 1 }, { "client_id": "bot" } ]
    }"#;
    assert_eq!(
        problems(json),
        [
            ("settings.max_scope_tokens".to_owned(), "WrongType"),
            ("apis[0].scopes[1].name".to_owned(), "ReservedScope"),
            ("apis[0].scopes[2].required".to_owned(), "WrongType"),
            ("apis[0].rbca".to_owned(), "UnknownField"),
            ("roles[1].name".to_owned(), "DuplicateKey"),
            ("roles[1].inherits[0]".to_owned(), "UnknownRole"),
            ("roles[1].permissions[0].scope".to_owned(), "UndefinedScope"),
            ("clients[0].first_party".to_owned(), "WrongType"),
            ("clients[1].kind".to_owned(), "MissingField"),
        ]
    );
    // The first of two keys is read: `editor`, not `writer`.
    let json = r#"{ "apis": [], "roles": [ { "name": "editor", "name": "writer" },
                                         { "name": "lead", "inherits": ["writer"] } ] }"#;
    assert_eq!(
        problems(json),
        [
            ("roles[0].name".to_owned(), "DuplicateKey"),
            ("roles[1].inherits[0]".to_owned(), "UnknownRole"),
        ]
    );
    // At the root, a path is empty: the document itself, or a field whose
    // name is empty (found by fuzzing: both must still be reported).
    assert_eq!(problems("[]"), [(String::new(), "WrongType")]);
    assert_eq!(
        problems(r#"{ "": [], "apis": [] }"#),
        [(String::new(), "UnknownField")]
    );
    // The messages name what is wrong.
    let messages: Vec<String> = policy_errors(
        r#"{ "apis": [{ "audience": "https://a.example", "rbac": null, "scopes": "read" }], "clients": [{}] }"#,
    )
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        messages,
        [
            "apis[0].rbac: expected a boolean, found null",
            r#"apis[0].scopes: expected a list, found the string "read""#,
            "clients[0].client_id: missing field `client_id`",
            "clients[0].kind: missing field `kind`",
        ]
    );
}

/// A value that cannot be read is left out, and what it could have caused
/// elsewhere is not reported: a problem is reported only when the operator
/// must fix it whatever the unread value was meant to be.
#[test]
fn what_an_unread_value_could_cause_is_not_reported() {
    // A scope definition without a name: a reference to any scope of that
    // API may mean it, but a reference to another API's scope may not.
    let json = r#"{
      "apis": [
        { "audience": "https://a.example", "scopes": [ { "name": "read" }, { "description": "no name" } ],
          "default_scopes": ["write"] },
        { "audience": "https://b.example", "scopes": [ { "name": "read" } ] }
      ],
      "roles": [ { "name": "r", "permissions": [
        { "audience": "https://a.example", "scope": "write" },
        { "audience": "https://a.example", "scope": "wr*" },
        { "audience": "https://b.example", "scope": "write" } ] } ]
    }"#;
    assert_eq!(
        problems(json),
        [
            ("apis[0].scopes[1].name".to_owned(), "MissingField"),
            ("roles[0].permissions[2].scope".to_owned(), "UndefinedScope"),
        ]
    );
    // An audience that is not a string: any unknown audience may be it.
    let json = r#"{
      "apis": [ { "audience": ["https://a.example"] }, { "audience": "" } ],
      "roles": [ { "name": "r", "permissions": [ { "audience": "https://a.example", "scope": "x" } ] } ],
      "clients": [ { "client_id": "c", "kind": "spa", "grants": [ { "audience": "https://a.example" } ] } ]
    }"#;
    assert_eq!(
        problems(json),
        [
            ("apis[0].audience".to_owned(), "WrongType"),
            ("apis[1].audience".to_owned(), "Empty"),
        ]
    );
    // A role that is not an object: any unknown inherited role may be it.
    let json = r#"{ "apis": [], "roles": [ "admin", { "name": "lead", "inherits": ["admin", "lead"] } ] }"#;
    assert_eq!(
        problems(json),
        [
            ("roles[0]".to_owned(), "WrongType"),
            ("roles[1].inherits".to_owned(), "InheritanceCycle"),
        ]
    );
    // A subject that is not a string: the grant's default subject is a
    // guess, so its clash with another grant is not reported; a clash of two
    // grants read whole is.
    let json = r#"{
      "apis": [ { "audience": "https://a.example", "scopes": [ { "name": "read" } ] } ],
      "clients": [ { "client_id": "c", "kind": "regular_web", "grants": [
        { "audience": "https://a.example", "scopes": ["read"] },
        { "audience": "https://a.example", "scopes": ["read"] },
        { "audience": "https://a.example", "subject": 7, "scopes": ["read"] } ] } ]
    }"#;
    assert_eq!(
        problems(json),
        [
            ("clients[0].grants[1]".to_owned(), "DuplicateGrant"),
            ("clients[0].grants[2].subject".to_owned(), "WrongType"),
        ]
    );
    let unread_first = json.replacen(
        r#""scopes": ["read"] },"#,
        r#""subject": 7, "scopes": ["read"] },"#,
        1,
    );
    assert_eq!(
        problems(&unread_first),
        [
            ("clients[0].grants[0].subject".to_owned(), "WrongType"),
            ("clients[0].grants[2].subject".to_owned(), "WrongType"),
        ],
        "grant 1 clashes with grant 0 only by a guess"
    );
    // An item of a list that cannot be read keeps its place: the items after
    // it are reported at their own positions.
    let json = r#"{ "apis": [ { "audience": "https://a.example", "default_scopes": [7, "nope"] } ] }"#;
    assert_eq!(
        problems(json),
        [
            ("apis[0].default_scopes[0]".to_owned(), "WrongType"),
            ("apis[0].default_scopes[1]".to_owned(), "UndefinedScope"),
        ]
    );
}

#[test]
fn toml_shape_problems_come_together_with_the_policys_problems() {
    let toml = r#"
        [settings]
        consent_lifetime = 0
        [[apis]]
        audience = "https://a.example"
        rbac = "yes"
        scopes = [ { name = "read", consent = "sometimes" }, { name = "when", description = 2024-01-01 } ]
        [[clients]]
        client_id = "app"
        kind = "spa"
        grant_types = [ "authorization_code", 3 ]
    "#;
    let errors = match Policy::from_toml(toml) {
        Err(LoadError::Policy(errors)) => errors,
        other => panic!("expected policy problems, got {other:?}"),
    };
    let paths: Vec<&str> = errors.iter().map(|error| error.path()).collect();
    assert_eq!(
        paths,
        [
            "settings.consent_lifetime",
            "apis[0].rbac",
            "apis[0].scopes[0].consent",
            "apis[0].scopes[1].description",
            "clients[0].grant_types[1]",
        ]
    );
    assert_eq!(
        errors.errors()[3].to_string(),
        "apis[0].scopes[1].description: expected a string, found a date or time"
    );
}

/// Reading the document alone reports its shape's problems only; serde's
/// `Deserialize` (for a host that embeds the document in its own
/// configuration) accepts exactly what the readers accept, and says the
/// first problem and how many more there are.
#[test]
fn the_document_alone_and_through_serde() {
    let json = r#"{ "apis": [ { "audience": "https://a.example", "rbac": 1, "rbca": true } ],
                    "roles": [ { "name": "r", "inherits": ["ghost"] } ] }"#;
    let Err(LoadError::Policy(shape)) = PolicyDocument::from_json(json) else {
        panic!("the document has shape problems");
    };
    let paths: Vec<&str> = shape.iter().map(|error| error.path()).collect();
    assert_eq!(
        paths,
        ["apis[0].rbac", "apis[0].rbca"],
        "the unknown role is the policy's problem"
    );

    let error = serde_json::from_str::<PolicyDocument>(json)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "apis[0].rbac: expected a boolean, found the integer 1 (and 1 more problems)"
    );
    let error = serde_json::from_str::<ScopeDocument>(r#"{ "name": "read", "required": "no" }"#)
        .unwrap_err()
        .to_string();
    assert_eq!(error, r#"required: expected a boolean, found the string "no""#);
    let good = r#"{ "apis": [ { "audience": "https://a.example", "scopes": [ { "name": "read" } ] } ] }"#;
    assert_eq!(
        serde_json::from_str::<PolicyDocument>(good).unwrap(),
        PolicyDocument::from_json(good).unwrap()
    );
}

/// Shape problems cost no more than the document's size: a document with
/// one of each problem per item grows its report linearly.
#[test]
fn many_shape_problems_are_each_reported_once() {
    for n in [1usize, 1_000] {
        let apis: Vec<String> = (0..n)
            .map(|i| {
                format!(r#"{{ "audience": "https://a{i}.example", "rbca": 1, "rbac": "no", "rbac": true }}"#)
            })
            .collect();
        let json = format!(r#"{{ "apis": [{}] }}"#, apis.join(","));
        let errors = policy_errors(&json);
        assert_eq!(errors.len(), 3 * n);
        assert_eq!(errors.errors()[3 * n - 1].path(), format!("apis[{}].rbca", n - 1));
    }
}

// ---------------------------------------------------------------------------
// The same policy in JSON and TOML.
// ---------------------------------------------------------------------------

const EVENTS: &str = "https://events.example.com/api";
const BILLING: &str = "https://billing.example.com/api";

const FULL_JSON: &str = r#"{
  "settings": { "unknown_scopes": "ignore", "default_audience": "https://events.example.com/api",
                "max_scope_length": 200, "max_scope_tokens": 8 },
  "apis": [
    { "audience": "https://events.example.com/api", "name": "Events API",
      "rbac": true, "allow_skipping_consent": true, "allow_offline_access": true,
      "user_access": "allow_all", "client_access": "require_client_grant",
      "default_scopes": ["view:events"],
      "scopes": [
        { "name": "create:events", "description": "Create events" },
        { "name": "view:events", "description": "View events" },
        { "name": "register:events", "description": "Register for events" } ] },
    { "audience": "https://billing.example.com/api", "name": "Billing",
      "allow_skipping_consent": false, "user_access": "require_client_grant",
      "scopes": [
        { "name": "read:invoices", "description": "Read invoices" },
        { "name": "pay:invoices", "description": "Pay invoices" } ] }
  ],
  "roles": [
    { "name": "participant", "description": "Takes part",
      "permissions": [
        { "audience": "https://events.example.com/api", "scope": "view:*" },
        { "audience": "https://events.example.com/api", "scope": "register:events" } ] },
    { "name": "organizer", "description": "Runs events", "inherits": ["participant"],
      "permissions": [ { "audience": "https://events.example.com/api", "scope": "create:events" } ] }
  ],
  "clients": [
    { "client_id": "events-web", "name": "Events", "first_party": true, "kind": "regular_web",
      "grant_types": ["authorization_code", "refresh_token"],
      "grants": [ { "audience": "https://billing.example.com/api", "subject": "user", "scopes": ["read:*"] } ] },
    { "client_id": "partner", "name": "Partner", "kind": "spa" },
    { "client_id": "ledger", "kind": "machine_to_machine",
      "grants": [
        { "audience": "https://billing.example.com/api", "subject": "client", "scopes": ["*"] },
        { "audience": "https://events.example.com/api", "scopes": ["view:events"] } ] }
  ]
}"#;

const FULL_TOML: &str = r#"
[settings]
unknown_scopes = "ignore"
default_audience = "https://events.example.com/api"
max_scope_length = 200
max_scope_tokens = 8

[[apis]]
audience = "https://events.example.com/api"
name = "Events API"
rbac = true
allow_skipping_consent = true
allow_offline_access = true
user_access = "allow_all"
client_access = "require_client_grant"
default_scopes = ["view:events"]
scopes = [
  { name = "create:events", description = "Create events" },
  { name = "view:events", description = "View events" },
  { name = "register:events", description = "Register for events" },
]

[[apis]]
audience = "https://billing.example.com/api"
name = "Billing"
allow_skipping_consent = false
user_access = "require_client_grant"
scopes = [
  { name = "read:invoices", description = "Read invoices" },
  { name = "pay:invoices", description = "Pay invoices" },
]

[[roles]]
name = "participant"
description = "Takes part"
permissions = [
  { audience = "https://events.example.com/api", scope = "view:*" },
  { audience = "https://events.example.com/api", scope = "register:events" },
]

[[roles]]
name = "organizer"
description = "Runs events"
inherits = ["participant"]
permissions = [{ audience = "https://events.example.com/api", scope = "create:events" }]

[[clients]]
client_id = "events-web"
name = "Events"
first_party = true
kind = "regular_web"
grant_types = ["authorization_code", "refresh_token"]
grants = [{ audience = "https://billing.example.com/api", subject = "user", scopes = ["read:*"] }]

[[clients]]
client_id = "partner"
name = "Partner"
kind = "spa"

[[clients]]
client_id = "ledger"
kind = "machine_to_machine"
grants = [
  { audience = "https://billing.example.com/api", subject = "client", scopes = ["*"] },
  { audience = "https://events.example.com/api", scopes = ["view:events"] },
]
"#;

const WEB: Case = Case {
    client: "events-web",
    audience: Some(EVENTS),
    scope: Some("openid offline_access create:events view:events register:events"),
    ..Case::BASE
};
const LEDGER: Case = Case {
    client: "ledger",
    flow: Flow::ClientCredentials,
    user: None,
    ..Case::BASE
};

const BOTH_FORMATS: &[Case] = &[
    Case {
        about: "an organizer gets every events scope and offline access",
        roles: &["organizer"],
        ..WEB
    },
    Case {
        about: "a participant gets what the view:* pattern and register:events allow",
        roles: &["participant"],
        ..WEB
    },
    Case {
        about: "no audience falls back to the default audience",
        roles: &["participant"],
        audience: None,
        ..WEB
    },
    Case {
        about: "no scope asks for the default scopes",
        roles: &["participant"],
        scope: None,
        ..WEB
    },
    Case {
        about: "a third party is asked",
        client: "partner",
        roles: &["organizer"],
        ..WEB
    },
    Case {
        about: "a third party with remembered consent is asked for the rest",
        client: "partner",
        roles: &["organizer"],
        consents: &[("alice", "partner", Some(EVENTS), &["openid", "view:events"], None)],
        ..WEB
    },
    Case {
        about: "prompt=consent asks again",
        client: "partner",
        roles: &["organizer"],
        consents: &[("alice", "partner", Some(EVENTS), &["openid", "view:events"], None)],
        prompt: Some("consent"),
        ..WEB
    },
    Case {
        about: "the first-party app is asked on billing, within its user grant",
        audience: Some(BILLING),
        scope: Some("read:invoices pay:invoices"),
        ..WEB
    },
    Case {
        about: "a client without a user grant may not use billing",
        client: "partner",
        audience: Some(BILLING),
        scope: Some("read:invoices"),
        ..WEB
    },
    Case {
        about: "a refresh keeps to the original scope",
        flow: Flow::RefreshToken,
        roles: &["participant"],
        scope: None,
        original_scope: Some("openid offline_access view:events create:events"),
        ..WEB
    },
    Case {
        about: "more than max_scope_tokens tokens",
        scope: Some("a b c d e f g h i"),
        ..WEB
    },
    Case {
        about: "the machine client gets its whole billing grant",
        audience: Some(BILLING),
        ..LEDGER
    },
    Case {
        about: "the machine client's default-subject grant on events",
        audience: Some(EVENTS),
        scope: Some("view:events create:events"),
        ..LEDGER
    },
    Case {
        about: "client credentials with no audience use the default audience",
        scope: Some("view:events"),
        ..LEDGER
    },
];

#[test]
fn the_same_policy_in_json_and_toml_reads_and_decides_the_same() {
    let from_json = PolicyDocument::from_json(FULL_JSON).unwrap();
    let from_toml = PolicyDocument::from_toml(FULL_TOML).unwrap();
    assert_eq!(from_json, from_toml);

    let json = policy(FULL_JSON);
    let toml = policy_toml(FULL_TOML);
    let mut outcomes = Vec::new();
    for case in BOTH_FORMATS {
        let (a, b) = (case.outcome(&json), case.outcome(&toml));
        assert_eq!(a, b, "{}", case.about);
        outcomes.push((case.about, a));
    }
    // The table reaches grants, prompts and errors, so agreeing means something.
    assert!(outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Grant { granted, .. } if !granted.is_empty())));
    assert!(outcomes.iter().any(|(_, o)| matches!(o, Outcome::Prompt { .. })));
    assert!(outcomes.iter().any(|(_, o)| matches!(o, Outcome::Error(_))));
    // And a few rows say what DESIGN.md says.
    let expect = |about: &str, expect: Expect| {
        let found = outcomes.iter().find(|(a, _)| *a == about).map(|(_, o)| o.clone());
        assert_eq!(found, Some(Outcome::from(expect)), "{about}");
    };
    expect(
        "a participant gets what the view:* pattern and register:events allow",
        Expect::Grant(
            &["openid", "offline_access", "view:events", "register:events"],
            &[("create:events", DenyReason::NotPermitted)],
        ),
    );
    expect(
        "the first-party app is asked on billing, within its user grant",
        Expect::Prompt(
            &[],
            &["read:invoices"],
            &[("pay:invoices", DenyReason::NotGrantedToClient)],
        ),
    );
    expect(
        "a client without a user grant may not use billing",
        Expect::Error(ErrorCode::AccessDenied),
    );
    expect(
        "the machine client gets its whole billing grant",
        Expect::Grant(&["read:invoices", "pay:invoices"], &[]),
    );
}

// ---------------------------------------------------------------------------
// Defaults (DESIGN.md §2, §4).
// ---------------------------------------------------------------------------

const MINIMAL: &str = r#"{
  "apis": [ { "audience": "https://a", "scopes": [ { "name": "read:a" }, { "name": "write:a" } ] } ],
  "roles": [ { "name": "r" } ],
  "clients": [
    { "client_id": "m2m", "kind": "machine_to_machine", "grants": [ { "audience": "https://a", "scopes": ["read:a"] } ] },
    { "client_id": "spa", "kind": "spa" },
    { "client_id": "web", "kind": "regular_web" },
    { "client_id": "app", "kind": "native" },
    { "client_id": "narrow", "kind": "spa", "grant_types": ["authorization_code"] }
  ]
}"#;

#[test]
fn left_out_fields_take_the_defaults_of_design_section_2() {
    let policy = policy(MINIMAL);
    assert_eq!(policy.unknown_scopes(), UnknownScopes::Ignore);
    assert!(policy.default_audience().is_none());
    assert_eq!(policy.limits(), Limits::default());
    assert_eq!(
        (policy.limits().max_scope_length, policy.limits().max_scope_tokens),
        (4096, 128)
    );

    let api = policy.api("https://a").unwrap();
    assert!(!api.rbac());
    assert!(api.allow_skipping_consent());
    assert!(!api.allow_offline_access());
    assert_eq!(api.user_access(), UserAccess::AllowAll);
    assert_eq!(api.client_access(), ClientAccess::RequireClientGrant);
    assert_eq!(api.default_scopes().count(), 0);
    assert_eq!(api.name(), "https://a", "a left-out name shows the audience");
    assert_eq!(api.description("read:a"), Some(""));

    let role = policy.role("r").unwrap();
    assert_eq!(role.description(), "");
    assert_eq!(role.inherits().count(), 0);
    assert!(!role.permits(api, "read:a"));

    let grant_types = |id: &str| policy.client(id).unwrap().grant_types().to_vec();
    assert_eq!(grant_types("m2m"), [Flow::ClientCredentials]);
    for id in ["spa", "web", "app"] {
        assert_eq!(
            grant_types(id),
            [Flow::AuthorizationCode, Flow::RefreshToken],
            "{id}"
        );
    }
    assert_eq!(
        grant_types("narrow"),
        [Flow::AuthorizationCode],
        "written grant types replace the default"
    );
    let kinds: Vec<(bool, ClientKind, &str)> = policy
        .clients()
        .map(|c| (c.first_party(), c.kind(), c.name()))
        .collect();
    assert_eq!(
        kinds,
        [
            (false, ClientKind::MachineToMachine, "m2m"),
            (false, ClientKind::Spa, "spa"),
            (false, ClientKind::RegularWeb, "web"),
            (false, ClientKind::Native, "app"),
            (false, ClientKind::Spa, "narrow"),
        ]
    );
}

#[test]
fn the_defaults_take_effect_in_decisions() {
    let policy = policy(MINIMAL);
    let alice = User::new("alice");
    // first_party defaults to false: the app is asked.
    let request = Request::new("spa")
        .audience("https://a")
        .scope("read:a")
        .user(&alice);
    assert!(matches!(
        policy.grant(&request),
        Ok(scope_policy::Decision::ConsentRequired(_))
    ));
    // A machine client's grant without a subject is a client grant.
    let request = Request::new("m2m")
        .flow(Flow::ClientCredentials)
        .audience("https://a");
    assert_eq!(
        Outcome::of(policy.grant(&request)),
        Outcome::from(Expect::Grant(&["read:a"], &[]))
    );
    // allow_offline_access defaults to false.
    let request = Request::new("web")
        .audience("https://a")
        .scope("offline_access")
        .user(&alice);
    assert_eq!(
        Outcome::of(policy.grant(&request)),
        Outcome::from(Expect::Grant(
            &[],
            &[("offline_access", DenyReason::OfflineAccessNotAllowed)]
        ))
    );
    // rbac defaults to false: no role is needed.
    let request = Request::new("web")
        .audience("https://a")
        .scope("write:a")
        .user(&alice);
    assert!(
        matches!(Outcome::of(policy.grant(&request)), Outcome::Prompt { prompt, .. } if prompt == ["write:a"])
    );
}

#[test]
fn an_app_grant_without_a_subject_is_a_user_grant() {
    let policy = policy(
        r#"{"apis":[{"audience":"https://a","user_access":"require_client_grant",
                     "scopes":[{"name":"read:a"},{"name":"write:a"}]}],
            "clients":[{"client_id":"web","first_party":true,"kind":"regular_web",
                        "grants":[{"audience":"https://a","scopes":["read:a"]}]}]}"#,
    );
    let alice = User::new("alice");
    let request = Request::new("web")
        .audience("https://a")
        .scope("read:a write:a")
        .user(&alice);
    assert_eq!(
        Outcome::of(policy.grant(&request)),
        Outcome::from(Expect::Grant(
            &["read:a"],
            &[("write:a", DenyReason::NotGrantedToClient)]
        ))
    );
}

#[test]
fn only_apis_is_required() {
    let policy = policy(r#"{"apis":[]}"#);
    assert_eq!(
        (policy.apis().len(), policy.roles().len(), policy.clients().len()),
        (0, 0, 0)
    );
    let policy = policy_toml("apis = []\n");
    assert_eq!(policy.apis().len(), 0);
}

// ---------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------

#[test]
fn a_document_survives_a_round_trip_through_json_and_toml() {
    for (about, text) in [("every field written", FULL_JSON), ("defaults left out", MINIMAL)] {
        let document = PolicyDocument::from_json(text).unwrap();
        let json = document.to_json().unwrap();
        assert_eq!(
            PolicyDocument::from_json(&json).unwrap(),
            document,
            "{about}: JSON\n{json}"
        );
        let toml = document.to_toml().unwrap();
        assert_eq!(
            PolicyDocument::from_toml(&toml).unwrap(),
            document,
            "{about}: TOML\n{toml}"
        );
        assert!(Policy::from_toml(&toml).is_ok(), "{about}: the TOML builds");
    }
    // The written form keeps what was set: a rebuilt policy has the same settings.
    let rebuilt =
        Policy::from_json(&PolicyDocument::from_json(FULL_JSON).unwrap().to_json().unwrap()).unwrap();
    assert_eq!(rebuilt.default_audience().map(|api| api.audience()), Some(EVENTS));
    assert_eq!(rebuilt.limits().max_scope_tokens, 8);
    assert_eq!(rebuilt.client("events-web").map(|c| c.first_party()), Some(true));
}

#[test]
fn typed_builders_make_the_document_the_json_describes() {
    use scope_policy::{
        ApiDocument, ClientAccess, ClientDocument, ClientGrantDocument, ClientKind, Limits, RoleDocument,
        ScopeConsent, SettingsDocument, UnknownScopes,
    };
    let built = PolicyDocument::new()
        .with_settings(
            SettingsDocument::default()
                .with_unknown_scopes(UnknownScopes::Reject)
                .with_default_audience("https://bank.example/api")
                .with_limits(Limits::new(512, 16))
                .with_consent_lifetime(3_600),
        )
        .with_api(
            ApiDocument::new("https://bank.example/api")
                .with_name("Bank")
                .with_rbac(true)
                .with_allow_skipping_consent(false)
                .with_allow_offline_access(true)
                .with_user_access(UserAccess::RequireClientGrant)
                .with_client_access(ClientAccess::DenyAll)
                .with_scope(
                    ScopeDocument::new("read:balance")
                        .with_description("Read")
                        .with_required(true),
                )
                .with_scope(ScopeDocument::new("transfer:funds").with_consent(ScopeConsent::Always))
                .with_default_scope("read:balance")
                .with_metadata("owner", "payments"),
        )
        .with_role(
            RoleDocument::new("teller")
                .with_description("Moves money")
                .with_inherits("viewer")
                .with_permission("https://bank.example/api", "transfer:*"),
        )
        .with_role(RoleDocument::new("viewer").with_permission("https://bank.example/api", "read:*"))
        .with_client(
            ClientDocument::new("bank-web", ClientKind::RegularWeb)
                .with_name("Bank")
                .with_first_party(true)
                .with_grant_types([Flow::AuthorizationCode, Flow::DeviceCode])
                .with_grant(
                    ClientGrantDocument::new("https://bank.example/api")
                        .with_subject(Subject::User)
                        .with_scope("*"),
                )
                .with_metadata("logo", "https://bank.example/logo.png"),
        );
    let json = PolicyDocument::from_json(
        r#"{
      "settings": { "unknown_scopes": "reject", "default_audience": "https://bank.example/api",
                    "max_scope_length": 512, "max_scope_tokens": 16, "consent_lifetime": 3600 },
      "apis": [{ "audience": "https://bank.example/api", "name": "Bank", "rbac": true,
                 "allow_skipping_consent": false, "allow_offline_access": true,
                 "user_access": "require_client_grant", "client_access": "deny_all",
                 "scopes": [ { "name": "read:balance", "description": "Read", "required": true },
                             { "name": "transfer:funds", "consent": "always" } ],
                 "default_scopes": ["read:balance"], "metadata": { "owner": "payments" } }],
      "roles": [ { "name": "teller", "description": "Moves money", "inherits": ["viewer"],
                   "permissions": [ { "audience": "https://bank.example/api", "scope": "transfer:*" } ] },
                 { "name": "viewer", "permissions": [ { "audience": "https://bank.example/api", "scope": "read:*" } ] } ],
      "clients": [ { "client_id": "bank-web", "name": "Bank", "first_party": true, "kind": "regular_web",
                     "grant_types": ["authorization_code", "device_code"],
                     "grants": [ { "audience": "https://bank.example/api", "subject": "user", "scopes": ["*"] } ],
                     "metadata": { "logo": "https://bank.example/logo.png" } } ]
    }"#,
    )
    .unwrap();
    assert_eq!(built, json);
    let policy = Policy::from_document(built).unwrap();
    assert_eq!(policy.consent_lifetime(), Some(3_600));
    let api = policy.api("https://bank.example/api").unwrap();
    assert_eq!(api.metadata().get("owner"), Some("payments"));
    let transfer = api.definition("transfer:funds").unwrap();
    assert_eq!(
        (transfer.consent(), transfer.required()),
        (ScopeConsent::Always, false)
    );
    assert!(api.definition("read:balance").unwrap().required());
    assert_eq!(policy.client("bank-web").unwrap().metadata().len(), 1);
}

#[test]
fn a_document_built_in_code_reports_every_problem_with_its_path() {
    use scope_policy::{ApiDocument, ClientDocument, ClientKind, RoleDocument};
    let document = PolicyDocument::new()
        .with_api(ApiDocument::new("https://a/api").with_scope(ScopeDocument::new("read:a")))
        .with_api(ApiDocument::new("https://a/api").with_metadata("", "x"))
        .with_role(RoleDocument::new("r").with_permission("https://a/api", "write:*"))
        .with_client(ClientDocument::new("spa", ClientKind::Spa).with_grant_types([Flow::ClientCredentials]));
    let errors = Policy::from_document(document).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path()).collect();
    assert_eq!(
        paths,
        [
            "apis[1].audience",
            "apis[1].metadata",
            "roles[0].permissions[0].scope",
            "clients[0].grant_types[0]"
        ]
    );
}

#[test]
fn roles_and_clients_say_what_they_can_obtain() {
    let policy = policy(
        r#"{
      "apis": [{ "audience": "https://a", "scopes": [ { "name": "read:a" }, { "name": "write:a" }, { "name": "admin" } ] },
               { "audience": "https://b", "scopes": [ { "name": "read:b" } ] }],
      "roles": [ { "name": "reader", "permissions": [ { "audience": "https://a", "scope": "read:*" } ] },
                 { "name": "writer", "inherits": ["reader"],
                   "permissions": [ { "audience": "https://a", "scope": "write:a" }, { "audience": "https://b", "scope": "*" } ] } ],
      "clients": [ { "client_id": "m2m", "kind": "machine_to_machine",
                     "grants": [ { "audience": "https://a", "scopes": ["admin", "read:*"] } ] } ]
    }"#,
    );
    let a = policy.api("https://a").unwrap();
    let b = policy.api("https://b").unwrap();
    let names = |scopes: &mut dyn Iterator<Item = &scope_policy::Scope>| -> Vec<String> {
        scopes.map(|s| s.as_str().to_owned()).collect()
    };
    let writer = policy.role("writer").unwrap();
    assert_eq!(
        names(&mut writer.scopes(a)),
        ["read:a", "write:a"],
        "inherited, in definition order"
    );
    assert_eq!(names(&mut writer.scopes(b)), ["read:b"]);
    assert_eq!(
        writer.own_permissions(&policy).collect::<Vec<_>>(),
        [("https://a", "write:a"), ("https://b", "*")],
        "as written, without what it inherits"
    );
    assert!(policy.role("reader").unwrap().scopes(b).next().is_none());
    let m2m = policy.client("m2m").unwrap();
    assert_eq!(
        names(&mut m2m.grant_scopes(Subject::Client, a).unwrap()),
        ["read:a", "admin"]
    );
    assert!(m2m.grant_scopes(Subject::User, a).is_none());
    assert!(m2m.grant_scopes(Subject::Client, b).is_none());
}
