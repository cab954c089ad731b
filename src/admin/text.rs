//! The console's one door to translations: templates use `filters`
//! (`|t`, `|t1`), handlers use [`t`]. Every message lives in
//! `locales/{en,zh-CN}/admin.ftl` (ids prefixed `admin-`).

pub use crate::i18n::filters;

/// The message `id` in the request's language.
pub fn t(id: &str) -> String {
    crate::i18n::t(id)
}
