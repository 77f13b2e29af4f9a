//! The pages a user sees: sign-in (the stand-in), consent, device
//! verification, done, and errors. Plain HTML with every value escaped.

use std::fmt::Write;

/// What the consent page shows, owned (taken from the crate's prompt).
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub pending_id: String,
    pub prompt_id: String,
    pub client_name: String,
    pub api_name: Option<String>,
    pub user_id: String,
    /// (scope, description, required), in request order.
    pub scopes: Vec<(String, String, bool)>,
    /// Scopes granted without asking (remembered, or needing no consent).
    pub already: Vec<String>,
    /// The redirect's host, when the redirect is unverifiable (RFC 8252 §8.6).
    pub unverifiable_host: Option<String>,
    /// Said above the form when the prompt changed since the user last saw it.
    pub notice: Option<&'static str>,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\n<body>\n<h1>{}</h1>\n{body}</body>\n</html>\n",
        escape(title),
        escape(title)
    )
}

/// The consent page. Each scope is a checkbox, ticked; a required one is
/// locked (disabled, and sent by a hidden input). The form carries the
/// pending request's id and the prompt's identity.
pub fn consent(view: &ConsentView) -> String {
    let mut body = String::new();
    if let Some(notice) = view.notice {
        let _ = writeln!(body, "<p class=\"notice\" role=\"alert\">{}</p>", escape(notice));
    }
    let target = view
        .api_name
        .as_deref()
        .map(|api| format!(" to the {}", escape(api)))
        .unwrap_or_default();
    let _ = writeln!(
        body,
        "<p><strong>{}</strong> asks for access{target} as <strong>{}</strong>.</p>",
        escape(&view.client_name),
        escape(&view.user_id)
    );
    if let Some(host) = &view.unverifiable_host {
        let _ = writeln!(
            body,
            "<p class=\"warning\" role=\"alert\" data-redirect-host=\"{}\">Make sure you trust this app: \
             after you answer, you will be sent to <strong>{}</strong>, an address whose owner \
             cannot be verified.</p>",
            escape(host),
            escape(host)
        );
    }
    let _ = writeln!(body, "<form method=\"post\" action=\"/consent\">");
    let _ = writeln!(
        body,
        "<input type=\"hidden\" name=\"pending\" value=\"{}\">",
        escape(&view.pending_id)
    );
    let _ = writeln!(
        body,
        "<input type=\"hidden\" name=\"prompt_id\" value=\"{}\">",
        escape(&view.prompt_id)
    );
    let _ = writeln!(body, "<ul>");
    for (scope, description, required) in &view.scopes {
        let (scope, description) = (escape(scope), escape(description));
        let label = if description.is_empty() {
            scope.clone()
        } else {
            description
        };
        if *required {
            let _ = writeln!(
                body,
                "<li data-scope=\"{scope}\" data-required=\"true\"><label><input type=\"checkbox\" \
                 checked disabled> {label} <small>({scope}, required)</small></label>\
                 <input type=\"hidden\" name=\"scope\" value=\"{scope}\"></li>"
            );
        } else {
            let _ = writeln!(
                body,
                "<li data-scope=\"{scope}\" data-required=\"false\"><label><input type=\"checkbox\" \
                 name=\"scope\" value=\"{scope}\" checked> {label} <small>({scope})</small></label></li>"
            );
        }
    }
    let _ = writeln!(body, "</ul>");
    if !view.already.is_empty() {
        let already: Vec<String> = view.already.iter().map(|scope| escape(scope)).collect();
        let _ = writeln!(body, "<p>Already allowed: {}.</p>", already.join(", "));
    }
    let _ = writeln!(
        body,
        "<button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\n\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>"
    );
    page("Allow access?", &body)
}

/// The login stand-in: pick a user from the users file. A real server
/// authenticates the user here (README.md).
pub fn sign_in(query: &[(String, String)], users: &[&str]) -> String {
    let mut body = String::from(
        "<p>Sign in. <em>This example only asks who you are: a real server authenticates you.</em></p>\n\
         <form method=\"get\" action=\"/authorize\">\n",
    );
    for (name, value) in query.iter().filter(|(name, _)| name != "user") {
        let _ = writeln!(
            body,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    let _ = writeln!(body, "<select name=\"user\">");
    user_options(&mut body, users);
    let _ = writeln!(
        body,
        "</select>\n<button type=\"submit\">Sign in</button>\n</form>"
    );
    page("Sign in", &body)
}

/// The device verification page (RFC 8628 §3.3): the user code, and who the user is.
pub fn device(user_code: Option<&str>, users: &[&str], error: Option<&str>) -> String {
    let mut body = String::new();
    if let Some(error) = error {
        let _ = writeln!(body, "<p class=\"error\" role=\"alert\">{}</p>", escape(error));
    }
    let _ = writeln!(
        body,
        "<form method=\"post\" action=\"/device\">\n<label>Code shown on your device \
         <input name=\"user_code\" value=\"{}\" autocomplete=\"off\"></label>",
        escape(user_code.unwrap_or_default())
    );
    let _ = writeln!(body, "<label>Signed in as (stand-in) <select name=\"user\">");
    user_options(&mut body, users);
    let _ = writeln!(
        body,
        "</select></label>\n<button type=\"submit\">Continue</button>\n</form>"
    );
    page("Connect a device", &body)
}

/// The options of a stand-in sign-in's user list.
fn user_options(body: &mut String, users: &[&str]) {
    for user in users {
        let _ = writeln!(body, "<option>{}</option>", escape(user));
    }
}

/// After a device's request was answered.
pub fn device_done(approved: bool) -> String {
    let text = if approved {
        "Done: you may return to your device."
    } else {
        "The device's request was denied."
    };
    page("Device", &format!("<p class=\"done\">{text}</p>\n"))
}

/// An error shown to the user, never sent to the client: an unknown client,
/// a redirect URI that is not registered, a form from another session.
pub fn error(error: &str, description: &str) -> String {
    page(
        "Something went wrong",
        &format!(
            "<p class=\"error\" data-error=\"{}\">{}</p>\n",
            escape(error),
            escape(description)
        ),
    )
}
