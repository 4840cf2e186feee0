//! Plain text from hostile feed HTML (`goldjobs::news::html_to_text`).
//!
//! ```text
//! cargo bench --bench news_text -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! The hostile input is a description made of many small `<Script>` elements in mixed case —
//! the shape that made the previous implementation quadratic (it lowercased the rest of the text
//! again for every such element). `previous/*` is that
//! implementation's skip loop, kept here as the baseline; it is only run on the small sizes,
//! since at 5 MiB it would take hours.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use goldjobs::news::{html_to_text, SUMMARY_MAX_CHARS};

/// `<Script>x</SCRIPT>` repeated, then a paragraph of real text.
fn hostile(bytes: usize) -> String {
    let unit = "<Script>x</SCRIPT>";
    let mut s = unit.repeat(bytes / unit.len());
    s.push_str("<p>Gold rallies &amp; silver follows.</p>");
    s
}

/// The skip loop of the previous implementation (only what matters for the cost): for every
/// skipped element, lowercase everything after it and search the closing tag.
fn previous_skip_loop(html: &str) -> usize {
    let mut rest = html;
    let mut skipped = 0;
    while let Some(pos) = rest.find('<') {
        let after = &rest[pos + 1..];
        let Some(end) = after.find('>') else { break };
        let name = after[..end].to_ascii_lowercase();
        rest = &after[end + 1..];
        if name == "script" {
            skipped += 1;
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find("</script") {
                Some(i) => &rest[i..],
                None => "",
            };
        }
    }
    skipped
}

fn text(c: &mut Criterion) {
    let mut g = c.benchmark_group("html_to_text");
    g.sample_size(10);
    for size in [16 << 10, 64 << 10] {
        let input = hostile(size);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("previous", size), &input, |b, s| {
            b.iter(|| previous_skip_loop(black_box(s)))
        });
        g.bench_with_input(BenchmarkId::new("linear", size), &input, |b, s| {
            b.iter(|| html_to_text(black_box(s), SUMMARY_MAX_CHARS))
        });
    }
    // 5 MiB: read up to the 1 MiB input bound, linearly.
    let big = hostile(5 << 20);
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_with_input(BenchmarkId::new("linear", 5 << 20), &big, |b, s| {
        b.iter(|| html_to_text(black_box(s), SUMMARY_MAX_CHARS))
    });
    g.finish();
}

criterion_group!(benches, text);
criterion_main!(benches);
