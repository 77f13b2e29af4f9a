//! Shared by `policy_json` and `policy_toml`: what must hold for any text
//! either reader accepted or refused.

use scope_policy::{
    ClientKind, ConsentRecord, Decision, Flow, LoadError, Policy, PolicyDocument, Problem, Request,
    Scope, ScopeConsent, User, Verdict,
};

/// The clock of the decisions made on a built policy.
const NOW: u64 = 1_700_000_000;

/// A refused document: a syntax error, or at least one problem, each with a
/// path (empty only at the root). `read` is the
/// same text read as a document only: its shape problems are all among the
/// policy's problems, and a document that reads refuses with exactly what
/// `Policy::from_document` finds in it.
pub fn check_refused(error: &LoadError, read: Result<PolicyDocument, LoadError>) {
    let _ = error.to_string();
    match error {
        LoadError::Syntax { path, message } => {
            let _ = (path, message);
            assert!(
                matches!(read, Err(LoadError::Syntax { .. })),
                "text that does not parse as a policy parses as a document: {read:?}"
            );
        }
        LoadError::Policy(errors) => {
            assert!(!errors.is_empty(), "a refused policy names at least one problem");
            for problem in errors {
                // Empty only at the root: a document that is not an object,
                // or a field whose name is empty written at the root.
                let at_root = match problem.problem() {
                    Problem::WrongType { .. } => true,
                    Problem::UnknownField { field, .. } => field.is_empty(),
                    _ => false,
                };
                assert!(
                    !problem.path().is_empty() || at_root,
                    "problem without a path: {problem}"
                );
                let _ = problem.to_string();
            }
            match read {
                Err(LoadError::Policy(shape)) => {
                    for problem in &shape {
                        assert!(
                            errors.iter().any(|error| error == problem),
                            "shape problem {problem} missing from {errors}"
                        );
                    }
                }
                Ok(document) => {
                    let built = Policy::from_document(document).expect_err("the same document refused");
                    assert_eq!(&built, errors, "the text and its document refused differently");
                }
                Err(other) => panic!("a policy refused for its problems, a document for {other}"),
            }
        }
        _ => {}
    }
}

/// A built document: it round-trips through both formats to the same
/// document, the policy reads as the document says (revision 2's consent
/// settings, metadata, lifetime and grant types included), and a handful of
/// decisions on it never panic and never grant what was not asked.
pub fn check_built(document: &PolicyDocument, policy: &Policy) {
    let json = document.to_json().expect("a document serializes to JSON");
    let again = PolicyDocument::from_json(&json).expect("serialized JSON reads back");
    assert_eq!(&again, document, "JSON round trip changed the document");
    Policy::from_json(&json).expect("serialized JSON builds again");
    // TOML integers are i64: a limit above i64::MAX cannot be written, which is fine.
    if let Ok(toml) = document.to_toml() {
        let again = PolicyDocument::from_toml(&toml).expect("serialized TOML reads back");
        assert_eq!(&again, document, "TOML round trip changed the document");
        Policy::from_toml(&toml).expect("serialized TOML builds again");
    }
    check_reading(document, policy);
    exercise(policy);
}

/// The built policy says what the document says.
fn check_reading(document: &PolicyDocument, policy: &Policy) {
    let lifetime = document.settings.consent_lifetime;
    assert!(
        lifetime.is_none_or(|seconds| seconds > 0),
        "a non-positive consent_lifetime built"
    );
    assert_eq!(
        policy.consent_lifetime(),
        lifetime.and_then(|seconds| u64::try_from(seconds).ok())
    );
    for doc in &document.apis {
        let api = policy
            .api(&doc.audience)
            .expect("every API of the document is built");
        assert_eq!(api.metadata(), &doc.metadata, "metadata of {}", doc.audience);
        assert!(api.metadata().iter().all(|(key, _)| !key.is_empty()));
        assert_eq!(api.definitions().len(), doc.scopes.len());
        for scope in &doc.scopes {
            let definition = api.definition(&scope.name).expect("every scope is defined");
            let consent = match definition.consent() {
                ScopeConsent::Default => "default",
                ScopeConsent::Always => "always",
                other => panic!("unknown consent setting {other:?}"),
            };
            assert_eq!(consent, scope.consent);
            assert_eq!(definition.required(), scope.required);
            assert_eq!(definition.description(), scope.description);
        }
    }
    for doc in &document.clients {
        let client = policy
            .client(&doc.client_id)
            .expect("every client of the document is built");
        assert_eq!(client.metadata(), &doc.metadata, "metadata of {}", doc.client_id);
        let public = client.kind().is_public();
        assert_eq!(
            public,
            matches!(client.kind(), ClientKind::Spa | ClientKind::Native)
        );
        assert!(
            !(public && client.allows(Flow::ClientCredentials)),
            "a public client with client credentials"
        );
        let listed = |flow: Flow| {
            doc.grant_types
                .as_ref()
                .is_some_and(|types| types.iter().any(|t| t == flow.as_str()))
        };
        assert_eq!(
            client.allows(Flow::DeviceCode),
            listed(Flow::DeviceCode),
            "device_code only when listed"
        );
    }
}

fn exercise(policy: &Policy) {
    let mut user = User::new("fuzz-user");
    for role in policy.roles().take(8) {
        user = user.with_role(role.name());
    }
    let audiences: Vec<Option<&str>> = std::iter::once(None)
        .chain(policy.apis().take(3).map(|api| Some(api.audience())))
        .collect();
    // Plain; then `prompt=consent` with an unverifiable redirect, where
    // nothing is skipped and no record counts.
    let contexts: [(Option<&str>, Option<&str>); 2] =
        [(None, None), (Some("consent"), Some("https://127.1/cb"))];
    for client in policy.clients().take(4) {
        for audience in &audiences {
            let mut raw = String::from("openid offline_access");
            if let Some(api) = audience.and_then(|a| policy.api(a)) {
                for (scope, _) in api.scopes().take(16) {
                    raw.push(' ');
                    raw.push_str(scope.as_str());
                }
            }
            let tokens = |skip: usize| {
                raw.split(' ')
                    .skip(skip)
                    .take(2)
                    .filter_map(|t| Scope::new(t).ok())
            };
            let consents: Vec<ConsentRecord> = audience
                .map(|a| {
                    ConsentRecord::new(user.id.clone(), client.client_id(), Some(a))
                        .with_scopes(tokens(0))
                        .with_declined(tokens(2))
                })
                .into_iter()
                .collect();
            for flow in Flow::ALL {
                for scope in [None, Some(raw.as_str())] {
                    for (prompt, redirect_uri) in contexts {
                        let mut request = Request::new(client.client_id())
                            .flow(*flow)
                            .consents(&consents)
                            .maybe_audience(audience.filter(|_| *flow != Flow::RefreshToken))
                            .maybe_scope(scope)
                            .maybe_prompt(prompt)
                            .maybe_redirect_uri(redirect_uri)
                            .now(NOW);
                        if flow.has_user() {
                            request = request.user(&user);
                        }
                        if *flow == Flow::RefreshToken {
                            request = request.original_scope(&raw).maybe_original_audience(*audience);
                        }
                        decide(policy, &request, scope.is_none(), *audience, &raw);
                    }
                }
            }
        }
    }
}

/// One decision: answered by approving the whole prompt, and never granting
/// what was not asked.
fn decide(policy: &Policy, request: &Request<'_>, defaulted: bool, audience: Option<&str>, raw: &str) {
    let grant = match policy.grant(request) {
        Err(error) => {
            let _ = (error.code(), error.error_description(), error.to_string());
            return;
        }
        Ok(Decision::Granted(grant)) => grant,
        Ok(Decision::ConsentRequired(prompt)) => {
            assert!(prompt.verdicts().any(|(_, verdict)| verdict == Verdict::Asked));
            let all: Vec<String> = prompt.scopes().map(|p| p.scope().to_owned()).collect();
            // Every required scope is approved, and the request has a clock.
            prompt.approve(&all).expect("approving the whole prompt works")
        }
    };
    let asked: Vec<&str> = raw.split(' ').collect();
    let api = match request.get_flow() {
        Flow::RefreshToken => audience.and_then(|a| policy.api(a)),
        _ => audience.and_then(|a| policy.api(a)).or(policy.default_audience()),
    };
    for granted in grant.scopes() {
        let by_default = defaulted && api.is_some_and(|api| api.description(granted).is_some());
        assert!(
            asked.contains(&granted) || by_default,
            "{granted:?} was granted but not asked"
        );
    }
    for (scope, verdict) in grant.verdicts() {
        assert!(
            matches!(verdict, Verdict::Granted | Verdict::Denied(_)),
            "{scope:?}: {verdict:?} on a grant"
        );
    }
    for permission in grant.permissions() {
        assert!(
            api.is_some_and(|api| api.description(permission).is_some()),
            "permission {permission:?} is not a scope of the API"
        );
    }
}
