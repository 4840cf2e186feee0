//! Plain text from feed HTML: tags stripped, entities decoded, whitespace collapsed, bounded.

/// Default bound of article summaries, in characters.
pub const SUMMARY_MAX_CHARS: usize = 1_000;

/// Default bound of titles, in characters.
pub const TITLE_MAX_CHARS: usize = 500;

/// The most HTML [`html_to_text`] and [`plain_text`] read, in bytes (1 MiB); the rest of a longer
/// input is ignored. Every pass is linear in its input, so this bounds the work a hostile feed
/// can cause per field.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// `s` cut to at most [`MAX_INPUT_BYTES`], at a character boundary.
fn bounded(s: &str) -> &str {
    if s.len() <= MAX_INPUT_BYTES {
        return s;
    }
    let mut end = MAX_INPUT_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Plain text of an HTML fragment: tags and comments removed (the content of `script`, `style`
/// and similar elements too), character references decoded (`&amp;`, `&#8217;`, `&#x2014;`, the
/// common named ones), runs of whitespace collapsed to one space, trimmed, and cut to at most
/// `max_chars` characters (ending with `…` when cut).
///
/// A `<` that does not start a tag (`a < b`) is kept as text. Never panics on malformed input;
/// linear in the input, of which at most [`MAX_INPUT_BYTES`] are read.
pub fn html_to_text(html: &str, max_chars: usize) -> String {
    let stripped = strip_tags(bounded(html));
    let decoded = decode_entities(&stripped);
    collapse_and_cut(&decoded, max_chars)
}

/// Plain text already (no markup): whitespace collapsed, trimmed and cut like [`html_to_text`].
pub fn plain_text(text: &str, max_chars: usize) -> String {
    collapse_and_cut(bounded(text), max_chars)
}

/// Byte index of the first ASCII-case-insensitive occurrence of `needle` in `haystack`: linear
/// in the haystack for the short element names it is used with, and allocation-free.
fn find_ignore_ascii_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Elements whose content is not text for a reader.
const SKIP_CONTENT: &[&str] = &["script", "style", "noscript", "template", "iframe", "svg"];

/// Elements that separate words (a space is put in their place).
const BLOCK: &[&str] = &[
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "td",
    "th",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "img",
    "hr",
    "table",
    "section",
    "article",
    "figure",
    "figcaption",
];

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(pos) = rest.find('<') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let Some(first) = after.chars().next() else {
            out.push('<');
            rest = after;
            continue;
        };
        if after.starts_with("!--") {
            // comment: skip to `-->` (or to the end when unterminated)
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            out.push(' ');
            continue;
        }
        if !(first.is_ascii_alphabetic() || first == '/' || first == '!' || first == '?') {
            // not a tag: a literal `<`
            out.push('<');
            rest = after;
            continue;
        }
        // a tag: skip to its `>`, honouring quoted attribute values
        let Some(end) = tag_end(after) else {
            // unterminated tag: drop the rest
            rest = "";
            break;
        };
        let tag = &after[..end];
        rest = &after[end + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if BLOCK.contains(&name.as_str()) {
            out.push(' ');
        }
        if !tag.starts_with('/') && !tag.ends_with('/') && SKIP_CONTENT.contains(&name.as_str()) {
            // skip to the closing tag of this element (searched without lowercasing the rest
            // again for every such element, which made many of them quadratic)
            let close = format!("</{name}");
            rest = match find_ignore_ascii_case(rest, &close) {
                Some(i) => {
                    let tail = &rest[i..];
                    tail.find('>').map_or("", |j| &tail[j + 1..])
                }
                None => "",
            };
            out.push(' ');
        }
    }
    out.push_str(rest);
    out
}

/// Index of the `>` closing a tag that starts at `s` (after its `<`), skipping quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let end = after
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .map(|(i, _)| i);
        let decoded = end.and_then(|e| decode_entity(&after[..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        return char::from_u32(code).filter(|c| *c != '\0');
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "hellip" => '…',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "deg" => '°',
        "middot" => '·',
        "bull" => '•',
        "laquo" => '«',
        "raquo" => '»',
        "times" => '×',
        _ => return None,
    })
}

fn collapse_and_cut(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars.saturating_mul(4)));
    let mut count = 0usize;
    let mut cut = false;
    for word in s.split_whitespace() {
        let needed = word.chars().count() + usize::from(count > 0);
        if count + needed > max_chars {
            cut = true;
            // room left for part of this word?
            let room = max_chars.saturating_sub(count + usize::from(count > 0));
            if room > 0 && count == 0 {
                out.extend(word.chars().take(room));
            }
            break;
        }
        if count > 0 {
            out.push(' ');
        }
        out.push_str(word);
        count += needed;
    }
    if cut && max_chars > 0 {
        // make room for the ellipsis
        while out.chars().count() + 1 > max_chars {
            out.pop();
        }
        let trimmed_len = out.trim_end().len();
        out.truncate(trimmed_len);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tags_and_decodes() {
        let cases: &[(&str, &str)] = &[
            (
                "<p>Gold <b>rallies</b> &amp; silver</p>",
                "Gold rallies & silver",
            ),
            ("a < b and c > d", "a < b and c > d"),
            ("x<br/>y<br>z", "x y z"),
            ("<p>one</p><p>two</p>", "one two"),
            ("<a href=\"x?a=1&b=>2\">link</a> text", "link text"),
            ("<script>alert('<p>')</script>visible", "visible"),
            ("<STYLE>p{}</STYLE>text", "text"),
            ("<!-- hidden <b> -->shown", "shown"),
            ("<!-- unterminated", ""),
            ("before <a href='unterminated", "before"),
            ("&#8217;&#x2014;&rsquo;&nbsp;&unknown; &", "’—’ &unknown; &"),
            (
                "&#0; &#xD800; &#99999999999;",
                "&#0; &#xD800; &#99999999999;",
            ),
            ("  lots\n\n of\t space  ", "lots of space"),
            ("<img src=\"a.jpg\">caption", "caption"),
            ("<", "<"),
            ("<>", "<>"),
            ("", ""),
        ];
        for (html, want) in cases {
            assert_eq!(html_to_text(html, 1000), *want, "{html:?}");
        }
    }

    #[test]
    fn case_insensitive_search() {
        assert_eq!(find_ignore_ascii_case("ab</ScRiPt>", "</script"), Some(2));
        assert_eq!(find_ignore_ascii_case("ab", "</script"), None);
        assert_eq!(find_ignore_ascii_case("é</SVG", "</svg"), Some(2));
        assert_eq!(find_ignore_ascii_case("x", ""), Some(0));
    }

    #[test]
    fn hostile_input_is_bounded() {
        // Many unclosed skip elements, mixed case, past the input bound.
        let hostile = "<Script>x</scrip".repeat(MAX_INPUT_BYTES / 8);
        assert!(hostile.len() > MAX_INPUT_BYTES);
        assert_eq!(html_to_text(&hostile, 100), "");
        // Text after the bound is ignored, text before it is kept; no split character.
        let mut long = "a".repeat(MAX_INPUT_BYTES - 1);
        long.push('é');
        long.push_str(" tail");
        assert_eq!(bounded(&long).len(), MAX_INPUT_BYTES - 1);
        assert_eq!(plain_text(&long, 5), "aaaa…");
        let many = "<svg></SVG>word ".repeat(10_000);
        assert_eq!(html_to_text(&many, 9), "word wor…");
    }

    #[test]
    fn bounded_length() {
        let long = "word ".repeat(1000);
        let s = html_to_text(&long, 20);
        assert!(s.chars().count() <= 20, "{s}");
        assert!(s.ends_with('…'), "{s}");
        assert_eq!(s, "word word word word…");
        let one = "x".repeat(50);
        let s = plain_text(&one, 10);
        assert_eq!(s.chars().count(), 10);
        assert!(s.ends_with('…'));
        assert_eq!(plain_text("short", 10), "short");
        assert_eq!(plain_text("exactly10!", 10), "exactly10!");
        assert_eq!(plain_text("ééééééééééé", 5), "éééé…");
        assert_eq!(plain_text("abc", 0), "");
    }
}
