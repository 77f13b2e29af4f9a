//! Shared by `policy_json` and `policy_toml`: what must hold for any text
//! either reader accepted or refused.

use scope_policy::{ConsentRecord, Decision, Flow, LoadError, Policy, PolicyDocument, Request, Scope, User};

/// A refused document: a syntax error, or at least one problem, each with a path.
pub fn check_refused(error: &LoadError) {
    let _ = error.to_string();
    match error {
        LoadError::Syntax { path, message } => {
            let _ = (path, message);
        }
        LoadError::Policy(errors) => {
            assert!(!errors.is_empty(), "a refused policy names at least one problem");
            for problem in errors {
                assert!(!problem.path().is_empty(), "problem without a path: {problem}");
                let _ = problem.to_string();
            }
        }
        _ => {}
    }
}

/// A built document: it round-trips through both formats to the same
/// document, and a handful of decisions on it never panic and never grant
/// what was not asked.
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
    exercise(policy);
}

fn exercise(policy: &Policy) {
    let mut user = User::new("fuzz-user");
    for role in policy.roles().take(8) {
        user = user.with_role(role.name());
    }
    let audiences: Vec<Option<&str>> = std::iter::once(None)
        .chain(policy.apis().take(3).map(|api| Some(api.audience())))
        .collect();
    for client in policy.clients().take(4) {
        for audience in &audiences {
            let mut raw = String::from("openid offline_access");
            if let Some(api) = audience.and_then(|a| policy.api(a)) {
                for (scope, _) in api.scopes().take(16) {
                    raw.push(' ');
                    raw.push_str(scope.as_str());
                }
            }
            let consents: Vec<ConsentRecord> = audience
                .map(|a| ConsentRecord {
                    user_id: user.id.clone(),
                    client_id: client.client_id().to_owned(),
                    audience: Some(a.to_owned()),
                    scopes: raw
                        .split(' ')
                        .take(2)
                        .filter_map(|t| Scope::new(t).ok())
                        .collect(),
                    expires_at: None,
                })
                .into_iter()
                .collect();
            for flow in Flow::ALL {
                for scope in [None, Some(raw.as_str())] {
                    let mut request = Request::new(client.client_id()).flow(*flow).consents(&consents);
                    if let Some(audience) = audience {
                        request = request.audience(audience);
                    }
                    if let Some(scope) = scope {
                        request = request.scope(scope);
                    }
                    if flow.has_user() {
                        request = request.user(&user);
                    }
                    if *flow == Flow::RefreshToken {
                        request = request.original_scope(&raw);
                    }
                    let asked: Vec<&str> = raw.split(' ').collect();
                    let grant = match policy.grant(&request) {
                        Err(error) => {
                            let _ = (error.code(), error.description(), error.to_string());
                            continue;
                        }
                        Ok(Decision::Granted(grant)) => grant,
                        Ok(Decision::ConsentRequired(prompt)) => {
                            let all: Vec<String> = prompt.scopes().map(|p| p.scope().to_owned()).collect();
                            prompt.approve(&all).expect("approving the whole prompt works")
                        }
                    };
                    for granted in grant.scopes() {
                        let defaulted = scope.is_none()
                            && audience
                                .and_then(|a| policy.api(a))
                                .or(policy.default_audience())
                                .is_some_and(|api| api.description(granted).is_some());
                        assert!(
                            asked.contains(&granted) || defaulted,
                            "{granted:?} was granted but not asked"
                        );
                    }
                }
            }
        }
    }
}
