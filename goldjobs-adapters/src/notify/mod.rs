//! Notifiers: log, fan-out, FCM HTTP v1, webhook.
