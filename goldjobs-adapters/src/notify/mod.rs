//! Notifiers: FCM HTTP v1 and webhook. The log and fan-out notifiers live in
//! `goldjobs_core::memory` (`LogNotifier`, `FanoutNotifier`).

#[cfg(feature = "fcm")]
pub mod fcm;
#[cfg(feature = "webhook")]
pub mod webhook;
