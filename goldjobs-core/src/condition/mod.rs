//! The safe condition language of `auto_verify_conditions` (CONTRACT.md §6.5).
