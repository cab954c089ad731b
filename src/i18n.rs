//! Languages: every page wxfed shows exists in Simplified Chinese and
//! English. Messages live in Fluent resource files under `locales/<tag>/`
//! (compiled into the binary), never in code or templates.
//!
//! The language of a request is, in order: the `wxfed_lang` cookie set by
//! the language switch (`/lang/{tag}`), the best supported entry of
//! `Accept-Language` (RFC 9110 §12.5.4), then `WXFED_DEFAULT_LOCALE`.
//!
//! [`middleware`] fixes the language for the whole request; templates
//! then write `{{ "message-id"|t }}` (see [`filters`]) and code calls
//! [`t`] / [`t_args`] for text it puts on a page.

use std::borrow::Cow;
use std::collections::HashMap;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};

use crate::state::AppState;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "zh-CN",
        // Fluent wraps arguments in Unicode isolation marks by default;
        // in HTML they only show up as stray characters when copied.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The cookie the language switch sets.
pub const COOKIE: &str = "wxfed_lang";

static ZH_CN: LanguageIdentifier = langid!("zh-CN");
static EN: LanguageIdentifier = langid!("en");

/// A language wxfed speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    ZhCn,
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::ZhCn, Locale::En];

    /// The BCP 47 tag, as used in `lang=` attributes and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Self::ZhCn => "zh-CN",
            Self::En => "en",
        }
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::ZhCn => "中文",
            Self::En => "English",
        }
    }

    fn langid(self) -> &'static LanguageIdentifier {
        match self {
            Self::ZhCn => &ZH_CN,
            Self::En => &EN,
        }
    }

    /// Accepts the tags browsers and people write: `zh-CN`, `zh`,
    /// `zh-Hans`, `zh_CN`, `en`, `en-US`… (any case). Traditional Chinese
    /// tags map to zh-CN too: it is closer for those readers than English.
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Self::ZhCn),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The supported language the browser prefers most, if any
    /// (`Accept-Language: en-US;q=0.8, zh;q=0.9` → zh-CN). Entries with
    /// `q=0` are refusals (RFC 9110 §12.4.2).
    pub fn from_accept_language(header: &str) -> Option<Self> {
        let mut best: Option<(Self, f32)> = None;
        for entry in header.split(',').take(32) {
            let mut parts = entry.split(';');
            let Some(locale) = parts.next().and_then(Self::parse) else { continue };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
                best = Some((locale, q));
            }
        }
        best.map(|(locale, _)| locale)
    }

    /// Cookie, then Accept-Language, then the configured default.
    pub fn negotiate(cookie: Option<&str>, accept_language: Option<&str>, default: Self) -> Self {
        cookie.and_then(Self::parse).or_else(|| accept_language.and_then(Self::from_accept_language)).unwrap_or(default)
    }

    /// The language of `req`.
    pub fn of_request(req: &HttpRequest) -> Self {
        let default = req.app_data::<web::Data<AppState>>().map(|s| s.settings.default_locale).unwrap_or_default();
        let cookie = req.cookie(COOKIE);
        let accept = req.headers().get(ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Self::negotiate(cookie.as_ref().map(|c| c.value()), accept, default)
    }
}

/// What the middleware knows about the request being served.
#[derive(Debug, Clone)]
struct RequestLocale {
    locale: Locale,
    /// The current path and query (GET) or path, for the switch's way back.
    here: String,
}

tokio::task_local! {
    /// The language of the request being served, set by [`middleware`]
    /// around the whole handler (pages, error pages and messages alike),
    /// so no handler has to carry it to every template.
    static REQUEST_LOCALE: RequestLocale;
}

/// Sets the request's language for everything that runs while it is
/// served. Outside a request (CLI, background jobs) the default applies.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let here = match req.uri().path_and_query() {
        Some(pq) if req.method() == actix_web::http::Method::GET => pq.as_str().to_owned(),
        _ => req.path().to_owned(),
    };
    let locale = Locale::of_request(req.request());
    REQUEST_LOCALE.scope(RequestLocale { locale, here }, next.call(req)).await
}

/// Runs `future` as if serving a request in `locale` (tests, tools).
pub async fn with_locale<F: std::future::Future>(locale: Locale, future: F) -> F::Output {
    REQUEST_LOCALE.scope(RequestLocale { locale, here: "/".to_owned() }, future).await
}

/// The language of the request being served.
pub fn current() -> Locale {
    REQUEST_LOCALE.try_with(|r| r.locale).unwrap_or_default()
}

/// The `lang` attribute of the page.
pub fn lang() -> &'static str {
    current().tag()
}

/// The message `id` in the current language. A missing id shows as the
/// id itself (and is logged), never as an empty page; a test keeps every
/// language complete.
pub fn t(id: &str) -> String {
    lookup(current(), id).unwrap_or_else(|| missing(id))
}

/// The message `id` with arguments (`{ $name }` in the resource file).
pub fn t_args(id: &str, args: &[(&str, FluentValue<'_>)]) -> String {
    lookup_with_args(current(), id, args).unwrap_or_else(|| missing(id))
}

fn lookup(locale: Locale, id: &str) -> Option<String> {
    LOCALES.try_lookup(locale.langid(), id)
}

fn lookup_with_args(locale: Locale, id: &str, args: &[(&str, FluentValue<'_>)]) -> Option<String> {
    let args: HashMap<Cow<'static, str>, FluentValue<'_>> =
        args.iter().map(|(k, v)| (Cow::Owned((*k).to_owned()), v.clone())).collect();
    LOCALES.try_lookup_with_args(locale.langid(), id, &args)
}

fn missing(id: &str) -> String {
    tracing::warn!(message_id = id, "missing translation");
    id.to_owned()
}

/// A message for people, by resource id and arguments: domain errors carry
/// one so that a page shows it in the request's language while the CLI and
/// logs (its `Display`) read English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    id: &'static str,
    args: Vec<(&'static str, String)>,
}

impl Message {
    pub fn new(id: &'static str) -> Self {
        Self { id, args: Vec::new() }
    }

    pub fn arg(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The message in `locale`.
    pub fn in_locale(&self, locale: Locale) -> String {
        let args: Vec<(&str, FluentValue<'_>)> =
            self.args.iter().map(|(k, v)| (*k, FluentValue::from(v.as_str()))).collect();
        lookup_with_args(locale, self.id, &args).unwrap_or_else(|| missing(self.id))
    }

    /// The message in the language of the request being served.
    pub fn localized(&self) -> String {
        self.in_locale(current())
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.in_locale(Locale::En))
    }
}

/// One link of the language switch.
pub struct SwitchLink {
    pub tag: &'static str,
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// The language switch: a link per language back to the current page.
pub fn switch_links() -> Vec<SwitchLink> {
    let here = REQUEST_LOCALE.try_with(|r| r.here.clone()).unwrap_or_else(|_| "/".to_owned());
    let back = serde_urlencoded::to_string([("return_to", here.as_str())]).unwrap_or_default();
    let now = current();
    Locale::ALL
        .iter()
        .map(|l| SwitchLink {
            tag: l.tag(),
            name: l.native_name(),
            href: format!("/lang/{}?{back}", l.tag()),
            current: *l == now,
        })
        .collect()
}

/// Template filters: `{{ "login-title"|t }}`,
/// `{{ "home-signed-in-as"|t1("name", username) }}`, and `t_or_raw` for
/// a value that is a message id or already readable text (an OAuth
/// `error_description`, which RFC 6749 §5.2 keeps in English).
/// Files that define templates `use crate::i18n::filters;`.
pub mod filters {
    use std::fmt::Display;

    use fluent_templates::fluent_bundle::FluentValue;

    #[askama::filter_fn]
    pub fn t(id: impl Display, _env: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::t(&id.to_string()))
    }

    #[askama::filter_fn]
    pub fn t1<N: Display, V: Display>(
        id: impl Display,
        _env: &dyn askama::Values,
        name: N,
        value: V,
    ) -> askama::Result<String> {
        let (name, value) = (name.to_string(), value.to_string());
        Ok(super::t_args(&id.to_string(), &[(name.as_str(), FluentValue::from(value))]))
    }

    #[askama::filter_fn]
    pub fn t2<N1: Display, V1: Display, N2: Display, V2: Display>(
        id: impl Display,
        _env: &dyn askama::Values,
        name1: N1,
        value1: V1,
        name2: N2,
        value2: V2,
    ) -> askama::Result<String> {
        let (n1, v1, n2, v2) = (name1.to_string(), value1.to_string(), name2.to_string(), value2.to_string());
        Ok(super::t_args(
            &id.to_string(),
            &[(n1.as_str(), FluentValue::from(v1)), (n2.as_str(), FluentValue::from(v2))],
        ))
    }

    /// The label of a stored code (`{{ row.action|label("audit-action-") }}`):
    /// the message `prefix` + code (dots as dashes, as Fluent ids allow),
    /// or the code itself for one that has no label (yet).
    #[askama::filter_fn]
    pub fn label(code: impl Display, _env: &dyn askama::Values, prefix: &str) -> askama::Result<String> {
        Ok(super::label(prefix, &code.to_string()))
    }

    #[askama::filter_fn]
    pub fn t_or_raw(text: impl Display, _env: &dyn askama::Values) -> askama::Result<String> {
        let text = text.to_string();
        Ok(super::lookup(super::current(), &text).unwrap_or(text))
    }
}

/// The label of a stored code (see `filters::label`), in the request's
/// language.
pub fn label(prefix: &str, code: &str) -> String {
    lookup(current(), &label_id(prefix, code)).unwrap_or_else(|| code.to_owned())
}

/// `audit-action-` + `login.password` → `audit-action-login-password`.
pub fn label_id(prefix: &str, code: &str) -> String {
    format!("{prefix}{}", code.replace('.', "-"))
}

/// The message ids each resource file defines, for the completeness test
/// and for tools: (locale tag, file name, ids).
pub fn message_ids(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter_map(|line| line.split_once('=').map(|(id, _)| id.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_cookie_then_accept_language_then_default() {
        assert_eq!(Locale::negotiate(Some("en"), Some("zh-CN"), Locale::ZhCn), Locale::En);
        assert_eq!(Locale::negotiate(None, Some("en-US,en;q=0.9"), Locale::ZhCn), Locale::En);
        assert_eq!(Locale::negotiate(None, Some("en;q=0.5, zh;q=0.9"), Locale::En), Locale::ZhCn);
        assert_eq!(Locale::negotiate(None, Some("fr, de;q=0.5"), Locale::En), Locale::En);
        assert_eq!(Locale::negotiate(None, Some("zh;q=0, en;q=0.1"), Locale::ZhCn), Locale::En);
        assert_eq!(Locale::negotiate(Some("klingon"), None, Locale::ZhCn), Locale::ZhCn);
        assert_eq!(Locale::negotiate(None, None, Locale::En), Locale::En);
        assert_eq!(Locale::parse("zh_Hans_CN"), Some(Locale::ZhCn));
        assert_eq!(Locale::parse("zh-TW"), Some(Locale::ZhCn));
    }

    #[test]
    fn messages_are_translated_with_arguments() {
        assert_eq!(lookup(Locale::ZhCn, "login-title").as_deref(), Some("登录"));
        assert_eq!(lookup(Locale::En, "login-title").as_deref(), Some("Sign in"));
        let args = [("name", FluentValue::from("alice"))];
        assert!(lookup_with_args(Locale::En, "home-signed-in-as", &args).is_some_and(|m| m.contains("alice")));
        assert_eq!(t("no-such-message-id"), "no-such-message-id");
        // Outside a request the default language applies.
        assert_eq!(current(), Locale::ZhCn);
    }

    /// Every message id exists in every language, file by file: a page
    /// never falls back to the other language or shows a bare id.
    #[test]
    fn every_language_has_every_message() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
        let read_dir = |locale: Locale| -> Vec<(String, Vec<String>)> {
            let mut files: Vec<_> = std::fs::read_dir(root.join(locale.tag()))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "ftl"))
                .map(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    let mut ids = message_ids(&std::fs::read_to_string(&p).unwrap());
                    ids.sort();
                    (name, ids)
                })
                .collect();
            files.sort();
            files
        };
        let zh = read_dir(Locale::ZhCn);
        let en = read_dir(Locale::En);
        let names = |files: &[(String, Vec<String>)]| files.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&zh), names(&en), "both languages have the same resource files");
        assert!(!zh.is_empty());
        for ((file, zh_ids), (_, en_ids)) in zh.iter().zip(en.iter()) {
            let only_zh: Vec<_> = zh_ids.iter().filter(|id| !en_ids.contains(id)).collect();
            let only_en: Vec<_> = en_ids.iter().filter(|id| !zh_ids.contains(id)).collect();
            assert!(
                only_zh.is_empty() && only_en.is_empty(),
                "{file}: only in zh-CN {only_zh:?}; only in en {only_en:?}"
            );
            let mut dedup = zh_ids.clone();
            dedup.dedup();
            assert_eq!(&dedup, zh_ids, "{file}: a message id is defined twice");
            for id in zh_ids {
                for locale in Locale::ALL {
                    // Give every `$variable` the message uses a value, so a
                    // lookup fails only for a message that does not load.
                    let source = std::fs::read_to_string(root.join(locale.tag()).join(file)).unwrap();
                    let line = source.lines().find(|l| l.split_once('=').is_some_and(|(i, _)| i.trim() == id)).unwrap();
                    let vars: Vec<String> = line
                        .split("{ $")
                        .skip(1)
                        .filter_map(|rest| rest.split(' ').next())
                        .map(str::to_owned)
                        .collect();
                    let args: Vec<(&str, FluentValue<'_>)> =
                        vars.iter().map(|v| (v.as_str(), FluentValue::from("x"))).collect();
                    assert!(lookup_with_args(locale, id, &args).is_some(), "{file}: {id} does not load in {locale:?}");
                }
            }
        }
    }

    /// Audit codes are shown by their labels (issue 9: the viewer in both
    /// languages): every action, category and outcome has one in each.
    #[test]
    fn every_audit_code_has_a_label_in_both_languages() {
        use strum::IntoEnumIterator;
        let actions = crate::audit::Action::iter().map(|a| label_id("audit-action-", a.as_str()));
        let categories = crate::audit::Category::ALL.into_iter().map(|c| label_id("audit-category-", c.as_str()));
        let outcomes = ["success", "failure"].into_iter().map(|o| label_id("audit-outcome-", o));
        for id in actions.chain(categories).chain(outcomes) {
            for locale in Locale::ALL {
                assert!(lookup(locale, &id).is_some(), "{id} has no label in {locale:?}");
            }
        }
    }
}
