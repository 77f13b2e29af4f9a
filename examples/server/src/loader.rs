//! Loading the policy document and the login stand-in's users file, with
//! every problem reported at its path.

use std::collections::BTreeMap;
use std::path::Path;

use scope_policy::{Policy, User};
use serde::{Deserialize, Serialize};

/// A policy and its users, loaded together and swapped together.
#[derive(Debug)]
pub struct Loaded {
    pub policy: Policy,
    pub users: Users,
}

/// The users the login stand-in knows, by id.
///
/// A real server authenticates the user and reads their roles and direct
/// permissions from its identity store; this file stands in for both.
#[derive(Debug, Default)]
pub struct Users {
    by_id: BTreeMap<String, User>,
}

impl Users {
    pub fn get(&self, id: &str) -> Option<&User> {
        self.by_id.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// The users file: `[[users]]` tables, each a `scope_policy::User`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<User>,
}

/// One problem of a file, at its path inside the document.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn internal(message: String) -> Self {
        Problem {
            file: String::new(),
            path: String::new(),
            message,
        }
    }
}

/// Loads both files; any problem in either refuses both, with every problem listed.
pub fn load(policy_path: &Path, users_path: &Path) -> Result<Loaded, Vec<Problem>> {
    let policy = load_policy(policy_path);
    let users = load_users(users_path);
    match (policy, users) {
        (Ok(policy), Ok(users)) => Ok(Loaded { policy, users }),
        (policy, users) => Err(policy
            .err()
            .into_iter()
            .flatten()
            .chain(users.err().into_iter().flatten())
            .collect()),
    }
}

fn load_policy(path: &Path) -> Result<Policy, Vec<Problem>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| {
        vec![Problem {
            file: file.clone(),
            path: String::new(),
            message: error.to_string(),
        }]
    })?;
    let loaded = match path.extension().and_then(|ext| ext.to_str()) {
        Some("json") => Policy::from_json(&text),
        _ => Policy::from_toml(&text),
    };
    loaded.map_err(|error| {
        error
            .problems()
            .into_iter()
            .map(|(path, message)| Problem {
                file: file.clone(),
                path: path.to_owned(),
                message,
            })
            .collect()
    })
}

fn load_users(path: &Path) -> Result<Users, Vec<Problem>> {
    let file = path.display().to_string();
    let problem = |path: String, message: String| Problem {
        file: file.clone(),
        path,
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|error| vec![problem(String::new(), error.to_string())])?;
    let parsed: UsersFile =
        toml::from_str(&text).map_err(|error| vec![problem(String::new(), error.message().to_owned())])?;
    let mut users = Users::default();
    let mut problems = Vec::new();
    for (at, user) in parsed.users.into_iter().enumerate() {
        if user.id.is_empty() {
            problems.push(problem(
                format!("users[{at}].id"),
                "the user id is empty".to_owned(),
            ));
        } else if users.by_id.contains_key(&user.id) {
            problems.push(problem(
                format!("users[{at}].id"),
                format!("duplicate user id `{}`", user.id),
            ));
        } else {
            users.by_id.insert(user.id.clone(), user);
        }
    }
    if problems.is_empty() {
        Ok(users)
    } else {
        Err(problems)
    }
}

/// One log line per problem, with its file and path.
pub fn log_problems(problems: &[Problem]) {
    for problem in problems {
        tracing::error!(file = %problem.file, path = %problem.path, problem = %problem.message, "policy problem");
    }
}
