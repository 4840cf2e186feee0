//! News sources: RSS/Atom/JSON Feed over HTTP.
