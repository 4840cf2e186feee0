#!/usr/bin/env python3
"""Check every relative link of a built mdBook (standard library only).

Usage: check_links.py BOOK_DIR

Walks every .html file under BOOK_DIR and checks each `href` and `src`:
- a relative link must name a file (or a directory with an index.html) inside BOOK_DIR;
- a `#fragment`, on the same page or another one, must be an `id` (or `<a name>`) on that page.
External links (http:, https:, mailto:, ...) are not fetched. `<base href>` is honoured, with
an absolute path meaning the root of the book (as mdBook's 404 page uses it).

Prints one line per broken link (page, link, why) and exits 1 when there is any.
"""

import os
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

SKIP_SCHEMES = {"http", "https", "mailto", "tel", "javascript", "data", "ftp", "ws", "wss"}


class Page(HTMLParser):
    """The links and the anchor targets of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []  # (attribute, value)
        self.ids = set()
        self.base = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "base" and attrs.get("href") is not None:
            self.base = attrs["href"]
        for name in ("id",):
            if attrs.get(name):
                self.ids.add(attrs[name])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for name in ("href", "src"):
            value = attrs.get(name)
            if value is not None and tag != "base":
                self.links.append((name, value))

    handle_startendtag = handle_starttag


def parse(path, cache):
    if path not in cache:
        page = Page()
        with open(path, encoding="utf-8") as f:
            page.feed(f.read())
        cache[path] = page
    return cache[path]


def check(book):
    book = os.path.realpath(book)
    if not os.path.isdir(book):
        return [f"{book}: not a directory (was the book built?)"], 0
    cache = {}
    broken = []
    checked = 0
    pages = []
    for root, _dirs, files in os.walk(book):
        for name in files:
            if name.endswith(".html"):
                pages.append(os.path.join(root, name))
    pages.sort()
    for page_path in pages:
        page = parse(page_path, cache)
        rel_page = os.path.relpath(page_path, book)
        base_dir = os.path.dirname(page_path)
        if page.base is not None:
            b = urlsplit(page.base)
            if not b.scheme and not b.netloc:
                if b.path.startswith("/"):
                    base_dir = os.path.join(book, b.path.lstrip("/"))
                else:
                    base_dir = os.path.join(base_dir, b.path)
                base_dir = os.path.normpath(base_dir)
        for attr, link in page.links:
            link = link.strip()
            if not link:
                continue
            parts = urlsplit(link)
            if parts.scheme in SKIP_SCHEMES or parts.netloc:
                continue
            if parts.scheme:
                broken.append(f"{rel_page}: {attr}={link!r}: unknown scheme {parts.scheme!r}")
                continue
            checked += 1
            path = unquote(parts.path)
            if path == "":
                target = page_path
            elif path.startswith("/"):
                target = os.path.join(book, path.lstrip("/"))
            else:
                target = os.path.join(base_dir, path)
            target = os.path.normpath(target)
            if not (target == book or target.startswith(book + os.sep)):
                broken.append(f"{rel_page}: {attr}={link!r}: points outside the book")
                continue
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            if not os.path.isfile(target):
                broken.append(
                    f"{rel_page}: {attr}={link!r}: no such file {os.path.relpath(target, book)}"
                )
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.endswith(".html"):
                if fragment not in parse(target, cache).ids:
                    broken.append(
                        f"{rel_page}: {attr}={link!r}: no anchor #{fragment} in "
                        f"{os.path.relpath(target, book)}"
                    )
    return broken, checked


def main(argv):
    if len(argv) != 2:
        print("usage: check_links.py BOOK_DIR", file=sys.stderr)
        return 2
    broken, checked = check(argv[1])
    if broken:
        print(f"{len(broken)} broken link(s) in {argv[1]}:", file=sys.stderr)
        for line in broken:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"links ok: {checked} relative links checked in {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
