//! Canonical URLs of news articles, used as the deduplication key (`news_articles.canonical_url`).
//!
//! The same article reaches us through several feeds and campaigns, with links that differ only in
//! spelling (`HTTP://Example.COM:80/a`), fragments (`#comments`) or tracking parameters
//! (`?utm_source=rss`). [`canonical_url`] maps all of these to one string:
//!
//! 1. surrounding whitespace is trimmed; a relative link is resolved against the base (the feed's
//!    URL or `xml:base`); a relative link without a base is an error;
//! 2. only `http` and `https` are accepted, and a host is required;
//! 3. scheme and host are lower-cased (IDNA hosts become punycode), default ports (80 for http,
//!    443 for https) are dropped, dot segments in the path are resolved;
//! 4. the fragment is dropped;
//! 5. tracking parameters ([`is_tracking_param`], see [`TRACKING_PARAMS`] and
//!    [`TRACKING_PREFIXES`]) and empty pairs (`a=1&&b=2`) are dropped;
//! 6. the remaining query pairs are sorted by their (raw) key; the sort is stable, so repeated keys
//!    keep their relative order (`a=2&a=1` stays as is); the pairs themselves are kept byte for
//!    byte (no re-encoding);
//! 7. an empty query (`?` with nothing left) is dropped.
//!
//! The path is kept as is (including a trailing slash and its letter case), because servers treat
//! `/a` and `/a/` or `/A` differently.

use crate::{Error, Result};
use url::Url;

/// Query parameters dropped from canonical URLs, compared case-insensitively with the
/// (percent-decoded) key.
///
/// | parameter | who sets it |
/// |---|---|
/// | `fbclid` | Facebook click id |
/// | `gclid`, `gclsrc`, `dclid`, `gbraid`, `wbraid`, `_gl`, `_ga` | Google Ads / DoubleClick / Google Analytics linker |
/// | `yclid`, `ysclid` | Yandex |
/// | `msclkid` | Microsoft Advertising |
/// | `twclid`, `ref_src`, `ref_url` | Twitter / X |
/// | `ttclid` | TikTok |
/// | `li_fat_id` | LinkedIn |
/// | `igshid`, `igsh` | Instagram share id |
/// | `mc_cid`, `mc_eid` | Mailchimp |
/// | `_hsenc`, `_hsmi`, `__hstc`, `__hssc`, `__hsfp`, `hsctatracking` | HubSpot |
/// | `mkt_tok` | Marketo |
/// | `oly_anon_id`, `oly_enc_id` | Omeda |
/// | `vero_id`, `vero_conv` | Vero |
/// | `wickedid` | Wicked Reports |
/// | `rb_clickid` | Rakuten |
/// | `s_cid` | Adobe Analytics campaign |
/// | `pk_campaign`, `pk_kwd`, `pk_keyword`, `pk_source`, `pk_medium`, `pk_content`, `pk_cid` | Matomo / Piwik (legacy names) |
pub const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "_gl",
    "_ga",
    "yclid",
    "ysclid",
    "msclkid",
    "twclid",
    "ref_src",
    "ref_url",
    "ttclid",
    "li_fat_id",
    "igshid",
    "igsh",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "__hstc",
    "__hssc",
    "__hsfp",
    "hsctatracking",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "vero_conv",
    "wickedid",
    "rb_clickid",
    "s_cid",
    "pk_campaign",
    "pk_kwd",
    "pk_keyword",
    "pk_source",
    "pk_medium",
    "pk_content",
    "pk_cid",
];

/// Key prefixes of tracking parameter families dropped from canonical URLs (compared
/// case-insensitively): `utm_` (Google Analytics campaign: `utm_source`, `utm_medium`,
/// `utm_campaign`, `utm_term`, `utm_content`, `utm_id`, ...) and `mtm_` (Matomo campaign).
pub const TRACKING_PREFIXES: &[&str] = &["utm_", "mtm_"];

/// Whether a query parameter key (percent-decoded or raw) is a tracking parameter.
pub fn is_tracking_param(key: &str) -> bool {
    let key = decode_key(key).to_ascii_lowercase();
    TRACKING_PREFIXES.iter().any(|p| key.starts_with(p))
        || TRACKING_PARAMS.iter().any(|p| key == *p)
}

/// The canonical form of a link, used to deduplicate articles (scheme and host lower case,
/// tracking parameters and fragments dropped; the full rules are in the module's source).
///
/// `base` resolves relative links (`/2024/gold-rallies`, `../a`, `//host/p`); absolute links
/// ignore it. Errors are [`Error::InvalidInput`] naming the link.
pub fn canonical_url(raw: &str, base: Option<&Url>) -> Result<String> {
    let mut url = parse_link(raw, base)?;
    url.set_fragment(None);
    let query = url.query().map(canonical_query);
    match query {
        Some(q) if !q.is_empty() => url.set_query(Some(&q)),
        _ => url.set_query(None),
    }
    Ok(url.into())
}

/// Parse a link (trimmed) as an absolute http(s) URL, resolving it against `base` when relative.
///
/// The result is the link as given, normalised by the URL standard (lower-case scheme and host,
/// default port dropped) but with its fragment and query untouched.
pub fn parse_link(raw: &str, base: Option<&Url>) -> Result<Url> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid("empty link"));
    }
    let shown = shorten(trimmed);
    let url = match Url::parse(trimmed) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(b) => b
                .join(trimmed)
                .map_err(|e| Error::invalid(format!("link {shown:?}: {e}")))?,
            None => {
                return Err(Error::invalid(format!(
                    "link {shown:?} is relative and there is no base to resolve it against"
                )))
            }
        },
        Err(e) => return Err(Error::invalid(format!("link {shown:?}: {e}"))),
    };
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(Error::invalid(format!(
                "link {shown:?}: scheme {other:?} is not http or https"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!("link {shown:?} has no host")));
    }
    Ok(url)
}

/// Drop tracking and empty pairs, then sort the rest by raw key (stable).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| (p.split_once('=').map_or(p, |(k, _)| k), p))
        .filter(|(k, _)| !k.is_empty() && !is_tracking_param(k))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::with_capacity(query.len());
    for (i, (_, pair)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(pair);
    }
    out
}

/// Percent-decode a query key (`+` is a space in form encoding) for comparison only.
fn decode_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// At most 200 characters of a link for error messages.
fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn canon(raw: &str) -> String {
        canonical_url(raw, None).unwrap()
    }

    #[test]
    fn each_tracking_parameter_is_dropped() {
        let mut names: Vec<String> = TRACKING_PARAMS.iter().map(|s| s.to_string()).collect();
        names.extend(
            [
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_term",
                "utm_content",
                "utm_id",
                "utm_whatever",
                "mtm_campaign",
                "mtm_kwd",
                // case-insensitive
                "UTM_SOURCE",
                "FbClid",
                "hsCtaTracking",
                // percent-encoded key
                "utm%5Fsource",
            ]
            .map(String::from),
        );
        for name in names {
            let raw = format!("https://example.com/a?id=7&{name}=x");
            assert_eq!(canon(&raw), "https://example.com/a?id=7", "{name}");
            let raw = format!("https://example.com/a?{name}=x");
            assert_eq!(canon(&raw), "https://example.com/a", "{name} alone");
            let raw = format!("https://example.com/a?{name}");
            assert_eq!(canon(&raw), "https://example.com/a", "{name} without value");
        }
    }

    #[test]
    fn lookalike_parameters_are_kept() {
        for raw in [
            "https://example.com/?utm=1",
            "https://example.com/?xutm_source=1",
            "https://example.com/?gclid2=1",
            "https://example.com/?ref=home",
            "https://example.com/?mod=rss",
        ] {
            assert_eq!(canon(raw), raw);
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            // case of scheme and host; path case kept
            (
                "HTTPS://WWW.Example.COM/News/A",
                "https://www.example.com/News/A",
            ),
            ("Http://Example.com", "http://example.com/"),
            // default ports dropped, others kept
            ("http://example.com:80/a", "http://example.com/a"),
            ("https://example.com:443/a", "https://example.com/a"),
            ("http://example.com:443/a", "http://example.com:443/a"),
            ("https://example.com:80/a", "https://example.com:80/a"),
            ("https://example.com:8443/a", "https://example.com:8443/a"),
            // fragment dropped
            ("https://example.com/a#comments", "https://example.com/a"),
            ("https://example.com/a?b=1#x", "https://example.com/a?b=1"),
            ("https://example.com/a#", "https://example.com/a"),
            // sorting (stable for repeated keys), raw pairs kept
            (
                "https://example.com/a?z=1&a=2&m=3",
                "https://example.com/a?a=2&m=3&z=1",
            ),
            (
                "https://example.com/a?b=2&a=9&b=1",
                "https://example.com/a?a=9&b=2&b=1",
            ),
            (
                "https://example.com/a?q=gold%20price&p=1",
                "https://example.com/a?p=1&q=gold%20price",
            ),
            (
                "https://example.com/a?flag&b=1",
                "https://example.com/a?b=1&flag",
            ),
            // empty `?` and empty pairs
            ("https://example.com/a?", "https://example.com/a"),
            ("https://example.com/a?&&", "https://example.com/a"),
            (
                "https://example.com/a?b=1&&a=1&",
                "https://example.com/a?a=1&b=1",
            ),
            ("https://example.com/a?=x&b=1", "https://example.com/a?b=1"),
            // tracking mixed in
            (
                "https://www.kitco.com/news/2024/gold?utm_source=rss&utm_medium=feed&id=3#top",
                "https://www.kitco.com/news/2024/gold?id=3",
            ),
            // dot segments, whitespace
            (
                "  https://example.com/a/../b/./c  ",
                "https://example.com/b/c",
            ),
            // trailing slash kept
            ("https://example.com/a/", "https://example.com/a/"),
            // international host becomes punycode
            (
                "https://bücher.example/a",
                "https://xn--bcher-kva.example/a",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_url(raw, None).unwrap(), *want, "{raw}");
        }
    }

    #[test]
    fn idempotent() {
        for raw in [
            "HTTPS://WWW.Example.COM:443/News/A?z=1&utm_source=x&a=2#f",
            "https://example.com/a?q=gold%20price&p=1",
        ] {
            let once = canon(raw);
            assert_eq!(canon(&once), once);
        }
    }

    #[test]
    fn relative_links_resolve_against_the_base() {
        let base = Url::parse("https://www.example.com/feeds/gold/rss.xml").unwrap();
        let cases: &[(&str, &str)] = &[
            ("/news/a?utm_source=rss", "https://www.example.com/news/a"),
            ("b.html", "https://www.example.com/feeds/gold/b.html"),
            ("../c", "https://www.example.com/feeds/c"),
            ("//cdn.example.com/x", "https://cdn.example.com/x"),
            ("?p=2", "https://www.example.com/feeds/gold/rss.xml?p=2"),
            // absolute links ignore the base
            ("http://other.example/z", "http://other.example/z"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonical_url(raw, Some(&base)).unwrap(), *want, "{raw}");
        }
    }

    #[test]
    fn invalid_input_is_an_error() {
        let base = Url::parse("https://example.com/").unwrap();
        for raw in [
            "",
            "   ",
            "/relative/without/base",
            "ftp://example.com/file",
            "mailto:someone@example.com",
            "javascript:alert(1)",
            "data:text/html,hi",
            "http://",
            "https://exa mple.com/",
            "http://[::1/",
        ] {
            let err = canonical_url(raw, None).unwrap_err();
            assert!(matches!(err, Error::InvalidInput(_)), "{raw}: {err}");
        }
        // a base does not make a non-http scheme acceptable
        assert!(canonical_url("ftp://example.com/x", Some(&base)).is_err());
        let err = canonical_url("/x", None).unwrap_err().to_string();
        assert!(err.contains("relative"), "{err}");
    }

    #[test]
    fn long_bad_links_are_shortened_in_errors() {
        let raw = format!("ftp://example.com/{}", "a".repeat(5000));
        let err = canonical_url(&raw, None).unwrap_err().to_string();
        assert!(err.len() < 400, "{}", err.len());
    }

    #[test]
    fn decode_key_handles_truncated_escapes() {
        assert_eq!(decode_key("a%"), "a%");
        assert_eq!(decode_key("a%4"), "a%4");
        assert_eq!(decode_key("a%41"), "aA");
        assert_eq!(decode_key("a%zz"), "a%zz");
        assert_eq!(decode_key("a+b"), "a b");
    }
}
