//! The admin console (issue 8): principals, re-authentication, home,
//! accounts. Every action and every refusal, on both backends.

mod access;
mod accounts;
mod clients;
mod identities;
mod import;
mod merge;
mod reauth;

use wxfed::accounts::Role;
use wxfed::accounts::manage::{self, Actor};

use crate::helpers::{TestApp, extract_csrf};

pub const PASSWORD: &str = "correct horse battery";

/// Gives `username` a role through the library, as `wxfed user role` does.
pub async fn grant(app: &TestApp, username: &str, role: Role) {
    let (state, username) = (app.state.clone(), username.to_owned());
    actix_web::web::block(move || {
        let mut conn = state.db.get().unwrap();
        manage::set_role(&mut conn, &state.secrets, &Actor("test".into()), &username, role, true).unwrap();
    })
    .await
    .unwrap();
}

/// An admin account, signed in on `app.client`.
pub async fn signed_in_admin(app: &TestApp, username: &str) -> wxfed::accounts::Account {
    let account = app.add_user(username, PASSWORD).await;
    grant(app, username, Role::Admin).await;
    assert_eq!(app.login(username, PASSWORD).await.status(), 303);
    account
}

/// Makes every session's last authentication an hour old.
pub fn make_authentication_stale(db: &crate::helpers::TestDb) {
    db.execute("UPDATE sessions SET auth_time = '2000-01-01 00:00:00'");
}

/// The detail page's CSRF token.
pub async fn page_token(app: &TestApp, path: &str) -> String {
    let page = app.get(path).await;
    assert_eq!(page.status(), 200, "{path}");
    extract_csrf(&page.text().await.unwrap())
}

/// The hidden fields and action of the page's first form with `marker`.
pub fn form_of(page: &str, marker: &str) -> (String, Vec<(String, String)>) {
    let start = page.find(marker).expect("the page has the form");
    let form_start = page[..start].rfind("<form").unwrap();
    let end = page[form_start..].find("</form>").unwrap() + form_start;
    let form = &page[form_start..end];
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(unescape(&tag[at..at + tag[at..].find('"')?]))
    };
    let action = attr(form, "action").unwrap();
    let mut fields = Vec::new();
    for piece in form.split("<input").skip(1) {
        let tag = &piece[..piece.find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            fields.push((attr(tag, "name").unwrap(), attr(tag, "value").unwrap_or_default()));
        }
    }
    (action, fields)
}

fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"").replace("&#39;", "'").replace("&#60;", "<").replace("&#62;", ">").replace("&#38;", "&")
}

/// Posts `fields` (pairs) to `path`.
pub async fn post(app: &TestApp, path: &str, fields: &[(String, String)]) -> reqwest::Response {
    app.client.post(app.url(path)).form(fields).send().await.unwrap()
}

pub fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}
