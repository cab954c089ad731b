//! HTTP handlers: thin — extract, call one domain function, map the result.

pub mod assets;
pub mod audit;
pub mod health;
pub mod home;
pub mod lang;
pub mod login;
pub mod logout;
pub mod wechat;

/// Where to go after login: only a path on this server (a leading `/` not
/// followed by `/` or `\`), so the form cannot be used as an open redirect.
pub fn safe_return_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2048
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn return_paths_stay_on_this_server() {
        assert_eq!(safe_return_path(Some("/authorize?x=1")), "/authorize?x=1");
        assert_eq!(safe_return_path(Some("//evil.example")), "/");
        assert_eq!(safe_return_path(Some("/\\evil.example")), "/");
        assert_eq!(safe_return_path(Some("https://evil.example")), "/");
        assert_eq!(safe_return_path(Some("/a\nb")), "/");
        assert_eq!(safe_return_path(None), "/");
    }
}
